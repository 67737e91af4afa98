"""Output names near the file system's limit (NAME_MAX, 255 bytes): the temporary, lock and
keep-aside names beside an output were longer than the output's own name and failed with
"File name too long" (in a batch, that stopped the batch). Real files on tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains import engine_build, io_temps  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import UnsafeOutputError  # noqa: E402
from sr_domains.io_locks import lock_path  # noqa: E402
from sr_domains.output_checks import MANIFEST  # noqa: E402
from sr_domains.output_names import check_name, name_key  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series, make_nifti  # noqa: E402


@pytest.fixture(autouse=True)
def toy_models(monkeypatch, tmp_path):
    """Small real models (no shipped weights needed); tmp_path must hold 255-byte names."""
    if os.pathconf(tmp_path, "PC_NAME_MAX") < 255:
        pytest.skip("the temporary folder's file system holds names shorter than 255 bytes")
    import sr_domains.geo.job as job

    monkeypatch.setattr(job, "resolve_network", lambda m, w, *, scale, n_bands: tiny_model(1, 2))
    monkeypatch.setattr(engine_build, "resolve_model", lambda m, w, **kw: interp_model(2))


def _name(length: int, end: str, fill: str = "a") -> str:
    """A name of ``length`` bytes ending in ``end``."""
    return fill * (length - len(end.encode())) + end


def _litter(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".") or ".previous-" in n)


def _lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_geotiff_with_a_250_byte_name_plain_cog_and_overwrite(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", width=300, height=280, count=1)
    dst = tmp_path / _name(250, ".tif")
    assert main(["upscale", str(src), str(dst), "--no-progress"]) == 0
    assert _lines(capsys) == [str(dst)]
    check_upscaled(src, dst, 2)
    # a COG (overviews: GDAL's own temporaries beside ours) over it, with stale sidecars of
    # the output it replaces (set aside under a name of their own while it is replaced)
    Path(f"{dst}.ovr").write_bytes(b"stale overviews")
    args = ["upscale", str(src), str(dst), "--no-progress", "--cog", "--overwrite"]
    assert main(args) == 0
    assert _lines(capsys) == [str(dst)]
    check_upscaled(src, dst, 2)
    assert sorted(os.listdir(tmp_path)) == sorted([src.name, dst.name])


def test_geotiff_batch_of_long_names_sharing_a_prefix(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    names = [_name(247, f"_{i}.tif") for i in range(3)]  # 250 bytes with the suffix _x2
    for i, n in enumerate(names):
        make_geotiff(src / n, seed=i)
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "--suffix", "_x2", "--no-progress"]) == 0
    want = [out / n.replace(".tif", "_x2.tif") for n in names]
    assert sorted(_lines(capsys)) == sorted(map(str, want))
    for n, w in zip(names, want):
        assert len(w.name) == 250
        check_upscaled(src / n, w, 2)
    assert _litter(out) == []


def test_nifti_single_and_batch_with_250_byte_names(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    src = make_nifti(tmp_path / "in" / _name(247, ".nii.gz"), shape=(10, 8, 6))
    make_nifti(tmp_path / "in" / _name(247, "b.nii.gz"), shape=(10, 8, 6))
    dst = tmp_path / _name(250, ".nii.gz", "b")
    assert main(["upscale", str(src), str(dst), "--no-progress"]) == 0
    assert _lines(capsys) == [str(dst)]
    assert nib.load(dst).shape[0] == 20
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "in"), str(out), "--suffix", "_x2"]) == 0
    written = _lines(capsys)
    assert len(written) == 2 and all(len(Path(p).name) == 250 for p in written)
    assert all(nib.load(p).shape[0] == 20 for p in written)
    assert _litter(out) == [] and _litter(tmp_path) == []


def test_dicom_output_folder_with_a_250_byte_name_and_its_replacement(tmp_path, capsys):
    make_dicom_series(tmp_path / "series", n_slices=3, rows=8, cols=6)
    out = tmp_path / _name(250, "")
    assert main(["upscale", str(tmp_path / "series"), str(out), "--no-progress"]) == 0
    assert len(_lines(capsys)) == 3
    args = ["upscale", str(tmp_path / "series"), str(out), "--no-progress", "--overwrite"]
    assert main(args) == 0  # (the folder swap)
    assert [pydicom.dcmread(p).Rows for p in _lines(capsys)] == [16] * 3
    assert _litter(tmp_path) == []


def test_names_beside_a_long_output_fit_and_are_its_own(tmp_path):
    """Temporaries, lock and keep-aside of a 255-byte name fit; the cleanup of one output
    removes its own temporaries only, not those of another sharing its first 250 bytes."""
    a, b = tmp_path / _name(255, "1.tif"), tmp_path / _name(255, "2.tif")
    assert name_key(a) != name_key(b)
    made = [io_temps.temp_name(x, ".tif") for x in (a, b)]
    made += [io_temps.old_name(x) for x in (a, b)]
    for p in made:
        os.mkdir(p)  # (a leftover of a killed run: a name the file system holds)
    assert max(len(os.fsencode(p.name)) for p in [*made, lock_path(a)]) <= 255 - 16
    io_temps.clean_stale(a)  # (no output a: the newest "old" of a is restored as a)
    assert sorted(os.listdir(tmp_path)) == sorted([a.name, made[1].name, made[3].name])
    # the previous folder of a replacement that received a user's file is kept aside
    (a / MANIFEST).write_text('{"files": []}')
    (a / "notes.txt").write_text("mine")
    assert io_temps.keep_if_foreign(a, a)
    (kept,) = tmp_path.glob(f"{name_key(a)}.previous-*")
    assert (kept / "notes.txt").read_text() == "mine"


def test_a_name_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / _name(253, ".tif"))
    too_long = tmp_path / _name(256, ".tif")
    assert main(["upscale", str(src), str(too_long), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(too_long) in err
    # (Python < 3.13: the OS's own words, from a first look at the path: one line too)
    assert "256 bytes long and the file system holds at most 255" in err or (
        "File name too long" in err
    )
    # a batch: its suffix makes the name too long; refused before any file is written
    make_geotiff(tmp_path / "in" / "short.tif")
    out = tmp_path / "out"
    args = ["upscale", str(tmp_path / "in"), str(out), "--suffix", "_x2", "--no-progress"]
    assert main(args) == 1
    assert f"{_name(253, '_x2.tif')}: the name is 256 bytes" in capsys.readouterr().err
    assert not out.exists() and _litter(tmp_path) == []
    with pytest.raises(UnsafeOutputError, match="extension '.x{60}' is too long"):
        check_name(tmp_path / _name(200, "." + "x" * 60))


def test_a_model_saved_under_a_long_name(tmp_path):
    """``--save-model`` / ``save_checkpoint`` wrote ``.NAME.PID.XXXXXXXX.tmp`` first: "File
    name too long" for a 250-byte name, after all the adaptation work."""
    from sr_domains.checkpoint import load_checkpoint, save_checkpoint
    from sr_domains.models import create_model

    path = tmp_path / _name(250, ".safetensors")
    model = create_model("srcnn", in_channels=1, scale=2)
    save_checkpoint(model, path)
    assert load_checkpoint(path)[0].scale == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_short_name_spelling_a_long_names_key_keeps_its_own_temporaries(tmp_path):
    """A name ending like a shortened key (``HEAD~<12 hex>``) shared the lock and temporaries
    of the long name whose key it spells: one's cleanup removed the other's temporary."""
    long = tmp_path / _name(250, ".tif")
    short = tmp_path / name_key(long)
    assert name_key(short) != name_key(long) and lock_path(short) != lock_path(long)
    tmp = io_temps.temp_name(long, ".tif")
    tmp.write_bytes(b"in flight")
    io_temps.clean_stale(short)
    assert tmp.exists()
