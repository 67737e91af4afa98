"""Values float32 cannot hold (float64, 32-bit integers above 2**24) keep their precision: flat
areas come back exactly and the output stays inside the input's range, not float32 round-off
outside it (value fidelity, rules 1-3)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from rasterio.transform import from_origin

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")

from sr_domains import panels as stream  # noqa: E402
from sr_domains.array_api import upscale_array  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.intensity import work_dtype  # noqa: E402
from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.pretrained import load_pretrained  # noqa: E402
from sr_domains.testing import ToySR  # noqa: E402

#: float32(LOW) < LOW and float32(HIGH) > HIGH: float32 round-off leaves the input's range
LOW, HIGH = -1002.7154339878, 3141.5926535898
FLAT = 1002.000000123456789  # not a float32 value
BIG = 30_000_001  # above 2**24: float32 rounds it to 30_000_000


class GlobalToy(ToySR):
    """ToySR with a global receptive field: wide rasters get blended panel seams."""

    def receptive_radius(self) -> None:
        return None


def _dem(h: int = 48, w: int = 48) -> np.ndarray:
    """A float64 surface spanning [LOW, HIGH] with a flat block at FLAT."""
    rng = np.random.default_rng(0)
    a = LOW + (HIGH - LOW) * rng.random((h, w))
    a[0, 0], a[-1, -1] = LOW, HIGH
    a[8:24, 8:24] = FLAT
    return a


def _check(out: np.ndarray, a: np.ndarray, flat: float, s: int = 2) -> None:
    inner = out[..., 10 * s : 22 * s, 10 * s : 22 * s]  # the flat block, away from its edge
    np.testing.assert_array_equal(inner, flat)
    assert out.min() >= a.min() and out.max() <= a.max()


def test_float32_rounds_the_test_values_out_of_range():
    """The premise of this module: without float64 work these values would leave the range."""
    f32 = [float(np.float32(v)) for v in (LOW, HIGH, FLAT)]  # (compared as Python floats)
    assert f32[0] < LOW and f32[1] > HIGH and f32[2] != FLAT
    assert int(np.float32(BIG)) != BIG


def test_work_dtype():
    assert work_dtype("float64") == np.float64
    assert work_dtype("uint32") == work_dtype("int32") == work_dtype("int64") == np.float64
    assert work_dtype("float32") == work_dtype("uint16") == work_dtype("int8") == np.float32
    assert work_dtype("float16") == np.float32


def _write_tif(path, a: np.ndarray) -> None:
    h, w = a.shape[-2:]
    prof = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=1,
        dtype=a.dtype.name,
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 30, 30),
    )
    with rasterio.open(path, "w", **prof) as d:
        d.write(a, 1)


def _read(path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1)


def test_float64_geotiff_keeps_its_values_exactly(tmp_path):
    a = _dem()
    _write_tif(tmp_path / "dem.tif", a)
    model = load_pretrained("sr-lite-gray-x2")
    out = _read(upscale_geotiff(tmp_path / "dem.tif", tmp_path / "o.tif", model=model))
    assert out.dtype == np.float64
    _check(out, a, FLAT)


def test_float64_geotiff_across_panel_seams(tmp_path, monkeypatch):
    """Wide rasters are cut into panels whose seams are blended through a spool file: float64
    blocks keep their precision through it."""
    a = np.tile(_dem(40, 40), (1, 12))
    a[8:24, :] = FLAT  # a flat stripe across every seam
    a[30:34, :] = HIGH  # and one at the maximum (a blend must not step above it)
    _write_tif(tmp_path / "wide.tif", a)
    model = GlobalToy(BaseSRConfig(in_channels=1, scale=2), seed=3).eval()
    one = _read(upscale_geotiff(tmp_path / "wide.tif", tmp_path / "one.tif", model=model, tile=64))
    monkeypatch.setattr(stream, "PANEL_BUDGET_BYTES", 1)  # -> several panels, blended seams
    many = _read(
        upscale_geotiff(tmp_path / "wide.tif", tmp_path / "many.tif", model=model, tile=64)
    )
    assert many.dtype == np.float64
    np.testing.assert_array_equal(many[20:44], FLAT)  # every column, seams included
    np.testing.assert_array_equal(many[64:64], HIGH)
    assert many.min() >= a.min() and many.max() <= a.max()
    np.testing.assert_allclose(many, one, rtol=1e-6)  # the network's float32 precision


@pytest.mark.parametrize("dtype", ["uint32", "int32"])
def test_32bit_integer_geotiff_keeps_values_above_2_24(tmp_path, dtype):
    rng = np.random.default_rng(1)
    a = rng.integers(BIG - 200, BIG + 200, (48, 48)).astype(dtype)
    a[8:24, 8:24] = BIG
    _write_tif(tmp_path / "i.tif", a)
    model = load_pretrained("sr-lite-gray-x2")
    out = _read(upscale_geotiff(tmp_path / "i.tif", tmp_path / "o.tif", model=model))
    assert out.dtype == np.dtype(dtype)
    _check(out, a, BIG)


@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_nifti_keeps_float64_and_32bit_values(tmp_path, dtype):
    a = _dem() if dtype == "float64" else np.full((48, 48), BIG, np.int32)
    if dtype == "int32":
        a[:4] = BIG - 7
    vol = np.stack([a] * 4, axis=-1).astype(dtype)
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 3.0, 1.0])), tmp_path / "v.nii.gz")
    dst = upscale_nifti(tmp_path / "v.nii.gz", tmp_path / "o.nii.gz", scale=2)
    out = np.asarray(nib.load(dst).dataobj)
    assert out.dtype == np.dtype(dtype)
    _check(np.moveaxis(out, -1, 0), a, FLAT if dtype == "float64" else BIG)


def test_float64_array_and_xarray(tmp_path):
    a = _dem()
    model = load_pretrained("sr-lite-gray-x2")
    out = upscale_array(a, model, device="cpu")
    assert out.dtype == np.float64
    _check(out, a, FLAT)
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    from sr_domains.xarray import upscale as xupscale

    da = xr.DataArray(
        a[None],
        dims=("band", "y", "x"),
        coords={
            "band": [1],
            "y": 4e6 - 15.0 - 30.0 * np.arange(48),
            "x": 5e5 + 15.0 + 30.0 * np.arange(48),
        },
    ).rio.write_crs("EPSG:32633")
    xo = xupscale(da, model=model).values
    assert xo.dtype == np.float64
    _check(xo[0], a, FLAT)


def test_cli_float64_geotiff(tmp_path):
    """The command users run: ``sr-domains upscale dem.tif`` with the bundled weights."""
    a = _dem()
    _write_tif(tmp_path / "dem.tif", a)
    cmd = [sys.executable, "-m", "sr_domains", "upscale", "dem.tif", "o.tif", "-q"]
    subprocess.run(cmd, check=True, cwd=tmp_path)
    _check(_read(tmp_path / "o.tif"), a, FLAT)


def test_monai_float64_metatensor():
    pytest.importorskip("monai")
    import torch
    from monai.data import MetaTensor

    from sr_domains.monai import SuperResolution

    a = _dem()
    vol = np.stack([a] * 4, axis=-1)[None]
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0], dtype=torch.float64))
    out = SuperResolution(model="sr-lite-gray-x2")(MetaTensor(torch.as_tensor(vol), affine=affine))
    assert out.dtype == torch.float64
    _check(np.moveaxis(out.numpy()[0], -1, 0), a, FLAT)
    ints = MetaTensor(torch.as_tensor(vol.astype(np.int32)), affine=affine)
    assert SuperResolution(model="sr-lite-gray-x2")(ints).dtype == torch.float32  # (MONAI's)


@pytest.mark.parametrize("signed", [False, True])
def test_32bit_dicom_series_is_written_32bit(tmp_path, signed):
    """A 32-bit DICOM series (BitsAllocated 32) was written 16-bit: every pixel clipped to
    65535. Its derived series is 32-bit, with the source's signedness and exact values."""
    pydicom = pytest.importorskip("pydicom")
    from sr_domains.medical import upscale_dicom_series
    from sr_domains.testing.medical import make_dicom_series

    files = make_dicom_series(tmp_path / "s", n_slices=3, rows=32, cols=32)
    dt = np.dtype("<i4" if signed else "<u4")
    lo = hi = None
    for f in files:
        ds = pydicom.dcmread(f)
        a = ds.pixel_array.astype(np.int64) * 1000 + (-BIG if signed else BIG - 2_000_000)
        a[4:20, 4:20] = -BIG if signed else BIG
        lo = a.min() if lo is None else min(lo, a.min())
        hi = a.max() if hi is None else max(hi, a.max())
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
        ds.PixelRepresentation = int(signed)
        ds.PixelData = a.astype(dt).tobytes()
        ds.save_as(f)
    out = upscale_dicom_series(tmp_path / "s", tmp_path / "o", scale=2)
    assert len(out) == 3
    for f in out:
        ds = pydicom.dcmread(f)
        px = ds.pixel_array
        assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (32, 32, int(signed))
        np.testing.assert_array_equal(px[12:36, 12:36], -BIG if signed else BIG)
        assert px.min() >= lo and px.max() <= hi


@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_isotropic_and_through_plane_nifti_keep_precision(tmp_path, dtype):
    """``--isotropic`` denormalized and clamped in float32 (flat 30000001 -> 30000000, float64
    outside its range); ``--through-plane`` averaged three estimates to one rounding step below
    the input's minimum."""
    from sr_domains.cli import main

    a = _dem() if dtype == "float64" else np.full((48, 48), BIG, np.int32)
    if dtype == "int32":
        a[:4] = BIG - 7
    vol = np.stack([a] * 6, axis=-1).astype(dtype)
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 3.0, 1.0])), tmp_path / "v.nii.gz")
    flat = FLAT if dtype == "float64" else BIG
    fast = ["-q", "--device", "cpu"]
    assert main(["upscale", str(tmp_path / "v.nii.gz"), str(tmp_path / "i.nii.gz"), "--isotropic",
                 "--steps", "3", *fast]) == 0  # fmt: skip
    out = np.asarray(nib.load(tmp_path / "i.nii.gz").dataobj)
    assert out.dtype == np.dtype(dtype)
    _check(np.moveaxis(out, -1, 0), a, flat, s=1)
    assert main(["upscale", str(tmp_path / "v.nii.gz"), str(tmp_path / "t.nii.gz"),
                 "--through-plane", *fast]) == 0  # fmt: skip
    out = np.asarray(nib.load(tmp_path / "t.nii.gz").dataobj)
    assert out.dtype == np.dtype(dtype)
    _check(np.moveaxis(out, -1, 0), a, flat)


def test_monai_inverse_and_make_isotropic_keep_float64():
    pytest.importorskip("monai")
    import torch
    from monai.data import MetaTensor

    from sr_domains.monai import MakeIsotropic, SuperResolution

    a = _dem()
    vol = np.stack([a] * 6, axis=-1)[None]
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0], dtype=torch.float64))
    sr = SuperResolution(model="sr-lite-gray-x2")
    back = sr.inverse(sr(MetaTensor(torch.as_tensor(vol), affine=affine)))
    assert back.dtype == torch.float64
    _check(np.moveaxis(back.numpy()[0], -1, 0), a, FLAT, s=1)
    iso = MakeIsotropic(steps=3, device="cpu")(MetaTensor(torch.as_tensor(vol), affine=affine))
    assert iso.dtype == torch.float64
    _check(np.moveaxis(iso.numpy()[0], -1, 0), a, FLAT, s=1)


def test_nodata_value_and_narrow_range_at_a_large_offset():
    """``upscale_array(nodata=...)`` wrote a float32-rounded nodata value; a float64 raster
    with a 0.01 range at 1e6 reached the network as one value (normalized after a float32
    cast: steps of 0.0625 there) and came back blocky."""
    model = load_pretrained("sr-lite-gray-x2")
    a = _dem()
    a[30:34, 30:34] = np.nan
    out = upscale_array(a, model, device="cpu", nodata=-9999.123456789)
    assert (out[60:68, 60:68] == -9999.123456789).all()
    y, x = np.mgrid[0:48, 0:48] / 48.0
    detail = 0.01 * (0.5 + 0.5 * np.sin(7 * x) * np.cos(5 * y))
    off = upscale_array(1e6 + detail, model, device="cpu", profile="percentile") - 1e6
    zero = upscale_array(detail, model, device="cpu", profile="percentile")
    np.testing.assert_allclose(off, zero, rtol=0, atol=1e-6)  # was 8.5e-4 of a 0.01 range


def test_through_plane_range_clip_follows_the_envelope(tmp_path):
    """The through-plane mean is clipped to the input's range only under the strict (default)
    envelope: with the envelope off the user asked for values beyond it, and gets them."""
    from sr_domains.value_domain import ValueOptions

    rng = np.random.default_rng(0)
    v = (rng.random((24, 24, 6)) * 100 + 10).astype(np.float32)
    nib.save(nib.Nifti1Image(v, np.eye(4)), tmp_path / "v.nii.gz")
    tops = {}
    for env in (None, 0.0):
        dst = upscale_nifti(tmp_path / "v.nii.gz", tmp_path / f"o{env}.nii.gz",
                            through_plane=True, values=ValueOptions(envelope=env))  # fmt: skip
        tops[env] = float(np.asarray(nib.load(dst).dataobj).max())
    assert tops[0.0] <= v.max() < tops[None]
