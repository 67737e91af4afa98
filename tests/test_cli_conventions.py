"""CLI conventions: exit statuses, -q, progress only on a terminal, info --json, --dry-run,
--suffix, --co / --dtype, and symlinked DICOM folders followed without looping."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.transform import Affine  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.cli_common import show_progress  # noqa: E402
from sr_domains.options import output_name  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def test_exit_status_usage_2_runtime_1(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif")
    assert main(["upscale", str(src), str(tmp_path / "o.tif"), "--tile", "2"]) == 2  # usage
    assert main(["upscale", str(src), str(tmp_path / "o.tif"), "--model", "nope"]) == 2
    assert main(["upscale", str(tmp_path / "missing.tif"), str(tmp_path / "o.tif")]) == 1
    (tmp_path / "o.tif").write_bytes(b"x")
    assert main(["upscale", str(src), str(tmp_path / "o.tif")]) == 1  # exists: runtime
    err = capsys.readouterr().err
    assert err.count("sr-domains: error:") == 4


@pytest.mark.parametrize("name", ["scan.dat", "t1.nii.gz", "scene.tif"])
def test_broken_link_input_says_where_it_pointed(tmp_path, capsys, name):
    link = tmp_path / name
    link.symlink_to(tmp_path / "archive" / name)
    assert main(["upscale", str(link), str(tmp_path / ("o_" + name)), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{link}: broken link (to {tmp_path / 'archive' / name})" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_folder_of_several_domains_is_refused_unless_one_is_chosen(tmp_path, capsys):
    """A GeoTIFF folder batch covers one domain: a folder that also holds a NIfTI file and a
    DICOM series is refused (not upscaled in part); ``--domain`` chooses one."""
    pytest.importorskip("pydicom")
    from sr_domains.testing.medical import make_dicom_series, make_nifti

    src = tmp_path / "mixed"
    src.mkdir()
    make_geotiff(src / "a.tif")
    make_nifti(src / "t1.nii.gz", shape=(8, 8, 3))
    make_dicom_series(src / "series", n_slices=3, rows=8, cols=8)
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds geotiff, dicom, nifti inputs" in err and "--domain geotiff|dicom|nifti to" in err
    assert not out.exists()
    assert main(["upscale", str(src), str(out), "-q", "--domain", "geotiff"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "sr-domains-run.jsonl"]
    assert main(["upscale", str(src), str(tmp_path / "nii"), "-q", "--domain", "nifti"]) == 0
    assert sorted(p.name for p in (tmp_path / "nii").iterdir()) == [
        "sr-domains-run.jsonl",
        "t1.nii.gz",
    ]
    (src / "a.tif").unlink()  # a DICOM folder with a NIfTI file beside the series: one input
    assert main(["upscale", str(src), str(tmp_path / "dcm"), "-q"]) == 0
    assert len(list((tmp_path / "dcm").glob("*.dcm"))) == 3


def test_progress_only_on_a_terminal_unless_forced(monkeypatch):
    ns = argparse.Namespace
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert show_progress(ns(progress=None, quiet=False)) is False
    assert show_progress(ns(progress=True, quiet=False)) is True
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert show_progress(ns(progress=None, quiet=False)) is True
    assert show_progress(ns(progress=False, quiet=False)) is False
    assert show_progress(ns(progress=True, quiet=True)) is False


def test_quiet_hides_warnings(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", count=4)
    # a 4-band file with an RGB model selects bands explicitly: warns about band semantics
    argv = ["upscale", str(src), str(tmp_path / "o.tif"), "--model", "sr-lite-gray-x2"]
    assert main(["-q", *argv, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith("o.tif") and err == ""


def test_verbosity_flags_work_after_the_command_too(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", count=4)
    argv = ["upscale", str(src), str(tmp_path / "o.tif"), "--model", "sr-lite-gray-x2"]
    assert main([*argv, "--progress", "-q"]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith("o.tif") and err == ""
    assert main([*argv, "-v"]) == 1  # the output exists now: -v adds the traceback
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("sr-domains: error:")
    assert main(argv) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_info_json_for_each_domain(tmp_path, capsys):
    from sr_domains.testing.medical import make_dicom_series, make_nifti

    tif = make_geotiff(tmp_path / "a.tif", count=3, nodata=0, colorinterp=["red", "green", "blue"])
    nii = make_nifti(tmp_path / "b.nii.gz", shape=(20, 16, 8), spacing=(1.0, 1.25, 3.0))
    make_dicom_series(tmp_path / "dcm", n_slices=3)
    assert main(["info", "--json", str(tif)]) == 0
    g = json.loads(capsys.readouterr().out)
    with rasterio.open(tif) as ds:
        assert g["width"] == ds.width and g["crs"] == ds.crs.to_string()
        assert g["transform"] == list(ds.transform)[:6] and g["nodata"] == 0
    assert [b["colorinterp"] for b in g["bands"]] == ["red", "green", "blue"]
    assert main(["info", "--json", str(nii)]) == 0
    n = json.loads(capsys.readouterr().out)
    assert n["shape"] == [20, 16, 8] and n["spacing"] == pytest.approx([1.0, 1.25, 3.0])
    assert main(["info", "--json", str(tmp_path / "dcm")]) == 0
    d = json.loads(capsys.readouterr().out)
    (s,) = d["series"]
    assert s["n_slices"] == 3 and s["modality"] == "MR" and len(s["affine_lps"]) == 4


def test_dry_run_writes_nothing_and_says_what_it_would_do(tmp_path, capsys):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(2):
        make_geotiff(scenes / f"t{i}.tif", count=3, seed=i)
    out = tmp_path / "out"
    assert main(["upscale", str(scenes), str(out), "--suffix", "_x2", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "t0_x2.tif [would write]" in text and "t1_x2.tif [would write]" in text
    assert "sr-lite-rgb-x2" in text and "profile" in text
    assert main(["upscale", str(scenes), str(out), "--suffix", "_x2"]) == 0
    assert sorted(p.name for p in out.glob("*.tif")) == ["t0_x2.tif", "t1_x2.tif"]
    capsys.readouterr()
    assert main(["upscale", str(scenes), str(out), "--suffix", "_x2", "--dry-run"]) == 0
    assert text.count("would write") == 2
    assert capsys.readouterr().out.count("would skip: complete") == 2


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_dry_run_refuses_workers_below_one_as_the_run_does(tmp_path, capsys, workers):
    """``--workers 0``: the run refused it (usage, status 2), the dry run said "would write"."""
    src, out = make_geotiff(tmp_path / "a.tif", width=24, height=20), tmp_path / "a_x2.tif"
    seen = []
    for extra in ([], ["--dry-run"]):
        code = main(["upscale", str(src), str(out), "--workers", workers, *extra])
        captured = capsys.readouterr()
        seen.append((code, captured.err))
        assert "would write" not in captured.out
    assert seen[0] == seen[1]
    assert seen[0] == (2, f"sr-domains: error: --workers must be >= 1, got {workers}\n")
    assert not out.exists()


@pytest.mark.parametrize("domain", ["geotiff", "nifti", "dicom"])
def test_dry_run_of_a_single_input_says_what_the_run_does(tmp_path, capsys, domain):
    """A single input does not resume: a rerun refuses its existing output (``--overwrite``
    replaces it). The dry run said "would skip: complete" there, for every domain."""
    from sr_domains.testing.medical import make_dicom_series, make_nifti

    if domain == "geotiff":
        src, out = make_geotiff(tmp_path / "a.tif", width=24, height=20), tmp_path / "a_x2.tif"
    elif domain == "nifti":
        src, out = tmp_path / "v.nii.gz", tmp_path / "v_x2.nii.gz"
        make_nifti(src, shape=(12, 10, 3))
    else:
        src, out = tmp_path / "series", tmp_path / "series_x2"
        make_dicom_series(src, n_slices=2, rows=12, cols=10)
    argv = ["upscale", str(src), str(out), "-q"]
    assert main([*argv, "--dry-run"]) == 0
    assert "[would write]" in capsys.readouterr().out
    assert main(argv) == 0
    capsys.readouterr()
    # a refused output: the dry run says so and exits 1, as the run would (scripts can tell)
    assert main([*argv, "--dry-run"]) == 1
    assert "[refused: exists (pass --overwrite)]" in capsys.readouterr().out
    err = capsys.readouterr().err if main(argv) != 0 else ""
    assert "output exists; pass --overwrite (Python: overwrite=True)" in err  # as the run says
    assert main([*argv, "--dry-run", "--overwrite"]) == 0
    assert "[would replace (--overwrite)]" in capsys.readouterr().out
    # an output the run refuses whatever --overwrite says: the dry run says so too
    assert main(["upscale", str(src), str(src), "--dry-run", "--overwrite", "-q"]) == 1
    assert "[refused: the output would replace the input" in capsys.readouterr().out
    bad = {"geotiff": "x.png", "nifti": "x.img", "dicom": "x.dcm"}[domain]  # misnamed outputs
    assert main(["upscale", str(src), str(tmp_path / bad), "--dry-run", "-q"]) == 1
    assert "[refused: " in capsys.readouterr().out
    assert main(["upscale", str(src), str(tmp_path / bad), "-q"]) != 0
    assert not (tmp_path / bad).exists()
    if domain == "dicom":  # a folder sr_domains did not write is never replaced
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "notes.txt").write_text("mine")
        assert main(["upscale", str(src), str(mine), "--dry-run", "--overwrite", "-q"]) == 1
        assert "[refused: holds entries sr_domains did not write" in capsys.readouterr().out
        assert main(["upscale", str(src), str(mine), "--overwrite", "-q"]) != 0
        assert (mine / "notes.txt").read_text() == "mine"


def test_output_names_with_suffix():
    assert output_name("a.tif", "_x2") == "a_x2.tif"
    assert output_name("t1.nii.gz", "_sr") == "t1_sr.nii.gz"
    assert output_name("series", "_x2") == "series_x2"
    assert output_name("a.tif", "") == "a.tif"
    with pytest.raises(Exception, match="suffix"):
        output_name("a.tif", "/etc")


def test_creation_options_and_dtype(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", count=3)
    out = tmp_path / "o.tif"
    argv = ["upscale", str(src), str(out), "--co", "compress=zstd", "--co", "BLOCKXSIZE=128"]
    assert main([*argv, "--dtype", "float32"]) == 0
    with rasterio.open(out) as ds:
        assert ds.profile["compress"] == "zstd" and ds.dtypes[0] == "float32"
        data, transform = ds.read(), ds.transform
    with rasterio.open(src) as s:
        assert transform == s.transform @ Affine.scale(0.5)
    assert not np.allclose(data, np.round(data))  # fractional values kept
    assert main(["upscale", str(src), str(tmp_path / "p.tif"), "--co", "WIDTH=3"]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse: a usage error
        main(["upscale", str(src), str(tmp_path / "p.tif"), "--co", "nokey"])
    assert exc.value.code == 2
    nodata = make_geotiff(tmp_path / "nd.tif", count=3, dtype="int16", nodata=-9999)
    assert main(["upscale", str(nodata), str(tmp_path / "q.tif"), "--dtype", "uint8"]) == 2
    assert "cannot be stored as uint8" in capsys.readouterr().err


def test_symlinked_series_folders_are_followed_once(tmp_path):
    from sr_domains.medical.dicom_read import dicom_files
    from sr_domains.testing.medical import make_dicom_series

    real = tmp_path / "archive" / "s1"
    make_dicom_series(real, n_slices=3)
    study = tmp_path / "study"
    study.mkdir()
    os.symlink(real, study / "linked_series")
    os.symlink(study, study / "loop")  # a link back to its own folder
    files = dicom_files(study)
    assert len(files) == 3
    assert all("linked_series" in str(f) for f in files)


def test_missing_optional_dependency_is_one_line(monkeypatch, capsys):
    import sr_domains.cli as cli

    def boom(args):
        raise ModuleNotFoundError("No module named 'skimage'", name="skimage")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        action.set_defaults(func=boom)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sr-domains: error: models needs skimage, which is not installed")
    assert err.endswith('pip install "sr-domains[train]"') and "\n" not in err


def test_what_a_run_leaves_out_is_said_and_errors_name_real_flags(tmp_path, capsys, caplog):
    """Inputs a run does not take are named (NIfTI beside a DICOM series, subfolders of a
    folder batch), an option that does not apply is named by its flag (it said --series-uid
    and --creation-options, which do not exist), a failed input is named once, and a 2-D
    volume refused for --through-plane is named with its own shape."""
    import logging

    import nibabel as nib

    from sr_domains.testing.medical import make_dicom_series, make_nifti

    mix = tmp_path / "mix"
    make_dicom_series(mix, n_slices=2, rows=12, cols=10)
    make_nifti(mix / "t1.nii.gz", shape=(12, 10, 3))
    with caplog.at_level(logging.WARNING):
        # (not -q: it leaves errors only, in a program's process too)
        assert main(["upscale", str(mix), str(tmp_path / "mix_x2"), "--no-progress"]) == 0
    said = caplog.text
    assert "read as a DICOM series; left out: t1.nii.gz" in said and "--domain nifti" in said
    caplog.clear()
    batch = tmp_path / "batch"
    (batch / "sub").mkdir(parents=True)
    make_nifti(batch / "a.nii.gz", shape=(12, 10, 3))
    make_nifti(batch / "sub" / "b.nii.gz", shape=(12, 10, 3))
    (batch / "broken.nii.gz").write_bytes(b"not a volume")
    with caplog.at_level(logging.WARNING):
        assert main(["upscale", str(batch), str(tmp_path / "batch_x2"), "--no-progress"]) == 1
    assert "takes the folder's own files; not searched: sub" in caplog.text
    err = capsys.readouterr().err
    assert f"failed: {batch / 'broken.nii.gz'}: not a readable NIfTI" in err
    assert err.count(str(batch / "broken.nii.gz")) == 2  # the failure line and the error's file
    assert sorted(p.name for p in (tmp_path / "batch_x2").iterdir()) == [
        "a.nii.gz",
        "sr-domains-run.jsonl",
    ]
    vol = batch / "a.nii.gz"
    for flag, shown in ((["--series", "1.2"], "--series (series_uid=)"), (["--co", "A=B"], "--co")):
        assert main(["upscale", str(vol), str(tmp_path / "o.nii.gz"), *flag, "-q"]) == 2
        assert f"option(s) {shown}" in capsys.readouterr().err
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((16, 12), np.float32), np.eye(4)), flat)
    assert main(["upscale", str(flat), str(tmp_path / "f.nii.gz"), "--through-plane", "-q"]) == 1
    err = capsys.readouterr().err
    assert str(flat) in err and "the volume is 16x12" in err
    assert not (tmp_path / "f.nii.gz").exists()
