"""``sr-domains upscale`` / ``info`` end to end on NIfTI files and DICOM folders."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains import engine_build, inference  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.medical.geometry import corners  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series, make_nifti  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


@pytest.fixture(autouse=True)
def fake_weights(monkeypatch):
    """No shipped weights yet: the CLI's model resolution returns an interpolating model."""

    def resolve(model, weights, *, scale, n_bands):
        assert n_bands is None  # medical planes: any model band count
        return interp_model(scale)

    monkeypatch.setattr(engine_build, "resolve_model", resolve)


def test_cli_upscale_nifti(tmp_path, capsys):
    src = make_nifti(tmp_path / "brain.nii.gz", shape=(10, 8, 6), spacing=(1.0, 3.0, 1.0))
    dst = tmp_path / "out.nii.gz"
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    a, b = nib.load(src), nib.load(dst)
    assert b.shape == (20, 8, 12)  # default axes: the finest spacing, (0, 2)
    tol = 1e-6 + np.abs(a.affine).max() * 1e-7 * 10
    assert np.abs(corners(a.affine, a.shape) - corners(b.affine, b.shape)).max() < tol
    assert main(["upscale", str(src), str(dst), "--scale", "2"]) == 1
    assert "exists" in capsys.readouterr().err
    args = ["upscale", str(src), str(dst), "--axes", "1,2", "--through-plane", "--overwrite"]
    assert main(args) == 0
    assert nib.load(dst).shape == (20, 16, 12)


def test_cli_nifti_into_an_existing_folder(tmp_path, capsys):
    """An existing folder as the output: the file goes inside it (as for GeoTIFF), named like
    the input with --suffix; the dry run names the same file. It was refused as a name not
    ending in .nii."""
    src = make_nifti(tmp_path / "brain.nii.gz", shape=(10, 8, 6), spacing=(1.0, 3.0, 1.0))
    out = tmp_path / "out"
    out.mkdir()
    base = ["upscale", str(src), str(out), "--scale", "2", "--no-progress", "--suffix", "_x2"]
    want = out / "brain_x2.nii.gz"
    assert main([*base, "--dry-run"]) == 0
    assert f"-> {want} [would write]" in capsys.readouterr().out
    assert not want.exists()
    assert main(base) == 0
    assert capsys.readouterr().out.strip() == str(want)
    assert nib.load(want).shape == (20, 8, 12)
    assert main(["upscale", str(src), str(tmp_path), "--no-progress"]) == 1  # its own name
    assert "input" in capsys.readouterr().err


def test_cli_upscale_dicom_folder(tmp_path, capsys):
    make_dicom_series(tmp_path / "dicom_dir", n_slices=4, rows=8, cols=6)
    out = tmp_path / "out_dir"
    assert main(["upscale", str(tmp_path / "dicom_dir"), str(out), "--scale", "2"]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 4
    assert all(p.startswith(str(out)) for p in printed)
    assert pydicom.dcmread(printed[0]).Rows == 16
    assert (
        main(["upscale", str(tmp_path / "dicom_dir"), str(tmp_path / "o2"), "--axes", "0,1"]) == 2
    )
    assert "--axes" in capsys.readouterr().err


def test_cli_multi_series_needs_series(tmp_path, capsys):
    make_dicom_series(tmp_path / "d" / "a", n_slices=3, rows=6, cols=6, description="T1")
    make_dicom_series(tmp_path / "d" / "b", n_slices=2, rows=6, cols=6, description="T2", seed=4)
    assert main(["upscale", str(tmp_path / "d"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "2 series" in err
    assert "'T1', 3 image(s)" in err
    assert "'T2', 2 image(s)" in err
    uid = pydicom.dcmread(next((tmp_path / "d" / "b").iterdir())).SeriesInstanceUID
    assert main(["upscale", str(tmp_path / "d"), str(tmp_path / "out"), "--series", uid]) == 0
    assert len(list((tmp_path / "out").glob("*.dcm"))) == 2


def test_cli_info(tmp_path, capsys):
    src = make_nifti(tmp_path / "brain.nii.gz", shape=(12, 10, 5), spacing=(0.9, 0.9, 4.0))
    assert main(["info", str(src)]) == 0
    text = capsys.readouterr().out
    for part in (
        "Nifti1",
        "12 x 10 x 5",
        "int16",
        "0.9 x 0.9 x 4 mm",
        "oblique by",
        "sform code 1, qform code 1",
        "SR default in-plane axes (0, 1) (axial slices along axis 2)",
        "x2 -> 24 x 20 x 5",
    ):
        assert part in text, part
    files = make_dicom_series(tmp_path / "d", n_slices=4, rows=8, cols=6, modality="CT")
    assert main(["info", str(tmp_path / "d")]) == 0
    text = capsys.readouterr().out
    for part in (
        "1 DICOM series",
        "(CT 'T1 phantom', 4 image(s))",
        "4 slice(s) x 8 rows x 6",
        "0.9 x 0.7 mm in-plane, 3 mm between slices",
        "rescale 1, -1024",
        "Explicit VR Little Endian",
        "orientation axial",
        "SR x2 ->   16 x 12",
    ):
        assert part in text, part
    files[1].unlink()  # a gap: info still describes the series and reports the problem
    assert main(["info", str(tmp_path / "d")]) == 1  # (after the summary, as upscale refuses)
    assert "problem" in capsys.readouterr().out


@pytest.mark.parametrize("as_json", [False, True])
def test_info_of_a_file_whose_pixel_data_is_cut_short_names_it_and_exits_1(
    tmp_path, capsys, as_json
):
    """Headers intact, pixel data cut short: ``info`` read the headers only and exited 0,
    where ``upscale`` fails on the file. It decodes every file now: the summary, then the
    error naming the file (status 1), for the folder and for the file alone."""
    import json

    files = make_dicom_series(tmp_path / "d", n_slices=3, rows=8, cols=6)
    cut = files[1]
    cut.write_bytes(cut.read_bytes()[:-40])
    flag = ["--json"] if as_json else []
    for src in (tmp_path / "d", cut):
        assert main(["info", *flag, str(src)]) == 1
        out, err = capsys.readouterr()
        assert err.startswith(f"sr-domains: error: {cut}: cannot decode the pixel data"), err
        if as_json:
            (problem,) = json.loads(out)["undecodable"]
            assert problem.startswith(f"{cut}: cannot decode the pixel data")
        else:
            assert "1 DICOM series" in out and f"problem    {cut}: cannot decode" in out
    assert main(["info", *flag, str(files[0])]) == 0  # an intact file of the series


def test_adapters_import_without_nibabel_or_pydicom(tmp_path):
    """The CLI imports adapters to sniff inputs; that must work without the medical extra."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["nibabel"] = None
        sys.modules["pydicom"] = None
        from pathlib import Path
        from sr_domains.medical import nifti_adapter, dicom_adapter
        import sr_domains.medical
        assert nifti_adapter.sniff(Path("x.nii.gz"))
        assert not dicom_adapter.sniff(Path({str(tmp_path)!r}))
        from sr_domains.errors import MissingDependencyError
        try:
            nifti_adapter.info(Path("x.nii.gz"))
        except MissingDependencyError as exc:
            assert "sr-domains[medical]" in str(exc)
        else:
            raise AssertionError("no error")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo()))


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]
