"""The xarray API's ``nodata=`` override keeps the DataArray's own nodata invalid, as
``--nodata`` keeps a GeoTIFF's: a ``rio.nodata`` of -9999 upscaled with ``nodata=np.nan`` has
its -9999 pixels written as NaN, not interpolated into their neighbours as data (real
rasterio-written files read by rioxarray, real CRSs, the shipped ``sr-lite`` model)."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
rioxarray = pytest.importorskip("rioxarray")
xr = pytest.importorskip("xarray")

from affine import Affine  # noqa: E402

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.xarray import upscale  # noqa: E402

S = 2
MODEL = "sr-lite-gray-x2"


def _up(mask: np.ndarray) -> np.ndarray:
    return mask.repeat(S, axis=-2).repeat(S, axis=-1)


@pytest.mark.parametrize(
    ("dtype", "own", "override"),
    [("float32", -9999, np.nan), ("int16", -32768, -9999), ("float32", -9999, -5)],
    ids=["float-nan", "int16", "float-other"],
)
@pytest.mark.parametrize("chunks", [None, {"x": 24, "y": 20}], ids=["numpy", "dask"])
def test_a_read_geotiffs_own_nodata_stays_invalid_as_upscale_geotiff_keeps_it(
    tmp_path, dtype, own, override, chunks
):
    if chunks is not None:
        pytest.importorskip("dask")
    src = make_geotiff(tmp_path / "in.tif", width=48, height=40, dtype=dtype, nodata=own, seed=2)
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=MODEL, nodata=override, device="cpu")
    with rasterio.open(ref) as r:
        want = r.read()
    da = rioxarray.open_rasterio(src, chunks=chunks)
    assert da.rio.nodata == own and da.rio.crs is not None
    out = upscale(da, S, model=MODEL, nodata=override, device="cpu")
    got = np.asarray(out.values)
    hole = _up(np.asarray(da.values) == own)
    assert hole.any() and not hole.all()
    np.testing.assert_array_equal(got, want)  # (NaN where NaN)
    filled = np.isnan(got) if np.isnan(override) else got == override
    np.testing.assert_array_equal(filled, hole)
    assert (got != own).all()
    assert out.rio.nodata is not None and (
        np.isnan(out.rio.nodata) if np.isnan(override) else out.rio.nodata == override
    )


@pytest.mark.parametrize("how", ["write_nodata", "_FillValue"])
def test_a_built_arrays_own_nodata_stays_invalid_under_nodata_nan(how):
    a = (np.random.default_rng(5).random((40, 48)) * 0.6 + 0.2).astype("float32")
    a[5:9, 6:12] = -9999
    da = xr.DataArray(a, dims=("y", "x")).rio.write_crs("EPSG:32633")
    da = da.rio.write_transform(Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0))
    if how == "write_nodata":
        da = da.rio.write_nodata(-9999)
    else:
        da.attrs["_FillValue"] = -9999.0
    assert da.rio.nodata == -9999
    out = np.asarray(upscale(da, S, model=MODEL, nodata=np.nan, device="cpu").values)
    hole = _up(a == -9999)
    np.testing.assert_array_equal(np.isnan(out), hole)
    ok = out[~hole]  # nothing of -9999 interpolated into the neighbours
    assert ok.min() >= a[a != -9999].min() - 0.05 and ok.max() <= a.max() + 0.05


def test_a_decoded_arrays_own_nodata_stays_invalid_under_an_override(tmp_path):
    """A decoded array (stored int16 grid) whose ``rio.nodata`` is a decoded value: its pixels
    are NaN in the output, like the stored nodata's, not upscaled as data."""
    src = make_geotiff(tmp_path / "i.tif", width=48, height=40, dtype="int16", nodata=-32768)
    da = rioxarray.open_rasterio(src, mask_and_scale=True)
    da.values[0, 28:, 30:] = -7.0
    da = da.rio.write_nodata(-7.0, encoded=False)
    assert da.rio.nodata == -7.0 and da.encoding["dtype"] == "int16"
    out = np.asarray(upscale(da, S, model=MODEL, nodata=-5, device="cpu").values)
    a = np.asarray(da.values)
    bad = np.isnan(a) | (a == -7) | (a == -5)  # (data equal to the override is nodata too)
    hole = _up(bad)
    np.testing.assert_array_equal(np.isnan(out), hole)
    assert out[~hole].min() >= a[~bad].min()
