"""Line breaks in names: ``sr-domains upscale`` prints the outputs it wrote one per line on
stdout; an output named with a newline made two lines of one path. Such output names are
refused before any work; other characters (a tab, ESC) are written and printed as they are;
inputs may have any name. Real files on tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")

from sr_domains import engine_build  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import UnsafeOutputError  # noqa: E402
from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.output_names import check_name, shown  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti  # noqa: E402


@pytest.fixture(autouse=True)
def toy_models(monkeypatch):
    import sr_domains.geo.job as job

    monkeypatch.setattr(job, "resolve_network", lambda m, w, *, scale, n_bands: tiny_model(1, 2))
    monkeypatch.setattr(engine_build, "resolve_model", lambda m, w, **kw: interp_model(2))


def _inputs(tmp_path: Path) -> Path:
    """in/good.tif and in/a<newline>b.tif (a copy: GDAL creates no such name itself)."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "good.tif")
    shutil.copy(folder / "good.tif", folder / "a\nb.tif")
    return folder


@pytest.mark.parametrize("bad", ["\n", "\r", "\x0b", "\x0c", "\x1e", "\x85", "\u2028"])
def test_an_output_name_with_a_line_break_is_refused_before_any_work(tmp_path, capsys, bad):
    src = make_geotiff(tmp_path / "in.tif")
    dst = tmp_path / f"o{bad}ut.tif"
    assert main(["upscale", str(src), str(dst), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1  # one line, the name escaped
    assert "the output path holds a line break" in err
    assert f"{tmp_path}/o{ascii(bad)[1:-1]}ut.tif: " in err
    assert sorted(os.listdir(tmp_path)) == ["in.tif"]
    assert shown(dst) == f"{tmp_path}/o{ascii(bad)[1:-1]}ut.tif"
    nii = make_nifti(tmp_path / "in.nii.gz", shape=(6, 6, 4))
    with pytest.raises(UnsafeOutputError, match="line break"):  # (Python API alike)
        upscale_nifti(nii, tmp_path / f"o{bad}ut.nii.gz")
    # a folder of the path counts too: it is part of the line printed
    with pytest.raises(UnsafeOutputError, match="line break"):
        check_name(tmp_path / f"d{bad}ir" / "out.tif")


def test_a_batch_whose_output_would_have_a_newline_is_refused_before_any_work(tmp_path, capsys):
    src = _inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"sr-domains: error: {out}/a\\nb.tif: the output path holds a line break (\\n); "
        "sr-domains prints the outputs it writes one per line and never writes such a name: "
        "choose another output name (or --suffix), or rename the input\n"
    )
    assert not out.exists()
    # the NIfTI batch runner alike; and a suffix holding one is a usage error
    (tmp_path / "nii").mkdir()
    for i in range(2):
        make_nifti(tmp_path / "nii" / f"v{i}.nii.gz", shape=(6, 6, 4))
    shutil.copy(tmp_path / "nii" / "v0.nii.gz", tmp_path / "nii" / "v\r.nii.gz")
    assert main(["upscale", str(tmp_path / "nii"), str(out), "--no-progress"]) == 1
    assert "v\\r.nii.gz: the output path holds a line break" in capsys.readouterr().err
    args = ["upscale", str(src / "good.tif"), str(out), "--suffix", "\t", "--no-progress"]
    out.mkdir()
    assert main(args) == 2
    assert "--suffix must be part of a file name, got '\\t'" in capsys.readouterr().err
    assert os.listdir(out) == []
    # an input so named is read like any other (the name is the input's, not an output's)
    dst = tmp_path / "one.tif"
    assert main(["upscale", str(src / "a\nb.tif"), str(dst), "--no-progress"]) == 0
    assert capsys.readouterr().out == f"{dst}\n"
    check_upscaled(src / "a\nb.tif", dst, 2)


@pytest.mark.parametrize("odd", ["\t", "\x1b", "\x7f"])
def test_a_tab_or_escape_in_a_name_is_written_and_printed_as_it_is(tmp_path, capsys, odd):
    """Only line breaks split stdout's lines: a tab refused a whole batch (in a folder name too),
    and the path printed had to be unescaped by the script reading it."""
    folder = tmp_path / f"in{odd}dir"
    folder.mkdir()
    make_geotiff(folder / f"a{odd}b.tif")
    out = tmp_path / f"out{odd}dir"
    assert main(["upscale", str(folder), str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out == f"{out}/a{odd}b.tif\n"
    check_upscaled(folder / f"a{odd}b.tif", out / f"a{odd}b.tif", 2)
    check_name(tmp_path / f"d{odd}ir" / "out.tif")  # (no error)
