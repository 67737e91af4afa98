"""The GeoTIFF strip keeps to its share of the memory budget: every array the panel engine holds
at once (accumulator, flushed block, value rules and seam blend temporaries) is counted."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains import panels  # noqa: E402
from sr_domains.geo import job, upscale_geotiff  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.testing import ToySR, tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.tiling import make_plan  # noqa: E402

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
    nodata = 0 if dtype[0] in "ui" else None
    src, warm_up = (
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
    model = (GlobalToy if global_rf else ToySR)(BaseSRConfig(in_channels=bands, scale=scale))
    seen = _measure(monkeypatch, src, warm_up, tmp_path / "out.tif", model, scale, budget)
    up = seen["up"]
    assert panels.panel_budget(up) == budget
    assert up.tiling.exact is not global_rf
    # what a batch of windows holds is the network's share of --max-memory (memory.budget_tile)
    network = 4 * (3 * bands + 2 * bands * scale**2) * up.tiling.tile**2 * up.batch_size
    assert seen["peak"] <= budget + network, (seen["peak"] / MiB, budget / MiB, network / MiB)
    assert seen["panels"] >= 3  # the budget binds: the raster is cut into several panels


def test_strip_bytes_counts_the_accumulator_as_allocated():
    """strip_bytes' accumulator is the array stream_tiles allocates: rows from strip_rows
    (tile rows plus the finished rows waiting for their block) over the padded read width."""
    from sr_domains.tiling import strip_rows

    up = panels.Upscaler(tiny_model(4, 2), device="cpu", tile=40)
    for height, flush in [(500, 64), (500, 256), (97, 32), (1000, 1)]:
        cols, context = 96, 11
        plan = make_plan(
            (height, cols + 2 * context), scale=2, tile=40, overlap=up.tiling.overlap,
            margin=up.tiling.margin,
        )  # fmt: skip
        acc = 4 * 4 * strip_rows(plan, flush) * plan.padded[1] * 2
        block = 4 * 4 * (flush if flush > 1 else strip_rows(plan, flush)) * plan.padded[1] * 2
        got = panels.strip_bytes(up, 4, flush, cols, context=context, height=height)
        assert got >= acc + block  # at least the accumulator and the block itself
        bound = panels.strip_bytes(up, 4, flush, cols, context=context)  # height unknown
        assert bound >= got
        assert strip_rows(plan, flush) <= 40 * 2 + max(flush - 1, 0)


@pytest.mark.parametrize(("bands", "scale"), [(4, 2), (13, 2), (3, 4), (1, 3)])
def test_panel_width_fits_the_default_budget(bands, scale):
    up = panels.Upscaler(tiny_model(bands, scale), device="cpu", max_memory="256M")
    block = 512
    align = block // np.gcd(block, scale)
    for itemsize in (4, 8):
        w = panels.panel_width(up, bands, block, align, up.tiling.margin, itemsize=itemsize)
        size = panels.strip_bytes(up, bands, block, w, context=up.tiling.margin, itemsize=itemsize)
        assert size <= panels.panel_budget(up) or w == align
