"""+-inf pixels come back unchanged over their ``s x s`` footprint, as in NIfTI: GeoTIFF (the
CLI, the shipped default model), ``upscale_array``, MONAI's 2-D path and the xarray API. NaN
stays NaN, nodata stays nodata, a mask still hides what it hid, neighbours stay finite and in
the input's physical domain (real rasterio files with a CRS, real torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sr_domains import upscale_array
from sr_domains.value_ops import keep_infinite

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

S = 2
MODEL = "sr-lite-gray-x2"


def _holes(a: np.ndarray) -> np.ndarray:
    """``a`` (H, W) with a block of +inf, one of -inf and one of NaN (in place; returned)."""
    a[5:8, 5:9] = np.inf
    a[20:23, 30:33] = -np.inf
    a[30:33, 10:13] = np.nan
    return a


def _up(mask: np.ndarray) -> np.ndarray:
    return mask.repeat(S, axis=-2).repeat(S, axis=-1)


def _check(out: np.ndarray, src: np.ndarray, nodata: float | None = None) -> None:
    """+-inf and NaN exactly over their footprint, the rest finite and in the input's range."""
    assert out.shape == (src.shape[0] * S, src.shape[1] * S)
    np.testing.assert_array_equal(np.isposinf(out), _up(np.isposinf(src)))
    np.testing.assert_array_equal(np.isneginf(out), _up(np.isneginf(src)))
    if nodata is None:
        np.testing.assert_array_equal(np.isnan(out), _up(np.isnan(src)))
    else:
        assert not np.isnan(out).any()
        np.testing.assert_array_equal(out == nodata, _up(np.isnan(src) | (src == nodata)))
    rest = out[_up(np.isfinite(src) & (src != nodata))]
    fin = src[np.isfinite(src) & (src != nodata)]
    assert np.isfinite(rest).all()
    assert rest.min() >= max(0.0, fin.min()) and rest.max() <= fin.max()  # physical domain


def _raster(tmp_path: Path, nodata: float | None = None, mask: str | None = None) -> Path:
    path = make_geotiff(
        tmp_path / "in.tif", width=48, height=40, dtype="float32", nodata=nodata, mask=mask
    )
    with rasterio.open(path, "r+") as ds:
        ds.write(_holes(ds.read(1)), 1)
    return path


def test_geotiff_cli_keeps_inf_over_its_footprint(tmp_path):
    src = _raster(tmp_path)
    dst = tmp_path / "out.tif"
    assert main(["upscale", str(src), str(dst), "--scale", "2"]) == 0
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert b.crs == a.crs and b.nodata is None
        _check(b.read(1), a.read(1))


def test_geotiff_nodata_stays_nodata_beside_inf(tmp_path):
    src = _raster(tmp_path, nodata=-9999.0)
    dst = tmp_path / "out.tif"
    assert main(["upscale", str(src), str(dst), "--scale", "2"]) == 0
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert b.nodata == -9999.0
        _check(b.read(1), a.read(1), nodata=-9999.0)


def test_geotiff_mask_still_hides_inf(tmp_path):
    """An inf pixel the per-dataset mask hides is written as any hidden pixel (NaN), and the
    output mask keeps hiding it; unmasked inf come back with the mask saying valid."""
    src = _raster(tmp_path, mask="internal")
    with rasterio.open(src, "r+") as ds:
        a, m = ds.read(1), ds.read_masks(1)
        a[m == 0] = np.inf  # the collar hidden by the mask holds inf
        ds.write(a, 1)
    dst = tmp_path / "out.tif"
    assert main(["upscale", str(src), str(dst), "--scale", "2"]) == 0
    with rasterio.open(dst) as b:
        out, out_mask = b.read(1), b.read_masks(1)
    hidden = _up(m == 0)
    assert hidden.any() and np.isnan(out[hidden]).all() and (out_mask[hidden] == 0).all()
    shown = _up(np.isinf(a) & (m > 0))
    assert shown.any()
    np.testing.assert_array_equal(np.isinf(out), shown)
    np.testing.assert_array_equal(out[shown], _up(a)[shown])
    assert (out_mask[shown] == 255).all()


def test_upscale_array_keeps_inf():
    a = _holes((np.random.default_rng(0).random((40, 48)) * 0.6 + 0.2).astype("float32"))
    _check(upscale_array(a, MODEL), a)
    _check(upscale_array(a, MODEL, nodata=-1.0), a, nodata=-1.0)
    out, mask = upscale_array(a, MODEL, return_mask=True)
    np.testing.assert_array_equal(mask, _up(np.isfinite(a)))  # (not seen by the network)
    hide = np.ones(a.shape, bool)
    hide[5, 5] = False  # a masked inf pixel is written as a masked pixel
    out = upscale_array(a, MODEL, valid_mask=hide)
    assert np.isnan(out[10:12, 10:12]).all() and np.isposinf(out[10:12, 12:18]).all()
    assert not np.isinf(upscale_array(a, MODEL, out_dtype="uint8", nodata=0)).any()


def test_keep_infinite_only_for_float_output_of_the_same_bands():
    src = np.array([[[np.inf, 1.0], [-np.inf, 2.0]]], np.float32)
    out = np.zeros((1, 4, 4), np.float32)
    keep_infinite(out, src, 2)
    assert np.isposinf(out[0, :2, :2]).all() and np.isneginf(out[0, 2:, :2]).all()
    assert (out[0, :, 2:] == 0).all()
    for other in (np.zeros((1, 4, 4), np.uint8), np.zeros((3, 4, 4), np.float32)):
        keep_infinite(other, src, 2)
        assert not other.any()


def test_monai_2d_keeps_inf():
    pytest.importorskip("monai")
    from sr_domains.monai import SuperResolution

    a = _holes((np.random.default_rng(1).random((40, 48)) * 0.6 + 0.2).astype("float32"))
    out = np.asarray(SuperResolution(MODEL)(torch.from_numpy(a[None])))[0]
    _check(out, a)


@pytest.mark.parametrize("chunked", [False, True])
def test_xarray_keeps_inf(chunked):
    pytest.importorskip("rioxarray")
    xr = pytest.importorskip("xarray")
    if chunked:
        pytest.importorskip("dask")
    from affine import Affine

    from sr_domains.xarray import upscale

    a = _holes((np.random.default_rng(2).random((40, 48)) * 0.6 + 0.2).astype("float32"))
    da = xr.DataArray(a, dims=("y", "x")).rio.write_crs("EPSG:32633")
    da = da.rio.write_transform(Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0))
    if chunked:
        da = da.chunk({"y": 20, "x": 24})
    out = upscale(da, 2, model=MODEL)
    _check(np.asarray(out.values), a)
