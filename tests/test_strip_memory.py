"""The GeoTIFF strip keeps to its share of the memory budget: every array the panel engine holds
at once (accumulator, flushed block, value rules and seam blend temporaries) is counted."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains import panels, value_ops  # noqa: E402
from sr_domains.geo import job, upscale_geotiff  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.nodata_fill import MARGIN as FILL_MARGIN  # noqa: E402
from sr_domains.panels import StripSpec  # noqa: E402
from sr_domains.testing import ToySR, tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.tiling import make_plan, strip_rows  # noqa: E402

MiB = 2**20


class GlobalToy(ToySR):
    """ToySR that claims a global receptive field: panels overlap and blend their seams."""

    def receptive_radius(self) -> None:
        return None


def _measure(monkeypatch, src, warm_up, dst, model, scale, budget, block=64):
    """Run a real GeoTIFF upscale with a panel budget of ``budget`` bytes; return the engine
    (``up``), the number of panels and the traced peak (``peak``, bytes of every Python and
    numpy allocation alive at once while the panels stream, the writer included)."""
    seen: dict = {}
    real = job.iter_hr_blocks

    def traced(up, read, shape, n_bands, **kw):
        seen["up"] = up
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            cols = set()
            for row0, col0, block in real(up, read, shape, n_bands, **kw):
                cols.add(col0)
                yield row0, col0, block  # the consumer (the writer) runs here, traced too
                del block  # (holding it would count the last block twice)
            seen["panels"] = len(cols)
            seen["peak"] = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()

    def run(path):
        upscale_geotiff(
            path, dst, model=model, scale=scale, tile=32, device="cpu", overwrite=True,
            creation_options={"BLOCKXSIZE": str(block), "BLOCKYSIZE": str(block)},
        )  # fmt: skip

    monkeypatch.setattr(panels, "PANEL_BUDGET_BYTES", budget)
    run(warm_up)  # the modules the path imports on first use are not the strip's memory
    monkeypatch.setattr(job, "iter_hr_blocks", traced)
    run(src)
    return seen


def _rasters(tmp_path, bands, dtype):
    """The measured raster (400 x 100) and a small one that warms the code paths up."""
    nodata = 0 if dtype[0] in "ui" else None
    return (
        make_geotiff(
            tmp_path / name,
            width=width,
            height=100,
            count=bands,
            dtype=dtype,
            nodata=nodata,
            nan_fraction=0.05 if dtype[0] == "f" else 0.0,
        )
        for name, width in (("in.tif", 400), ("warm.tif", 100))
    )


@pytest.mark.parametrize(
    ("bands", "dtype", "scale", "budget", "global_rf"),
    [
        (4, "uint16", 2, 2 * MiB, False),
        (3, "float64", 2, 3 * MiB, False),  # float64 blocks
        (1, "uint8", 3, 1 * MiB, False),  # block rows that do not fall on input pixels
        (2, "float32", 4, 2 * MiB, False),
        (2, "int16", 2, 1 * MiB, True),  # panels blend their seams
    ],
)
def test_strip_peak_within_its_share(tmp_path, monkeypatch, bands, dtype, scale, budget, global_rf):
    src, warm_up = _rasters(tmp_path, bands, dtype)
    model = (GlobalToy if global_rf else ToySR)(BaseSRConfig(in_channels=bands, scale=scale))
    seen = _measure(monkeypatch, src, warm_up, tmp_path / "out.tif", model, scale, budget)
    up = seen["up"]
    assert panels.panel_budget(up) == budget
    assert up.tiling.exact is not global_rf
    # what a batch of windows holds is the network's share of --max-memory (memory.budget_tile)
    network = 4 * (3 * bands + 2 * bands * scale**2) * up.tiling.tile**2 * up.batch_size
    assert seen["peak"] <= budget + network, (seen["peak"] / MiB, budget / MiB, network / MiB)
    assert seen["panels"] >= 3  # the budget binds: the raster is cut into several panels


@pytest.mark.parametrize(
    ("bands", "dtype", "scale", "budget"),
    [(3, "uint16", 2, 2 * MiB), (4, "uint8", 3, 2 * MiB), (2, "uint32", 4, 3 * MiB)],
)
def test_strip_peak_within_its_share_with_band_ratios(
    tmp_path, monkeypatch, bands, dtype, scale, budget
):
    """A single-band model run band by band gives the blocks bicubic's band ratios (the
    default --spectral auto): the rule's temporaries are in the strip's share too."""
    src, warm_up = _rasters(tmp_path, bands, dtype)
    model = ToySR(BaseSRConfig(in_channels=1, scale=scale))
    dst = tmp_path / "out.tif"
    seen = _measure(monkeypatch, src, warm_up, dst, model, scale, budget)
    with rasterio.open(dst) as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_VALUES"])["band_ratios"] == "bicubic"
    up = seen["up"]
    network = 4 * (3 * bands + 2 * bands * scale**2) * up.tiling.tile**2 * up.batch_size
    assert seen["peak"] <= budget + network, (seen["peak"] / MiB, budget / MiB, network / MiB)
    assert seen["panels"] >= 3


def test_strip_bytes_counts_the_accumulator_as_allocated():
    """strip_bytes' accumulator is the array stream_tiles allocates: rows from strip_rows
    (tile rows plus the finished rows waiting for their block) over the padded read width."""
    up = panels.Upscaler(tiny_model(4, 2), device="cpu", tile=40)
    for height, flush in [(500, 64), (500, 256), (97, 32), (1000, 1)]:
        cols, context = 96, 11
        plan = make_plan(
            (height, cols + 2 * context), scale=2, tile=40, overlap=up.tiling.overlap,
            margin=up.tiling.margin,
        )  # fmt: skip
        acc = 4 * 4 * strip_rows(plan, flush) * plan.padded[1] * 2
        block = 4 * 4 * (flush if flush > 1 else strip_rows(plan, flush)) * plan.padded[1] * 2
        got = panels.strip_bytes(up, StripSpec(4, flush, context, height=height), cols)
        assert got >= acc + block  # at least the accumulator and the block itself
        bound = panels.strip_bytes(up, StripSpec(4, flush, context), cols)  # height unknown
        assert bound >= got
        assert strip_rows(plan, flush) <= 40 * 2 + max(flush - 1, 0)


@pytest.mark.parametrize(
    ("bands", "scale", "itemsize", "write", "height"),
    [(4, 2, 4, 0.0, 4000), (3, 4, 4, 11.5, 300), (1, 4, 8, 21.5, 600), (2, 2, 4, 18.0, 600)],
)
def test_panel_width_holds_every_buffer_within_the_budget(bands, scale, itemsize, write, height):
    """The panel panel_width picks holds, by the arrays' own shapes (not strip_bytes), the
    accumulator stream_tiles allocates, the flushed block in its work dtype and the writer's
    temporaries (``write`` bytes a value, geo.writer.write_bytes: 18 for uint16 written as
    int32 at x2, 21.5 for float64 with +-inf written as float32 at x4) within the strip budget,
    and is not needlessly narrow: a panel three times as wide would not fit."""
    up = panels.Upscaler(tiny_model(bands, scale), device="cpu", max_memory="256M")
    block = 512
    align = block // np.gcd(block, scale)
    context = up.tiling.margin + FILL_MARGIN
    spec = StripSpec(bands, block, context, height=height, itemsize=itemsize, write_bytes=write)
    budget = panels.panel_budget(up)

    def held(cols: int) -> int:
        plan = up.plan((height, cols + 2 * context))
        read = plan.padded[1]  # what the accumulator spans: the read width, padded
        acc = 4 * bands * strip_rows(plan, block) * read * scale
        return acc + int((itemsize + write) * bands * block * read * scale)

    w = panels.panel_width(up, spec, align)
    assert w % align == 0 and w > align  # the budget binds above the narrowest panel
    assert held(w) <= budget, (w, held(w) / MiB, budget / MiB)
    assert held(3 * w) > budget, (w, held(3 * w) / MiB, budget / MiB)


@pytest.mark.parametrize(
    ("dtype", "out", "mask"),
    [("int32", None, None), ("uint16", "int32", "internal"), ("float64", "float32", None)],
)
def test_geotiff_writer_temporaries_are_in_the_strip_budget(
    tmp_path, monkeypatch, dtype, out, mask
):
    """The GeoTIFF job sizes its panels with the writer's temporaries, and they are small: a
    32-bit integer output is rounded in float64 a slab of rows at a time straight into the
    output array (no float64 copy of the block), the per-pixel mask is made in place in the
    validity. What write_block allocates stays within what the strip budget counts."""
    from sr_domains.geo import writer

    specs, peaks = [], []
    real_width, real_write = panels.panel_width, writer.write_block

    def spy(up, spec, align):
        specs.append(spec)
        return real_width(up, spec, align)

    def traced(dst, spec, row0, col0, data, lr, scale, out_row0=None):
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            real_write(dst, spec, row0, col0, data, lr, scale, out_row0)
            peaks.append((tracemalloc.get_traced_memory()[1] - start) / data.size)
        finally:
            tracemalloc.stop()

    monkeypatch.setattr(panels, "panel_width", spy)
    monkeypatch.setattr(job, "write_block", traced)
    src = make_geotiff(
        tmp_path / "in.tif", width=120, height=300, count=2, dtype=dtype, nodata=0, mask=mask
    )
    model = tiny_model(2, 2)
    for _ in range(2):  # (the first run imports what the path needs)
        specs.clear(), peaks.clear()
        upscale_geotiff(src, tmp_path / "out.tif", model=model, scale=2, device="cpu", dtype=out,
                        overwrite=True)  # fmt: skip
    (spec,) = specs
    assert len(peaks) > 1 and max(peaks) <= spec.write_bytes, (peaks, spec.write_bytes)
    # the output array (4 bytes a value), the validity, the LR block and the nodata nudge's
    # masks; no float64 copy (8 or 16 bytes a value)
    assert spec.write_bytes <= 4 + 1.5 + (np.dtype(dtype).itemsize + 2) / 4 + 2 + 1
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert ds.dtypes[0] == (out or dtype)


def _saturating(tmp_path, dtype):
    """:func:`_rasters` (1 band, nodata 0) in ``dtype``, stretched: the brightest tenth of the
    valid pixels saturates the type, so the value rules move pixels off its maximum."""
    paths = tuple(_rasters(tmp_path, 1, "uint8"))
    for path in paths:
        with rasterio.open(path) as ds:
            v, profile = ds.read().astype(np.float64), ds.profile
        top = np.iinfo(dtype).max
        v = np.where(v == 0, 0, np.clip(np.rint(v * top / np.percentile(v[v > 0], 90)), 1, top))
        with rasterio.open(path, "w", **{**profile, "dtype": dtype}) as ds:
            ds.write(v.astype(dtype))
    return paths


@pytest.mark.parametrize(("dtype", "scale"), [("uint8", 2), ("uint8", 4), ("int16", 2)])
def test_strip_peak_within_what_it_counts_where_pixels_leave_the_saturation(
    tmp_path, monkeypatch, dtype, scale
):
    """A single-band integer raster whose upscaled values reach the type's maximum: the value
    rules move pixels outside the saturated footprint off it, band by band, with the band's
    distance to the saturation and its absolute value (two float blocks) beside the clamp's
    masks. strip_bytes counts them (StripSpec.saturation): the traced peak stays within what
    it counts for the panel it chose (plus a batch of windows)."""
    src, warm_up = _saturating(tmp_path, dtype)
    chosen: list = []
    real_width = panels.panel_width

    def spy(up, spec, align):
        cols = real_width(up, spec, align)
        chosen.append((spec, cols))
        return cols

    monkeypatch.setattr(panels, "panel_width", spy)
    dst = tmp_path / "out.tif"
    model = ToySR(BaseSRConfig(in_channels=1, scale=scale))
    seen = _measure(monkeypatch, src, warm_up, dst, model, scale, 1 * MiB)
    with rasterio.open(dst) as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_VALUES"])["clamped"].get("unsaturated", 0) > 0
    up, (spec, cols) = seen["up"], chosen[-1]
    assert spec.saturation
    counted = panels.strip_bytes(up, spec, cols)
    network = 4 * (3 + 2 * scale**2) * up.tiling.tile**2 * up.batch_size
    assert seen["peak"] <= counted + network, (seen["peak"] / MiB, counted / MiB, network / MiB)
    assert seen["panels"] >= 2


@pytest.mark.parametrize(("dtype", "shape"), [("float32", (24, 3, 50, 3)), ("float64", (70, 90))])
def test_off_saturation_tests_an_eighth_of_the_band_at_a_time(dtype, shape):
    """The move off the saturation holds one chunk's distance and mask (an eighth of the
    rows, ``itemsize + 1`` bytes a value of it), not two float copies of the band, and moves
    and counts the pixels the whole-band test did."""
    rng = np.random.default_rng(1)
    band = np.rint(rng.uniform(200, 300, shape) * 2).astype(dtype) / 2
    footprint = (shape[0], 1, shape[2], 1) if len(shape) == 4 else shape
    kept = rng.random(footprint) < 0.2
    counted = rng.random(footprint) < 0.7
    want = band.copy()
    near = (np.abs(want - want.dtype.type(255)) <= 0.5) & ~kept
    moved = int(np.count_nonzero(near & counted))
    want[near] = 254
    tracemalloc.start()
    try:
        n = value_ops.off_saturation(band, kept, 255, 1.0, False, counted=counted)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == moved > 0 and np.array_equal(band, want)
    part = -(-shape[0] // 8) / shape[0]  # an eighth of the rows, rounded up
    slack = 16 * 2**10 + np.getbufsize() * band.itemsize  # (numpy < 2 buffers a reduction)
    assert peak <= (band.itemsize + 1) * part * band.size + slack, peak / band.size


@pytest.mark.parametrize(("dtype", "scale"), [("uint8", 2), ("uint8", 4), ("uint32", 2)])
def test_saturation_step_fits_in_what_the_other_rules_count(tmp_path, monkeypatch, dtype, scale):
    """Per flushed block, everything the value rules allocate on a 1-band integer raster
    whose pixels leave the saturation (domain clamp, pins, the move off it: their masks are
    dropped after their loops, the move works an eighth of the band at a time) stays within
    what finish_bytes counts for the rules without the saturation, so it no longer narrows
    the panels (H6 counted two float copies of the band and the clamp's and pins' masks;
    a block of uint8 x4 traced 12 bytes a value against these 4.5)."""
    from sr_domains import value_rules

    src, warm_up = _saturating(tmp_path, dtype)
    seen: dict = {"peaks": []}
    real_apply, real_width = value_rules.ValueRules.apply, panels.panel_width

    def apply(self, out, *args):
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            real_apply(self, out, *args)
            peak = tracemalloc.get_traced_memory()[1] - start
            seen["peaks"].append((out.shape[1:], peak / out.size))
        finally:
            tracemalloc.stop()

    def spy(up, spec, align):
        seen["spec"] = spec
        return real_width(up, spec, align)

    monkeypatch.setattr(panels, "PANEL_BUDGET_BYTES", 1 * MiB)
    monkeypatch.setattr(panels, "panel_width", spy)
    model = ToySR(BaseSRConfig(in_channels=1, scale=scale))
    for path in (warm_up, src):  # (the first run imports what the path needs)
        seen["peaks"].clear()
        monkeypatch.setattr(value_rules.ValueRules, "apply", apply)
        upscale_geotiff(path, tmp_path / "out.tif", model=model, scale=scale, tile=32,
                        device="cpu", overwrite=True,
                        creation_options={"BLOCKXSIZE": "64", "BLOCKYSIZE": "64"})  # fmt: skip
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_VALUES"])["clamped"].get("unsaturated", 0) > 0
    spec = seen["spec"]
    assert spec.saturation and spec.flush_rows == 64
    args = (spec.itemsize, scale, spec.flush_rows, False, 0.0, spec.spectral)
    others = panels.finish_bytes(*args) - spec.itemsize  # the rules' term, saturation aside
    # the blocks of the widest panel, the one the strip is sized for (a narrower panel's
    # fixed costs weigh more per value, but it holds less)
    widest = max(shape[1] for shape, _ in seen["peaks"])
    peaks = [p for shape, p in seen["peaks"] if shape == (64, widest)]
    assert peaks and max(peaks) <= others, (peaks, others)
    assert panels.finish_bytes(*args, saturation=True, bands=1) == panels.finish_bytes(*args)
