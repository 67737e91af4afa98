"""The xarray API on real rioxarray objects: dim order, rotated grids, the scale check, small
lazy arrays and the metadata kept (shipped ``sr-lite`` models, real EPSG CRSs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask")
rioxarray = pytest.importorskip("rioxarray")
xr = pytest.importorskip("xarray")

import sr_domains  # noqa: E402
from sr_domains.errors import ConfigError, GeometryError  # noqa: E402
from sr_domains.xarray import upscale  # noqa: E402


@pytest.fixture(scope="module")
def gray() -> sr_domains.SRModel:
    return sr_domains.load_pretrained("sr-lite-gray-x2")


@pytest.fixture(scope="module")
def rgb() -> sr_domains.SRModel:
    return sr_domains.load_pretrained("sr-lite-rgb-x2")


def _scene(bands: int = 3, h: int = 20, w: int = 24) -> xr.DataArray:
    """A float32 ``(band, y, x)`` UTM scene with a name, attrs, band labels and a time."""
    rng = np.random.default_rng(0)
    return xr.DataArray(
        rng.uniform(100, 900, (bands, h, w)).astype(np.float32),
        dims=("band", "y", "x"),
        coords={
            "band": np.arange(4, 4 + bands),
            "y": 5_000_000.0 - 10.0 * (np.arange(h) + 0.5),
            "x": 400_000.0 + 10.0 * (np.arange(w) + 0.5),
            "time": np.datetime64("2024-05-01"),
        },
        name="reflectance",
        attrs={"units": "DN"},
    ).rio.write_crs("EPSG:32633")


# -- 1. dim order ---------------------------------------------------------------------------
@pytest.mark.parametrize("order", [("y", "x", "band"), ("x", "band", "y")])
def test_bands_last_or_anywhere_are_found_and_the_order_is_kept(gray, order):
    da = _scene()
    ref = upscale(da, model=gray)
    out = upscale(da.transpose(*order), model=gray)
    assert out.dims == order
    assert dict(out.sizes) == {"band": 3, "y": 40, "x": 48}
    np.testing.assert_array_equal(out.transpose("band", "y", "x").values, ref.values)
    np.testing.assert_array_equal(out.x.values, ref.x.values)
    assert out.rio.transform() == ref.rio.transform()


def test_a_2d_array_with_x_before_y_is_upscaled_in_its_order(gray):
    da = _scene(bands=1).isel(band=0)
    out = upscale(da.transpose("x", "y"), model=gray)
    assert out.dims == ("x", "y") and out.shape == (48, 40)
    np.testing.assert_array_equal(out.values, upscale(da, model=gray).values.T)


def test_unknown_spatial_dims_are_refused_naming_them(gray):
    da = xr.DataArray(np.ones((1, 12, 12), np.float32), dims=("band", "row", "col"))
    with pytest.raises(ConfigError, match=r"spatial dims .*'row', 'col'.*set_spatial_dims"):
        upscale(da, model=gray)


# -- 2. rotated grids -----------------------------------------------------------------------
def test_rotated_raster_gets_2d_pixel_centres_as_rioxarray_reads_them(gray, shared_data, tmp_path):
    da = rioxarray.open_rasterio(shared_data / "geotiff" / "rotated.tif")
    out = upscale(da, model=gray)
    t = da.rio.transform() @ da.rio.transform().scale(0.5)
    assert out.rio.transform() == t
    assert "x" not in out.coords and "y" not in out.coords
    assert out.xc.dims == out.yc.dims == ("y", "x") and out.xc.shape == (30, 20)
    cols, rows = np.meshgrid(np.arange(20) + 0.5, np.arange(30) + 0.5)
    xs, ys = t @ (cols, rows)
    np.testing.assert_allclose(out.xc.values, xs)
    np.testing.assert_allclose(out.yc.values, ys)
    out.rio.to_raster(tmp_path / "r.tif")  # a file with the same grid reads back alike
    back = rioxarray.open_rasterio(tmp_path / "r.tif")
    np.testing.assert_allclose(back.xc.values, out.xc.values)
    np.testing.assert_allclose(back.yc.values, out.yc.values)


# -- 3. scale -------------------------------------------------------------------------------
def test_a_scale_other_than_the_models_is_refused(gray):
    said = r"the model sr-lite-gray-x2 \(weights .*x2\.safetensors\) upscales x2 but x3"
    with pytest.raises(ConfigError, match=said):
        upscale(_scene(), scale=3, model=gray)


@pytest.mark.parametrize("scale", [0, -2, 2.5])
def test_a_scale_that_is_not_a_positive_whole_number_is_refused(gray, scale):
    with pytest.raises(ConfigError, match="scale must be"):
        upscale(_scene(), scale=scale, model=gray)


# -- 4. small lazy arrays -------------------------------------------------------------------
def test_a_lazy_array_smaller_than_the_overlap_equals_the_in_memory_one(gray, shared_data):
    da = rioxarray.open_rasterio(shared_data / "geotiff" / "float_raster_with_nodata.tif")
    assert da.shape == (1, 12, 13)
    whole = upscale(da, model=gray)
    lazy = upscale(da.chunk(), model=gray)
    assert hasattr(lazy.data, "dask")
    np.testing.assert_array_equal(lazy.values, whole.values)


def test_a_lazy_strip_narrower_than_the_overlap_equals_the_in_memory_one(rgb, shared_data):
    path: Path = shared_data / "geotiff" / "RGB.byte.tif"
    window = {"y": slice(300, 330), "x": slice(300, 420)}  # 30 x 120, two chunks along x
    lazy_in = rioxarray.open_rasterio(path, chunks={"x": 60, "y": 30}).isel(window)
    whole = upscale(rioxarray.open_rasterio(path).isel(window), model=rgb)
    lazy = upscale(lazy_in, model=rgb)
    assert hasattr(lazy.data, "dask") and lazy.shape == (3, 60, 240)
    np.testing.assert_array_equal(lazy.values, whole.values)


# -- 5. metadata ----------------------------------------------------------------------------
@pytest.mark.parametrize("chunks", [None, {"x": 12}], ids=["numpy", "dask"])
def test_name_attrs_and_coordinates_off_the_grid_are_kept(gray, chunks):
    da = _scene()
    da = da.chunk(chunks) if chunks else da
    out = upscale(da, model=gray)
    assert out.name == "reflectance" and out.attrs["units"] == "DN"
    assert out.band.values.tolist() == [4, 5, 6]
    assert out.time.values == np.datetime64("2024-05-01")
    assert out.rio.crs.to_epsg() == 32633


@pytest.mark.parametrize("chunks", [None, {"x": 12}], ids=["numpy", "dask"])
@pytest.mark.parametrize("two_d", [False, True], ids=["3d", "2d"])
def test_an_unnamed_array_stays_unnamed(gray, chunks, two_d):
    # a dask array has a generated name, which xarray takes when given ``name=None``
    da = _scene().rename(None)
    da = da.isel(band=0) if two_d else da
    da = da.chunk(chunks) if chunks else da
    out = upscale(da, model=gray)
    assert out.name is None


def test_a_2d_band_selection_keeps_its_name_and_band_label(gray):
    out = upscale(_scene().sel(band=5), model=gray)
    assert out.dims == ("y", "x") and int(out.band) == 5
    assert out.name == "reflectance" and out.time.values == np.datetime64("2024-05-01")


def test_a_2d_array_through_a_model_making_three_bands_keeps_all_three():
    from sr_domains.models import create_model

    net = create_model("srcnn", in_channels=1, out_channels=3, scale=2).eval()
    da = _scene(bands=1).isel(band=0)
    out = upscale(da, model=net)
    assert out.dims == ("band", "y", "x") and out.shape == (3, 40, 48)
    assert out.band.values.tolist() == [1, 2, 3]
    planes = out.values.reshape(3, -1)
    assert not np.allclose(planes[0], planes[1]) and not np.allclose(planes[1], planes[2])
    lazy = upscale(da.chunk({"y": 10}), model=net)
    np.testing.assert_allclose(lazy.values, out.values, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("cut", [{"y": [3]}, {"x": [5]}])
def test_a_one_pixel_axis_without_a_transform_is_refused_not_moved_to_the_origin(gray, cut):
    """One row or column of an in-memory array: rioxarray's transform is then the identity,
    and the output's coordinates were 0.25, 0.75, ... under the input's CRS, without a word."""
    strip = _scene(1).isel(**cut)
    with pytest.raises(GeometryError, match="one pixel"):
        upscale(strip, 2, model=gray)
    known = _scene(1).rio.write_transform(_scene(1).rio.transform()).isel(**cut)
    out = upscale(known, 2, model=gray)  # (with a stored transform: placed right)
    t_in, t_out = known.rio.transform(), out.rio.transform()
    assert (t_out.c, t_out.f) == (t_in.c, t_in.f) and t_out.a == t_in.a / 2
    np.testing.assert_allclose(out.x.values[:2], t_in.c + t_in.a * np.array([0.25, 0.75]))


def test_coordinates_on_one_axis_only_are_a_geometry_error(gray):
    """rioxarray's own DimensionMissingCoordinateError escaped (not an sr_domains error)."""
    scene = _scene(1).drop_vars("x")
    with pytest.raises(GeometryError, match="write_transform"):
        upscale(scene, 2, model=gray)
