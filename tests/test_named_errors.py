"""Errors that name what they are about, and a GeoTIFF batch that goes on past a file:
an existing output whose name GDAL cannot be given (not UTF-8), a model of another scale given
as an object, ``--slice-profile estimate`` on a volume it cannot fit, and ``info`` on a DICOM
``SliceThickness`` of 0 (unknown). Real files on tmp_path, real models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")

from _latin1_names import cli, latin1  # noqa: E402

from sr_domains import create_model, load_pretrained  # noqa: E402
from sr_domains.batch_tasks import BatchFailedError  # noqa: E402
from sr_domains.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import ModelScaleError  # noqa: E402
from sr_domains.geo import upscale_many  # noqa: E402
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_nifti  # noqa: E402


# -- 1. an existing GeoTIFF output whose name is not UTF-8 ----------------------------------
def test_an_existing_output_gdal_cannot_open_fails_alone_named_as_the_output(tmp_path):
    """It stopped the whole batch, before any work, as an output that "cannot be read: if it
    is an earlier output cut short, delete it" (a readable raster of somebody's)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.tif", "b.tif"):
        make_geotiff(folder / name, width=16, height=16)
    out = tmp_path / "out"
    out.mkdir()
    kept = latin1(out, b"a_\xe9.tif")
    shutil.copy(folder / "a.tif", kept)  # somebody's raster at the output's name
    before = kept.read_bytes()
    with pytest.raises(BatchFailedError) as caught:
        upscale_many(folder, out, suffix=os.fsdecode(b"_\xe9"), model=tiny_model(1, 2))
    results = sorted(caught.value.report.results, key=lambda r: r.task.src)
    assert [r.status for r in results] == ["failed", "failed"]  # each file, not the batch
    said = "GDAL writes this GeoTIFF and must be given its path in UTF-8, but b'a_\\xe9.tif'"
    assert results[0].error.startswith(f"{folder / 'a.tif'}: {kept}: {said}")
    assert "delete it" not in results[0].error and "input file name" not in results[0].error
    assert kept.read_bytes() == before and sorted(os.listdir(out)) == [os.fsdecode(b"a_\xe9.tif")]


def test_the_others_of_the_batch_are_written_and_the_status_says_one_failed(tmp_path, monkeypatch):
    """An input so named whose output exists: that file alone fails (its name, the input's,
    is the one to change); the others are written, exit status 1. It stopped the batch with
    "output exists"."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.tif", "b.tif"):
        make_geotiff(folder / name, width=16, height=16)
    shutil.copy(folder / "a.tif", latin1(folder, b"\xe9t\xe9.tif"))
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(folder / "b.tif", latin1(out, b"\xe9t\xe9.tif"))
    code, out_, err = cli(monkeypatch, "upscale", "in", "out", "--model", "sr-lite-gray-x2")
    assert code == 1 and out_.split() == [b"out/a.tif", b"out/b.tif"]
    assert b"failed: in/\xe9t\xe9.tif: GDAL cannot be given this input file name" in err
    assert b"output exists" not in err
    for name in ("a.tif", "b.tif"):
        check_upscaled(folder / name, out / name, 2)


def test_the_status_of_an_output_gdal_cannot_be_given_is_foreign(tmp_path):
    """output_status()/is_complete() on a finished output copied to a name that is not UTF-8:
    "foreign" (whose it is cannot be told), saying why, never "complete"; the file is kept."""
    from sr_domains.geo import upscale_geotiff
    from sr_domains.geo.resume import is_complete, output_check, output_status

    src = make_geotiff(tmp_path / "a.tif", width=16, height=16)
    done = upscale_geotiff(src, tmp_path / "a_x2.tif", model=tiny_model(1, 2))
    assert output_status(Path(done), src, 2) == "complete"
    kept = latin1(tmp_path, b"a_x2_\xe9.tif")
    shutil.copy(done, kept)
    before = kept.read_bytes()
    assert output_status(kept, src, 2) == "foreign" and not is_complete(kept, src, 2)
    assert output_check(kept, src, 2)[1] == (
        "GDAL cannot open this output: b'a_x2_\\xe9.tif' in its name is not UTF-8"
    )
    assert kept.read_bytes() == before


# -- 2. a model of another scale, given as an object ----------------------------------------
def test_a_model_of_another_scale_is_named_with_its_weights(tmp_path):
    nii = make_nifti(tmp_path / "v.nii.gz", shape=(8, 8, 3))
    x4 = load_pretrained("sr-lite-gray-x4")
    shipped = r"the model sr-lite-gray-x4 \(weights .*sr-lite-gray-x4\.safetensors\) upscales x4"
    with pytest.raises(ModelScaleError, match=shipped + " but x2 was requested"):
        upscale_nifti(nii, tmp_path / "o.nii.gz", model=x4, scale=2)
    with pytest.raises(ModelScaleError, match="the upscaler of " + shipped):
        upscale_nifti(nii, tmp_path / "o.nii.gz", model=Upscaler(x4), scale=2)
    weights = save_checkpoint(create_model("edsr-lite-ca", scale=2), tmp_path / "mine.safetensors")
    mine, _ = load_checkpoint(weights)
    with pytest.raises(ModelScaleError) as caught:
        upscale_nifti(nii, tmp_path / "o.nii.gz", model=mine, scale=3)
    assert f"(weights {weights.resolve()}) upscales x2 but x3 was requested" in str(caught.value)
    # a plain network (MONAI): its class
    from sr_domains.monai._core import resolve_upscaler

    class Nearest(torch.nn.Upsample):
        scale = 2

    with pytest.raises(ModelScaleError, match="the model Nearest upscales x2 but x3"):
        resolve_upscaler(Nearest(scale_factor=2), None, scale=3)
    # a model built here, of no file: its preset
    built = create_model("edsr-lite-ca", scale=2)
    with pytest.raises(ModelScaleError, match="the model edsr-lite-ca upscales x2 but x3"):
        upscale_nifti(nii, tmp_path / "o.nii.gz", model=built, scale=3)
    assert not (tmp_path / "o.nii.gz").exists()


def test_srinferer_names_a_model_of_another_scale_as_superresolution_does():
    """SRInferer said "ConfigError: the network declares scale 4, SRInferer has 2" (no model
    named); an Upscaler of a plain network was "the upscaler of the model module"."""
    pytest.importorskip("monai")
    from monai.data import MetaTensor

    from sr_domains.monai import SRInferer, SuperResolution
    from sr_domains.monai._core import ModuleSR

    x4 = load_pretrained("sr-lite-gray-x4")
    img = MetaTensor(torch.rand(1, 1, 16, 16, 3))
    said = []
    for build in (lambda: SRInferer(scale=2)(img, x4), lambda: SuperResolution(model=x4, scale=2)):
        with pytest.raises(ModelScaleError) as caught:
            build()
        said.append(str(caught.value))
    assert said[0] == said[1]
    assert said[0].startswith("the model sr-lite-gray-x4 (weights ")
    assert said[0].endswith("sr-lite-gray-x4.safetensors) upscales x4 but x2 was requested")

    class Nearest(torch.nn.Upsample):
        scale = 2

    with pytest.raises(ModelScaleError, match="^the model Nearest upscales x2 but x3 was"):
        SRInferer(scale=3)(img, Nearest(scale_factor=2))
    wrapped = Upscaler(ModuleSR(Nearest(scale_factor=2), 2, 1))
    with pytest.raises(ModelScaleError, match="^the upscaler of the model Nearest upscales x2"):
        SuperResolution(model=wrapped, scale=3)


# -- 3. --slice-profile estimate --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["few slices", "no content"])
def test_slice_profile_estimate_errors_name_the_nifti(tmp_path, capsys, kind):
    if kind == "few slices":
        src = make_nifti(tmp_path / "t2.nii.gz", shape=(20, 16, 8), spacing=(1, 1, 3))
        said = "profile estimation needs >= 6 slices"
    else:  # big enough, but nothing inside an object
        src = make_nifti(
            tmp_path / "t2.nii.gz",
            shape=(64, 64, 8),
            spacing=(1, 1, 3),
            values=lambda w: np.zeros(w.shape[:-1]),
        )
        said = "too little content to estimate the slice profile"
    args = ["upscale", src, tmp_path / "o.nii.gz", "--isotropic", "--slice-profile", "estimate"]
    assert main([str(a) for a in [*args, "--steps", "1", "--no-progress"]]) == 2
    assert f"error: {src}: {said}" in capsys.readouterr().err
    assert not (tmp_path / "o.nii.gz").exists()


def test_slice_profile_estimate_errors_name_the_dicom_series(tmp_path, capsys):
    pytest.importorskip("pydicom")
    from sr_domains.testing.dicom import make_dicom_series

    make_dicom_series(tmp_path / "s", n_slices=8, rows=24, cols=20, pixel_spacing=(1.0, 1.0))
    args = ["upscale", tmp_path / "s", tmp_path / "iso", "--isotropic", "--slice-profile"]
    assert main([str(a) for a in [*args, "estimate", "--steps", "1", "--no-progress"]]) == 2
    said = f"error: {tmp_path / 's'}: profile estimation needs >= 6 slices"
    assert said in capsys.readouterr().err
    assert not (tmp_path / "iso").exists()


# -- 4. info: a DICOM SliceThickness of 0 -----------------------------------------------------
def test_info_says_a_slice_thickness_of_0_is_read_as_unknown(tmp_path, capsys):
    pydicom = pytest.importorskip("pydicom")
    from sr_domains.testing.dicom import make_dicom_series

    files = make_dicom_series(tmp_path / "s", n_slices=4)
    for value, shown in [
        (0, "SliceThickness 0, unknown: --isotropic uses the slice spacing)"),
        ("", "SliceThickness not given: --isotropic uses the slice spacing)"),
        (2.5, "SliceThickness 2.5)"),  # (a thickness: as it is)
    ]:
        for f in files:
            ds = pydicom.dcmread(f)
            ds.SliceThickness = value
            ds.save_as(f)
        assert main(["info", str(tmp_path / "s")]) == 0
        assert f"3 mm between slices ({shown}" in capsys.readouterr().out
