"""``upscale_geotiff`` (one file) and ``upscale_many`` (a folder or glob, resumable: the
checks of existing outputs are in :mod:`sr_domains.geo.resume`)."""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..api_options import keyword_options
from ..errors import INPUT_ERRORS, ConfigError, InputFileError, OutputExistsError
from ..intensity import IntensityProfile
from ..io_safety import (
    atomic_output,
    batch_entry,
    check_paths,
    preflight,
    remove_temp,
    temp_name,
)
from ..made_with import Requested
from ..models.base import SRModel
from ..options import AdaptOptions, UpscaleOptions, check_save_model_batch, output_name
from ..run_recipe import recipe_of
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
from .output_spec import TAG_PREFIX, TIFF_SUFFIXES, check_output_name
from .reader import RasterSource
from .resume import is_complete, output_check, output_status
from .writer import (
    adopt_sidecars,
    create,
    remove_sidecars,
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
    preflight(dst, [src], kind="file", overwrite=overwrite)
    with gdal_env(), RasterSource(src, options.bands, options.nodata) as rs:
        job = prepare_job(rs, options, model=model, profile=profile)
        with atomic_output(dst, [src], overwrite=overwrite) as tmp:
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
            remove_sidecars(dst)  # a stale one would override the new file's metadata
            if cog:
                adopt_sidecars(tmp, dst)
    log.info("wrote %s", dst)
    return dst


# -- batch ------------------------------------------------------------------------------------
def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by a folder (its ``*.tif``/``*.tiff``), a glob pattern, a file, or a list.
    A broken link is kept (it fails with its own error instead of vanishing from the batch)."""
    if isinstance(inputs, (list, tuple)):
        return [p for item in inputs for p in expand_inputs(item)]
    text = str(inputs)
    p = Path(text)
    if p.is_dir():
        found = [q for q in p.iterdir() if q.suffix.lower() in TIFF_SUFFIXES]
    elif any(ch in text for ch in "*?["):
        found = [Path(q) for q in glob.glob(text)]
    else:
        return [p]
    return sorted(q for q in found if batch_entry(q))


def upscale_many(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    scale: int = 2,
    overwrite: bool = False,
    suffix: str = "",
    **kwargs: Any,
) -> list[Path]:
    """Upscale every GeoTIFF in a folder / glob / list into ``out_dir`` (same file names, with
    ``suffix`` before the extension).

    Resumable: an output that is already complete (see :func:`output_status`) is skipped, one
    of ours that is damaged or cut short is redone; any other existing output is an error
    unless ``overwrite``. A file that cannot be read or upscaled (its content, bands that do
    not fit the model, its geometry, an unsafe or busy output) is reported with its name and
    the batch goes on; the error raised at the end lists the failures.

    Returns:
        The outputs written by this call (skipped ones are not listed).
    """
    options, net, fitted = geotiff_options(
        scale=scale, overwrite=overwrite, suffix=suffix, **kwargs
    )
    return write_many(inputs, out_dir, options, model=net, profile=fitted)


def write_many(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    options: UpscaleOptions,
    *,
    model: SRModel | None = None,
    profile: IntensityProfile | None = None,
) -> list[Path]:
    """:func:`upscale_many` with its options as one object (see :func:`write_geotiff`)."""
    scale, overwrite, suffix = options.scale, options.overwrite, options.suffix
    files = expand_inputs(inputs)
    if not files:
        raise InputFileError(str(inputs), "no GeoTIFF files found (*.tif, *.tiff)")
    check_save_model_batch(getattr(options.adapt, "save_model", None), len(files))
    out_dir = Path(out_dir)
    names = [output_name(f.name, suffix) for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"several inputs are named {dupes}; outputs would collide")
    roots = [Path(inputs)] if isinstance(inputs, (str, Path)) and Path(inputs).is_dir() else []
    check_paths(out_dir, [*roots, *files], kind="dir")
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder; batch outputs go to a folder")
    todo = []
    requested = Requested.of(options, model, "geotiff")
    if profile is not None:  # a fitted profile object: recorded as such (sr_domains.run_recipe)
        requested = replace(requested, recipe=recipe_of(options, "geotiff", profile=profile))
    refused: list[tuple[Path, str]] = []
    for f in files:
        dst = out_dir / output_name(f.name, suffix)
        status, why = ("missing", "") if overwrite else output_check(dst, f, scale, requested)
        if status == "complete":
            log.info("skipping %s: %s is complete", f, dst)
            continue
        if status in ("foreign", "other"):
            refused.append((dst, why))
        if status == "damaged":
            log.warning("%s is an incomplete or damaged output of %s: redoing it", dst, f)
        todo.append((f, dst, status == "damaged"))
    if len(refused) == 1:
        raise OutputExistsError(*refused[0])
    if refused:  # every one named at once, before any work: not one per rerun
        listing = "; ".join(
            f"{d.name}: {why or 'not an output of this batch'}" for d, why in refused
        )
        raise OutputExistsError(out_dir, f"{len(refused)} of {len(files)} outputs, {listing}")
    skipped = len(files) - len(todo)
    written, failed = [], []
    for i, (f, dst, redo) in enumerate(todo, 1):
        if options.progress:
            from tqdm.auto import tqdm

            tqdm.write(f"[{i}/{len(todo)}] {f.name} -> {dst}", file=sys.stderr)
        try:
            again = replace(options, overwrite=overwrite or redo)
            written.append(write_geotiff(f, dst, again, model=model, profile=profile))
        except INPUT_ERRORS as exc:  # this file's problem: the others still run (as on Dask)
            why = str(exc) if str(f) in str(exc) else f"{f}: {exc}"
            log.error("%s", why)
            failed.append(why)
    # a rerun that skips outputs says so (it used to print nothing at all)
    log.log(
        logging.WARNING if skipped else logging.INFO,
        "%d written, %d already complete (skipped; --overwrite redoes them), %d failed",
        len(written),
        skipped,
        len(failed),
    )
    if failed:
        listing = "; ".join(failed)
        raise InputFileError(None, f"{len(failed)} of {len(todo)} file(s) failed: {listing}")
    return written


__all__ = [
    "Requested",
    "expand_inputs",
    "fit_profile",
    "gdal_env",
    "is_complete",
    "match_bands",
    "output_check",
    "output_status",
    "resolve_network",
    "upscale_geotiff",
    "upscale_many",
    "weights_provenance",
    "write_geotiff",
    "write_many",
]
