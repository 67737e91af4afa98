"""One huge GeoTIFF across Dask workers: row bands upscaled in parallel, then assembled.

The model, profile, value rules and output spec are decided once (:func:`~sr_domains.geo.job.
prepare_job`, on the client) and shipped to every worker, so each band is computed exactly as
the single-process run computes those rows: the engine skips only the windows that cannot
reach the band (:meth:`~sr_domains.inference.Upscaler.stream` ``rows``), and the output equals
the single-process output bit for bit. Each worker writes its band to a hidden part file beside
the output (bounded memory: the same streaming writer); the parts are copied block row by block
row into the final GeoTIFF (or COG), written atomically like every output.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io_safety import atomic_output, preflight, remove_temp, temp_name
from ..options import UpscaleOptions
from ..value_domain import ClampStats
from .job import GeotiffJob, gdal_env, prepare_job, values_tag, write_pixels
from .output_spec import TAG_PREFIX, check_output_name
from .reader import RasterSource, raster_inputs
from .writer import adopt_sidecars, create, remove_sidecars, to_cog, write_error

try:
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)


def row_bands(height: int, parts: int, block: int) -> list[tuple[int, int]]:
    """``parts`` HR row ranges covering ``[0, height)``, cut on output block rows."""
    rows = max(block, math.ceil(height / max(parts, 1) / block) * block)
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


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
) -> dict[str, int]:
    """Upscale HR rows ``rows`` of ``src`` into the part file (runs on a worker); returns the
    value-rule counts of the band."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    job = copy.copy(job)
    job.rules = copy.deepcopy(job.rules)
    if job.rules is not None:
        job.rules.stats = ClampStats()
    with gdal_env(), RasterSource(src, bands, nodata) as rs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            out = rasterio.open(part, "w", **_part_profile(job, rows))
        with out:
            write_pixels(job, rs, out, rows=rows)
    stats = job.rules.stats if job.rules is not None else ClampStats()
    return json.loads(json.dumps(stats.__dict__))


def _assemble(job: GeotiffJob, parts: list[tuple[Path, tuple[int, int]]], out: Any) -> None:
    """Copy the parts' pixels (and masks) into the final dataset, block row by block row."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    block = job.spec.block
    width = job.spec.profile["width"]
    for path, (r0, r1) in parts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            part = rasterio.open(path)
        with part:
            for y in range(0, r1 - r0, block):
                h = min(block, r1 - r0 - y)
                data = part.read(window=Window(0, y, width, h))
                target = Window(0, r0 + y, width, h)
                out.write(data, window=target)
                if job.spec.write_mask or job.spec.mask_invalid:
                    out.write_mask(part.read_masks(1, window=Window(0, y, width, h)), target)


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
    workers (module docs); the result equals :func:`~sr_domains.geo.upscale_geotiff`'s.

    Args:
        src, dst: input and output GeoTIFF (output rules as everywhere: atomic, never the input).
        client: a ``distributed.Client``.
        options: scale, model/weights, bands, profile, nodata, value rules, tiling, ``cog``,
            ``overwrite`` (see :class:`~sr_domains.options.UpscaleOptions`).
        model: a built model instead of ``options.model``.
        parts: number of row bands (default: the number of workers).
    """
    o = options or UpscaleOptions()
    if o.adapt is not None:
        raise ConfigError(
            "--adapt is not available when one raster is split across workers (each part would "
            "adapt on its own); adapt once with --save-model on one machine, then pass --weights"
        )
    src, dst = Path(src), Path(dst)
    check_output_name(dst, src)
    inputs = raster_inputs(src)  # (a VRT's sources too)
    preflight(dst, inputs, kind="file", overwrite=o.overwrite)
    with gdal_env(), RasterSource(src, o.bands, o.nodata) as rs:
        job = prepare_job(rs, o, model=model)
        n = parts or max(1, len(client.scheduler_info().get("workers", {})))
        bands = row_bands(job.spec.profile["height"], n, job.spec.block)
        with atomic_output(dst, inputs, overwrite=o.overwrite) as tmp:
            # absolute: the workers of an existing cluster run in their own working directory
            paths = [
                Path(os.path.abspath(temp_name(dst, f".part{i}.tif"))) for i in range(len(bands))
            ]
            stage = temp_name(dst, ".tif") if o.cog else tmp
            try:
                shipped = client.scatter(job, broadcast=True)
                futures = [
                    client.submit(
                        run_band,
                        os.path.abspath(src),
                        str(p),
                        rows,
                        shipped,
                        o.bands,
                        o.nodata,
                        retries=2,
                        pure=False,
                    )
                    for p, rows in zip(paths, bands)
                ]
                total = ClampStats()
                for f in futures:
                    total.add(ClampStats(**f.result()))
                if job.rules is not None:
                    job.rules.stats = total
                with create(stage, job.spec) as out:
                    _assemble(job, list(zip(paths, bands)), out)
                    out.update_tags(**{f"{TAG_PREFIX}VALUES": values_tag(job.rules, rs.path)})
                if o.cog:
                    to_cog(stage, tmp, job.spec)
            except RasterioError as exc:
                raise write_error(exc, dst) from exc
            finally:
                for p in paths:
                    remove_temp(p)
                if o.cog:
                    remove_temp(stage)
            remove_sidecars(dst)
            if o.cog:
                adopt_sidecars(tmp, dst)
    log.info("wrote %s from %d row bands", dst, len(bands))
    return dst


__all__ = ["row_bands", "run_band", "upscale_geotiff_split"]
