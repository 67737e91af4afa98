"""Scale out on Dask: one task per file / volume / series, on an embedded ``LocalCluster`` or
any existing cluster. Nothing domain-specific lives here: a task calls the same per-file
function as the sequential CLI (the domain adapters' ``upscale``).

* **Planning** (:func:`~sr_domains.batch_tasks.plan_tasks`, re-exported): GeoTIFFs and NIfTI
  files of a folder or glob, and every DICOM series found under a folder (one task each);
  output names mirror the inputs, and a batch of one DICOM series writes it into the output
  folder itself, as the sequential CLI does.
* **Cluster** (:func:`~sr_domains.dask_cluster.cluster_client`, re-exported): a user's
  client, a scheduler's, or an embedded ``LocalCluster`` of the run's own workers.
* **Workers** (:mod:`sr_domains.batch_worker`, one task) load the model once per process (a
  per-process cache keyed by the model options and the weights file's checksum) and run torch
  with ``cores // workers`` threads (a worker plugin), so workers do not oversubscribe the
  machine.
* **Idempotent and resumable**: outputs are written atomically (:mod:`sr_domains.io_safety`);
  a task whose output is already complete is skipped, one of ours that is damaged is redone.
  Dask retries a task whose worker died; a bad input fails only its own task.
* **Engine settings** (``backend``, ``threads``, ``max_memory`` of the options, else those in
  force where the run starts) travel with the options; every task runs under them, as the
  sequential CLI does.
* **Stopped runs** (Ctrl-C, SIGTERM) cancel their tasks, remove the lock and temporary
  files their killed workers left (:func:`remove_leftovers`) and record the outputs their
  running tasks finished all the same (:mod:`sr_domains.batch_stop`).
* **Run manifest** ``sr-domains-run.jsonl`` next to the outputs: one JSON line per task with
  input, output, status, error, seconds, output sha256, model and weights hash; appended as
  each task ends (a run stopped part-way keeps them), written again atomically at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .batch_stop import (
    Stamp,
    cancel_quietly,
    clean_litter,
    record_stopped,
    remove_leftovers,
    stamp,
    stamps,
)
from .batch_tasks import RunReport, Task, TaskResult, plan_tasks
from .batch_worker import os_error_line, run_task, task_status, worker_model
from .dask_cluster import SCHEDULER_ENV, cluster_client, dask_distributed, embedded, level_restored
from .engine_config import carry_settings, settings_with
from .errors import SRDomainsError
from .folder_listing import FolderListing, listings
from .options import UpscaleOptions, check_save_model_batch, engine_fields, saved_model_path
from .output_checks import RUN_MANIFEST, is_run_manifest
from .run_manifest import append_run_record, check_manifest_slot, write_run_manifest

log = logging.getLogger(__name__)


def upscale_many(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    options: UpscaleOptions | None = None,
    model: Any = None,
    client: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = 2,
    progress: bool = False,
    domain: str | None = None,
) -> RunReport:
    """Super-resolve a batch of GeoTIFFs, NIfTI volumes and DICOM series, one task each, on
    Dask (or in this process when no client, ``workers`` or ``scheduler`` is given).

    Args:
        inputs: folders, globs, files or a list of them (see :func:`plan_tasks`).
        out_dir: the output folder (never one holding or inside the inputs).
        options: what to do (scale, model, weights, profile, value rules, ...), and how: the
            engine's ``backend``, ``threads`` and ``max_memory`` (unset ones: those of an
            enclosing :func:`~sr_domains.engine_config.engine_settings` block), on every worker.
        model: a built :class:`~sr_domains.models.SRModel` to use instead of
            ``options.model`` (shipped to each worker once).
        client: an existing ``distributed.Client``; else ``scheduler`` (an address, or the
            ``SR_DOMAINS_SCHEDULER`` environment variable) or a ``LocalCluster`` of ``workers``.
        retries: Dask retries of a task whose worker died or that raised an unexpected error.
        progress: a progress bar over tasks.
        domain: only the inputs of this domain (``geotiff``, ``nifti``, ``dicom``; CLI
            ``--domain``), as a sequential run takes a folder as that domain's input.

    Returns:
        The :class:`RunReport` (also written as ``out_dir/sr-domains-run.jsonl`` when an
        output is there: ``RunReport.manifest`` is None otherwise). Failed tasks
        do not stop the others; check :attr:`RunReport.failed`. A run stopped by Ctrl-C or
        SIGTERM cancels its tasks, removes the lock and temporary files of those it had
        sent (:func:`remove_leftovers`) and appends to the run manifest the outputs its
        running tasks wrote all the same (:func:`~sr_domains.batch_stop.record_stopped`).
    """
    options = options or UpscaleOptions()
    # the caller's engine settings, resolved here: they travel with the options to the workers
    options = carry_settings(options, settings_with(**engine_fields(options)))
    out_dir = Path(out_dir)
    tasks = plan_tasks(inputs, out_dir, options.suffix, options.series_uid, domain)
    check_save_model_batch(saved_model_path(options), len(tasks))
    if options.cog:  # (two COGs of one stem would keep their IMD in one STEM.IMD)
        from .geo.sidecar_plan import refuse_imd_clashes

        refuse_imd_clashes([(t.src, t.dst) for t in tasks if t.domain == "geotiff"])
    if options.creation_options and any(t.domain == "geotiff" for t in tasks):
        from .geo.creation_options import normalize
        from .geo.upscale import check_keywords

        # what holds for every file, refused once before any work (not per task)
        check_keywords(normalize(options.creation_options), cog=options.cog, api=False)
    if any(Path(t.dst) == out_dir for t in tasks):  # one DICOM series: out_dir is its folder
        _drop_run_manifest(out_dir)
    check_manifest_slot(out_dir)
    results: list[TaskResult] = []
    in_flight: set[Task] = set()  # tasks sent to workers whose result has not come back
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), unit="file", desc="sr-domains")
    own_workers = client is None and not (scheduler or os.environ.get(SCHEDULER_ENV))
    if own_workers and workers and workers > max(1, len(tasks)):  # idle ones would import torch
        log.info("%d worker(s) asked for, %d started: one per task", workers, max(1, len(tasks)))
        workers = max(1, len(tasks))
    dask_log = logging.getLogger("distributed")
    clean_litter(tasks)  # what a killed or twice-interrupted run left beside any output
    before = stamps(tasks)  # what is at each output now (a stopped run: see record_stopped)
    # each GeoTIFF output folder listed once for the run (the GDAL sidecar rules read it)
    listed = listings(t.dst for t in tasks if t.domain == "geotiff")
    try:
        with (
            level_restored(dask_log, dask_log.level),
            cluster_client(client, workers, scheduler) as c,
        ):
            if c is None:
                for t in tasks:
                    results.append(run_task(t, options, model, listed.get(t.dst)))
                    append_run_record(out_dir, results[-1])  # kept if the run stops here
                    if bar is not None:
                        bar.update(1)
            else:
                run = (c, tasks, options, model, retries, bar, out_dir, in_flight, own_workers)
                results = _run_on(*run, before, listed)
    except BaseException:  # Ctrl-C, SIGTERM, or an error of the run itself
        # the cluster is closed by now (an embedded one: its workers are gone, and nothing of
        # the run writes any more): its litter removed, the outputs its tasks in flight wrote
        # all the same (a running task is not stopped by a cancel) recorded, as written
        remove_leftovers(in_flight)
        record_stopped(out_dir, in_flight, before, options, model)
        raise
    finally:
        if bar is not None:
            bar.close()
    manifest = write_run_manifest(out_dir, results, [Path(t.src) for t in tasks])
    report = RunReport(results, manifest)
    log.info("%s", report.summary())
    return report


def _drop_run_manifest(out_dir: Path) -> None:
    """Remove the run manifest a failed run left alone in ``out_dir`` when the batch's one
    task writes its series into ``out_dir`` itself (the sequential layout): a folder holding
    only it would be an existing output ("output exists"). Beside a series it is ours
    (:func:`~sr_domains.output_checks.foreign_entries`); the run writes it again at its end
    (when an output is there)."""
    stale = out_dir / RUN_MANIFEST
    if stale.is_file() and os.listdir(out_dir) == [RUN_MANIFEST] and is_run_manifest(stale):
        stale.unlink()  # (beside a series of ours it is ours: output_checks.foreign_entries)


def _run_on(
    c: Any,
    tasks: list[Task],
    options: UpscaleOptions,
    model: Any,
    retries: int,
    bar: Any,
    out_dir: Path,
    in_flight: set[Task],
    own_workers: bool = False,
    before: dict[Task, Stamp] | None = None,
    listed: dict[str, FolderListing] | None = None,
) -> list[TaskResult]:
    """Run ``tasks`` on the client's cluster; ``in_flight`` holds those not yet back. A run
    stopped here (Ctrl-C, SIGTERM) cancels what is left (``own_workers``: those of an embedded
    cluster, told to log only errors while they go). A task whose retries ran out fails with
    one line; its output's record stands when the output is as it was (``before``). Each task
    carries the part of its output folder's listing (``listed``) near its output."""
    dist = dask_distributed()
    if c.dashboard_link and getattr(c, "cluster", None) is None:  # a scheduler's (the embedded
        log.info("Dask dashboard: %s", c.dashboard_link)  # cluster's has no dashboard)
    # a key of its own (hash=False): the same model scattered by the previous run under its
    # content hash may still be being released, and a task needing it is then cancelled
    shipped = c.scatter(model, broadcast=True, hash=False) if model is not None else None
    remote = _absolute_options(options)
    near = {t: f.near(t.dst) for t in tasks if (f := (listed or {}).get(t.dst))}  # (small)
    how: dict[str, Any] = {"retries": retries, "pure": False}
    futures = {
        c.submit(run_task, _absolute_task(t), remote, shipped, near.get(t), **how): t for t in tasks
    }
    in_flight.update(tasks)
    by_task: dict[Task, TaskResult] = {}
    try:
        for fut in dist.as_completed(futures, loop=c.loop):  # (c: perhaps not the default)
            t = futures[fut]
            try:  # reported with the paths as the user gave them
                by_task[t] = _as_given(fut.result(), t)
            except Exception as exc:  # retries exhausted (worker died repeatedly, unexpected)
                untouched = before is not None and stamp(t) == before.get(t)
                by_task[t] = TaskResult(t, "failed", error=_one_line(exc, t), not_ours=untouched)
            in_flight.discard(t)
            append_run_record(out_dir, by_task[t])  # kept if the run stops here
            if bar is not None:
                bar.update(1)
    except BaseException:
        cancel_quietly(c, list(futures), own_workers)
        raise
    return [by_task[t] for t in tasks]


def _one_line(exc: Exception, task: Task) -> str:
    """The one-line error of a task that raised (paths as the user gave them)."""
    if isinstance(exc, OSError) and not isinstance(exc, SRDomainsError):
        text = os_error_line(exc, task.dst)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        text = first if isinstance(exc, SRDomainsError) else f"{type(exc).__name__}: {first}"
    sent = _absolute_task(task)
    return text.replace(sent.dst, task.dst).replace(sent.src, task.src)


def _as_given(result: TaskResult, task: Task) -> TaskResult:
    """A worker's ``result`` for ``task`` (run with absolute paths, :func:`_absolute_task`)
    with the paths as the user gave them, in its error text too."""
    sent = _absolute_task(task)
    error = result.error.replace(sent.dst, task.dst).replace(sent.src, task.src)
    return dataclasses.replace(result, task=task, error=error)


def _absolute_task(task: Task) -> Task:
    """``task`` with absolute paths: a worker of an existing cluster runs in its own working
    directory, where a relative path names another file, or none."""
    return dataclasses.replace(task, src=os.path.abspath(task.src), dst=os.path.abspath(task.dst))


def _absolute_options(options: UpscaleOptions) -> UpscaleOptions:
    """``options`` with the files they name made absolute (see :func:`_absolute_task`): the
    weights (when they name a file here, not shipped weights) and where a fitted or adapted
    model is saved."""
    weights = options.weights
    if weights is not None and Path(weights).exists():
        weights = Path(os.path.abspath(weights))
    internal, adapt = options.internal, options.adapt
    if internal.save_model is not None:
        internal = dataclasses.replace(
            internal, save_model=Path(os.path.abspath(internal.save_model))
        )
    if adapt is not None and adapt.save_model is not None:
        adapt = dataclasses.replace(adapt, save_model=Path(os.path.abspath(adapt.save_model)))
    return dataclasses.replace(options, weights=weights, internal=internal, adapt=adapt)


__all__ = [
    "RUN_MANIFEST",
    "RunReport",
    "Task",
    "TaskResult",
    "cluster_client",
    "embedded",
    "plan_tasks",
    "remove_leftovers",
    "run_task",
    "task_status",
    "upscale_many",
    "worker_model",
]
