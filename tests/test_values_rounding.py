"""Value rules measured in what is written (docs/value_fidelity.md): outside the saturated
footprint no pixel equals the saturation *in the output's type* (float64 data written as
float32, float16 arrays), and the clamp counts of ``SR_DOMAINS_VALUES`` are those of the
pixels written, whatever the panel split. Real GeoTIFFs (rasterio) written here; a
sharpening model (it overshoots at an edge) stands in for the network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from _sharpen import Sharpen  # noqa: E402

from sr_domains import panels  # noqa: E402
from sr_domains.array_api import upscale_array  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.value_domain import ValueOptions, build_rules  # noqa: E402
from sr_domains.value_rules import ClampStats, array_reader  # noqa: E402


def _footprint(mask: np.ndarray, s: int = 2) -> np.ndarray:
    return mask.repeat(s, axis=-2).repeat(s, axis=-1)


def _geotiff(path: Path, a: np.ndarray, nodata: float | None = None) -> Path:
    prof = {
        "driver": "GTiff", "width": a.shape[-1], "height": a.shape[-2], "count": a.shape[0],
        "dtype": a.dtype.name, "crs": "EPSG:32633", "nodata": nodata,
        "transform": rasterio.transform.from_origin(0, 400, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(a)
    return path


def _read(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    with rasterio.open(path) as ds:
        return ds.read(), json.loads(ds.tags()["SR_DOMAINS_VALUES"])


@pytest.mark.parametrize("sat", [1.0, 0.3])
def test_float64_written_as_float32_keeps_saturation_in_its_footprint(tmp_path, sat):
    """``--dtype float32`` of float64 data with ``--saturation S``: the pixels moved off S in
    float64 (to the next float64 below) and those within float32 rounding of it (an input
    pixel at S - 1e-9) came back as float32(S) outside the footprint (84 for S = 1, 57 for
    S = 0.3); now they are the next float32 below S."""
    a = np.random.default_rng(0).uniform(0.05, sat, (1, 40, 40))
    a[0, 15:25, 15:25] = sat
    a[0, 5, 5] = sat - 1e-9  # no saturation in float64; float32(S) once written
    src = _geotiff(tmp_path / "in.tif", a)
    dst = upscale_geotiff(
        src, tmp_path / "o.tif", model=Sharpen(), dtype="float32",
        values=ValueOptions(saturation=sat),
    )  # fmt: skip
    out, tag = _read(dst)
    s32 = np.float32(sat)
    fp = _footprint(a == sat)
    assert out.dtype == np.float32
    assert (out[fp] == s32).all()
    assert not (out[~fp] == s32).any()
    below = np.nextafter(s32, np.float32(0))
    assert (out[0, 10:12, 10:12] == below).any()  # the S - 1e-9 pixel's footprint
    assert tag["clamped"]["unsaturated"] >= int((out[~fp] == below).sum())


def test_uint32_written_as_float32_keeps_saturation_in_its_footprint(tmp_path):
    """uint32 (computed in float64) written as float32: 4294967295 is 2**32 in float32, and
    so is every value within 128 of it; those outside the footprint move below it."""
    a = np.random.default_rng(1).integers(4294967000, 4294967295, (1, 32, 32), np.uint32)
    a[0, 10:20, 10:20] = 4294967295
    src = _geotiff(tmp_path / "in.tif", a)
    out, _ = _read(upscale_geotiff(src, tmp_path / "o.tif", model=Sharpen(), dtype="float32"))
    s32 = np.float32(4294967295)
    fp = _footprint(a == 4294967295)
    assert (out[fp] == s32).all() and not (out[~fp] == s32).any()


@pytest.mark.parametrize("in_dtype", ["float16", "float64"])
def test_upscale_array_float16_output_keeps_saturation_in_its_footprint(in_dtype):
    """float16 output (a float16 array, computed in float32; or float64 data asked for as
    float16): 1 - 2**-12 and anything closer is 1.0 in float16."""
    a = np.random.default_rng(2).uniform(0.9, 1.0, (1, 24, 24)).astype(in_dtype)
    a[0, 8:16, 8:16] = 1.0
    a[0, 2, 2] = 0.9995  # the float16 below 1, or a float64 just below it: no saturation
    out = upscale_array(
        a, model=Sharpen(), values=ValueOptions(saturation=1.0), out_dtype="float16"
    )
    fp = _footprint(a == 1.0)
    assert out.dtype == np.float16
    assert (out[fp] == 1.0).all() and not (out[~fp] == 1.0).any()
    assert (out[0, 4:6, 4:6] == np.nextafter(np.float16(1), np.float16(0))).any()


def _wide_uint16(path: Path) -> Path:
    """Two bands, nodata 0 (a collar), a saturated block at 65535 and a zero block: every
    rule has pixels to count across the panel cuts."""
    rng = np.random.default_rng(3)
    a = rng.integers(1000, 60000, (2, 40, 700)).astype(np.uint16)
    a[:, :6, :30] = 0  # nodata
    a[:, 10:30, 90:420] = 65535  # saturation, across several panels
    a[0, 5:35, 300:330] = 70  # a dark band 0: band ratios and envelopes at work
    return _geotiff(path, a, nodata=0)


def test_clamp_counts_do_not_depend_on_the_panel_split(tmp_path, monkeypatch):
    """Each panel is run with context columns on each side; the counts took those too, so
    the tag of a file cut into panels said 232184 pixels (one pass: 194560). Now only the
    columns a panel writes count: the tag is the single pass's, byte for byte."""
    src = _wide_uint16(tmp_path / "w.tif")
    model = Sharpen()  # single-band: run band by band, band ratios on (spectral counts)
    one, tag_one = _read(upscale_geotiff(src, tmp_path / "one.tif", model=model, tile=64))
    seen: list[list[panels.Panel]] = []
    real = panels.plan_panels

    def spy(*args: Any, **kwargs: Any) -> list[panels.Panel]:
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(panels, "PANEL_BUDGET_BYTES", 1)  # -> one tile-wide panel each
    monkeypatch.setattr(panels, "plan_panels", spy)
    many, tag_many = _read(upscale_geotiff(src, tmp_path / "many.tif", model=model, tile=64))
    assert len(seen[0]) >= 4
    np.testing.assert_array_equal(many, one)
    c = tag_one["clamped"]
    assert c["envelope"] and c["spectral"] and c["unsaturated"]  # the counts compared
    with rasterio.open(src) as ds:
        assert c["pixels"] == int(_footprint(ds.read() != 0).sum())  # written and valid
    assert tag_many == tag_one


@pytest.mark.parametrize("row0", [0, 3], ids=["blocks", "gather"])
def test_counts_of_column_parts_add_up(row0):
    """``ValueRules.counted`` (a panel's own columns): the counts of two column parts of one
    block add up to the counts of the whole block, and the values are the same, on the
    whole-input-pixel path and on the gather path (rows off the pixel grid)."""
    rng = np.random.default_rng(4)
    values = rng.integers(100, 4000, (2, 12, 20)).astype(np.float32)
    values[:, 3:8, 4:15] = 4095
    valid = np.ones(values.shape, bool)
    valid[:, 0, :3] = False
    up = np.repeat(np.repeat(values, 2, 1), 2, 2)
    out0 = (up + rng.normal(0, 300, up.shape)).astype(np.float32)[:, row0 : row0 + 16]

    def run(counted: tuple[int, int] | None) -> tuple[np.ndarray, ClampStats]:
        rules = build_rules(ValueOptions(saturation=4095), [100.0, 100.0], dtype=np.uint16)
        assert rules is not None
        rules.spectral, rules.counted = True, counted
        out = out0.copy()
        rules.apply(out, array_reader(values, valid), values.shape[1:], row0, 2)
        return out, rules.stats

    whole, stats = run(None)
    left, a = run((0, 14))
    right, b = run((14, 40))
    assert stats.envelope and stats.unsaturated and stats.spectral and stats.pinned
    np.testing.assert_array_equal(left, whole)
    np.testing.assert_array_equal(right, whole)
    a.add(b)
    assert a == stats
