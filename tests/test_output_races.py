"""What happens to a user's files when the output they sit beside is replaced and the
replacement fails, or when they are saved into an output folder while a run replaces it:
they are never lost."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
rasterio = pytest.importorskip("rasterio")

from sr_domains import io_safety  # noqa: E402
from sr_domains.errors import UnsafeOutputError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".sr-" in p.name)


def test_a_file_saved_into_the_old_output_during_the_run_is_kept(tmp_path):
    """The folder was checked once, before the run: a report saved into the previous output
    while the new one was being written went away with that folder."""
    src = tmp_path / "src.txt"
    src.write_text("input")
    dst = tmp_path / "out"
    with io_safety.atomic_output(dst, [src], kind="dir") as tmp:
        (tmp / "a.dcm").write_bytes(b"old")
    before = _tree(dst)

    def run_while_the_user_saves() -> None:
        with io_safety.atomic_output(dst, [src], kind="dir", overwrite=True) as tmp:
            (tmp / "a.dcm").write_bytes(b"new")
            (dst / "report.txt").write_text("mine")  # saved meanwhile

    with pytest.raises(UnsafeOutputError, match=r"report\.txt"):
        run_while_the_user_saves()
    assert _tree(dst) == {**before, "report.txt": b"mine"}
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("use_exchange", [True, False])
def test_entries_that_appear_during_the_swap_are_kept_aside(
    tmp_path, monkeypatch, caplog, use_exchange
):
    """After the last check and before the swap: the replaced folder is kept, not deleted."""
    src = tmp_path / "src.txt"
    src.write_text("input")
    dst = tmp_path / "out"
    with io_safety.atomic_output(dst, [src], kind="dir") as tmp:
        (tmp / "a.dcm").write_bytes(b"old")
    (dst / "report.txt").write_text("mine")  # (after the check, as if during the swap)
    new = tmp_path / ".new"
    new.mkdir()
    (new / "a.dcm").write_bytes(b"new")
    if not use_exchange:
        monkeypatch.setattr(io_safety, "exchange", lambda a, b: False)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        io_safety.replace_dir(new, dst)
    assert (dst / "a.dcm").read_bytes() == b"new"
    (kept,) = tmp_path.glob("out.previous-*")
    assert (kept / "report.txt").read_text() == "mine" and "report.txt" in caplog.text


@pytest.mark.parametrize("use_exchange", [True, False])
def test_a_replaced_folder_left_by_an_interrupted_keep_is_kept_by_the_next_run(
    tmp_path, monkeypatch, caplog, use_exchange
):
    """Keeping the replaced folder aside failed (a Ctrl-C at that rename): it stayed under
    its hidden temporary name, and the next run's cleanup deleted it with the user's file."""
    src = tmp_path / "src.txt"
    src.write_text("input")
    dst = tmp_path / "out"
    with io_safety.atomic_output(dst, [src], kind="dir") as tmp:
        (tmp / "a.dcm").write_bytes(b"old")
    (dst / "report.txt").write_text("mine")  # (after the check, as if during the swap)
    new = io_safety.temp_name(dst)  # (the run's own temporary folder)
    new.mkdir()
    (new / "a.dcm").write_bytes(b"new")
    io_safety._write_manifest(new, [src], {})
    if not use_exchange:
        monkeypatch.setattr(io_safety, "exchange", lambda a, b: False)
    real = os.rename

    def rename(a, b):
        if ".previous-" in os.fspath(b):
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        io_safety.replace_dir(new, dst)
    monkeypatch.undo()
    assert (dst / "a.dcm").read_bytes() == b"new"
    assert len(_leftovers(tmp_path)) == 1  # (the replaced folder, under its hidden name)
    with (
        caplog.at_level(logging.WARNING, logger="sr_domains"),
        io_safety.atomic_output(dst, [src], kind="dir", overwrite=True) as tmp,
    ):
        (tmp / "a.dcm").write_bytes(b"newer")
    assert (dst / "a.dcm").read_bytes() == b"newer"
    (kept,) = tmp_path.glob("out.previous-*")
    assert (kept / "report.txt").read_text() == "mine" and "report.txt" in caplog.text
    assert _leftovers(tmp_path) == []


def test_an_unfinished_temporary_folder_is_still_removed(tmp_path):
    """Only a replaced output is judged: a killed run's own folder (no manifest yet) goes."""
    src = tmp_path / "src.txt"
    src.write_text("input")
    dst = tmp_path / "out"
    left = io_safety.temp_name(dst)
    left.mkdir()
    (left / "a.dcm").write_bytes(b"half")
    with io_safety.atomic_output(dst, [src], kind="dir") as tmp:
        (tmp / "a.dcm").write_bytes(b"new")
    assert _leftovers(tmp_path) == [] and not list(tmp_path.glob("out.previous-*"))


def _previous_output_with_sidecars(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    src = make_geotiff(tmp_path / "in.tif", width=16, height=16)
    dst = upscale_geotiff(src, tmp_path / "out" / "o.tif", model=tiny_model(1, 2))
    from rasterio.enums import Resampling

    with rasterio.Env(TIFF_USE_OVR=True), rasterio.open(dst, "r+") as ds:
        ds.build_overviews([2], Resampling.average)  # o.tif.ovr, as gdaladdo -ro / QGIS make
    assert (dst.parent / "o.tif.ovr").is_file()
    (dst.parent / "o.tif.aux.xml").write_text(
        '<PAMDataset><Metadata><MDI key="NOTE">mine</MDI></Metadata></PAMDataset>'
    )
    (dst.parent / "o.tif.msk").write_bytes(b"an external mask")
    return src, dst, _tree(dst.parent)


@pytest.mark.parametrize(
    "failure", [PermissionError(1, "Operation not permitted"), KeyboardInterrupt()]
)
def test_a_failed_overwrite_keeps_the_previous_outputs_sidecars(tmp_path, monkeypatch, failure):
    """The sidecars of the output being replaced were deleted before the rename: a rename
    that failed (an immutable file) or a Ctrl-C just before it kept the previous output but
    lost its ``.aux.xml`` and ``.msk``."""
    src, dst, before = _previous_output_with_sidecars(tmp_path)
    real = os.replace

    def replace(a, b):
        if Path(b) == dst:
            raise failure
        return real(a, b)

    monkeypatch.setattr(io_safety.os, "replace", replace)
    with pytest.raises(type(failure)):
        upscale_geotiff(src, dst, model=tiny_model(1, 2, seed=1), overwrite=True)
    monkeypatch.undo()
    assert _tree(dst.parent) == before
    assert _leftovers(dst.parent) == []


def test_a_successful_overwrite_still_removes_the_stale_sidecars(tmp_path):
    src, dst, _ = _previous_output_with_sidecars(tmp_path)
    upscale_geotiff(src, dst, model=tiny_model(1, 2, seed=1), overwrite=True)
    assert sorted(_tree(dst.parent)) == ["o.tif"]
    with rasterio.open(dst) as ds:
        assert "NOTE" not in ds.tags()
        assert ds.overviews(1) == []  # (the old image's, served zoomed out, were kept)


def test_a_file_size_limit_is_named_and_leaves_no_file(tmp_path):
    """``ulimit -f`` hit while GDAL wrote said "GDAL could not write it (TIFFAppendToStrip:
    Write error at scanline 512)"; NIfTI and DICOM said "File too large"."""
    import signal
    import subprocess
    import sys

    resource = pytest.importorskip("resource")
    src = make_geotiff(tmp_path / "big.tif", width=300, height=300, dtype="float32")
    dst = tmp_path / "out.tif"

    def limited() -> None:  # (in the child: a 100 kB file size limit, SIGXFSZ ignored)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    argv = [sys.executable, "-m", "sr_domains", "upscale", str(src), str(dst), "--no-progress"]
    r = subprocess.run(argv, capture_output=True, text=True, preexec_fn=limited, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "out.tif: File too large" in r.stderr and "ulimit -f" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


def test_an_interrupt_after_the_rename_still_drops_the_stale_sidecars(tmp_path, monkeypatch):
    """Ctrl-C while the folder was synced, after the new output took the name, put the old
    ``.aux.xml`` back beside the new file (its metadata then overrode the new file's)."""
    src, dst, _ = _previous_output_with_sidecars(tmp_path)
    real = io_safety._fsync_path

    def interrupted(path):
        if Path(path) == dst.parent:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(io_safety, "_fsync_path", interrupted)
    with pytest.raises(KeyboardInterrupt):
        upscale_geotiff(src, dst, model=tiny_model(1, 2, seed=1), overwrite=True)
    monkeypatch.undo()
    assert sorted(_tree(dst.parent)) == ["o.tif"] and _leftovers(dst.parent) == []
    with rasterio.open(dst) as ds:
        assert "NOTE" not in ds.tags()


DEAD_PID = 4_194_304 + 4321  # (above Linux's largest pid_max: no such process)


@pytest.mark.parametrize("replaced_after", [False, True])
def test_sidecars_a_killed_run_left_aside_are_recovered(tmp_path, monkeypatch, replaced_after):
    """A run killed between setting the sidecars aside and the rename left them hidden as
    ``.o.tif.aux.xml.sr-aside-PID-XXXX`` for good: the next run puts them back when the output
    was not replaced since, and deletes them when it was."""
    src, dst, before = _previous_output_with_sidecars(tmp_path)
    for name in ("o.tif.aux.xml", "o.tif.msk", "o.tif.ovr"):
        os.rename(dst.parent / name, dst.parent / f".{name}.sr-aside-{DEAD_PID}-beef")
    if replaced_after:  # (the output changed after the set-aside: they are an older one's)
        os.utime(dst)
    real = os.replace

    def replace(a, b):  # the next run fails at its own rename
        if Path(b) == dst:
            raise PermissionError(1, "Operation not permitted")
        return real(a, b)

    monkeypatch.setattr(io_safety.os, "replace", replace)
    with pytest.raises(PermissionError):
        upscale_geotiff(src, dst, model=tiny_model(1, 2, seed=1), overwrite=True)
    monkeypatch.undo()
    assert _leftovers(dst.parent) == []
    if replaced_after:
        assert sorted(_tree(dst.parent)) == ["o.tif"]
    else:
        assert _tree(dst.parent) == before


@pytest.mark.parametrize("cog", [False, True])
def test_nbits_is_kept_only_with_codecs_that_store_it_exactly(tmp_path, cog):
    """A 12-bit file written with COMPRESS=LERC came out all zeros (exit 0), and with --cog
    failed with a raw GDAL traceback after the whole run: NBITS is kept with DEFLATE-like
    codecs only."""
    from sr_domains.cli import main

    profile = {"driver": "GTiff", "width": 24, "height": 20, "count": 1, "dtype": "uint16",
               "crs": "EPSG:32633", "nbits": 12,
               "transform": rasterio.transform.from_origin(500000, 5000000, 10, 10)}  # fmt: skip
    src = tmp_path / "n12.tif"
    with rasterio.open(src, "w", **profile) as ds:
        ds.write((np.arange(480).reshape(1, 20, 24) * 4 + 500).astype("uint16"))
    dst = tmp_path / "o.tif"
    args = ["upscale", str(src), str(dst), "--co", "COMPRESS=LERC", "--no-progress"]
    assert main(args + (["--cog"] if cog else [])) == 0
    with rasterio.open(dst) as ds:
        out = ds.read(1)
        assert "NBITS" not in ds.tags(1, ns="IMAGE_STRUCTURE")
    assert out.min() >= 500 and out.max() <= 2416


@pytest.mark.parametrize("isotropic", [False, True])
def test_a_series_of_links_into_the_output_folder_is_refused(tmp_path, isotropic):
    """A sorted folder of symbolic links to the files of an earlier output (as DICOM sorters
    make them), upscaled back into that output with --overwrite: only the series folder was
    compared with the output, so the series the links read was deleted and replaced."""
    from sr_domains.medical import upscale_dicom_series
    from sr_domains.medical.isotropic_api import isotropic_dicom
    from sr_domains.options import IsotropicOptions, UpscaleOptions
    from sr_domains.testing.dicom import make_dicom_series

    make_dicom_series(tmp_path / "mr", n_slices=4, rows=8, cols=8)
    out = tmp_path / "sr1"
    upscale_dicom_series(tmp_path / "mr", out, model=tiny_model(1, 2))
    before = _tree(out)
    (tmp_path / "sorted").mkdir()
    for f in out.glob("*.dcm"):
        (tmp_path / "sorted" / f.name).symlink_to(f)

    def run() -> None:
        if isotropic:
            opts = UpscaleOptions(isotropic=IsotropicOptions(), overwrite=True)
            isotropic_dicom(tmp_path / "sorted", out, opts)
        else:
            upscale_dicom_series(tmp_path / "sorted", out, model=tiny_model(1, 2), overwrite=True)

    with pytest.raises(UnsafeOutputError, match="holds the input"):
        run()
    assert _tree(out) == before


def test_an_empty_output_folder_that_receives_a_file_during_the_swap_is_not_swapped(tmp_path):
    """An empty folder (made by the user) may be replaced without --overwrite; a file saved
    into it just before the swap went under the swap's temporary name, with no manifest to
    tell it from an unfinished write of ours: a kill at that moment and the next run's cleanup
    deleted it. The folder is renamed onto only while empty (the OS refuses otherwise)."""
    src = tmp_path / "src.txt"
    src.write_text("input")
    dst = tmp_path / "series_sr"
    dst.mkdir()
    (dst / "my_notes.txt").write_text("mine")  # (after the last check)
    new = io_safety.temp_name(dst)
    new.mkdir()
    (new / "a.dcm").write_bytes(b"new")
    io_safety._write_manifest(new, [src], {})
    with pytest.raises(UnsafeOutputError, match=r"my_notes\.txt"):
        io_safety.replace_dir(new, dst)
    assert _tree(dst) == {"my_notes.txt": b"mine"}
    io_safety.remove_temp(new)
    assert _leftovers(tmp_path) == []
    (dst / "my_notes.txt").unlink()
    with io_safety.atomic_output(dst, [src], kind="dir") as tmp:  # empty again: replaced
        (tmp / "a.dcm").write_bytes(b"new")
    assert (dst / "a.dcm").read_bytes() == b"new"
