"""One huge GeoTIFF across Dask workers: row bands upscaled in parallel, then assembled.

The model, profile, value rules and output spec are decided once (:func:`~sr_domains.geo.job.
prepare_job`, on the client, under the run's engine settings) and shipped to every worker, so
each band is computed exactly as the single-process run with the same tile computes those rows:
the engine skips only the windows with no blend weight in the band (:meth:`~sr_domains.
inference.Upscaler.stream` ``rows``), and the output equals that run's output bit for bit.

The bands are cut on the tile grid (:func:`tile_bands`) where the fewest window rows straddle a
cut: a window row with blend weight in two bands is computed by both, so a cut goes where one
window row's weight ends and the next one's begins, or on an output block row. When the tile
comes from the memory budget (no ``tile`` option) it is capped (:func:`split_plan`) so that the
grid has rows to cut between: a default tile larger than the raster would make every worker
compute the whole image.
The tile used is recorded in ``SR_DOMAINS_TILE`` as always; ``upscale_geotiff(..., tile=T)``
reproduces the output. Each worker writes its band to a hidden part file beside the output
(bounded memory: the same streaming writer); the parts are copied block row by block row into
the final GeoTIFF (or COG; a block row cut between two bands from both), written atomically
like every output.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..engine_config import EngineSettings, engine_settings, resolve_tiling, settings_with
from ..errors import ConfigError
from ..io_safety import atomic_output, preflight, remove_temp, temp_name
from ..options import UpscaleOptions, engine_fields
from ..tiling import TilePlan, make_plan
from ..value_domain import ClampStats
from .cog import to_cog
from .gdal_errors import GDAL_ERRORS
from .gdal_paths import gdal_path, raster_inputs
from .job import GeotiffJob, gdal_env, prepare_job, values_tag, write_pixels
from .output_spec import TAG_PREFIX, check_creation, check_output_name
from .reader import RasterSource
from .sidecars import FolderListing, cog_sidecars, plan_sidecars, sidecar_swap
from .split_dask import run_bands
from .writer import create, write_error

try:
    import rasterio
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)

#: A capped split tile gives the grid up to this many window rows per band (more rows: fewer
#: straddled at the cuts, but more overlap computed twice).
MAX_ROWS_PER_BAND = 4


def row_bands(height: int, parts: int, block: int) -> list[tuple[int, int]]:
    """``parts`` HR row ranges covering ``[0, height)``, cut on output block rows."""
    rows = max(block, math.ceil(height / max(parts, 1) / block) * block)
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


def band_work(plan: TilePlan, rows: tuple[int, int]) -> int:
    """LR pixels the engine computes for HR ``rows``: every window with blend weight in them
    (:meth:`~sr_domains.tiling.TilePlan.row_reach`)."""
    th, tw = plan.tile
    reach = sum(a < rows[1] and rows[0] < b for a, b in plan.row_reach())
    return reach * len(plan.xs) * th * tw


def _straddled(weighted: list[tuple[int, int]], cut: int) -> int:
    """Window rows with blend weight (``weighted``: :meth:`~sr_domains.tiling.TilePlan.
    row_reach`) on both sides of HR row ``cut`` (computed by both bands)."""
    return sum(a < cut < b for a, b in weighted)


def tile_bands(plan: TilePlan, parts: int, block: int) -> list[tuple[int, int]]:
    """Up to ``parts`` HR row bands covering the plan's rows, each cut near an equal share
    where the fewest window rows straddle it: on an output block row, or where the blend
    weight of one window row ends and the next one's begins (then on a block row if as few)."""
    height = plan.shape[0] * plan.scale
    weighted = plan.row_reach()
    seams = {b for _, b in weighted[:-1]} | {a for a, _ in weighted[1:]}
    cands = sorted({*range(block, height, block), *(c for c in seams if 0 < c < height)})
    rows = [y * plan.scale for y in plan.ys]
    reach = max(block, max((b - a for a, b in itertools.pairwise(rows)), default=height) // 2)
    cuts: set[int] = set()
    for i in range(1, parts):
        target = height * i / parts
        near = [b for b in cands if abs(b - target) <= reach]
        if near:
            cuts.add(
                min(near, key=lambda b: (_straddled(weighted, b), b % block > 0, abs(b - target)))
            )
    edges = [0, *sorted(cuts), height]
    return list(itertools.pairwise(edges))


def _plan(job: GeotiffJob, shape: tuple[int, int], tile: int, overlap: int | None) -> TilePlan:
    t = resolve_tiling(job.net, tile, overlap)
    return make_plan(
        shape,
        scale=job.up.scale,
        tile=t.tile,
        overlap=t.overlap,
        margin=t.margin,
        multiple=job.up.multiple,
    )


def _cost(plan: TilePlan, bands: list[tuple[int, int]]) -> tuple[int, int]:
    """(largest band's work, total work): the wall time and the machine time of a split."""
    work = [band_work(plan, b) for b in bands]
    return max(work), sum(work)


def split_plan(
    job: GeotiffJob,
    shape: tuple[int, int],
    parts: int,
    block: int,
    overlap: int | None = None,
    *,
    fixed_tile: bool = True,
) -> tuple[int, list[tuple[int, int]]]:
    """The tile and the HR row bands (at most ``parts``) for splitting an LR raster of
    ``shape``: least work in the largest band (the wall time), then in all bands. The job's
    tile, or with ``fixed_tile=False`` (a tile from the memory budget) also smaller ones whose
    grid has rows to cut between."""
    tile, step, ov = job.up.tiling.tile, job.up.multiple, job.up.tiling.overlap
    candidates = {tile}
    if not fixed_tile:
        for n in range(2, parts * MAX_ROWS_PER_BAND + 1):  # n window rows over the raster
            cap = math.ceil((shape[0] + (n - 1) * ov) / n / step) * step
            if ov + step < cap < min(tile, shape[0]):
                candidates.add(cap)
    best: tuple[tuple[int, int, int], int, list[tuple[int, int]]] | None = None
    for t in sorted(candidates, reverse=True):
        plan = _plan(job, shape, t, overlap)
        for k in range(1, parts + 1):
            bands = tile_bands(plan, k, block)
            score = (*_cost(plan, bands), -t)
            if best is None or score < best[0]:
                best = (score, t, bands)
    assert best is not None
    return best[1], best[2]


def _part_profile(job: GeotiffJob, rows: tuple[int, int]) -> dict[str, Any]:
    prof = {k: v for k, v in job.spec.profile.items() if k not in ("crs", "transform")}
    prof["height"] = rows[1] - rows[0]
    return prof


def run_band(
    src: str,
    part: str,
    rows: tuple[int, int],
    job: GeotiffJob,
    bands: tuple[int, ...] | None,
    nodata: float | None,
    settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """Upscale HR rows ``rows`` of ``src`` into the part file (runs on a worker, under the
    run's engine ``settings``); returns the band's value-rule counts (``stats``) and the band
    ratio rule as the engine resolved it (``spectral``). The part must exist (the placeholder
    the client made): a part that is gone, or replaced before it was opened, means the run
    ended (``{"stopped": True}``, nothing left behind)."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    job = copy.copy(job)
    job.rules = copy.deepcopy(job.rules)
    if job.rules is not None:
        job.rules.stats = ClampStats()
    try:  # the placeholder, held open: its inode cannot be reused while this band runs
        held = os.open(part, os.O_RDONLY)
    except FileNotFoundError:  # the run ended before this band opened its part
        return {"stopped": True}
    try:
        with (
            engine_settings(settings or EngineSettings()),
            gdal_env(),
            RasterSource(src, bands, nodata) as rs,
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                out = rasterio.open(gdal_path(part, output=True), "w", **_part_profile(job, rows))
            if _recreated(part, held):  # the run removed it first: GDAL made a new file
                out.close()
                with contextlib.suppress(OSError):
                    os.remove(part)
                return {"stopped": True}
            with out:
                write_pixels(job, rs, out, rows=rows)
    finally:
        os.close(held)
    stats = job.rules.stats if job.rules is not None else ClampStats()
    spectral = job.rules.spectral if job.rules is not None else None
    return {"stats": json.loads(json.dumps(stats.__dict__)), "spectral": spectral}


def _recreated(part: str, held: int) -> bool:
    """Whether the file at ``part`` is no longer the placeholder ``held`` open (the run ended
    and removed it, and opening the part for writing created another)."""
    try:
        now = os.stat(part)
    except FileNotFoundError:
        return False  # removed after it was opened: the band writes into the removed file
    was = os.fstat(held)
    return (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino)


def _assemble(job: GeotiffJob, parts: list[tuple[Path, tuple[int, int]]], out: Any) -> None:
    """Copy the parts' pixels (and masks) into the final dataset, block row by block row (a
    block row cut between two bands read from both)."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    block, width = job.spec.block, job.spec.profile["width"]
    masks = job.spec.write_mask or job.spec.mask_invalid
    with contextlib.ExitStack() as stack:
        opened = []
        for path, rows in parts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                opened.append((stack.enter_context(rasterio.open(gdal_path(path))), rows))
        height = parts[-1][1][1]
        for top in range(0, height, block):
            end = min(top + block, height)
            pieces = [
                (ds, Window(0, max(top, r0) - r0, width, min(end, r1) - max(top, r0)))
                for ds, (r0, r1) in opened
                if r0 < end and top < r1
            ]
            target = Window(0, top, width, end - top)
            data = np.concatenate([ds.read(window=w) for ds, w in pieces], axis=1)
            out.write(data, window=target)
            if masks:
                m = [ds.read_masks(1, window=w) for ds, w in pieces]
                out.write_mask(np.concatenate(m, axis=0), target)


def check_split(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], options: UpscaleOptions
) -> list[Path]:
    """Refuse what a split run would refuse before any worker starts (``--adapt``, the output
    name, an existing output); the run's input files."""
    if options.adapt is not None:
        raise ConfigError(
            "--adapt is not available when one raster is split across workers (each part would "
            "adapt on its own); adapt once with --save-model on one machine, then pass --weights"
        )
    src, dst = Path(src), Path(dst)
    check_output_name(dst, src)
    inputs = raster_inputs(src)  # (a VRT's sources too)
    preflight(dst, inputs, kind="file", overwrite=options.overwrite)
    return inputs


def _with_tile(job: GeotiffJob, tile: int) -> None:
    """Run ``job`` with ``tile`` (its engine rebuilt; the tags follow)."""
    job.up = job.up.with_tile(tile)
    tags = job.spec.tags.setdefault(None, {})
    tags[f"{TAG_PREFIX}TILE"] = str(job.up.tiling.tile)
    tags[f"{TAG_PREFIX}OVERLAP"] = str(job.up.tiling.overlap)


def _resolve_spectral(job: GeotiffJob, results: list[dict[str, Any]]) -> None:
    """Total the bands' value-rule counts; the band ratio rule as the workers resolved it
    (``--spectral auto``), so the tag says what the single-process run says."""
    if job.rules is None:
        return
    total = ClampStats()
    for r in results:
        total.add(ClampStats(**r["stats"]))
    job.rules.stats = total
    if job.rules.spectral is None and results:
        job.rules.spectral = results[0]["spectral"]


def upscale_geotiff_split(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    client: Any,
    options: UpscaleOptions | None = None,
    model: Any = None,
    parts: int | None = None,
) -> Path:
    """Super-resolve one GeoTIFF with its output rows split across the Dask ``client``'s
    workers (module docs); the result equals :func:`~sr_domains.geo.upscale_geotiff`'s with
    the tile it records (``SR_DOMAINS_TILE``; the same as a single-process run's where that
    one's grid can be split: an explicit ``tile``, or a raster much larger than the tile).

    Args:
        src, dst: input and output GeoTIFF (output rules as everywhere: atomic, never the input).
        client: a ``distributed.Client``.
        options: scale, model/weights, bands, profile, nodata, value rules, tiling, ``cog``,
            ``overwrite``, engine settings (``backend``, ``threads``, ``max_memory``; unset
            ones from :func:`~sr_domains.engine_config.engine_settings`), see
            :class:`~sr_domains.options.UpscaleOptions`.
        model: a built model instead of ``options.model``.
        parts: number of row bands at most (default: the number of workers).
    """
    o = options or UpscaleOptions()
    src, dst = Path(src), Path(dst)
    inputs = check_split(src, dst, o)
    settings = settings_with(**engine_fields(o))
    with engine_settings(settings), gdal_env(), RasterSource(src, o.bands, o.nodata) as rs:
        writes = cog_sidecars(dst, rs.ds) if o.cog else []
        listing = FolderListing.of(dst.parent)  # (once: the plan and the swap read it)
        plan_sidecars(dst, inputs, writes=writes, warn=True, overwrite=o.overwrite, listing=listing)
        check_creation(rs, o.scale, o.dtype, o.creation_options, cog=o.cog)  # (before the model)
        job = prepare_job(rs, o, model=model)
        n = parts or max(1, len(client.scheduler_info().get("workers", {})))
        free = o.tile is None  # the budget's tile: capped where the grid needs cuts
        tile, bands = split_plan(job, rs.shape, n, job.spec.block, o.overlap, fixed_tile=not free)
        if tile != job.up.tiling.tile:
            log.info("%s: tile %d (not %d) for row bands", src.name, tile, job.up.tiling.tile)
            _with_tile(job, tile)
        with (
            sidecar_swap(dst, inputs, o.overwrite, listing) as sidecars,
            atomic_output(dst, inputs, overwrite=o.overwrite) as tmp,
        ):
            # absolute: the workers of an existing cluster run in their own working directory
            paths = [
                Path(os.path.abspath(temp_name(dst, f".part{i}.tif"))) for i in range(len(bands))
            ]
            stage = temp_name(dst, ".tif") if o.cog else tmp
            try:
                # (a key of its own: see distributed._run_on)
                shipped = client.scatter(job, broadcast=True, hash=False)
                args = (shipped, o.bands, o.nodata, settings)
                calls = [(os.path.abspath(src), str(p), r, *args) for p, r in zip(paths, bands)]
                _resolve_spectral(job, run_bands(client, run_band, paths, calls))
                with create(stage, job.spec) as out:
                    _assemble(job, list(zip(paths, bands)), out)
                    out.update_tags(**{f"{TAG_PREFIX}VALUES": values_tag(job.rules, rs.path)})
                if o.cog:
                    to_cog(stage, tmp, job.spec, dst)
            except GDAL_ERRORS as exc:
                raise write_error(exc, dst) from exc
            finally:  # (a stop or a band's error: its bands cancelled, see split_dask)
                for p in paths:
                    remove_temp(p)
                if o.cog:
                    remove_temp(stage)
            sidecars.stage(tmp, cog=o.cog)  # (never an input's)
    log.info("wrote %s from %d row bands", dst, len(bands))
    return dst


__all__ = [
    "band_work",
    "check_split",
    "row_bands",
    "run_band",
    "split_plan",
    "tile_bands",
    "upscale_geotiff_split",
]
