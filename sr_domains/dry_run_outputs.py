"""What a dry run says about an output: what the run would find at its name and do with it.

:func:`output_status` is the resume status a batch run finds (missing, complete, damaged, a
finished output of other weights or bands); :func:`action_of` turns it into the dry run's words
(would write, skip, redo or replace; refused); :func:`unsafe_reason` is why the run would
refuse the output whatever ``--overwrite`` says (the run's own path checks, from
:mod:`sr_domains.output_checks`). Nothing is written. Used by :mod:`sr_domains.dry_run`.
"""

from __future__ import annotations

from pathlib import Path

from .made_with import Requested
from .options import UpscaleOptions


def action_of(status: str, overwrite: bool, why: str = "") -> str:
    """The dry run's words for an output of ``status`` (:func:`output_status`; ``"foreign"``:
    something the run did not write) and ``why``."""
    if status == "missing":
        return "would write"
    if status == "complete" and not overwrite:
        return "would skip: complete"
    if status == "damaged":
        return f"would redo: {why or 'damaged or cut short'}"
    if overwrite:
        return "would replace (--overwrite)"
    if why:  # a finished output of a run with other weights or bands
        return f"refused: exists, {why} (pass --overwrite)"
    return "refused: exists (pass --overwrite)"


def absent(dst: Path) -> bool:
    """No output yet (an empty folder is no output either)."""
    return not dst.exists() or (dst.is_dir() and not any(dst.iterdir()))


#: How this process's GeoTIFF batch ends its refusal of what is at an output's name
#: (:func:`~sr_domains.output_checks.never_replaced`, or a file of another format).
GEOTIFF_BATCH_NEVER = (
    "never replaced, even with --overwrite: remove it yourself or choose another folder"
)


def unsafe_reason(
    domain: str, src: Path, dst: Path, cog: bool = False, batch: str = "", overwrite: bool = False
) -> str:
    """Why the run would refuse ``dst`` as unsafe whatever ``--overwrite`` says (it is, holds or
    lies inside an input: for a VRT, its sources too; a folder sr_domains did not write; a
    file of another format; a COG whose ``STEM.IMD`` sidecar an input's occupies; without
    ``overwrite``, GDAL sidecars of an output that is not there), or "". In
    a ``batch`` (``"geotiff"``: this process's GeoTIFF batch; ``"tasks"``: the batch runner),
    what is never replaced at the name it writes (a folder, a named pipe) in its words."""
    from .errors import UnsafeOutputError
    from .output_checks import (
        Kind,
        check_batch_output,
        check_existing,
        check_paths,
        never_replaced,
        other_format,
    )

    inputs = [src]
    if domain == "geotiff":
        from .geo.gdal_paths import raster_inputs

        inputs = raster_inputs(src)
    kind: Kind = "dir" if domain == "dicom" else "file"
    named = _misnamed(domain, src, dst)
    if named:
        return named
    if batch == "geotiff":  # (its own listing: geo/batch.py)
        what = never_replaced(dst) or (
            "not a GeoTIFF file" if dst.is_file() and other_format(dst) else ""
        )
        if what:
            return f"{what}; {GEOTIFF_BATCH_NEVER}"
    try:
        if batch:  # (a folder at a file's name: the batch's refusal, not a single run's)
            check_batch_output(dst, kind=kind)
        check_paths(dst, inputs, kind=kind)
        check_existing(dst, kind=kind, overwrite=True)  # (never replaced: a user's folder)
        if domain == "geotiff":
            _check_sidecars(src, dst, inputs, cog, overwrite)
    except UnsafeOutputError as exc:
        return exc.problem
    return ""


def _check_sidecars(src: Path, dst: Path, inputs: list[Path], cog: bool, overwrite: bool) -> None:
    """The run's sidecar refusal (:func:`~sr_domains.geo.sidecars.plan_sidecars`), from the
    input's headers."""
    import rasterio

    from .geo.gdal_paths import gdal_path
    from .geo.sidecars import cog_sidecars, plan_sidecars

    writes: list[Path] = []
    if cog:
        try:
            with rasterio.open(gdal_path(src)) as ds:
                writes = cog_sidecars(dst, ds)
        except rasterio.errors.RasterioIOError:
            return  # (unreadable: reported as the input's error)
    plan_sidecars(dst, inputs, writes=writes, overwrite=overwrite)


def _misnamed(domain: str, src: Path, dst: Path) -> str:
    """Why the run would refuse the output's name (it must say what is written; GDAL must be
    able to take a GeoTIFF's), or ""."""
    from .errors import ConfigError, UnsafeOutputError

    try:
        if domain == "geotiff":
            from .geo.output_spec import check_output_name as check_geotiff_name

            check_geotiff_name(dst, src)
        else:
            from .medical.nifti import check_output_name

            check_output_name(dst, domain)
    except ConfigError as exc:
        return str(exc).split(": ", 1)[-1]
    except UnsafeOutputError as exc:
        return exc.problem
    return ""


def output_status(domain: str, src: Path, dst: Path, options: UpscaleOptions) -> tuple[str, str]:
    """``(status, why)`` of an output, as a run would find it (see the domain functions)."""
    if absent(dst):
        return "missing", ""
    requested = Requested.of(options, domain=domain)
    try:
        if domain == "geotiff":
            from .geo.resume import batch_check

            return batch_check(dst, src, options.scale, requested)[:2]
        if domain == "nifti":
            from .medical.nifti_upscale import nifti_output_check

            return nifti_output_check(dst, src, options.scale, requested)
        from .medical.api import dicom_output_check

        return dicom_output_check(dst, src, options.series_uid, options.scale, requested)
    except Exception:
        return "foreign", ""


__all__ = ["GEOTIFF_BATCH_NEVER", "absent", "action_of", "output_status", "unsafe_reason"]
