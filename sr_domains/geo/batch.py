"""A folder, glob or list of GeoTIFFs in one process: ``upscale_many`` / ``write_many``
(resumable, with a run manifest, :mod:`sr_domains.run_manifest`, next to the outputs; on Dask:
:mod:`sr_domains.distributed`)."""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..batch_tasks import (
    BatchFailedError,
    BatchOutputs,
    RunReport,
    Task,
    TaskResult,
    check_batch_reads,
    refuse_collisions,
)
from ..batch_worker import os_error_line
from ..errors import (
    INPUT_ERRORS,
    ConfigError,
    InputFileError,
    OutputBusyError,
    OutputExistsError,
    SRDomainsError,
    UnsafeOutputError,
)
from ..intensity import IntensityProfile
from ..io_safety import batch_entry, check_paths
from ..made_with import Made, Requested
from ..models.base import SRModel
from ..options import UpscaleOptions, check_save_model_batch
from ..output_checks import check_batch_folder, never_replaced, other_format
from ..output_names import check_names
from ..run_manifest import (
    append_run_record,
    check_manifest_slot,
    file_sha256,
    recorded_sha,
    write_run_manifest,
)
from ..run_recipe import recipe_of
from .creation_options import normalize
from .gdal_paths import open_dataset, raster_inputs
from .names import BATCH_SUFFIXES, geotiff_output_name
from .output_spec import TAG_PREFIX
from .resume import batch_check
from .sidecar_plan import refuse_imd_clashes
from .sidecars import FolderListing, orphan_problem, orphan_sidecars
from .upscale import geotiff_options, write_geotiff

log = logging.getLogger(__name__)
_PATTERNS = ", ".join(f"*{s}" for s in BATCH_SUFFIXES)


def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by a folder (its ``*.tif``/``*.tiff``, and JPEG 2000 and VRT rasters), a glob
    pattern, a file, or a list.
    A broken link is kept (it fails with its own error instead of vanishing from the batch)."""
    if isinstance(inputs, (list, tuple)):
        return [p for item in inputs for p in expand_inputs(item)]
    text = str(inputs)
    p = Path(text)
    if p.is_dir():
        found = [q for q in p.iterdir() if q.suffix.lower() in BATCH_SUFFIXES]
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
) -> BatchOutputs:
    """Upscale every GeoTIFF in a folder / glob / list into ``out_dir`` (same file names, with
    ``suffix`` before the extension).

    Resumable: an output that is already complete (see
    :func:`~sr_domains.geo.resume.output_status`) is skipped, one of ours that is damaged or
    cut short is redone; any other existing output is an error unless ``overwrite``. A file
    that cannot be read or upscaled (its content, bands that do not fit the model, its
    geometry, an unsafe or busy output) is reported with its name and the batch goes on; the
    error raised at the end lists the failures. Each run records what it did in
    ``out_dir/sr-domains-run.jsonl`` (the run manifest; none is started when no output is
    there): a later run then knows an output of
    its own that was cut short too early to read its tags, and skips an intact one without
    decoding it again.

    The summary (how many were written, skipped and failed) is logged at INFO and kept, with
    each input's record, in the result's ``report`` (a
    :class:`~sr_domains.batch_tasks.RunReport`; ``sr-domains upscale`` prints it); failures
    raise :class:`~sr_domains.batch_tasks.BatchFailedError` (an
    :class:`~sr_domains.errors.InputFileError`) at the end, whose ``report`` is the same.

    Returns:
        The outputs written by this call (skipped ones are not listed): a list, with the run's
        ``report``.
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
) -> BatchOutputs:
    """:func:`upscale_many` with its options as one object (see :func:`write_geotiff`)."""
    scale, overwrite, suffix = options.scale, options.overwrite, options.suffix
    files = expand_inputs(inputs)
    if not files:
        raise InputFileError(str(inputs), f"no GeoTIFF files found ({_PATTERNS})")
    check_save_model_batch(getattr(options.adapt, "save_model", None), len(files))
    if options.creation_options:  # what holds for every file: refused once, not per file
        from .upscale import check_keywords

        check_keywords(normalize(options.creation_options), cog=options.cog, api=False)
    out_dir = Path(out_dir)
    names = [geotiff_output_name(f, suffix) for f in files]
    refuse_collisions([(str(f), str(out_dir / n)) for f, n in zip(files, names)])
    if options.cog:  # (two COGs of one stem would keep their IMD in one STEM.IMD)
        refuse_imd_clashes([(f, out_dir / n) for f, n in zip(files, names)])
    roots = [Path(inputs)] if isinstance(inputs, (str, Path)) and Path(inputs).is_dir() else []
    check_paths(out_dir, [*roots, *files], kind="dir")
    check_names(out_dir, [(str(out_dir / n), "file") for n in names])
    # (an output that another input reads, a VRT's source: refused before any work)
    check_batch_reads(
        [Task("geotiff", str(f), str(out_dir / n)) for f, n in zip(files, names)], out_dir
    )
    check_batch_folder(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder; batch outputs go to a folder")
    requested = Requested.of(options, model, "geotiff")
    if profile is not None:  # a fitted profile object: recorded as such (sr_domains.run_recipe)
        requested = replace(requested, recipe=recipe_of(options, "geotiff", profile=profile))
    todo, records = [], []
    refused: list[tuple[Path, str]] = []
    unsafe: dict[str, list[str]] = {}
    orphaned: list[tuple[Path, list[Path]]] = []  # sidecars without their output
    listed = FolderListing.of(out_dir)  # (once: every output's GDAL sidecar rules read it)
    for f in files:
        dst = out_dir / geotiff_output_name(f, suffix)
        never = _never_replaced(dst)
        if never:  # (before batch_check: never opened)
            unsafe.setdefault(never, []).append(dst.name)
            continue
        fresh = ("missing", "", "")
        try:
            status, why, sha = fresh if overwrite else batch_check(dst, f, scale, requested)
        except OSError as exc:  # an existing output that cannot be read (no permission, ...)
            if isinstance(exc, SRDomainsError):
                raise
            # that file fails, in one line, the others run (as on Dask); its record stands
            error = os_error_line(exc, str(dst))
            log.info("failed: %s", error)
            task = Task("geotiff", str(f), str(dst))
            records.append(TaskResult(task, "failed", error=error, not_ours=True))
            continue
        if status == "complete":
            log.info("skipping %s: %s is complete", f, dst)
            task = Task("geotiff", str(f), str(dst))  # its checksum kept (see run_manifest)
            records.append(TaskResult(task, "skipped", sha256=sha or file_sha256([dst])))
            continue
        if status in ("foreign", "other"):
            refused.append((dst, why))
        if status == "missing" and not overwrite:  # (as write_geotiff refuses it)
            orphans = orphan_sidecars(dst, _inputs(f), listing=listed)
            if orphans:
                orphaned.append((dst, orphans))
        if status == "damaged":
            if why:
                log.warning("%s: %s: redoing it", dst, why)
            else:
                log.warning("%s is an incomplete or damaged output of %s: redoing it", dst, f)
        todo.append((f, dst, status == "damaged"))
    if unsafe:  # before any work, every one named
        listing = "; ".join(
            f"{', '.join(names)}: {what if len(names) == 1 else _PLURAL.get(what, what)}"
            for what, names in unsafe.items()
        )
        n = sum(map(len, unsafe.values()))
        raise UnsafeOutputError(
            out_dir,
            f"{listing}; never replaced, even with --overwrite: remove "
            f"{'it' if n == 1 else 'them'} yourself or choose another folder",
        )
    if orphaned:
        dst, orphans = orphaned[0]
        if len(orphaned) > 1:
            dst, orphans = out_dir, [o for _, found in orphaned for o in found]
        raise UnsafeOutputError(dst, orphan_problem(orphans))
    if len(refused) == 1:
        raise OutputExistsError(*refused[0])
    if refused:  # every one named at once, before any work: not one per rerun
        listing = "; ".join(
            f"{d.name}: {why or 'not an output of this batch'}" for d, why in refused
        )
        raise OutputExistsError(out_dir, f"{len(refused)} of {len(files)} outputs, {listing}")
    check_manifest_slot(out_dir)
    written = []
    for i, (f, dst, redo) in enumerate(todo, 1):
        if options.progress:
            from tqdm.auto import tqdm

            tqdm.write(f"[{i}/{len(todo)}] {f.name} -> {dst}", file=sys.stderr)
        task, t0 = Task("geotiff", str(f), str(dst)), time.perf_counter()
        carried = recorded_sha(f, dst) if redo else ""  # kept if the repair fails
        try:
            again = replace(options, overwrite=overwrite or redo)
            out = write_geotiff(f, dst, again, model=model, profile=profile, listing=listed)
            written.append(out)
        except INPUT_ERRORS as exc:  # this file's problem: the others still run (as on Dask)
            why = str(exc) if str(f) in str(exc) else f"{f}: {exc}"
            log.info("failed: %s", why)  # (all of them: in the report and the error at the end)
            kept = carried if dst.is_file() else ""
            not_ours = isinstance(exc, (OutputBusyError, OutputExistsError))  # (see TaskResult)
            records.append(TaskResult(task, "failed", error=why, sha256=kept, not_ours=not_ours))
        else:
            records.append(_written(task, time.perf_counter() - t0))
        append_run_record(out_dir, records[-1])  # a run stopped part-way keeps what it did
    results = sorted(records, key=lambda r: r.task.src)
    report = RunReport(results, write_run_manifest(out_dir, results, files))
    log.info("%s", report.summary())  # (a summary, not a warning: the CLI prints the report)
    if report.failed:
        raise BatchFailedError(report)
    return BatchOutputs(written, report)


_PLURAL = {
    "not a GeoTIFF file": "not GeoTIFF files",
    "a folder": "folders",
    "a named pipe (FIFO)": "named pipes (FIFO)",
}


def _never_replaced(dst: Path) -> str:
    """Why an entry at a batch output's name is never replaced, even with --overwrite, or "":
    a named pipe, socket or device (never opened), a folder (a batch writes each output under
    its exact name, never into a folder there) or a file of another format (a user's notes)."""
    what = never_replaced(dst)
    if what or not dst.is_file():
        return what
    return "not a GeoTIFF file" if other_format(dst) else ""


def _inputs(src: Path) -> list[Path]:
    """What a run reads for ``src`` (a VRT's sources too); a VRT's missing source fails that
    file's run, not this check."""
    try:
        return raster_inputs(src)
    except InputFileError:
        return [src]


def _written(task: Task, seconds: float) -> TaskResult:
    """The manifest record of an output just written: its checksum, and the weights its
    provenance tags name."""
    dst = Path(task.dst)
    with open_dataset(dst) as ds:
        made = Made.from_tags(ds.tags(), TAG_PREFIX)
    return TaskResult(
        task,
        "ok",
        seconds=seconds,
        outputs=[task.dst],
        sha256=file_sha256([dst]),
        model=made.weights,
        weights_sha256=made.sha256,
    )


__all__ = ["expand_inputs", "upscale_many", "write_many"]
