"""Scale out on Dask: one task per file / volume / series, on an embedded ``LocalCluster`` or
any existing cluster. Nothing domain-specific lives here: a task calls the same per-file
function as the sequential CLI (the domain adapters' ``upscale``).

* **Planning** (:func:`~sr_domains.batch_tasks.plan_tasks`, re-exported): GeoTIFFs and NIfTI
  files of a folder or glob, and every DICOM series found under a folder (one task each);
  output names mirror the inputs, and a batch of one DICOM series writes it into the output
  folder itself, as the sequential CLI does.
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

import contextlib
import dataclasses
import logging
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .batch_stop import (
    IGNORE_CTRL_C,
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
from .engine_config import carry_settings, settings_with
from .errors import ConfigError, MissingDependencyError, SRDomainsError
from .folder_listing import FolderListing, listings
from .options import UpscaleOptions, check_save_model_batch, engine_fields, saved_model_path
from .output_checks import RUN_MANIFEST, is_run_manifest
from .run_manifest import append_run_record, check_manifest_slot, write_run_manifest
from .worker_plugins import console_plugin, threads_plugin

log = logging.getLogger(__name__)

#: The clients of the clusters :func:`cluster_client` started (their workers are the run's own).
_EMBEDDED: weakref.WeakSet[Any] = weakref.WeakSet()


def embedded(client: Any) -> bool:
    """Whether ``client`` is of a cluster :func:`cluster_client` started for the run (its
    workers are the run's own), not a user's client or scheduler."""
    return client in _EMBEDDED


#: Environment variable naming an existing scheduler (``tcp://host:8786``).
SCHEDULER_ENV = "SR_DOMAINS_SCHEDULER"


# -- the run --------------------------------------------------------------------------------------
def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError("distributed", "dask", "distributed runs") from exc
    return distributed


@contextmanager
def cluster_client(
    client: Any = None, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Any]:
    """The client to use: ``client`` as given, a client of ``scheduler`` (or the
    ``SR_DOMAINS_SCHEDULER`` environment variable), or an embedded ``LocalCluster`` of
    ``workers`` processes (closed afterwards), whose ``sr_domains`` records are shown at the
    caller's level (``-q``: errors only; ``-v``: more). None when none of them is asked for."""
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV)
    if client is not None:
        yield client
        return
    if not scheduler and not workers:
        yield None
        return
    dist = _distributed()
    if scheduler:
        given = "--scheduler" if os.environ.get(SCHEDULER_ENV) != scheduler else SCHEDULER_ENV
        try:
            # not the process's default client: a malformed address fails after a default
            # client has set dask's scheduler to it and registered itself, which left every
            # later ``.compute()`` of the process asking for (or waiting on) a dead client
            c = dist.Client(scheduler, set_as_default=False)
        except ValueError as exc:  # "missing port number", "unknown address scheme"
            raise ConfigError(
                f"{given} {scheduler!r} is not a Dask scheduler address ({exc}); give one like "
                "tcp://host:8786"
            ) from exc
        except (OSError, TimeoutError) as exc:  # (distributed raises OSError when it times out)
            raise SRDomainsError(
                f"cannot reach the Dask scheduler {scheduler} (from {given}): {exc}; is it "
                "running at that address?"
            ) from exc
        with c:
            yield c
        return
    cores = os.cpu_count() or 1
    # Dask logs every worker start at INFO: only with -v (our logger at INFO or below)
    quiet = logging.WARNING if log.getEffectiveLevel() > logging.INFO else logging.INFO
    dask_log, nanny = logging.getLogger("distributed"), logging.getLogger("distributed.nanny")
    with (
        # the caller's process as it was after the run: Dask's log levels, and the variables
        # distributed's nanny puts in os.environ for its workers (OMP_NUM_THREADS=1,
        # PYTHONHASHSEED, MALLOC_TRIM_THRESHOLD_, ...), which every later subprocess inherited
        _level_restored(dask_log, dask_log.level),
        _level_restored(nanny, nanny.level),
        _environ_restored(),
    ):
        dask_log.setLevel(quiet)
        with _embedded_client(dist, workers, quiet, nanny) as c:
            c.register_plugin(threads_plugin(max(1, cores // int(workers or 1))))
            c.register_plugin(console_plugin(logging.getLogger("sr_domains").getEffectiveLevel()))
            yield c


@contextmanager
def _embedded_client(dist: Any, workers: int | None, quiet: int, nanny: Any) -> Iterator[Any]:
    """A client of a ``LocalCluster`` of ``workers`` one-thread processes, closed after."""
    with (
        dist.LocalCluster(
            n_workers=int(workers or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # no dashboard (a user's own cluster may have one)
            # the scheduler's HTTP server (health checks) listens even so, by default on the
            # dashboard's port 8787: "Port 8787 is already in use" beside any other cluster.
            # A free port of this machine only, instead.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=quiet,
            # Ctrl-C reaches the workers too (one process group): the run stops them itself
            preload=[IGNORE_CTRL_C],
        ) as cluster,
        dist.Client(cluster, set_as_default=False) as c,  # (the caller's default stays)
    ):
        _EMBEDDED.add(c)
        try:
            yield c
        finally:  # a worker slow to exit (a loaded machine) is killed by its nanny at WARNING:
            # "Worker process still alive after 4.0 seconds, killing", noise after a good run
            nanny.setLevel(logging.ERROR if quiet > logging.INFO else quiet)


@contextlib.contextmanager
def _environ_restored() -> Iterator[None]:
    """The variables distributed sets in ``os.environ`` for its workers and scheduler as
    they were, on exit (added ones removed, changed ones put back); any other variable set
    meanwhile (by the caller's own threads, say) is left as it is."""
    import dask.config

    dasks = {"PYTHONHASHSEED", "__DASK_PARENT_PID", "DASK_SCHEDULER_ADDRESS"}
    for key in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ"):
        dasks |= set(dask.config.get(key, None) or {})
    before = {key: os.environ.get(key) for key in dasks}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            elif os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def _level_restored(logger: logging.Logger, level: int) -> Iterator[None]:
    """Set ``logger`` back to ``level`` on exit (after the clusters entered later close)."""
    try:
        yield
    finally:
        logger.setLevel(level)


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
            _level_restored(dask_log, dask_log.level),
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
    dist = _distributed()
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
