"""The xarray API checks a ``nodata=`` override (and an array's own nodata) against the type
that holds it before any work, in stored units for a decoded array, as ``upscale_array`` and
``--nodata`` do; and an array rioxarray read with its default ``masked=False`` from a GeoTIFF
whose internal mask hides some of its pixels is refused, naming the file, instead of having
the hidden pixels upscaled as data (real rasterio files read by rioxarray, the shipped
``sr-lite`` model)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
rioxarray = pytest.importorskip("rioxarray")
xr = pytest.importorskip("xarray")

from affine import Affine  # noqa: E402

from sr_domains.errors import ConfigError, InputFileError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.xarray import upscale  # noqa: E402

MODEL = "sr-lite-gray-x2"
T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def _strict(da, **kw):
    """``upscale`` with RuntimeWarnings as errors (NaN cast to int16 warned before the crash)."""
    kw = {"model": MODEL, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return upscale(da, 2, device="cpu", **kw)


@pytest.mark.parametrize(
    ("kw", "nodata"),
    [
        *[({}, v) for v in (70000, -40000, np.nan, 1.5)],
        *[({"chunks": {"x": 24}}, v) for v in (70000, np.nan)],
        *[({"masked": True}, v) for v in (70000, -40000)],  # (NaN: off the stored grid)
    ],
)
def test_a_nodata_override_the_type_cannot_hold_is_refused_up_front(tmp_path, kw, nodata):
    src = make_geotiff(tmp_path / "i.tif", width=48, height=40, dtype="int16", nodata=-9999)
    da = rioxarray.open_rasterio(src, **kw)
    shown = "NaN" if np.isnan(nodata) else f"{nodata:g}"
    with pytest.raises(ConfigError, match=rf"nodata {shown} is not an? int16 value"):
        # before any work: the weights are never looked for
        _strict(da, nodata=nodata, weights=tmp_path / "missing.safetensors", model=None)
    assert not list(tmp_path.glob("*.safetensors"))


def test_a_scaled_arrays_override_is_checked_in_stored_units(tmp_path):
    src = make_geotiff(tmp_path / "s.tif", width=48, height=40, dtype="int16", nodata=-32768)
    with rasterio.open(src, "r+") as ds:
        ds.scales, ds.offsets = (0.01,), (0.0,)
    da = rioxarray.open_rasterio(src, mask_and_scale=True)
    with pytest.raises(ConfigError) as exc:  # -32768 given in stored units: -3.2768e+06 stored
        _strict(da, nodata=-32768)
    msg = str(exc.value)
    assert "nodata -32768 is stored as -3.2768e+06" in msg and "(-327.68..327.67)" in msg
    out = _strict(da, nodata=-327.68)  # the same value in decoded units
    assert out.encoding["dtype"] == "int16" and out.rio.encoded_nodata == -32768
    out.rio.to_raster(tmp_path / "o.tif")
    with rasterio.open(tmp_path / "o.tif") as r:
        assert r.nodata == -32768 and r.dtypes[0] == "int16"


def _own_70000() -> xr.DataArray:
    a = np.random.default_rng(1).integers(100, 900, (40, 48)).astype("int16")
    da = xr.DataArray(a, dims=("y", "x")).rio.write_crs("EPSG:32633").rio.write_transform(T)
    da.attrs["_FillValue"] = 70000.0
    return da


def test_an_arrays_own_nodata_the_type_cannot_hold_is_refused():
    for kw in ({}, {"nodata": -1}):  # (was rioxarray's OverflowError)
        with pytest.raises(ConfigError, match=r"its own nodata cannot be read .*70000"):
            _strict(_own_70000(), **kw)
    da = _own_70000()
    with pytest.raises(OverflowError):
        da.rio.nodata  # noqa: B018  (rioxarray raises once, then returns 70000.0 unchecked)
    with pytest.raises(ConfigError, match=r"its own nodata 70000 is not an? int16 value"):
        _strict(da)


def test_an_int64_nodata_at_the_types_end_is_not_wrapped():
    top = np.iinfo(np.int64).max
    a = np.random.default_rng(2).integers(100, 900, (40, 48)).astype("int64")
    a[:6, :8] = top
    da = xr.DataArray(a, dims=("y", "x")).rio.write_crs("EPSG:32633").rio.write_transform(T)
    out = _strict(da, nodata=top)
    got = np.asarray(out.values)
    hole = (a == top).repeat(2, 0).repeat(2, 1)
    assert (got[hole] == top).all()  # written as the nodata (was -2**63)
    assert got[~hole].min() >= 50 and got[~hole].max() <= 1000  # 2**63 - 1 never read as data
    assert out.rio.nodata == top


@pytest.mark.parametrize(
    "pick",
    [
        lambda da: da,
        lambda da: da.sel(band=2),
        lambda da: da.transpose("y", "x", "band"),
        lambda da: da.isel(y=slice(0, 20), x=slice(10, 50)),
    ],
    ids=["all", "one-band", "bands-last", "window"],
)
@pytest.mark.parametrize("chunks", [None, {"x": 24}], ids=["numpy", "dask"])
def test_an_internal_mask_read_as_data_is_refused(tmp_path, pick, chunks):
    src = make_geotiff(tmp_path / "m.tif", width=64, height=48, count=3, mask="internal")
    da = pick(rioxarray.open_rasterio(src, chunks=chunks))
    with pytest.raises(InputFileError, match=r"m\.tif: .*opened without masked=True") as exc:
        _strict(da)
    assert "open_rasterio(..., masked=True)" in str(exc.value)


def test_a_masked_read_equals_upscale_geotiff_and_a_window_the_mask_spares_is_kept(tmp_path):
    src = make_geotiff(tmp_path / "m.tif", width=64, height=48, count=3, mask="internal")
    raw = rioxarray.open_rasterio(src)
    with pytest.raises(InputFileError, match="masked=True"):
        _strict(raw)
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=MODEL, device="cpu")
    with rasterio.open(ref) as r:
        want, valid = r.read(), r.read_masks(1) > 0
    got = _strict(rioxarray.open_rasterio(src, masked=True)).values
    assert (~valid).any() and np.isnan(got[:, ~valid]).all()
    np.testing.assert_array_equal(got[:, valid], want[:, valid])
    with rasterio.open(src) as ds:
        hidden = ds.read_masks(1) == 0
    rows = np.flatnonzero(~hidden.any(axis=1))  # rows the mask leaves whole
    r0 = int(rows[0])
    part = raw.isel(y=slice(r0, r0 + 8))  # a window of the file with no hidden pixel
    assert part.shape == (3, 8, 64) and not hidden[r0 : r0 + 8].any()
    assert _strict(part).shape == (3, 16, 128)
    held = raw.load()
    held.encoding = {}  # (built in memory: no file to ask)
    assert _strict(held).shape == (3, 96, 128)


def _mask_holding_zero(path, count=1):
    """A uint8 file whose internal mask hides pixels that all hold 0 (and no valid one does)."""
    src = make_geotiff(path, width=48, height=40, count=count, dtype="uint8", mask="internal")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(src, "r+") as ds:
        hidden, a = ds.read_masks(1) == 0, ds.read()
        a[a == 0] = 1
        a[:, hidden] = 0
        ds.write(a)
    return src, hidden


@pytest.mark.parametrize("how", ["override", "own"])
@pytest.mark.parametrize("chunks", [None, {"x": 24}], ids=["numpy", "dask"])
def test_hidden_pixels_holding_the_nodata_carry_the_mask(tmp_path, how, chunks):
    # (refused by the mask check while the nodata already marked every hidden pixel invalid)
    src, hidden = _mask_holding_zero(tmp_path / "m.tif", count=2)
    assert hidden.any() and (~hidden).any()
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=MODEL, device="cpu")
    with rasterio.open(ref) as r:
        want, valid = r.read(), r.read_masks(1) > 0
    da = rioxarray.open_rasterio(src, chunks=chunks)
    out = _strict(da, nodata=0) if how == "override" else _strict(da.rio.write_nodata(0))
    got = np.asarray(out.values)
    assert out.rio.nodata == 0
    np.testing.assert_array_equal(got == 0, np.broadcast_to(~valid, got.shape))  # footprint
    np.testing.assert_array_equal(got[:, valid], want[:, valid])
    win = da.isel(y=slice(1, None, 3), x=slice(2, 40, 2))  # (a strided window: its own pixels)
    assert _strict(win, nodata=0).shape == (2, 26, 38)


def test_a_hidden_pixel_holding_another_value_is_still_refused(tmp_path):
    src, hidden = _mask_holding_zero(tmp_path / "m.tif", count=2)
    r, c = np.argwhere(hidden)[-1]
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(src, "r+") as ds:
        a = ds.read()
        a[1, r, c] = 7  # one band of one hidden pixel: data the mask alone hides
        ds.write(a)
    da = rioxarray.open_rasterio(src)
    for kw in ({"nodata": 0}, {"nodata": 7}):  # (7: the other band's 0s are data then)
        with pytest.raises(InputFileError, match=r"m\.tif: .*opened without masked=True") as e:
            _strict(da, **kw)
        assert "nodata=" in str(e.value)
    held = da.load().copy()
    held[1, r, c] = 0  # the array's values decide, not the file's
    assert _strict(held, nodata=0).shape == (2, 80, 96)
    assert _strict(da.isel(y=slice(0, r), x=slice(0, 48)), nodata=0).shape[1] == 2 * r


def test_data_bands_holding_the_nodata_where_the_alpha_hides_them_are_kept(tmp_path):
    src = make_geotiff(tmp_path / "a.tif", width=48, height=40, count=3, mask="alpha")
    with rasterio.open(src, "r+") as ds:
        a = ds.read()
        a[:3][a[:3] == 0] = 1
        a[:3, a[3] == 0] = 0
        ds.write(a)
    rgb = rioxarray.open_rasterio(src).sel(band=[1, 2, 3])
    with pytest.raises(InputFileError, match="band 4 is its alpha band"):
        _strict(rgb, model="sr-lite-rgb-x2")
    got = np.asarray(_strict(rgb, model="sr-lite-rgb-x2", nodata=0).values)
    hole = (a[3] == 0).repeat(2, 0).repeat(2, 1)
    assert hole.any() and (got[:, hole] == 0).all() and (got[:, ~hole] > 0).all()
