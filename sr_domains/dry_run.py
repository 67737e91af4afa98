"""``sr-domains upscale --dry-run``: what would be written, by which model, with which profile.

Nothing is written. A GeoTIFF is checked from its headers; a NIfTI file or a DICOM series is read
through as the run reads it (with the run's own checks), so a voxel type, a label image or data
cut short is found as the run finds it. For each input: the domain, the output path and what
would happen to it (written; in a batch, skipped because complete or redone because damaged;
refused because it exists, or replaced with ``--overwrite``, as the run decides;
``error: ...`` for an input the run would fail on: unreadable, a colour table, a voxel type
or label image the run refuses, its data cut short), the model
(shipped weights name or checkpoint, architecture, scale, bands, weights sha256) and the
intensity profile recipe with where it comes from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import BandMismatchError, SRDomainsError
from .io_safety import weights_sha256
from .made_with import Requested
from .options import UpscaleOptions, check_save_model_batch, saved_model_path

log = logging.getLogger(__name__)


@dataclass
class PlannedOutput:
    """One line of a dry run."""

    domain: str
    src: str
    dst: str
    action: str
    model: str = ""
    profile: str = ""

    def to_text(self) -> str:
        lines = [f"{self.domain}: {self.src} -> {self.dst} [{self.action}]"]
        if self.model:
            lines.append(f"  model {self.model}")
        if self.profile:
            lines.append(f"  profile {self.profile}")
        return "\n".join(lines)


def _describe_model(options: UpscaleOptions, n_bands: int | None) -> tuple[str, str | None]:
    """``(description, card profile recipe)`` of the model ``options`` select."""
    from .model_label import card_name
    from .pretrained import default_pretrained, list_pretrained, resolve_model

    net = resolve_model(options.model, options.weights, scale=options.scale, n_bands=n_bands)
    card = getattr(net, "card", None)
    name = card_name(net)
    source = None
    if options.weights is not None:
        source = Path(options.weights)
    else:
        entries = {e.name: e for e in list_pretrained()}
        entry = entries.get(options.model or "") or default_pretrained(options.scale, n_bands or 1)
        source = entry.path if entry is not None else None
    sha = (
        f", weights sha256 {weights_sha256(source)[:12]}..."
        if source is not None and source.exists()
        else ""
    )
    prof = getattr(card, "profile", None) if card is not None else None
    recipe = prof.get("recipe") if isinstance(prof, dict) else None
    text = (
        f"{name or options.model or 'default'} ({getattr(net, 'arch', type(net).__name__)} "
        f"x{net.scale}, {net.in_channels} band(s) in){sha}"
    )
    from .noise_gate import chosen_by_default, noise_variant

    variant = noise_variant(net) if chosen_by_default(options.model, options.weights) else None
    if variant is not None:  # (the run measures each input's noise; the dry run reads none)
        text += f"; blended towards {variant} if the input is noisy (noise gate)"
    return text, recipe


def _action(status: str, overwrite: bool, why: str = "") -> str:
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


def _absent(dst: Path) -> bool:
    """No output yet (an empty folder is no output either)."""
    return not dst.exists() or (dst.is_dir() and not any(dst.iterdir()))


#: How this process's GeoTIFF batch ends its refusal of what is at an output's name
#: (:func:`~sr_domains.output_checks.never_replaced`, or a file of another format).
GEOTIFF_BATCH_NEVER = (
    "never replaced, even with --overwrite: remove it yourself or choose another folder"
)


def _unsafe(
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


def _status(domain: str, src: Path, dst: Path, options: UpscaleOptions) -> tuple[str, str]:
    """``(status, why)`` of an output, as a run would find it (see the domain functions)."""
    if _absent(dst):
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


def _read_input(domain: str, src: Path, options: UpscaleOptions) -> tuple[int | None, Any, str]:
    """``(bands, dtype, default profile)`` of an input, refused as the run refuses it
    (:class:`~sr_domains.errors.SRDomainsError` naming the file): unreadable, a colour table, an
    unsupported voxel type, a label image, the data cut short. A GeoTIFF is checked from its
    headers; NIfTI voxels and DICOM pixels are read with the run's readers."""
    if domain == "geotiff":
        import numpy as np

        from .geo.band_checks import refuse_palette
        from .geo.dtype_checks import (
            check_output_nodata,
            warn_clipping_dtype,
            warn_value_range,
        )
        from .geo.job import gdal_env
        from .geo.output_spec import check_creation
        from .geo.reader import RasterSource

        with gdal_env(), RasterSource(src, options.bands, options.nodata) as rs:
            refuse_palette(rs)
            check_output_nodata(rs, options.dtype)
            if options.dtype is not None:  # a cast to one value is refused (reads a sample)
                warn_clipping_dtype(rs, np.dtype(options.dtype))
            warn_value_range(rs, options.values)  # a --value-range the data leave
            check_creation(
                rs, options.scale, options.dtype, options.creation_options, cog=options.cog
            )
            _refuse_cut_short(rs.ds, src)
            return rs.n_bands, rs.dtype, "mr"
    from .medical.common import check_through_plane
    from .medical.isotropic_io import thickness_used

    if domain == "dicom":
        from .medical.dicom_read import load_dicom_series

        series = load_dicom_series(src, options.series_uid)
        if options.through_plane:
            check_through_plane(src, tuple(series.shape), "series")
        series.read_volume(padding_as_nan=True)  # decoding errors, pixel data cut short
        if options.isotropic is not None and thickness_used(options.isotropic):
            from .medical.isotropic_api import series_thickness

            series_thickness(series)  # a header thickness that is none (as the run refuses)
        return None, None, "ct" if series.modality == "CT" else "mr"
    if domain == "nifti":
        from .medical.nifti import check_upscalable
        from .medical.nifti_io import open_source

        source = open_source(src)  # unreadable, voxel type, header claims beyond the file
        check_upscalable(source)  # a label image
        if options.through_plane and options.isotropic is None:
            check_through_plane(src, tuple(source.image.shape))
        for _ in source.planes():  # voxel data cut short (a gzip stream: to its checksum)
            pass
        if options.isotropic is not None:
            from .medical.isotropic_api import check_spacing_known

            check_spacing_known(source)  # an unknown voxel spacing, as the run refuses it
        if options.isotropic is not None and thickness_used(options.isotropic):
            from .medical.isotropic_io import thickness_from_sidecar

            thickness_from_sidecar(src)  # its sidecar's, as the run refuses it
        return None, source.dtype, "mr"
    return None, None, "mr"


def _refuse_cut_short(ds: Any, src: Path) -> None:
    """Refuse a GeoTIFF whose blocks end past the end of the file (a copy cut short), from the
    block offsets in its header: the run fails on it reading the pixels."""
    from .errors import InputFileError

    if ds.driver != "GTiff":
        return
    rows, cols = ds.block_shapes[0]
    n_y, n_x = -(-ds.height // max(rows, 1)), -(-ds.width // max(cols, 1))
    size = Path(src).stat().st_size
    bands = ds.indexes if ds.interleaving is not None and ds.interleaving.name == "BAND" else [1]
    for b in bands:
        for y in range(n_y):
            for x in range(n_x):
                offset = ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=b)
                length = ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=b)
                end = int(offset or 0) + int(length or 0)
                if end > size:
                    raise InputFileError(
                        src,
                        f"cut short: band {b} block ({x}, {y}) ends at byte {end}, past the "
                        f"file's {size} bytes; is the file corrupt?",
                    )


def _plan_one(
    domain: str, src: Path, dst: Path, options: UpscaleOptions, batch: str = "tasks"
) -> PlannedOutput:
    """One input's line; ``batch``: part of a folder or glob (resumable; ``"geotiff"``: this
    process's GeoTIFF batch, ``"tasks"``: the batch runner's), else (``""``) a single input,
    whose existing output is refused or replaced, never skipped or redone, as the run does.
    An input the run would fail on: ``error: ...`` (unless the run refuses its output before
    any work, or skips it as complete without reading it)."""
    try:
        n_bands, dtype, default = _read_input(domain, src, options)
        problem = ""
    except SRDomainsError as exc:
        n_bands, dtype, default, problem = None, None, "mr", str(exc)
    if batch:
        status, why = _status(domain, src, dst, options)
    else:  # a single input does not resume: an existing output is the user's to replace
        status, why = ("missing" if _absent(dst) else "foreign"), ""
    action = _action(status, options.overwrite, why)
    try:
        unsafe = _unsafe(domain, src, dst, options.cog, batch, options.overwrite)
    except SRDomainsError as exc:  # (a VRT naming a missing source: the run fails on it)
        unsafe, problem = "", problem or str(exc)
    if unsafe:  # the run refuses it whatever --overwrite says
        action = f"refused: {unsafe}"
    if problem:  # (a refused output stops the run first; a complete one is not read)
        kept = action.startswith(("refused", "would skip"))
        return PlannedOutput(domain, str(src), str(dst), action if kept else f"error: {problem}")
    try:
        model, recipe = _describe_model(options, n_bands)
    except BandMismatchError as exc:  # this file's bands: named, as the run names them
        return PlannedOutput(domain, str(src), str(dst), f"error: {exc.naming(src)}")
    except SRDomainsError as exc:
        return PlannedOutput(domain, str(src), str(dst), f"error: {exc}")
    if options.profile is not None:
        profile = f"{options.profile} (given)"
    elif recipe:
        profile = f"{recipe} (the model card's)"
    elif domain == "geotiff":
        import numpy as np

        kind = "integer" if np.dtype(dtype).kind in "ui" else "float"
        profile = f"{'dtype' if kind == 'integer' else 'identity'} (default for {kind} data)"
    else:
        profile = f"{default} (default for this modality)"
    if options.adapt is not None:
        model += f"; adapted to each input ({options.adapt.steps} steps)"
    if options.isotropic is not None:
        model = "a network fitted to each volume (--isotropic)"
    return PlannedOutput(domain, str(src), str(dst), action, model, profile)


def dry_run(
    src: Path,
    dst: Path,
    options: UpscaleOptions,
    domain: str | None = None,
    distributed: bool = False,
) -> str:
    """The dry-run report of ``sr-domains upscale SRC DST`` (module docs); ``distributed``:
    of the run on Dask (``--workers``/``--scheduler``)."""
    return report(plan(src, dst, options, domain, distributed), options)


def report(planned: list[PlannedOutput], options: UpscaleOptions) -> str:
    """The text of a dry run's ``planned`` outputs."""
    head = f"dry run: {len(planned)} output(s), scale x{options.scale}; nothing written"
    return "\n".join([head, *(p.to_text() for p in planned)])


def would_fail(planned: list[PlannedOutput]) -> bool:
    """Whether the run would stop on one of ``planned`` (an output refused, an input or model
    error): ``sr-domains upscale --dry-run`` then exits with status 1, as the run would."""
    return any(p.action.startswith(("refused", "error")) for p in planned)


def plan(
    src: Path,
    dst: Path,
    options: UpscaleOptions,
    domain: str | None = None,
    distributed: bool = False,
) -> list[PlannedOutput]:
    """What ``sr-domains upscale SRC DST`` would do with each output (module docs), in this
    process or, with ``distributed``, on Dask: the batch of the same inputs the run plans
    (:func:`~sr_domains.batch_tasks.plan_tasks`; there a DICOM series folder is a batch of one
    and resumes)."""
    from .cli_inputs import batch_domain as decide

    batch_domain = decide(src, domain, distributed)
    if batch_domain is None:
        return [_plan_single(src, dst, options, domain)]
    from .batch_tasks import plan_tasks

    found = None if batch_domain == "*" else batch_domain
    tasks = plan_tasks(str(src), dst, options.suffix, options.series_uid, found)
    check_save_model_batch(saved_model_path(options), len(tasks))  # as the run refuses it
    style = "geotiff" if batch_domain == "geotiff" else "tasks"
    planned = [_plan_one(t.domain, Path(t.src), Path(t.dst), options, style) for t in tasks]
    if batch_domain == "geotiff":  # (this process's GeoTIFF batch checks every output first)
        return _stopped_if_refused(planned)
    return planned


def _stopped_if_refused(planned: list[PlannedOutput]) -> list[PlannedOutput]:
    """A GeoTIFF batch in this process refuses its outputs before any work, all at once: with
    one refused, nothing else is written or skipped either."""
    refused = sum(p.action.startswith("refused") for p in planned)
    if not refused:
        return planned
    stop = f"not run: the batch stops before any work ({refused} output(s) refused)"
    return [replace(p, action=stop) if p.action.startswith("would") else p for p in planned]


def _plan_single(
    src: Path, dst: Path, options: UpscaleOptions, domain: str | None
) -> PlannedOutput:
    """The line of one input (a file, or a DICOM folder: one series)."""
    from .adapters import find_adapter

    name = find_adapter(src, domain).name
    out = dst
    if name == "geotiff" and dst.is_dir():
        from .geo.names import geotiff_output_name

        out = dst / geotiff_output_name(src, options.suffix)
    elif name == "nifti" and dst.is_dir():
        from .options import output_name

        out = dst / output_name(src.name, options.suffix)
    return _plan_one(name, src, out, options, batch="")


__all__ = ["PlannedOutput", "dry_run", "plan", "report", "would_fail"]
