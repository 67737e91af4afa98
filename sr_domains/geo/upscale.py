"""``upscale_geotiff`` (one file) and ``upscale_many`` (a folder or glob, resumable)."""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from ..made_with import Made, Requested
from ..models.base import SRModel
from ..options import AdaptOptions, check_save_model_batch, output_name
from ..run_recipe import recipe
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
from .reader import RasterSource, open_dataset
from .writer import (
    adopt_sidecars,
    create,
    remove_sidecars,
    to_cog,
    write_error,
)

try:
    from rasterio.errors import RasterioError
    from rasterio.windows import Window
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
    src, dst = Path(src), Path(dst)
    if not 1 <= int(scale) <= 16:
        raise ConfigError(f"scale must be an integer 1..16, got {scale}")
    check_output_name(dst, src)
    preflight(dst, [src], kind="file", overwrite=overwrite)
    with gdal_env(), RasterSource(src, tuple(bands) if bands else None, nodata) as rs:
        job = prepare_job(
            rs,
            model=model,
            weights=weights,
            scale=scale,
            profile=profile,
            values=values,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            device=device,
            amp=amp,
            adapt=adapt,
            progress=progress,
            dtype=dtype,
            creation_options=creation_options,
        )
        made_with = recipe(
            profile=profile,
            values=values,
            adapt=adapt,
            nodata=nodata,
            dtype=dtype,
            cog=cog,
            creation_options=creation_options,
        )  # the options a resumed batch compares (sr_domains.made_with)
        job.spec.tags.setdefault(None, {})[f"{TAG_PREFIX}RECIPE"] = made_with
        with atomic_output(dst, [src], overwrite=overwrite) as tmp:
            stage = temp_name(dst, ".tif") if cog else tmp
            try:
                with create(stage, job.spec) as out:
                    write_pixels(job, rs, out, progress=progress)
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


def output_check(
    dst: Path, src: Path, scale: int, requested: Requested | None = None
) -> tuple[str, str]:
    """``(status, why)``: :func:`output_status`, and for ``"other"`` how the output was made
    otherwise than ``requested``."""
    if not dst.exists():
        return "missing", ""
    try:
        with open_dataset(src) as ds:
            want = (ds.height * scale, ds.width * scale)
            n_bands = ds.count
    except (InputFileError, OSError):
        return "foreign", ""
    try:
        ds = open_dataset(dst)
    except (InputFileError, OSError, RasterioError):
        return "foreign", ""  # cannot even tell whose it is
    with ds:
        tags = ds.tags()
        ours = (
            tags.get(f"{TAG_PREFIX}SYNTHETIC") == "super-resolved"
            and tags.get(f"{TAG_PREFIX}SOURCE") == src.name
            and tags.get(f"{TAG_PREFIX}SCALE") == str(scale)
        )
        if not ours:
            return "foreign", ""
        if (ds.height, ds.width) != want or f"{TAG_PREFIX}VALUES" not in tags:
            return "damaged", ""
        made = Made.from_tags(tags, TAG_PREFIX)
        why = requested.differs(made, scale, n_bands) if requested is not None else ""
        if why:
            return "other", why
        try:
            rows = max(ds.block_shapes[0][0], 1)
            for y0 in range(0, ds.height, rows):  # bounded memory: one block row at a time
                ds.read(window=Window(0, y0, ds.width, min(rows, ds.height - y0)))
        except (OSError, RasterioError):
            return "damaged", ""
    return "complete", ""


def output_status(dst: Path, src: Path, scale: int, requested: Requested | None = None) -> str:
    """``"missing"``, ``"complete"`` (a finished output of ``src`` at ``scale``), ``"damaged"``
    (ours for this source and scale, but unreadable or cut short: redo it), ``"other"`` (a
    finished output of ours made otherwise than ``requested``: other weights or bands) or
    ``"foreign"``.

    Outputs are renamed into place only when complete, but a file can still be damaged later
    (a copy cut short, a disk error), so the header is not trusted alone: our provenance tags
    for this source and scale, the tag written last (``SR_DOMAINS_VALUES``), the expected size,
    and every block of every band readable.
    """
    return output_check(dst, src, scale, requested)[0]


def is_complete(dst: Path, src: Path, scale: int) -> bool:
    """True when ``dst`` is a finished, fully readable output of ``src`` at ``scale``."""
    return output_status(dst, src, scale) == "complete"


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
    files = expand_inputs(inputs)
    if not files:
        raise InputFileError(str(inputs), "no GeoTIFF files found (*.tif, *.tiff)")
    adapt = kwargs.get("adapt")
    check_save_model_batch(getattr(adapt, "save_model", None), len(files))
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
    requested = Requested(
        model=kwargs.get("model"),
        weights=kwargs.get("weights"),
        bands=kwargs.get("bands"),
        adapt=kwargs.get("adapt") is not None,
        recipe=recipe(
            **{
                k: kwargs.get(k)
                for k in ("profile", "values", "adapt", "nodata", "dtype", "creation_options")
            },
            cog=bool(kwargs.get("cog")),
        ),
    )
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
        if kwargs.get("progress"):
            from tqdm.auto import tqdm

            tqdm.write(f"[{i}/{len(todo)}] {f.name} -> {dst}", file=sys.stderr)
        try:
            written.append(
                upscale_geotiff(f, dst, scale=scale, overwrite=overwrite or redo, **kwargs)
            )
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
]
