"""The xarray API on selections that change the pixel grid: a strided ``isel`` or a
``coarsen`` keeps rioxarray's stored ``GeoTransform`` (the old pixel size), and any ``isel`` of a
rotated array its old origin; the output's transform comes from the coordinates instead (as
``rio.to_raster`` writes the selection), uneven coordinates are refused, and the internal-mask
and alpha checks look at the pixels a strided window holds. Real GeoTIFFs (UTM CRS), read with
``rioxarray.open_rasterio``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("dask")
rioxarray = pytest.importorskip("rioxarray")
rasterio = pytest.importorskip("rasterio")

import sr_domains  # noqa: E402
from sr_domains.errors import GeometryError, InputFileError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.xarray import upscale  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture(scope="module")
def gray() -> sr_domains.SRModel:
    return sr_domains.load_pretrained("sr-lite-gray-x2")


def _tif(path, count: int = 1, mask=None, alpha=None, transform=None):
    """A uint8 UTM raster of 40 x 48 pixels of 5 m, with an internal ``mask`` (2-D, 0 hides) or
    an ``alpha`` band appended (2-D)."""
    from rasterio.transform import from_origin

    a = np.random.default_rng(0).integers(20, 200, (count, 40, 48), dtype=np.uint8)
    extra = {"photometric": "RGB", "alpha": "YES"} if alpha is not None and count == 3 else {}
    n = count + (alpha is not None)
    t = transform or from_origin(500_000, 4_000_000, 5, 5)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=48, height=40, count=n, dtype="uint8",
        crs="EPSG:32633", transform=t, **extra,
    ) as dst:  # fmt: skip
        if alpha is not None:  # (before the pixels: GDAL may have flushed them, and the
            ci = list(dst.colorinterp)  # TIFF's ExtraSamples with them, by the time it is set)
            dst.colorinterp = [*ci[:-1], rasterio.enums.ColorInterp.alpha]
        dst.write(a, indexes=list(range(1, count + 1)))
        if alpha is not None:
            dst.write(alpha, n)
        if mask is not None:
            dst.write_mask(mask)
    return path


def _reference(da, tmp_path, gray):
    """The transform ``upscale_geotiff`` gives the selection ``da`` written as a file
    (``rio.to_raster`` recalculates its transform from the coordinates)."""
    da.rio.to_raster(tmp_path / "sel.tif")
    upscale_geotiff(tmp_path / "sel.tif", tmp_path / "sel_x2.tif", model=gray, overwrite=True)
    with rasterio.open(tmp_path / "sel_x2.tif") as ds:
        return ds.transform


@pytest.mark.parametrize(
    "pick",
    [
        lambda da: da.isel(x=slice(None, None, 2)),
        lambda da: da.isel(y=slice(1, None, 3)),
        lambda da: da[:, ::2, ::3],
        lambda da: da.coarsen(x=2, y=2).mean().astype(np.uint8),
    ],
    ids=["x-stride-2", "y-from-1-stride-3", "both", "coarsen"],
)
def test_a_strided_selection_gets_its_own_pixel_size(tmp_path, gray, pick):
    path = _tif(tmp_path / "utm.tif")
    for chunks in (None, {"x": 16}):
        sel = pick(rioxarray.open_rasterio(path, chunks=chunks))
        out = upscale(sel, 2, model=gray)
        t, ref = out.rio.transform(), _reference(sel, tmp_path, gray)
        assert t == ref, (t, ref)  # (was the old 5 m pixel halved, and half the extent)
        step = (sel.x.values[1] - sel.x.values[0]) / 2
        np.testing.assert_allclose(np.diff(out.x.values), step)
        assert out.rio.bounds() == pytest.approx(sel.rio.bounds(recalc=True))


def test_uneven_coordinates_are_refused(tmp_path, gray, shared_data):
    da = rioxarray.open_rasterio(_tif(tmp_path / "utm.tif"))
    with pytest.raises(GeometryError, match=r"x coordinates are not evenly spaced"):
        upscale(da.isel(x=[0, 3, 4, 5]), 2, model=gray)
    with pytest.raises(GeometryError, match=r"y coordinates are not evenly spaced"):
        upscale(da.isel(y=[0, 0, 1]), 2, model=gray)
    rot = rioxarray.open_rasterio(shared_data / "geotiff" / "rotated.tif")
    with pytest.raises(GeometryError, match=r"xc/yc coordinates are not evenly spaced"):
        upscale(rot.isel(x=[0, 3, 4, 5]), 2, model=gray)


def _window_file(src, dst, r, c, h, w):
    """Rows ``r:r+h``, columns ``c:c+w`` of ``src`` written as ``dst`` (rasterio's window
    transform)."""
    from rasterio.windows import Window

    with rasterio.open(src) as ds:
        win = Window(c, r, w, h)
        profile = dict(ds.profile, width=w, height=h, transform=ds.window_transform(win))
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        profile.update(tiled=False)
        data = ds.read(window=win)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)


def test_a_window_keeps_the_transform_upscale_geotiff_gives_it(tmp_path, gray, shared_data):
    """Bit for bit, for plain grids (unchanged) and rotated ones (a window of a rotated array
    kept the whole file's origin)."""
    names = ["615.tif", "RGB.byte.tif", "float_raster_with_nodata.tif", "rgb.tif", "rotated.tif"]
    for name in names:
        src = shared_data / "geotiff" / name
        da = rioxarray.open_rasterio(src)
        for r, c in ((0, 0), (3, 2)):
            sel = da.isel(band=[0], y=slice(r, r + 8), x=slice(c, c + 9))
            _window_file(src, tmp_path / "win.tif", r, c, 8, 9)
            upscale_geotiff(
                tmp_path / "win.tif", tmp_path / "win_x2.tif", model=gray, bands=[1], overwrite=True
            )
            with rasterio.open(tmp_path / "win_x2.tif") as ds:
                assert upscale(sel, 2, model=gray).rio.transform() == ds.transform, (name, r, c)
        if name != "rotated.tif":
            left, bottom, right, top = da.rio.bounds()
            box = da.isel(band=[0]).rio.clip_box(
                left + (right - left) / 4, bottom + (top - bottom) / 4, right, top
            )
            before = box.rio.transform() @ box.rio.transform().scale(0.5)
            assert upscale(box, 2, model=gray).rio.transform() == before, name


def test_a_strided_selection_of_a_rotated_array_is_placed_from_its_pixel_centres(gray, shared_data):
    da = rioxarray.open_rasterio(shared_data / "geotiff" / "rotated.tif")
    ft = da.rio.transform()
    out = upscale(da.isel(x=slice(1, None, 2), y=slice(2, 14)), 2, model=gray)
    # column steps of 2 file pixels centred on file columns 1, 3, ..., from row 2
    want = ft @ ft.translation(0.5, 2) @ ft.scale(2, 1) @ ft.scale(0.5)
    np.testing.assert_allclose(list(out.rio.transform())[:6], list(want)[:6], atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centre = want @ (0.5, 0.5)
    np.testing.assert_allclose([out.xc.values[0, 0], out.yc.values[0, 0]], centre, atol=1e-9)


def test_the_internal_mask_check_looks_at_the_pixels_a_strided_window_holds(tmp_path, gray):
    mask = np.full((40, 48), 255, np.uint8)
    mask[5:8, 1::2] = 0  # odd columns hidden in rows 5 to 7
    da = rioxarray.open_rasterio(_tif(tmp_path / "masked.tif", mask=mask))
    assert upscale(da.isel(x=slice(0, None, 2)), 2, model=gray).shape == (1, 80, 48)
    with pytest.raises(InputFileError, match=r"masked\.tif: the DataArray was opened without"):
        upscale(da.isel(x=slice(1, None, 2)), 2, model=gray)
    with pytest.raises(InputFileError, match=r"masked\.tif: the DataArray was opened without"):
        upscale(da[:, 1::4, 3::6], 2, model=gray)  # rows 5 and columns 9, 15, ...
    assert upscale(da[:, ::4, 3::6], 2, model=gray).shape == (1, 20, 16)  # rows 0, 4, 8, ...


def test_data_bands_of_an_rgba_file_read_without_masked_are_refused_where_it_hides(tmp_path, gray):
    alpha = np.full((40, 48), 255, np.uint8)
    alpha[:10] = 0  # the top 10 rows transparent
    path = _tif(tmp_path / "rgba.tif", count=3, alpha=alpha)
    da = rioxarray.open_rasterio(path)
    for pick in (lambda d: d.sel(band=[1, 2, 3]), lambda d: d.sel(band=1), lambda d: d[:3, 3::4]):
        with pytest.raises(InputFileError, match=r"rgba\.tif: band 4 is its alpha band") as exc:
            upscale(pick(da), 2, model=gray)
        assert "masked=True" in str(exc.value) and "where(" in str(exc.value)
    # a window the alpha hides nothing in, the bands read with masked=True, or masked by hand
    assert upscale(da.sel(band=1).isel(y=slice(10, None)), 2, model=gray).shape == (60, 96)
    masked = rioxarray.open_rasterio(path, masked=True).sel(band=[1, 2, 3])
    out = upscale(masked, 2, model=gray)
    assert np.isnan(out.values[:, :20]).all() and np.isfinite(out.values[:, 20:]).all()
    by_hand = upscale(da.sel(band=[1, 2, 3]).where(da.sel(band=4) > 0), 2, model=gray)
    np.testing.assert_array_equal(np.isnan(by_hand.values), np.isnan(out.values))


def test_a_five_band_alpha_gdal_does_not_mask_is_refused_read_with_masked_too(tmp_path, gray):
    """GDAL reads alpha as the mask only in 2- and 4-band files: ``masked=True`` leaves the
    transparent pixels of an R,G,B,NIR,alpha file as data (``upscale_geotiff`` masks them)."""
    alpha = np.full((40, 48), 255, np.uint8)
    alpha[:, :6] = 0
    path = _tif(tmp_path / "rgbna.tif", count=4, alpha=alpha)
    da = rioxarray.open_rasterio(path, masked=True).sel(band=[1, 2, 3, 4])
    with pytest.raises(InputFileError, match=r"rgbna\.tif: band 5 is its alpha band") as exc:
        upscale(da, 2, model=gray)
    assert "open_rasterio(..., masked=True)" not in str(exc.value)  # (it would not help)
    full = rioxarray.open_rasterio(path, masked=True)
    out = upscale(da.where(full.sel(band=5) > 0), 2, model=gray)
    assert np.isnan(out.values[:, :, :12]).all() and np.isfinite(out.values[:, :, 12:]).all()
    assert upscale(da.isel(x=slice(6, None)), 2, model=gray).shape == (4, 80, 84)


def test_float32_coordinates_are_read_at_their_own_precision(tmp_path, gray):
    # float32 longitudes near 100 degrees step unevenly by 3% of a 2.5e-4 degree pixel: they
    # were refused as no pixel grid (accepted before the coordinates were compared)
    from rasterio.transform import from_origin

    path = _tif(tmp_path / "geo.tif", transform=from_origin(100.0, 45.0, 2.5e-4, 2.5e-4))
    da = rioxarray.open_rasterio(path)

    def f32(a):
        return a.assign_coords(x=a.x.astype(np.float32), y=a.y.astype(np.float32))

    assert np.ptp(np.diff(f32(da).x.values)) > 0.02 * 2.5e-4
    want = upscale(da, 2, model=gray).rio.transform()
    got = upscale(f32(da), 2, model=gray).rio.transform()
    assert got.a == want.a and got.e == want.e  # the stored pixel size, not float32's
    assert got.c == pytest.approx(want.c, abs=1e-5) and got.f == pytest.approx(want.f, abs=1e-5)
    sel = da.isel(x=slice(None, None, 2))
    got = upscale(f32(sel), 2, model=gray).rio.transform()  # (a stride still read as one,
    want = upscale(sel, 2, model=gray).rio.transform()  # as closely as float32 places it)
    np.testing.assert_allclose(got[:6], want[:6], rtol=1e-3, atol=2e-5)
    with pytest.raises(GeometryError, match=r"x coordinates are not evenly spaced"):
        upscale(f32(da.isel(x=[0, 3, 4, 5])), 2, model=gray)
