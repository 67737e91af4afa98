"""The medical engines take one ``UpscaleOptions`` (``run_nifti``, ``run_dicom_series``), as
the CLI passes them; the keyword APIs (``upscale_nifti``, ``upscale_dicom_series``) turn their
keywords into that object once and are checked as the CLI's options are."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains import inference  # noqa: E402
from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.medical import (  # noqa: E402
    run_dicom_series,
    run_nifti,
    upscale_dicom_series,
    upscale_nifti,
)
from sr_domains.options import IsotropicOptions, UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.dicom import make_dicom_series  # noqa: E402
from sr_domains.testing.medical import make_nifti  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _provenance(path) -> dict:
    img = nib.load(path)
    (ext,) = [e for e in img.header.extensions if e.get_code() == 6]
    return json.loads(ext.get_content())


def test_nifti_keywords_and_options_object_write_the_same_file(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(14, 12, 5), spacing=(1.0, 1.0, 3.0))
    model = tiny_model(1, 2)
    a = upscale_nifti(
        src, tmp_path / "a.nii.gz", model=model, axes=(0, 2), profile="percentile:1,99",
        values=ValueOptions(clamp=False), tile=8, overlap=2,
    )  # fmt: skip
    opts = UpscaleOptions(
        axes=(0, 2), profile="percentile:1,99", values=ValueOptions(clamp=False), tile=8,
        overlap=2,
    )  # fmt: skip
    b = run_nifti(src, tmp_path / "b.nii.gz", opts, model=model)
    ia, ib = nib.load(a), nib.load(b)
    assert ia.shape == ib.shape == (28, 12, 10)  # the whole-volume path
    assert np.array_equal(np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj))
    assert np.array_equal(ia.affine, ib.affine)
    pa, pb = _provenance(a), _provenance(b)
    assert pa == pb and pa["mode"] == "axes 0,2"
    recipe = json.loads(pa["made"]["recipe"])
    assert recipe == {"clamp": False, "profile": "percentile:1,99"}
    # a reusable Upscaler goes through as the model, as before
    up = Upscaler(model, tile=8, overlap=2)
    c = upscale_nifti(src, tmp_path / "c.nii.gz", model=up, axes=(0, 2), profile="percentile:1,99",
                      values=ValueOptions(clamp=False))  # fmt: skip
    assert np.array_equal(np.asanyarray(nib.load(c).dataobj), np.asanyarray(ia.dataobj))


def test_dicom_keywords_and_options_object_write_the_same_series(tmp_path):
    make_dicom_series(tmp_path / "mr", n_slices=4, rows=12, cols=10)
    model = tiny_model(1, 2)
    a = upscale_dicom_series(tmp_path / "mr", tmp_path / "a", model=model, profile="mr", tile=8)
    opts = UpscaleOptions(profile="mr", tile=8)
    b = run_dicom_series(tmp_path / "mr", tmp_path / "b", opts, model=model)
    assert [p.name for p in a] == [p.name for p in b] and len(a) == 4
    for fa, fb in zip(a, b):
        da, db = pydicom.dcmread(fa), pydicom.dcmread(fb)
        assert np.array_equal(da.pixel_array, db.pixel_array) and da.Rows == 24
        assert da.PixelSpacing == db.PixelSpacing
        assert da.ImagePositionPatient == db.ImagePositionPatient
        assert da.SeriesInstanceUID != db.SeriesInstanceUID  # each run: a new derived series
    ma = json.loads((tmp_path / "a" / ".sr_domains.json").read_text())["made"]
    mb = json.loads((tmp_path / "b" / ".sr_domains.json").read_text())["made"]
    assert ma == mb and json.loads(ma["recipe"]) == {"profile": "mr"}


def test_options_that_do_not_apply_are_refused_before_any_file(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(10, 8, 4))
    make_dicom_series(tmp_path / "mr", n_slices=3, rows=8, cols=8)
    model = tiny_model(1, 2)
    with pytest.raises(ConfigError, match="--bands"):
        run_nifti(src, tmp_path / "o.nii.gz", UpscaleOptions(bands=(1,)), model=model)
    with pytest.raises(ConfigError, match="--axes"):
        run_dicom_series(tmp_path / "mr", tmp_path / "d", UpscaleOptions(axes=(0, 1)), model=model)
    with pytest.raises(ConfigError, match="isotropic_nifti"):
        run_nifti(src, tmp_path / "o.nii.gz", UpscaleOptions(isotropic=IsotropicOptions()))
    with pytest.raises(ConfigError, match="overlap"):  # as the CLI's --overlap is
        upscale_nifti(src, tmp_path / "o.nii.gz", model=model, tile=16, overlap=16)
    with pytest.raises(ConfigError, match="scale must be an integer"):
        upscale_dicom_series(tmp_path / "mr", tmp_path / "d", model=model, scale=2.5)
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "d").exists()


def test_isotropic_keywords_and_options_object_write_the_same_volume(tmp_path):
    """``make_isotropic(**keywords)`` and ``isotropic_nifti(src, dst, options)`` (what the CLI
    calls with ``--isotropic``) fit the same model and write the same file."""
    from sr_domains.medical import make_isotropic
    from sr_domains.medical.isotropic_api import isotropic_dicom, isotropic_nifti
    from sr_domains.options import InternalOptions

    src = make_nifti(tmp_path / "t2.nii.gz", shape=(20, 18, 4), spacing=(1.0, 1.0, 3.0))
    (a,) = make_isotropic(src, tmp_path / "a.nii.gz", steps=2, seed=3, profile="percentile:1,99")
    opts = UpscaleOptions(
        isotropic=IsotropicOptions(), internal=InternalOptions(steps=2, seed=3),
        profile="percentile:1,99",
    )  # fmt: skip
    b = isotropic_nifti(src, tmp_path / "b.nii.gz", opts)
    ia, ib = nib.load(a), nib.load(b)
    assert ia.shape == ib.shape == (20, 18, 12)
    assert np.array_equal(np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj))
    assert np.array_equal(ia.affine, ib.affine)
    recipe = json.loads(_provenance(b)["made"]["recipe"])
    assert recipe["profile"] == "percentile:1,99" and recipe["fit_steps"] == 2
    # what --isotropic does not use is refused, naming it, before any file is written
    make_dicom_series(tmp_path / "mr", n_slices=4, rows=8, cols=8)
    for bad, words in [
        (UpscaleOptions(isotropic=IsotropicOptions(), model="sr-lite-gray-x2"), "--model"),
        (UpscaleOptions(isotropic=IsotropicOptions(), tile=32), "--tile"),
        (UpscaleOptions(isotropic=IsotropicOptions(), bands=(1,)), "--bands"),
        (UpscaleOptions(axes=(0, 1)), "needs options.isotropic"),
    ]:
        with pytest.raises(ConfigError, match=words):
            isotropic_nifti(src, tmp_path / "c.nii.gz", bad)
    with pytest.raises(ConfigError, match="--axes"):
        isotropic_dicom(tmp_path / "mr", tmp_path / "d", UpscaleOptions(
            isotropic=IsotropicOptions(), axes=(0, 1)))  # fmt: skip
    with pytest.raises(ConfigError, match=r"--series \(series_uid=\)"):  # the real flag
        make_isotropic(src, tmp_path / "c.nii.gz", series_uid="1.2.3")
    assert not (tmp_path / "c.nii.gz").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("axes", [(0, 1), (0, 2), (1, 2)])
def test_adapt_learns_from_planes_of_the_first_volume_only(tmp_path, axes):
    """``--adapt`` on a 4-D file learns from planes of the first volume spanned by the
    in-plane axes, streamed or not, as copies (not views of a whole-file array)."""
    from sr_domains.medical import read_nifti
    from sr_domains.medical.common import middle_indexes
    from sr_domains.medical.nifti_io import open_source
    from sr_domains.medical.nifti_upscale import adaptation_planes

    src = make_nifti(tmp_path / "dwi.nii.gz", shape=(12, 10, 9), n_volumes=3, slope=0.5, inter=3)
    planes = adaptation_planes(open_source(src), axes)
    first = np.asarray(read_nifti(src).data, np.float32)[..., 0]
    other = ({0, 1, 2} - set(axes)).pop()
    want = np.moveaxis(first, (axes[0], axes[1], other), (0, 1, 2))
    picked = middle_indexes(want.shape[2])
    assert len(planes) == len(picked) > 1
    for plane, k in zip(planes, picked):
        assert plane.dtype == np.float32 and plane.base is None
        np.testing.assert_array_equal(plane, want[:, :, k])
    later = np.asarray(read_nifti(src).data, np.float32)[..., 2]  # (brighter: not these)
    assert not np.array_equal(planes[0], np.moveaxis(later, (axes[0], axes[1], other),
                                                     (0, 1, 2))[:, :, picked[0]])  # fmt: skip
