"""The streaming writer is the in-memory algorithm, window by window and panel by panel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains import panels as stream  # noqa: E402
from sr_domains.array_api import upscale_array  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.nodata_fill import MARGIN as FILL_MARGIN  # noqa: E402
from sr_domains.panels import plan_panels  # noqa: E402
from sr_domains.testing import ToySR, tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


class GlobalToy(ToySR):
    """ToySR that claims a global receptive field: tiles and panels must blend."""

    def receptive_radius(self) -> None:
        return None


class CountingToy(ToySR):
    calls = 0

    def forward(self, x):
        CountingToy.calls += x.shape[0]
        return super().forward(x)


def _read(path):
    with rasterio.open(path) as d:
        return d.read()


def test_stream_equals_upscale_array_float(tmp_path):
    src = make_geotiff(
        tmp_path / "f.tif", width=45, height=38, count=2, dtype="float32", nan_fraction=0.1
    )
    model = tiny_model(1, 2)
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=model, tile=16)
    arr = _read(src)
    ref = upscale_array(arr, model, tile=16, device="cpu")  # same value rules as the file path
    out = _read(dst)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6, equal_nan=True)


def test_stream_equals_upscale_array_uint8_with_nodata(tmp_path):
    src = make_geotiff(tmp_path / "u.tif", width=50, height=33, count=3, dtype="uint8", nodata=0)
    model = tiny_model(3, 2)
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=model, tile=20)
    arr = _read(src)
    ref = upscale_array(arr, model, valid_mask=arr != 0, nodata=0, tile=20, device="cpu")
    out = _read(dst)
    valid = (arr != 0).repeat(2, 1).repeat(2, 2)
    nudged = valid & (ref == 0)  # documented: a valid pixel never comes out as nodata
    assert (out[nudged] == 1).all()
    np.testing.assert_array_equal(out[~nudged], ref[~nudged])


@pytest.mark.parametrize("model_cls", [ToySR, GlobalToy])
def test_panels_equal_single_pass(tmp_path, monkeypatch, model_cls):
    """Cutting a wide raster into panels (hard cuts for exact models, blended seams for models
    with a global receptive field) gives the single-pass result."""
    src = make_geotiff(
        tmp_path / "w.tif", width=700, height=40, count=2, dtype="float32", nan_fraction=0.02
    )
    model = model_cls(BaseSRConfig(in_channels=2, scale=2), seed=3).eval()
    one = _read(upscale_geotiff(src, tmp_path / "one.tif", model=model, tile=64))
    monkeypatch.setattr(stream, "PANEL_BUDGET_BYTES", 1)  # -> one tile-wide panel each
    seen = []
    real_plan = stream.plan_panels

    def spy(*args, **kwargs):
        panels = real_plan(*args, **kwargs)
        seen.append(panels)
        return panels

    monkeypatch.setattr(stream, "plan_panels", spy)
    many = _read(upscale_geotiff(src, tmp_path / "many.tif", model=model, tile=64))
    panels = seen[0]
    assert len(panels) >= 4
    assert all(p.seam == (16 if model_cls is GlobalToy else 0) for p in panels[:-1])
    np.testing.assert_allclose(many, one, rtol=0, atol=2e-6, equal_nan=True)


@pytest.mark.parametrize("model_cls", [ToySR, GlobalToy])
def test_row_bands_equal_the_rows_of_a_whole_run(tmp_path, monkeypatch, model_cls):
    """The distributed split computes only the windows reaching a band of output rows: the
    band must equal those rows of a whole run bit for bit, across panel seams too."""
    from sr_domains.geo import job as geo_job
    from sr_domains.geo.reader import RasterSource
    from sr_domains.options import UpscaleOptions

    src = make_geotiff(tmp_path / "w.tif", width=300, height=90, count=2, dtype="float32")
    model = model_cls(BaseSRConfig(in_channels=2, scale=2), seed=3).eval()
    monkeypatch.setattr(stream, "PANEL_BUDGET_BYTES", 1)  # several panels with seams
    with RasterSource(src) as rs:
        job = geo_job.prepare_job(rs, UpscaleOptions(scale=2, tile=32), model=model)
        whole = {}
        for r0, c0, block in stream.iter_hr_blocks(
            job.up,
            rs.read_window,
            rs.shape,
            2,
            profile=job.fitted,
            fill=job.fill,
            flush_rows=8,
            align=8,
            rules=job.rules,
        ):
            whole[(r0, c0)] = block.copy()
        for band in [(0, 64), (64, 120), (120, 180)]:
            got = list(
                stream.iter_hr_blocks(
                    job.up,
                    rs.read_window,
                    rs.shape,
                    2,
                    profile=job.fitted,
                    fill=job.fill,
                    flush_rows=8,
                    align=8,
                    rules=job.rules,
                    rows=band,
                )
            )
            assert got and all(band[0] <= r0 and r0 + b.shape[1] <= band[1] for r0, _, b in got)
            for r0, c0, block in got:
                ref = next(v for (a, c), v in whole.items() if c == c0 and a <= r0 < a + v.shape[1])
                a = next(a for (a, c) in whole if c == c0 and a <= r0 < a + whole[(a, c)].shape[1])
                np.testing.assert_array_equal(block, ref[:, r0 - a : r0 - a + block.shape[1]])


def test_plan_panels_cover_and_align():
    panels = plan_panels(1000, 256, 128, context=7, ramp=16)
    assert [(p.x0, p.x1) for p in panels] == [(0, 256), (256, 512), (512, 768), (768, 1000)]
    for a, b in itertools.pairwise(panels):
        assert a.seam == 16
        assert a.r1 == a.x1 + 16 + 7
        assert b.r0 == b.x0 - 7
    assert panels[0].r0 == 0
    assert panels[-1].r1 == 1000
    assert panels[-1].seam == 0
    short_last = plan_panels(520, 256, 128, context=7, ramp=16)
    assert short_last[-2].seam == 8  # the seam never reaches past the next panel
    assert plan_panels(200, 256, 128, 7, 16) == [stream.Panel(0, 200, 0, 200, 0)]


@pytest.mark.parametrize(("bands", "channels", "scale"), [(4, 4, 2), (13, 1, 2), (3, 3, 4)])
def test_panel_width_fits_budget_and_tiles(bands, channels, scale):
    from sr_domains.inference import Upscaler

    up = Upscaler(tiny_model(channels, scale), device="cpu")
    align = 512 // np.gcd(512, scale)
    w = stream.panel_width(up, stream.StripSpec(bands, 512, up.tiling.margin), align)
    assert w % align == 0
    # the HR strip (accumulator + one flushed block) of one panel stays within the budget
    tile = up.tiling.tile
    assert 4 * scale * bands * (tile * scale + 512) * w <= stream.panel_budget(up)
    assert stream.panel_budget(up) >= stream.PANEL_BUDGET_BYTES
    # and a panel never needs a window that is mostly padding/overlap
    plan = up.plan((512, w + 2 * up.tiling.margin))
    assert len(plan.xs) * plan.tile[1] / w < 1.2


def test_all_nodata_windows_are_skipped(tmp_path):
    path = tmp_path / "half.tif"
    arr = np.full((1, 64, 64), 100, np.uint8)
    arr[:, :, :32] = 0
    from affine import Affine

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=1,
        dtype="uint8",
        nodata=0,
        crs="EPSG:32633",
        transform=Affine(10, 0, 5e5, 0, -10, 5e6),
    ) as d:
        d.write(arr)
    model = CountingToy(BaseSRConfig(in_channels=1, scale=2)).eval()
    CountingToy.calls = 0
    dst = upscale_geotiff(path, tmp_path / "o.tif", model=model, tile=16)
    from sr_domains.tiling import plan_axis

    xs = plan_axis(64, 16, 4)  # ToySR: radius 2 -> overlap 4
    with_valid = [x for x in xs if x + 16 > 32]
    assert CountingToy.calls == len(xs) * len(with_valid) < len(xs) ** 2
    out = _read(dst)
    assert (out[:, :, :64] == 0).all()
    assert (out[:, :, 64:] != 0).all()


def test_seam_blend_weights(monkeypatch):
    """Across a seam the left panel's weight falls linearly from 1 to 0 over ``ramp`` columns;
    every output pixel is written exactly once."""
    from sr_domains.inference import Tiling

    monkeypatch.setattr(stream, "PANEL_BUDGET_BYTES", 1)

    class FakeUpscaler:
        scale = 2
        tiling = Tiling(tile=64, overlap=40, margin=12, exact=False)

        def out_channels(self, n):
            return n

        def plan(self, shape):
            from sr_domains.tiling import make_plan

            return make_plan(shape, scale=2, tile=64, overlap=40, margin=12)

        def stream(self, read, shape, n_bands, *, profile, fill, flush_rows, **rules):
            r0 = read(0, 0, 1, 1)
            h, w = shape
            for row0 in range(0, h * 2, flush_rows):
                rows = min(flush_rows, h * 2 - row0)
                yield row0, np.full((n_bands, rows, w * 2), float(r0), np.float32)

    out = np.full((1, 20, 600), np.nan, np.float32)
    for row0, col0, block in stream.iter_hr_blocks(
        FakeUpscaler(),
        lambda y, x, h, w: x,
        (10, 300),
        1,
        profile=None,
        fill=0,
        flush_rows=8,
        align=64,
        dtype=np.float32,  # (the fake reader returns column numbers, not pixels)
    ):
        target = out[:, row0 : row0 + block.shape[1], col0 : col0 + block.shape[2]]
        assert np.isnan(target).all()
        target[...] = block
    assert not np.isnan(out).any()
    panels = stream.plan_panels(300, 64, 64, 12 + FILL_MARGIN, 16)  # context: + the fill's
    assert len(panels) > 2
    for a, b in itertools.pairwise(panels):
        k = a.seam * 2
        wl = 1.0 - (np.arange(k) + 0.5) / k
        expect = wl * a.r0 + (1 - wl) * b.r0
        np.testing.assert_allclose(out[0, 5, b.x0 * 2 : b.x0 * 2 + k], expect, rtol=1e-6)
        assert (out[0, :, b.x0 * 2 + k : b.x1 * 2] == b.r0).all()
