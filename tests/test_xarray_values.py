"""The xarray API's values and georeferencing against :func:`~sr_domains.geo.upscale_geotiff`
on the same file: per-band scales/offsets, a GCP-only raster and the noise gate (real
rasterio/rioxarray files, real CRSs, shipped ``sr-lite`` models)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
rioxarray = pytest.importorskip("rioxarray")
pytest.importorskip("xarray")

from rasterio.control import GroundControlPoint  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.xarray import upscale  # noqa: E402

H = W = 40


def _bands(n: int, noise: float = 0.0, h: int = H, w: int = W) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    d = [3000 + 2000 * np.sin(x / 5 + k) * np.cos(y / 7) for k in range(n)]
    return np.round(np.array(d) + noise * rng.standard_normal((n, h, w))).astype("uint16")


def _write(path: Path, data: np.ndarray, **kw: object) -> Path:
    h, w = data.shape[1:]
    profile = dict(driver="GTiff", width=w, height=h, count=len(data), dtype="uint16")
    with rasterio.open(path, "w", **{**profile, **kw}) as ds:
        ds.write(data)
    return path


def _open(path: Path, **kw: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rioxarray: "Scales differ across bands"
        return rioxarray.open_rasterio(path, **kw)


@pytest.mark.parametrize(
    ("scales", "offsets"),
    [((1e-4, 2e-4), (-0.1, -0.1)), ((1e-4, 1e-4), (-0.1, 0.2)), ((1e-4, 1e-4), (-0.1, -0.1))],
    ids=["scales-differ", "offsets-differ", "one-scale-factor"],
)
def test_scaled_bands_keep_their_units_and_write_back_as_upscale_geotiff(tmp_path, scales, offsets):
    src = tmp_path / "sc.tif"
    geo = dict(crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10), nodata=0)
    with rasterio.open(
        src, "w", driver="GTiff", width=W, height=H, count=2, dtype="uint16", **geo
    ) as ds:
        ds.write(_bands(2))
        ds.scales, ds.offsets = scales, offsets
    upscale_geotiff(src, tmp_path / "ref.tif", scale=2, model="sr-lite-gray-x2", device="cpu")
    with rasterio.open(tmp_path / "ref.tif") as r:
        ref = r.read()
    da = _open(src, mask_and_scale=True)
    out = upscale(da, 2, model="sr-lite-gray-x2", device="cpu")
    sc, off = np.array(scales)[:, None, None], np.array(offsets)[:, None, None]
    want = np.where(ref == 0, np.nan, ref * sc + off).astype(out.dtype)  # decoded units
    np.testing.assert_array_equal(out.values, want)
    out.rio.to_raster(tmp_path / "xr.tif")
    with rasterio.open(tmp_path / "xr.tif") as r:
        np.testing.assert_array_equal(r.read(), ref)
        assert r.scales == pytest.approx(scales) and r.offsets == pytest.approx(offsets)
        assert r.nodata == 0


def test_a_gcp_raster_keeps_its_gcps_scaled_and_gets_no_transform(tmp_path):
    gcps = [
        GroundControlPoint(row=r, col=c, x=10 + c / 96, y=50 - r / 96, id=str(i))
        for i, (r, c) in enumerate([(0, 0), (0, W), (H, 0), (H, W)])
    ]
    src = _write(tmp_path / "gcp.tif", _bands(1))
    with rasterio.open(src, "r+") as ds:
        ds.gcps = (gcps, CRS.from_epsg(4326))
    upscale_geotiff(src, tmp_path / "ref.tif", scale=2, model="sr-lite-gray-x2", device="cpu")
    out = upscale(_open(src), 2, model="sr-lite-gray-x2", device="cpu")
    out.rio.to_raster(tmp_path / "xr.tif")
    with rasterio.open(tmp_path / "xr.tif") as r, rasterio.open(tmp_path / "ref.tif") as ref:
        assert r.transform.is_identity and ref.transform.is_identity
        got, want = r.gcps, ref.gcps
        assert got[1] == want[1] == CRS.from_epsg(4326)
        key = [(g.row, g.col, g.x, g.y) for g in got[0]]
        assert key == [(g.row, g.col, g.x, g.y) for g in want[0]]
        assert key == [(g.row * 2, g.col * 2, g.x, g.y) for g in gcps]
        np.testing.assert_array_equal(r.read(), ref.read())


@pytest.mark.parametrize("chunks", [None, {"x": 20, "y": 20}], ids=["numpy", "dask"])
def test_a_noisy_input_gets_the_noise_gate_of_upscale_geotiff(tmp_path, chunks):
    geo = dict(crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10))
    src = _write(tmp_path / "noisy.tif", _bands(1, noise=800.0, h=72, w=80), **geo)  # (>= 64 px)
    upscale_geotiff(src, tmp_path / "ref.tif", scale=2, device="cpu")
    with rasterio.open(tmp_path / "ref.tif") as r:
        assert "robust" in r.tags()["SR_DOMAINS_MODEL"]  # the gate did blend on this input
        ref = r.read()
    out = upscale(_open(src, chunks=chunks), 2, device="cpu")
    np.testing.assert_array_equal(out.values, ref)


def test_a_float_raster_decoded_with_mask_and_scale_writes_back_its_nodata(tmp_path):
    """rioxarray's mask_and_scale=True turns a float file's nodata (-10000) into NaN and keeps
    the value in the encoding; the result was written with NaN as its nodata, unlike
    upscale_geotiff and unlike rioxarray's own round trip."""
    src = tmp_path / "f.tif"
    data = _bands(1).astype("float32")
    data[0, :6, :6] = -10000
    _write(src, data, dtype="float32", nodata=-10000, crs="EPSG:32633")
    upscale_geotiff(src, tmp_path / "ref.tif", scale=2, model="sr-lite-gray-x2", device="cpu")
    for chunks in (None, 16):
        out = upscale(_open(src, mask_and_scale=True, chunks=chunks), 2, device="cpu")
        assert np.isnan(out.values[0, :12, :12]).all()  # NaN in memory, as rioxarray gives it
        out.rio.to_raster(tmp_path / "xr.tif")
        with rasterio.open(tmp_path / "xr.tif") as r, rasterio.open(tmp_path / "ref.tif") as ref:
            assert r.nodata == ref.nodata == -10000 and r.dtypes == ref.dtypes
            got, want = r.read(), ref.read()
            np.testing.assert_array_equal(got == -10000, want == -10000)
            assert not np.isnan(got).any()
