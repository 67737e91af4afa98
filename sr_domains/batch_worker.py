"""One batch task, run in this process or on a Dask worker (:mod:`sr_domains.distributed`
plans and runs the batch): the per-process model cache (:func:`worker_model`), whether the
output is already done (:func:`task_status`) and the task itself (:func:`run_task`), which calls
the same per-file function as the sequential CLI and returns the manifest line's facts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from .batch_tasks import Task, TaskResult
from .engine_config import engine_settings, settings_with
from .errors import (
    INPUT_ERRORS,
    CheckpointError,
    OutputBusyError,
    OutputExistsError,
    SRDomainsError,
)
from .folder_listing import FolderListing
from .io_safety import errno_cause, weights_sha256
from .made_with import Requested
from .options import UpscaleOptions, engine_fields
from .output_checks import check_batch_output
from .run_manifest import file_sha256, output_files, output_sha256, recorded_sha

log = logging.getLogger(__name__)

#: Errors that fail only their own task (recorded, not retried: they would recur): an input's
#: own problems and unusable weights; others propagate, so Dask retries the task.
HANDLED: tuple[type[Exception], ...] = (*INPUT_ERRORS, CheckpointError)


def os_error_line(exc: OSError, path: str = "") -> str:
    """One line for an OS error, as the CLI prints it: the path, then the cause
    (``"out/a.tif: Permission denied"``; ``path`` when the error names none)."""
    root = errno_cause(exc)
    cause = root.strerror or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    where = exc.filename or root.filename or path
    return f"{where}: {cause}" if where and str(where) not in cause else cause


_MODELS: dict[tuple[Any, ...], Any] = {}


def _n_bands(task: Task, options: UpscaleOptions) -> int | None:
    if task.domain != "geotiff":
        return None
    if options.bands:
        return len(options.bands)
    from .geo.reader import RasterSource

    with RasterSource(task.src) as rs:
        return rs.n_bands


def worker_model(task: Task, options: UpscaleOptions) -> Any:
    """The model for ``task``, loaded once per worker process (cached by the model options and
    the band count that picks the default weights). It remembers the file it came from, so
    outputs carry the same provenance as a sequential run."""
    from .pretrained import default_pretrained, list_pretrained, resolve_model

    n = _n_bands(task, options)
    # keyed by the file's checksum, not only its name: weights rewritten in place (a retrained
    # model) are loaded again by a long-lived worker, not served stale from the cache
    w = options.weights
    digest = weights_sha256(Path(w)) if w is not None and Path(w).is_file() else None
    key = (options.model, str(w), digest, options.scale, n)
    if key not in _MODELS:
        net = resolve_model(options.model, w, scale=options.scale, n_bands=n)
        if w is not None:
            net.weights_source = (Path(w).name, str(w))
            if digest is not None:  # provenance names what was loaded
                net.weights_sha256 = digest
        else:
            shipped = {e.name: e for e in list_pretrained()}
            entry = (
                shipped.get(options.model)
                if options.model
                else default_pretrained(options.scale, n or 1)
            )
            if entry is not None:
                net.weights_source = (entry.name, str(entry.path))
                net.weights_sha256 = weights_sha256(Path(entry.path))
            # an unnamed default: the domain code may still pick by input (noise_gate)
            net.chosen_by_default = options.model is None
        for stale in [k for k in _MODELS if k[:2] == key[:2] and k[3:] == key[3:]]:
            del _MODELS[stale]  # the same file's earlier contents
        _MODELS[key] = net
    return _MODELS[key]


def task_status(task: Task, options: UpscaleOptions, model: Any = None) -> tuple[str, str]:
    """``(status, why)``: ``missing``, ``complete``, ``damaged``, ``foreign`` or ``other``: a
    finished output made otherwise than ``options`` ask (other weights, bands, mode or
    ``--adapt``; :mod:`sr_domains.made_with`), with how (see the domain functions; ``model``: a
    model object the run uses instead of ``options.model``)."""
    status, why, _ = _task_status(task, options, model)
    return status, why


def _task_status(task: Task, options: UpscaleOptions, model: Any) -> tuple[str, str, str]:
    """:func:`task_status` and, for a GeoTIFF a run manifest records, the file's checksum
    ("" when not read; :func:`sr_domains.geo.resume.batch_check`)."""
    src, dst = Path(task.src), Path(task.dst)
    requested = Requested.of(options, model, task.domain)
    if task.domain == "geotiff":
        from .geo.resume import batch_check

        return batch_check(dst, src, options.scale, requested)
    if task.domain == "nifti":
        from .medical.nifti_upscale import nifti_output_check

        return (*nifti_output_check(dst, src, options.scale, requested), "")
    from .medical.api import dicom_output_check

    return (*dicom_output_check(dst, src, task.series_uid, options.scale, requested), "")


def run_task(
    task: Task, options: UpscaleOptions, model: Any = None, listing: FolderListing | None = None
) -> TaskResult:
    """Run one task in this process (the function Dask workers execute) under the engine
    settings of ``options`` (``backend``, ``threads``, ``max_memory``; unset ones: those in
    force here). Bad input, options or outputs give a ``failed`` result; other errors
    propagate, so Dask retries them. ``listing``: of a GeoTIFF output's folder, taken once by
    the batch (:mod:`sr_domains.folder_listing`)."""
    with engine_settings(settings_with(**engine_fields(options))):
        return _run_task(task, options, model, listing)


def _run_task(
    task: Task, options: UpscaleOptions, model: Any, listing: FolderListing | None = None
) -> TaskResult:
    from .adapters import domain_registry

    t0 = time.perf_counter()
    carried = ""  # a cut-short output's recorded checksum, kept if its repair fails
    try:
        fresh = ("missing", "", "")
        check_batch_output(task.dst, kind="dir" if task.domain == "dicom" else "file")
        if task.domain == "geotiff":  # (a path GDAL cannot be given: before the model is read)
            from .geo.gdal_paths import check_gdal_names

            check_gdal_names(task.src, task.dst)
        try:
            status, why, sha = fresh if options.overwrite else _task_status(task, options, model)
        except OSError as exc:  # an existing output that cannot be read (no permission, ...)
            if isinstance(exc, SRDomainsError):
                raise
            # refused as the sequential batch refuses it: one line, not retried (it would
            # recur), and the output's record stands (what the manifest knew of it)
            error, seconds = os_error_line(exc, task.dst), time.perf_counter() - t0
            return TaskResult(task, "failed", error=error, seconds=seconds, not_ours=True)
        if status == "damaged" and task.domain == "geotiff":
            carried = recorded_sha(Path(task.src), Path(task.dst))
        if status == "complete":  # (its checksum kept: a later cut-short copy is then known,
            # and the run manifest names the weights of the record of the same bytes)
            sha = sha or output_sha256(Path(task.dst))  # (a NIfTI file, a DICOM folder too)
            return TaskResult(task, "skipped", sha256=sha, seconds=time.perf_counter() - t0)
        if status in ("foreign", "other"):
            raise OutputExistsError(task.dst, why)
        if status == "damaged":
            if why:
                log.warning("%s: %s: redoing it", task.dst, why)
            else:
                log.warning("%s is an incomplete or damaged output: redoing it", task.dst)
        net = model if model is not None else worker_model(task, options)
        opts = dataclasses.replace(
            options,
            overwrite=options.overwrite or status == "damaged",
            progress=False,
            series_uid=task.series_uid,
            # the cached model is those weights: not loaded again for every task
            weights=options.weights if model is not None else None,
        )
        adapter = domain_registry().get(task.domain).load()
        listed = {"listing": listing} if listing is not None else {}  # (a GeoTIFF's)
        outputs = adapter.upscale(Path(task.src), Path(task.dst), opts, model=net, **listed)
    except HANDLED as exc:
        sha = carried if Path(task.dst).is_file() else ""
        not_ours = isinstance(exc, (OutputBusyError, OutputExistsError))  # (see TaskResult)
        seconds = time.perf_counter() - t0
        return TaskResult(
            task, "failed", error=str(exc), sha256=sha, seconds=seconds, not_ours=not_ours
        )
    files = [f for out in map(Path, outputs) for f in output_files(out)]
    name, sha = _weights_named(net)
    return TaskResult(
        task,
        "ok",
        seconds=time.perf_counter() - t0,
        outputs=[str(p) for p in outputs],
        sha256=file_sha256(files),
        model=name,
        weights_sha256=sha,
    )


def _weights_named(net: Any) -> tuple[str, str]:
    """``(name, sha256)`` of the weights of ``net`` as the outputs' provenance names them: the
    file a worker loaded (``weights_source``), else a model object's card name and the
    checksum of its state (it was "edsr" and "" for ``upscale_many(..., model=net)``)."""
    source = getattr(net, "weights_source", None)
    if source:
        loaded = getattr(net, "weights_sha256", "")
        return str(source[0]), loaded or file_sha256([Path(source[1])])
    from .made_with import weights_provenance

    name, sha, _ = weights_provenance(net, None, net, 2, 1)  # (scale and bands: unused here)
    return name, sha


__all__ = ["HANDLED", "os_error_line", "run_task", "task_status", "worker_model"]
