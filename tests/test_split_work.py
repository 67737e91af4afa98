"""A raster split into row bands computes only the windows with blend weight in each band: the
windows of one process plus those straddling a cut (none where a cut falls between two window
rows' weights), with the same output bit for bit."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")

from rasterio.errors import NotGeoreferencedWarning  # noqa: E402

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.job import prepare_job  # noqa: E402
from sr_domains.geo.reader import RasterSource  # noqa: E402
from sr_domains.geo.split import (  # noqa: E402
    band_work,
    run_band,
    split_plan,
    upscale_geotiff_split,
)
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.intensity import IntensityProfile  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.models import ToySR  # noqa: E402
from sr_domains.tiling import TilePlan, axis_weights  # noqa: E402


class _CountingSR(ToySR):
    """A :class:`ToySR` that counts the LR pixels of every window it computes."""

    pixels: ClassVar[list[int]] = [0]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        _CountingSR.pixels[0] += x.shape[0] * x.shape[-2] * x.shape[-1]
        return super().body(x)


def _model() -> _CountingSR:
    return _CountingSR(BaseSRConfig(in_channels=1, scale=2)).eval()


def _model3() -> ToySR:
    return ToySR(BaseSRConfig(in_channels=3, scale=2)).eval()


def _counted(run: Callable[[], Any]) -> tuple[Any, int]:
    _CountingSR.pixels[0] = 0
    result = run()
    return result, _CountingSR.pixels[0]


def _weighted_rows(plan: TilePlan) -> list[tuple[int, int]]:
    """HR rows where each window row's blend weight is non-zero (from the weights themselves)."""
    s = plan.scale
    rows = []
    for y0, w in zip(plan.ys, axis_weights(list(plan.ys), plan.tile[0], plan.margin)):
        nz = np.flatnonzero(w)
        rows.append(((y0 + nz[0]) * s, (y0 + nz[-1] + 1) * s))
    return rows


def _allowed(plan: TilePlan, bands: list[tuple[int, int]]) -> int:
    """LR pixels of one process plus the window rows with weight on both sides of a cut."""
    straddled = sum(a < r1 < b for r0, r1 in bands[:-1] for a, b in _weighted_rows(plan))
    th, tw = plan.tile
    return (len(plan.ys) + straddled) * len(plan.xs) * th * tw


def _by_extent(plan: TilePlan, bands: list[tuple[int, int]]) -> int:
    """LR pixels of the windows whose rows reach a band at all (the engine's skip before)."""
    (th, tw), s = plan.tile, plan.scale
    n = sum(not ((y + th) * s <= r0 or y * s >= r1) for r0, r1 in bands for y in plan.ys)
    return n * len(plan.xs) * th * tw


def test_split_bands_compute_one_process_windows_plus_the_cut_ones(tmp_path):
    src = make_geotiff(tmp_path / "r.tif", width=24, height=300, count=1)
    model = _model()
    ref, single = _counted(lambda: upscale_geotiff(src, tmp_path / "ref.tif", model=model, tile=48))
    with RasterSource(src) as rs:
        job = prepare_job(rs, UpscaleOptions(scale=2, tile=48), model=model)
        plan = job.up.plan(rs.shape)
        tile, bands = split_plan(job, rs.shape, 2, job.spec.block)
    assert tile == 48 and len(bands) == 2 and single == band_work(plan, (0, 600))
    assert _by_extent(plan, bands) > _allowed(plan, bands)  # (the case this tests)
    total = 0
    with rasterio.open(ref) as a:
        want = a.read()
    for i, rows in enumerate(bands):
        part = tmp_path / f"part{i}.tif"
        part.touch()  # (the placeholder the client makes: a band whose part is gone stops)
        _, work = _counted(lambda p=part, r=rows: run_band(str(src), str(p), r, job, None, None))
        assert work == band_work(plan, rows)  # the planner counts what the engine computes
        total += work
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(part) as p:
                assert np.array_equal(p.read(), want[:, rows[0] : rows[1]])  # bit for bit
    assert total <= _allowed(plan, bands)
    assert total == single  # cut where one window row's weight ends: nothing computed twice


def test_split_cut_off_the_block_rows_equals_one_process(tmp_path, dask_client):
    """Bands cut between window rows' weights, inside an output block row: the parts are
    assembled into the same pixels and masks as one process's output."""
    src = make_geotiff(tmp_path / "r.tif", width=70, height=300, count=3, nodata=0)
    model = _model3()
    opts = UpscaleOptions(scale=2, tile=48)
    with RasterSource(src) as rs:
        job = prepare_job(rs, opts, model=model)
        _, bands = split_plan(job, rs.shape, 2, job.spec.block)
    assert len(bands) == 2 and bands[0][1] % job.spec.block
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=model, scale=2, tile=48)
    out = upscale_geotiff_split(
        src, tmp_path / "split.tif", client=dask_client, options=opts, model=model
    )
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        assert np.array_equal(a.read(), b.read())  # bit for bit
        assert np.array_equal(a.read_masks(), b.read_masks())
        assert a.tags() == b.tags()


@pytest.mark.parametrize("tile", [12, 20, 24])
def test_row_ranges_skip_the_windows_without_weight_there(tile):
    rng = np.random.default_rng(tile)
    x = rng.random((1, 90, 30), dtype=np.float32)
    up = Upscaler(_model(), tile=tile)
    profile = IntensityProfile("identity", (1.0,), (0.0,))

    def read(y0: int, x0: int, h: int, w: int) -> tuple[np.ndarray, None]:
        return x[:, y0 : y0 + h, x0 : x0 + w], None

    whole, one = _counted(lambda: dict(up.stream(read, (90, 30), 1, profile=profile)))
    full = np.concatenate([whole[k] for k in sorted(whole)], axis=1)  # type: ignore[index]
    plan = up.plan((90, 30))
    cuts = [0, 37, 100, 180]
    bands = list(itertools.pairwise(cuts))
    assert _by_extent(plan, bands) > _allowed(plan, bands)  # (the case this tests)
    total = 0
    for r0, r1 in bands:
        got, work = _counted(
            lambda r=(r0, r1): dict(up.stream(read, (90, 30), 1, profile=profile, rows=r))
        )
        part = np.concatenate([got[k] for k in sorted(got)], axis=1)  # type: ignore[index]
        assert np.array_equal(part, full[:, r0:r1])
        assert work == band_work(plan, (r0, r1))
        total += work
    assert one == band_work(plan, (0, 180)) and total <= _allowed(plan, bands)


def test_a_band_whose_part_was_removed_as_it_opened_it_leaves_nothing(tmp_path, monkeypatch):
    """The run ended (its parts removed) between a band's start and its opening of the part:
    opening for writing made a new file there, left beside the output. The band holds the
    placeholder open, sees another file at its name, removes it and stops."""
    import sr_domains.geo.split as split

    src = make_geotiff(tmp_path / "r.tif", width=24, height=40, count=1)
    model = _model()
    with RasterSource(src) as rs:
        job = prepare_job(rs, UpscaleOptions(scale=2, tile=48), model=model)
    part = tmp_path / ".out.part0.tif"
    part.touch()
    real_open = split.rasterio.open

    def removed_first(path, *args, **kwargs):
        if str(path).endswith(part.name):
            part.unlink()  # (the client's cleanup, just before the band opens its part)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(split.rasterio, "open", removed_first)
    assert run_band(str(src), str(part), (0, 80), job, None, None) == {"stopped": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.tif"]
    monkeypatch.undo()
    assert run_band(str(src), str(part), (0, 80), job, None, None) == {"stopped": True}
