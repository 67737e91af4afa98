"""Acceptance matrix on generated rasters: geometry, dtype, nodata, tags after upscaling."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402

UTM, WGS84 = "EPSG:32633", "EPSG:4326"
TAGS = {"SENSOR": "synthetic", "ACQUISITION_DATE": "2024-06-01"}

# (crs, rotated, bands, dtype, nodata, nan_fraction, scale, tile): every value of every axis
# appears, each dtype at least once with nodata, and NaN for both float types.
CASES = [
    (UTM, False, 1, "uint8", 0, 0.0, 2, None),
    (WGS84, False, 4, "uint16", 0, 0.0, 2, 16),
    (UTM, True, 13, "int16", -9999, 0.0, 2, None),
    (WGS84, True, 1, "float32", -3.4e38, 0.05, 3, 16),
    (UTM, False, 4, "float64", None, 0.05, 4, None),
    (WGS84, False, 13, "uint8", None, 0.0, 2, None),
    (UTM, True, 4, "float32", float("nan"), 0.05, 2, 24),
    (WGS84, True, 4, "int16", None, 0.0, 4, None),
    (UTM, False, 1, "float64", -1.0, 0.0, 2, None),
    (UTM, True, 1, "uint16", 65535, 0.0, 3, None),
]


def _id(case: tuple) -> str:
    crs, rot, n, dt, nd, nan, s, tile = case
    return f"{crs[5:]}-{'rot' if rot else 'north'}-{n}b-{dt}-nd{nd}-nan{nan}-x{s}-t{tile}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_generated_matrix(tmp_path, case):
    crs, rotated, count, dtype, nodata, nan_fraction, scale, tile = case
    src = make_geotiff(
        tmp_path / "in.tif",
        width=37,
        height=29,
        count=count,
        dtype=dtype,
        crs=crs,
        rotated=rotated,
        nodata=nodata,
        nan_fraction=nan_fraction,
        tags=TAGS,
        band_tags=[{"WAVELENGTH": str(400 + 10 * b)} for b in range(count)],
        descriptions=[f"B{b + 1}" for b in range(count)],
        units=["reflectance"] * count,
    )
    dst = upscale_geotiff(
        src, tmp_path / "out.tif", scale=scale, model=tiny_model(1, scale), tile=tile, device="cpu"
    )
    check_upscaled(src, dst, scale)
    with rasterio.open(dst) as d:
        assert d.tags()["SENSOR"] == "synthetic"
        prof = json.loads(d.tags()["SR_DOMAINS_PROFILE"])
        assert prof["recipe"] == ("dtype" if np.dtype(dtype).kind in "ui" else "identity")
        assert d.profile["tiled"]
        assert d.compression is not None


def test_joint_multiband_model_and_band_subset(tmp_path):
    src = make_geotiff(
        tmp_path / "s2.tif",
        width=40,
        height=32,
        count=13,
        dtype="uint16",
        nodata=0,
        descriptions=[f"B{b + 1}" for b in range(13)],
    )
    dst = upscale_geotiff(
        src, tmp_path / "rgb.tif", bands=[4, 3, 2], model=tiny_model(3, 2), device="cpu"
    )
    check_upscaled(src, dst, 2, bands=[4, 3, 2])
    with rasterio.open(dst) as d:
        assert d.count == 3
        assert d.descriptions == ("B4", "B3", "B2")
        assert d.tags()["SR_DOMAINS_SOURCE_BANDS"] == "4,3,2"


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    width=st.integers(3, 40),
    height=st.integers(3, 40),
    scale=st.sampled_from([2, 3, 4]),
    angle=st.floats(-180, 180),
    res=st.floats(1e-5, 1e3),
    x0=st.floats(-1e6, 1e6),
    y0=st.floats(-1e6, 1e7),
)
def test_bounds_property(tmp_path, width, height, scale, angle, res, x0, y0):
    """Any size, rotation, resolution and origin: the corners stay put to 1e-9 pixel."""
    from affine import Affine

    c, s_ = np.cos(np.radians(angle)) * res, np.sin(np.radians(angle)) * res
    transform = Affine(c, s_, x0, s_, -c, y0)  # rotated, y flipped
    src = make_geotiff(
        tmp_path / "p.tif", width=width, height=height, dtype="uint8", transform=transform
    )
    dst = upscale_geotiff(
        src, tmp_path / "p2.tif", scale=scale, model=tiny_model(1, scale), overwrite=True
    )
    check_upscaled(src, dst, scale)


@pytest.mark.parametrize("ignore", [False, True])
def test_pixel_is_point_output_centres_sit_a_quarter_pixel_in(tmp_path, ignore):
    """A PixelIsPoint file upscaled where the user set ``GTIFF_POINT_GEO_IGNORE=TRUE`` (an
    environment variable or their own ``rasterio.Env``) put the output's first pixel centre
    on the input's (a quarter input pixel off at x2)."""
    src = make_geotiff(tmp_path / "point.tif", width=24, height=20)
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(AREA_OR_POINT="Point")
    dst = tmp_path / "x2.tif"
    with rasterio.Env(GTIFF_POINT_GEO_IGNORE=ignore):
        upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    with rasterio.open(src) as a, rasterio.open(dst) as b:  # (read as GDAL reads by default)
        assert b.tags()["AREA_OR_POINT"] == "Point"
        (x0, y0), res = a.transform * (0.5, 0.5), a.res[0]
        np.testing.assert_allclose(b.transform * (0.5, 0.5), (x0 - res / 4, y0 + res / 4))
        np.testing.assert_allclose(b.transform * (1.5, 1.5), (x0 + res / 4, y0 - res / 4))
