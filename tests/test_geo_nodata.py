"""Nodata, NaN, internal masks, alpha bands, fill values and intensity profiles."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")

from rasterio.enums import ColorInterp, MaskFlags  # noqa: E402

from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.geo import reader, upscale_geotiff  # noqa: E402
from sr_domains.models.base import BaseSRConfig, SRModel  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402


class ConstModel(SRModel):
    """Outputs a constant (normalized units) everywhere."""

    arch = "const"

    def __init__(self, value: float, channels: int = 1, scale: int = 2) -> None:
        super().__init__(BaseSRConfig(in_channels=channels, scale=scale))
        self.value = value

    def body(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return torch.full((n, c, h * self.scale, w * self.scale), self.value, dtype=x.dtype)

    def receptive_radius(self) -> int:
        return 0


def _read(path, masked=False):
    with rasterio.open(path) as d:
        return d.read(masked=masked)


def test_internal_mask_is_written_back(tmp_path):
    src = make_geotiff(tmp_path / "m.tif", width=40, height=30, dtype="uint16", mask="internal")
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    check_upscaled(src, dst, 2)
    with rasterio.open(src) as a, rasterio.open(dst) as d:
        assert d.nodata is None
        assert d.mask_flag_enums[0] == [MaskFlags.per_dataset]
        np.testing.assert_array_equal(d.dataset_mask(), a.dataset_mask().repeat(2, 0).repeat(2, 1))


def test_alpha_band_is_carried(tmp_path):
    src = make_geotiff(
        tmp_path / "a.tif",
        width=40,
        height=30,
        count=3,
        dtype="uint8",
        mask="alpha",
        colorinterp=["red", "green", "blue"],
    )
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(3, 2))
    check_upscaled(src, dst, 2)
    with rasterio.open(src) as a, rasterio.open(dst) as d:
        assert d.count == 4
        assert d.colorinterp[3] == ColorInterp.alpha
        np.testing.assert_array_equal(d.read(4), a.read(4).repeat(2, 0).repeat(2, 1))


def test_selecting_the_alpha_band_is_refused(tmp_path):
    src = make_geotiff(tmp_path / "a.tif", count=3, mask="alpha")
    with pytest.raises(ConfigError, match="alpha band"):
        upscale_geotiff(src, tmp_path / "o.tif", bands=[1, 4], model=tiny_model(1, 2))


def test_nan_without_nodata_stays_nan(tmp_path):
    src = make_geotiff(tmp_path / "n.tif", width=40, height=30, dtype="float32", nan_fraction=0.1)
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    check_upscaled(src, dst, 2)
    a, d = _read(src), _read(dst)
    np.testing.assert_array_equal(np.isnan(d), np.isnan(a).repeat(2, 1).repeat(2, 2))
    with rasterio.open(dst) as ds:
        assert ds.nodata is None


def test_nodata_override(tmp_path):
    src = make_geotiff(tmp_path / "c.tif", width=40, height=30, dtype="uint8", mask="internal")
    # no nodata in the file; the collar holds real values hidden by the mask. --nodata 10
    # declares the darkest valid value as nodata on top of the mask.
    dst = upscale_geotiff(src, tmp_path / "o.tif", nodata=10, model=tiny_model(1, 2))
    check_upscaled(src, dst, 2, nodata=10)
    with rasterio.open(dst) as d:
        assert d.nodata == 10


def test_nodata_override_out_of_range(tmp_path):
    src = make_geotiff(tmp_path / "c.tif", dtype="uint8")
    with pytest.raises(ConfigError, match="not a uint8 value"):
        upscale_geotiff(src, tmp_path / "o.tif", nodata=-1, model=tiny_model(1, 2))


@pytest.mark.parametrize(
    ("dtype", "nodata", "value", "expect"),
    [
        ("uint8", 0, 0.0, 1),  # dark valid pixel rounded to the nodata 0 -> 1
        ("uint8", 255, 2.0, 254),  # clipped to 255 == nodata (the maximum) -> 254
        ("int16", -9999, 0.0, -9998),  # with profile range:-9999,-9998, 0 -> -9999
        ("float32", 0.0, 0.0, np.nextafter(np.float32(0), np.float32(1))),
    ],
)
def test_valid_pixels_never_equal_nodata(tmp_path, dtype, nodata, value, expect):
    src = make_geotiff(tmp_path / "z.tif", width=20, height=20, dtype=dtype, nodata=nodata)
    profile = {"float32": "range:0,1", "int16": "range:-9999,-9998"}.get(dtype)
    raw = ValueOptions(clamp=False)  # the constant must reach the writer unclamped
    dst = upscale_geotiff(
        src, tmp_path / "o.tif", model=ConstModel(value), profile=profile, device="cpu", values=raw
    )
    a, d = _read(src), _read(dst)
    valid = (a != np.array(nodata).astype(dtype)).repeat(2, 1).repeat(2, 2)
    assert (d[valid] == np.array(expect).astype(dtype)).all()
    assert (d[~valid] == np.array(nodata).astype(dtype)).all()


def test_masked_values_cannot_spread(tmp_path):
    """Pixels under the mask are filled before the network: whatever they hold, the valid
    output is the same."""
    a = make_geotiff(tmp_path / "a.tif", width=48, height=40, dtype="uint16", mask="internal")
    b = tmp_path / "b.tif"
    with rasterio.open(a) as ds:
        profile, data, mask = ds.profile, ds.read(), ds.dataset_mask()
    noisy = data.copy()
    rng = np.random.default_rng(1)
    noisy[:, mask == 0] = rng.integers(0, 65535, size=int((mask == 0).sum()), dtype=np.uint16)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(b, "w", **profile) as ds:
        ds.write(noisy)
        ds.write_mask(mask)
    model = tiny_model(1, 2)
    oa = _read(upscale_geotiff(a, tmp_path / "oa.tif", model=model, tile=16), masked=True)
    ob = _read(upscale_geotiff(b, tmp_path / "ob.tif", model=model, tile=16), masked=True)
    np.testing.assert_array_equal(oa.mask, ob.mask)
    np.testing.assert_array_equal(oa.filled(0), ob.filled(0))


def test_percentile_profile_fitted_once_per_file(tmp_path):
    src = make_geotiff(tmp_path / "p.tif", width=64, height=48, count=2, dtype="uint16", nodata=0)
    dst = upscale_geotiff(
        src, tmp_path / "o.tif", model=tiny_model(1, 2), profile="percentile:2,98", tile=16
    )
    with rasterio.open(dst) as d:
        prof = json.loads(d.tags()["SR_DOMAINS_PROFILE"])
    a = _read(src)
    for b in range(2):
        vals = a[b][a[b] != 0].astype(np.float64)
        lo, hi = np.percentile(vals, [2, 98])
        assert prof["scale"][b] == pytest.approx(1 / (hi - lo))
        assert prof["offset"][b] == pytest.approx(-lo / (hi - lo))


def test_percentile_sample_is_decimated_not_a_tile(tmp_path):
    src = make_geotiff(tmp_path / "p.tif", width=300, height=200, dtype="uint16", nodata=0)
    with reader.RasterSource(src) as rs:
        values, valid = rs.sample(5000)  # every 4th pixel of every 4th row of the whole file
    assert values.shape[1:] == (50, 75)
    full = _read(src)[0]
    lo_full, hi_full = np.percentile(full[full != 0], [2, 98])
    lo, hi = np.percentile(values[valid], [2, 98])
    assert lo == pytest.approx(lo_full, rel=0.05)
    assert hi == pytest.approx(hi_full, rel=0.05)


def test_identity_profile_on_large_float_values_warns(tmp_path, caplog):
    src = make_geotiff(tmp_path / "dem.tif", width=20, height=20, dtype="float64")
    with rasterio.open(src, "r+") as ds:
        ds.write(ds.read() * 1000.0 + 500.0)  # elevations, metres
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    assert "identity" in caplog.text
    assert "--profile" in caplog.text


def test_sample_holds_one_strip_at_a_time(tmp_path):
    """The whole-file subsample must not keep every strip it read alive (views would)."""
    import tracemalloc

    src = make_geotiff(tmp_path / "big.tif", width=1024, height=1024, dtype="uint16", block=128)
    with reader.RasterSource(src) as rs:
        tracemalloc.start()
        values, _ = rs.sample(10_000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    full = 1024 * 1024 * (2 + 1)  # values + validity of the whole raster
    assert values.shape == (1, 94, 94)  # every 11th pixel
    assert peak < full / 3


def test_sample_uses_overviews(tmp_path):
    src = make_geotiff(tmp_path / "ovr.tif", width=512, height=512, dtype="uint16", nodata=0)
    with rasterio.open(src, "r+") as ds:
        ds.build_overviews([2, 4, 16], rasterio.enums.Resampling.nearest)
    with reader.RasterSource(src) as rs:
        values, valid = rs.sample(512 * 512 // 64)  # factor 8: x4 overview, every 2nd pixel
    with rasterio.open(src, overview_level=1) as ov:  # the x4 overview
        expect = ov.read()[:, ::2, ::2]
    np.testing.assert_array_equal(values, expect)
    np.testing.assert_array_equal(valid, expect != 0)


@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"]
)
def test_cast_matches_cast_to_dtype_at_the_limits(dtype):
    from sr_domains.geo.writer import cast_inplace
    from sr_domains.intensity import cast_to_dtype

    dt = np.dtype(dtype)
    lim = np.iinfo(dt) if dt.kind in "ui" else np.finfo(dt)
    vals = np.array([[[-np.inf, lim.min, lim.min - 1e3, -0.5, 0.5, 1.5, lim.max, lim.max + 1e3]]])
    data = vals.astype(np.float32)
    np.testing.assert_array_equal(cast_inplace(data.copy(), dt), cast_to_dtype(data, dt))
