"""``upscale_geotiff`` and ``write_geotiff``: one GeoTIFF (a folder or glob of them:
:mod:`sr_domains.geo.batch`; the checks of existing outputs: :mod:`sr_domains.geo.resume`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..api_options import keyword_options
from ..errors import ConfigError
from ..intensity import IntensityProfile
from ..io_safety import (
    atomic_output,
    preflight,
    remove_temp,
    temp_name,
)
from ..made_with import Requested
from ..models.base import SRModel
from ..options import AdaptOptions, UpscaleOptions
from ..value_domain import ValueOptions
from .job import (
    fit_profile,
    gdal_env,
    match_bands,
    prepare_job,
    resolve_network,
    values_tag,
    weights_provenance,
    write_pixels,
)
from .output_spec import TAG_PREFIX, check_output_name
from .reader import RasterSource, raster_inputs
from .resume import is_complete, output_check, output_status
from .writer import (
    cog_sidecars,
    create,
    plan_sidecars,
    replace_sidecars,
    to_cog,
    write_error,
)

try:
    from rasterio.errors import RasterioError
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)


# -- single file --------------------------------------------------------------------------------
def upscale_geotiff(
    src: str | Path,
    dst: str | Path,
    *,
    scale: int = 2,
    model: SRModel | str | None = None,
    weights: str | Path | None = None,
    bands: Sequence[int] | None = None,
    profile: str | IntensityProfile | None = None,
    nodata: float | None = None,
    cog: bool = False,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    values: ValueOptions | None = None,
    adapt: AdaptOptions | None = None,
    dtype: str | None = None,
    creation_options: dict[str, str] | None = None,
) -> Path:
    """Super-resolve a GeoTIFF into a georeferenced GeoTIFF on top of the original.

    Args:
        src: input raster (GeoTIFF, or anything GDAL reads).
        dst: output GeoTIFF (parent folders are created).
        scale: 2, 3 or 4; the output transform is ``transform * Affine.scale(1/scale)``.
        model: an :class:`~sr_domains.models.SRModel`, a shipped weights or architecture name,
            or None for the shipped default.
        weights: checkpoint path (overrides ``model`` weights).
        bands: 1-based bands to process (default: all but an alpha band).
        profile: intensity recipe (``dtype``, ``reflectance``, ``s2l2a``, ``percentile:1,99``,
            ...) or a fitted profile; default: the model card's, else ``dtype`` for integer and
            ``identity`` for float data. Data-dependent recipes are fitted once per file.
        nodata: nodata override (default: the file's).
        cog: write a Cloud-Optimized GeoTIFF with overviews.
        tile, overlap, batch_size, device, amp: see :class:`~sr_domains.inference.Upscaler`.
        overwrite: replace an existing ``dst`` (never the input).
        progress: show a progress bar.
        values: value-fidelity options (:class:`~sr_domains.value_domain.ValueOptions`); by
            default outputs stay within the local input range and the physical domain
            (non-negative input stays non-negative), and saturated pixels stay saturated.
        dtype: output data type (default: the input's), e.g. ``float32`` to keep the
            network's fractional values of integer input; nodata must be representable.
        creation_options: GDAL GeoTIFF (or COG) creation options replacing the defaults
            (DEFLATE with a predictor, 256/512 blocks, ``BIGTIFF=IF_SAFER``), e.g.
            ``{"COMPRESS": "ZSTD", "ZSTD_LEVEL": "9"}``; size, type, CRS, transform and nodata
            are set from the input and cannot be given.
        adapt: fine-tune the model on this file first (:class:`~sr_domains.options.
            AdaptOptions`; docs/adaptation.md); the report goes into ``SR_DOMAINS_ADAPT``.

    Returns:
        ``dst``, written atomically (temp file in the same folder, renamed when complete).
    """
    options, net, fitted = geotiff_options(
        scale=scale,
        model=model,
        weights=weights,
        bands=bands,
        profile=profile,
        nodata=nodata,
        cog=cog,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        amp=amp,
        overwrite=overwrite,
        progress=progress,
        values=values,
        adapt=adapt,
        dtype=dtype,
        creation_options=creation_options,
    )
    return write_geotiff(src, dst, options, model=net, profile=fitted)


def geotiff_options(
    *,
    model: SRModel | str | None = None,
    profile: str | IntensityProfile | None = None,
    bands: Sequence[int] | None = None,
    creation_options: dict[str, str] | None = None,
    **fields: Any,
) -> tuple[UpscaleOptions, SRModel | None, IntensityProfile | None]:
    """The keywords of :func:`upscale_geotiff` as ``(options, model, profile)``: one
    :class:`~sr_domains.options.UpscaleOptions` (validated as the CLI's are), and the built
    model and fitted profile given instead of names, if any
    (:func:`~sr_domains.api_options.keyword_options`)."""
    if model is not None and not isinstance(model, (str, SRModel)):
        raise ConfigError(f"model must be a weights or model name or an SRModel, got {model!r}")
    if profile is not None and not isinstance(profile, (str, IntensityProfile)):
        raise ConfigError(f"profile must be a recipe or an IntensityProfile, got {profile!r}")
    return keyword_options(
        model=model,
        profile=profile,
        bands=tuple(bands) if bands else None,
        creation_options=tuple((creation_options or {}).items()),
        **fields,
    )


def write_geotiff(
    src: str | Path,
    dst: str | Path,
    options: UpscaleOptions,
    *,
    model: SRModel | None = None,
    profile: IntensityProfile | None = None,
) -> Path:
    """:func:`upscale_geotiff` with its options as one object (``model``, ``profile``: a
    built model and a fitted profile used instead of ``options.model``/``options.profile``)."""
    src, dst = Path(src), Path(dst)
    cog, overwrite = options.cog, options.overwrite
    check_output_name(dst, src)
    inputs = raster_inputs(src)  # (a VRT's sources too)
    preflight(dst, inputs, kind="file", overwrite=overwrite)
    with gdal_env(), RasterSource(src, options.bands, options.nodata) as rs:
        # (refused before any work: a sidecar of the output that an input's sidecar occupies)
        plan_sidecars(dst, inputs, writes=cog_sidecars(dst, rs.ds) if cog else [], warn=True)
        job = prepare_job(rs, options, model=model, profile=profile)
        with atomic_output(dst, inputs, overwrite=overwrite) as tmp:
            stage = temp_name(dst, ".tif") if cog else tmp
            try:
                with create(stage, job.spec) as out:
                    write_pixels(job, rs, out, progress=options.progress)
                    out.update_tags(**{f"{TAG_PREFIX}VALUES": values_tag(job.rules, rs.path)})
                if cog:
                    to_cog(stage, tmp, job.spec)
            except RasterioError as exc:
                raise write_error(exc, dst) from exc
            finally:
                if cog:
                    remove_temp(stage)
            replace_sidecars(dst, inputs, tmp if cog else None)  # (never an input's)
    log.info("wrote %s", dst)
    return dst


__all__ = [
    "Requested",
    "fit_profile",
    "gdal_env",
    "is_complete",
    "match_bands",
    "output_check",
    "output_status",
    "resolve_network",
    "upscale_geotiff",
    "weights_provenance",
    "write_geotiff",
]
