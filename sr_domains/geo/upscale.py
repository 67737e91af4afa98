"""``upscale_geotiff`` and ``write_geotiff``: one GeoTIFF (a folder or glob of them:
:mod:`sr_domains.geo.batch`; the checks of existing outputs: :mod:`sr_domains.geo.resume`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
from ..options import AdaptOptions, UpscaleOptions, flag, is_whole
from ..value_domain import ValueOptions
from .band_checks import match_bands
from .cog import to_cog
from .creation_options import apply, check_options, cog_options, normalize, trial
from .gdal_errors import GDAL_ERRORS
from .gdal_paths import raster_inputs
from .job import (
    fit_profile,
    gdal_env,
    prepare_job,
    resolve_network,
    values_tag,
    weights_provenance,
    write_pixels,
)
from .output_spec import (
    TAG_PREFIX,
    check_creation,
    check_dtype,
    check_output_name,
    output_profile,
)
from .reader import RasterSource
from .resume import is_complete, output_check, output_status
from .sidecars import FolderListing, cog_sidecars, plan_sidecars, sidecar_swap
from .writer import create, write_error

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
        bands: 1-based bands to process, e.g. ``[4, 3, 2]`` (default: all but an alpha band).
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
        dtype: output data type (default: the input's; one of ``uint8``, ``int8``, ``uint16``,
            ``int16``, ``uint32``, ``int32``, ``float32``, ``float64``), e.g. ``float32`` to
            keep the network's fractional values of integer input; nodata must be
            representable.
        creation_options: GDAL GeoTIFF (or COG) creation options replacing the defaults
            (DEFLATE with a predictor, 256/512 blocks, ``BIGTIFF=IF_SAFER``), e.g.
            ``{"COMPRESS": "ZSTD", "ZSTD_LEVEL": "9"}``, in either driver's names
            (``BLOCKXSIZE`` and ``BLOCKYSIZE`` each set their own side; a COG's blocks are
            square); size, type, CRS, transform and nodata are set from the input, and lossy
            compression (JPEG, lossy WEBP or JXL, LERC with ``MAX_Z_ERROR`` > 0) is refused;
            checked before any work (:mod:`sr_domains.geo.creation_options`).
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
    dtype: str | None = None,
    creation_options: dict[str, str] | None = None,
    **fields: Any,
) -> tuple[UpscaleOptions, SRModel | None, IntensityProfile | None]:
    """The keywords of :func:`upscale_geotiff` as ``(options, model, profile)``: one
    :class:`~sr_domains.options.UpscaleOptions` (validated as the CLI's are), and the built
    model and fitted profile given instead of names, if any
    (:func:`~sr_domains.api_options.keyword_options`). ``bands``, ``dtype`` and
    ``creation_options`` are checked here, in the keywords' words."""
    if model is not None and not isinstance(model, (str, SRModel)):
        raise ConfigError(f"model must be a weights or model name or an SRModel, got {model!r}")
    if profile is not None and not isinstance(profile, (str, IntensityProfile)):
        raise ConfigError(f"profile must be a recipe or an IntensityProfile, got {profile!r}")
    check_dtype(dtype, api=True)
    co = normalize(creation_options, api=True)
    check_keywords(co, cog=flag("cog", fields.get("cog", False)))
    return keyword_options(
        model=model,
        profile=profile,
        bands=bands_keyword(bands),
        dtype=dtype,
        creation_options=tuple(co.items()),
        **fields,
    )


def check_keywords(co: dict[str, str], *, cog: bool, api: bool = True) -> None:
    """Refuse bad ``creation_options`` (:mod:`sr_domains.geo.creation_options`) in the API's
    words (``api=False``: the CLI's, ``--co``) before any file is read: the data type and
    bands are not known yet, so GDAL is asked only about option names and values (on 3 bands
    of uint8); a batch asks once, not once per file."""
    check_options(co, cog=cog, api=api)
    if co:
        profile = output_profile(np.dtype("uint8"), 3, 16, 16, None)
        apply(profile, co, api=api)
        options = cog_options(co, float_data=False) if cog else None
        trial(profile, co, options, api=api, names_only=True)


def bands_keyword(bands: object) -> tuple[int, ...] | None:
    """``bands=`` as 1-based band indexes (None: all but an alpha band); text (``'4,3,2'``)
    and an empty selection are refused (out of range: the reader names them)."""
    if bands is None:
        return None
    hint = "bands must be a sequence of 1-based band indexes, e.g. [4, 3, 2]"
    if isinstance(bands, (str, bytes)) or not isinstance(bands, Iterable):
        raise ConfigError(f"{hint}, got {bands!r}")
    picked = tuple(bands)
    if not picked:
        raise ConfigError(f"bands must name at least one band (None: all), got {bands!r}")
    bad = [b for b in picked if not is_whole(b)]
    if bad:
        raise ConfigError(f"{hint}, got {bands!r}")
    return tuple(int(b) for b in picked)


def write_geotiff(
    src: str | Path,
    dst: str | Path,
    options: UpscaleOptions,
    *,
    model: SRModel | None = None,
    profile: IntensityProfile | None = None,
    listing: FolderListing | None = None,
) -> Path:
    """:func:`upscale_geotiff` with its options as one object (``model``, ``profile``: a
    built model and a fitted profile used instead of ``options.model``/``options.profile``;
    ``listing``: of ``dst``'s folder, taken once by a batch, else here once, for its GDAL
    sidecars, :mod:`sr_domains.geo.sidecars`)."""
    src, dst = Path(src), Path(dst)
    cog, overwrite = options.cog, options.overwrite
    check_output_name(dst, src)
    inputs = raster_inputs(src)  # (a VRT's sources too)
    preflight(dst, inputs, kind="file", overwrite=overwrite)
    with gdal_env(), RasterSource(src, options.bands, options.nodata) as rs:
        # (refused before any work: a sidecar of the output that an input's sidecar occupies,
        # or one there without the output: GDAL would read it as the new one's)
        writes = cog_sidecars(dst, rs.ds) if cog else []
        listing = listing or FolderListing.of(dst.parent)
        plan_sidecars(dst, inputs, writes=writes, warn=True, overwrite=overwrite, listing=listing)
        check_creation(rs, options.scale, options.dtype, options.creation_options, cog=cog)
        job = prepare_job(rs, options, model=model, profile=profile)
        with (
            sidecar_swap(dst, inputs, overwrite, listing) as sidecars,
            atomic_output(dst, inputs, overwrite=overwrite) as tmp,
        ):
            stage = temp_name(dst, ".tif") if cog else tmp
            try:
                with create(stage, job.spec) as out:
                    write_pixels(job, rs, out, progress=options.progress)
                    out.update_tags(**{f"{TAG_PREFIX}VALUES": values_tag(job.rules, rs.path)})
                if cog:
                    to_cog(stage, tmp, job.spec, dst)
            except GDAL_ERRORS as exc:
                raise write_error(exc, dst) from exc
            finally:
                if cog:
                    remove_temp(stage)
            sidecars.stage(tmp, cog=cog)  # (never an input's)
    log.info("wrote %s", dst)
    return dst


__all__ = [
    "Requested",
    "bands_keyword",
    "check_keywords",
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
