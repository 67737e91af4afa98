"""Scale out on Dask: one task per file / volume / series, on an embedded ``LocalCluster`` or
any existing cluster. Nothing domain-specific lives here: a task calls the same per-file
function as the sequential CLI (the domain adapters' ``upscale``).

* **Planning** (:func:`~sr_domains.batch_tasks.plan_tasks`, re-exported): GeoTIFFs and NIfTI
  files of a folder or glob, and every DICOM series found under a folder (one task each);
  output names mirror the inputs, and a batch of one DICOM series writes it into the output
  folder itself, as the sequential CLI does.
* **Workers** load the model once per process (a per-process cache keyed by the model
  options) and run torch with ``cores // workers`` threads (a worker plugin), so workers do not
  oversubscribe the machine.
* **Idempotent and resumable**: outputs are written atomically (:mod:`sr_domains.io_safety`);
  a task whose output is already complete is skipped, one of ours that is damaged is redone.
  Dask retries a task whose worker died; a bad input fails only its own task.
* **Run manifest** ``sr-domains-run.jsonl`` next to the outputs (written atomically): one JSON
  line per task with input, output, status, error, seconds, output sha256, model and weights
  hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .batch_tasks import RunReport, Task, TaskResult, plan_tasks
from .errors import (
    CheckpointError,
    ConfigError,
    InputFileError,
    MissingDependencyError,
    OutputExistsError,
    UnsafeOutputError,
)
from .io_safety import atomic_output, sha256_file
from .options import UpscaleOptions, check_save_model_batch, saved_model_path
from .output_checks import RUN_MANIFEST, is_run_manifest

log = logging.getLogger(__name__)

#: Environment variable naming an existing scheduler (``tcp://host:8786``).
SCHEDULER_ENV = "SR_DOMAINS_SCHEDULER"
_HANDLED = (InputFileError, ConfigError, OutputExistsError, UnsafeOutputError, CheckpointError)


# -- one task (runs on a worker) ---------------------------------------------------------------
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
    digest = sha256_file(Path(w)) if w is not None and Path(w).is_file() else None
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
                net.weights_sha256 = sha256_file(Path(entry.path))
            # an unnamed default: the domain code may still pick by input (noise_gate)
            net.chosen_by_default = options.model is None
        for stale in [k for k in _MODELS if k[:2] == key[:2] and k[3:] == key[3:]]:
            del _MODELS[stale]  # the same file's earlier contents
        _MODELS[key] = net
    return _MODELS[key]


def task_status(task: Task, options: UpscaleOptions, model: Any = None) -> tuple[str, str]:
    """``(status, why)``: ``missing``, ``complete``, ``damaged``, ``foreign`` or, for a GeoTIFF
    finished by a run with other weights or bands, ``other`` and how (see the domain
    functions; ``model``: a model object the run uses instead of ``options.model``)."""
    src, dst = Path(task.src), Path(task.dst)
    if task.domain == "geotiff":
        from .geo.upscale import Requested, output_check

        requested = Requested(
            model if model is not None else options.model, options.weights, options.bands
        )
        status, why = output_check(dst, src, options.scale, requested)
        if status == "foreign" and _cut_short_tiff(dst):
            recorded = _recorded_sha(src, dst)
            if recorded and recorded != _sha256([dst]):
                # its header is unreadable, but a run's manifest says it is ours
                return "damaged", ""
        return status, why
    if task.domain == "nifti":
        from .medical.nifti_upscale import nifti_output_status

        return nifti_output_status(dst, src, options.scale), ""
    from .medical.api import dicom_output_status

    return dicom_output_status(dst, src, task.series_uid), ""


def _cut_short_tiff(path: Path) -> bool:
    """A file that starts like a TIFF (a user's own file of another kind never does)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    except OSError:
        return False


def _recorded_sha(src: Path, dst: Path) -> str:
    """The checksum a run manifest (:data:`RUN_MANIFEST`, in ``dst``'s folder or one above it)
    records for ``dst`` written from ``src``, or "". A cut-short output of ours (a file too
    damaged to read its tags) has other bytes than that: it is ours, not a user's file. A
    failed repair keeps the checksum in its record, so the next run still knows the file."""
    target = dst.resolve()
    for folder in list(target.parents)[:8]:
        manifest = folder / RUN_MANIFEST
        if not manifest.is_file():
            continue
        try:
            lines = manifest.read_text(encoding="utf-8").splitlines()
        except OSError:
            return ""
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or not rec.get("output_sha256"):
                continue
            if Path(str(rec.get("input", ""))).name != src.name:
                continue
            if Path(str(rec.get("output", ""))).name == dst.name:  # (paths as that run gave them)
                return str(rec["output_sha256"])
        return ""
    return ""


def _sha256(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def run_task(task: Task, options: UpscaleOptions, model: Any = None) -> TaskResult:
    """Run one task in this process (the function Dask workers execute). Bad input, options
    or outputs give a ``failed`` result; other errors propagate, so Dask retries them."""
    from .adapters import domain_registry

    t0 = time.perf_counter()
    carried = ""  # a cut-short output's recorded checksum, kept if its repair fails
    try:
        status, why = ("missing", "") if options.overwrite else task_status(task, options, model)
        if status == "damaged" and task.domain == "geotiff":
            carried = _recorded_sha(Path(task.src), Path(task.dst))
        if status == "complete":  # (its checksum kept: a later cut-short copy is then known)
            dst = Path(task.dst)
            sha = _sha256([dst]) if task.domain == "geotiff" and dst.is_file() else ""
            return TaskResult(task, "skipped", sha256=sha, seconds=time.perf_counter() - t0)
        if status in ("foreign", "other"):
            raise OutputExistsError(task.dst, why)
        if status == "damaged":
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
        outputs = adapter.upscale(Path(task.src), Path(task.dst), opts, model=net)
    except _HANDLED as exc:
        sha = carried if Path(task.dst).is_file() else ""
        return TaskResult(
            task, "failed", error=str(exc), sha256=sha, seconds=time.perf_counter() - t0
        )
    files = []
    for out in map(Path, outputs):
        files.extend(sorted(out.iterdir()) if out.is_dir() else [out])
    source = getattr(net, "weights_source", None)
    return TaskResult(
        task,
        "ok",
        seconds=time.perf_counter() - t0,
        outputs=[str(p) for p in outputs],
        sha256=_sha256(files),
        model=str(source[0]) if source else str(getattr(net, "arch", "")),
        weights_sha256=getattr(net, "weights_sha256", "")
        or (_sha256([Path(source[1])]) if source else ""),
    )


# -- the run --------------------------------------------------------------------------------------
def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError("distributed", "dask", "distributed runs") from exc
    return distributed


def _threads_plugin(threads: int) -> Any:
    """A worker plugin setting torch's threads per worker process (no oversubscription)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        name = "sr-domains-torch-threads"

        def setup(self, worker: Any) -> None:
            import torch

            torch.set_num_threads(threads)

    return TorchThreads()


@contextmanager
def cluster_client(
    client: Any = None, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Any]:
    """The client to use: ``client`` as given, a client of ``scheduler`` (or the
    ``SR_DOMAINS_SCHEDULER`` environment variable), or an embedded ``LocalCluster`` of
    ``workers`` processes (closed afterwards). None when none of them is asked for."""
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV)
    if client is not None:
        yield client
        return
    if not scheduler and not workers:
        yield None
        return
    dist = _distributed()
    if scheduler:
        with dist.Client(scheduler) as c:
            yield c
        return
    cores = os.cpu_count() or 1
    # Dask logs every worker start at INFO: only with -v (our logger at INFO or below)
    quiet = logging.WARNING if log.getEffectiveLevel() > logging.INFO else logging.INFO
    logging.getLogger("distributed").setLevel(quiet)
    with (
        dist.LocalCluster(
            n_workers=int(workers or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=quiet,
        ) as cluster,
        dist.Client(cluster) as c,
    ):
        c.register_plugin(_threads_plugin(max(1, cores // int(workers or 1))))
        yield c


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
        options: what to do (scale, model, weights, profile, value rules, ...).
        model: a built :class:`~sr_domains.models.SRModel` to use instead of
            ``options.model`` (shipped to each worker once).
        client: an existing ``distributed.Client``; else ``scheduler`` (an address, or the
            ``SR_DOMAINS_SCHEDULER`` environment variable) or a ``LocalCluster`` of ``workers``.
        retries: Dask retries of a task whose worker died or that raised an unexpected error.
        progress: a progress bar over tasks.
        domain: only the inputs of this domain (``geotiff``, ``nifti``, ``dicom``; CLI
            ``--domain``), as a sequential run takes a folder as that domain's input.

    Returns:
        The :class:`RunReport` (also written as ``out_dir/sr-domains-run.jsonl``). Failed tasks
        do not stop the others; check :attr:`RunReport.failed`.
    """
    options = options or UpscaleOptions()
    out_dir = Path(out_dir)
    tasks = plan_tasks(inputs, out_dir, options.suffix, options.series_uid, domain)
    check_save_model_batch(saved_model_path(options), len(tasks))
    if any(Path(t.dst) == out_dir for t in tasks):  # one DICOM series: out_dir is its folder
        _drop_run_manifest(out_dir)
    results: list[TaskResult] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), unit="file", desc="sr-domains")
    try:
        with cluster_client(client, workers, scheduler) as c:
            if c is None:
                for t in tasks:
                    results.append(run_task(t, options, model))
                    if bar is not None:
                        bar.update(1)
            else:
                results = _run_on(c, tasks, options, model, retries, bar)
    finally:
        if bar is not None:
            bar.close()
    manifest = out_dir / RUN_MANIFEST
    with atomic_output(manifest, [Path(t.src) for t in tasks], overwrite=True) as tmp:
        tmp.write_text("".join(r.to_json() + "\n" for r in results), encoding="utf-8")
    report = RunReport(results, manifest)
    log.info("%s", report.summary())
    return report


def _drop_run_manifest(out_dir: Path) -> None:
    """Remove the run manifest a failed run left alone in ``out_dir`` when the batch's one
    task writes its series into ``out_dir`` itself (the sequential layout): a folder holding
    only it would be an existing output ("output exists"). Beside a series it is ours
    (:func:`~sr_domains.output_checks.foreign_entries`); the run writes it again at its end."""
    stale = out_dir / RUN_MANIFEST
    if stale.is_file() and os.listdir(out_dir) == [RUN_MANIFEST] and is_run_manifest(stale):
        stale.unlink()  # (beside a series of ours it is ours: output_checks.foreign_entries)


def _run_on(
    c: Any, tasks: list[Task], options: UpscaleOptions, model: Any, retries: int, bar: Any
) -> list[TaskResult]:
    dist = _distributed()
    if c.dashboard_link:
        log.info("Dask dashboard: %s", c.dashboard_link)
    shipped = c.scatter(model, broadcast=True) if model is not None else None
    remote = _absolute_options(options)
    futures = {
        c.submit(run_task, _absolute_task(t), remote, shipped, retries=retries, pure=False): t
        for t in tasks
    }
    by_task: dict[Task, TaskResult] = {}
    for fut in dist.as_completed(futures):
        t = futures[fut]
        try:  # reported with the paths as the user gave them
            by_task[t] = dataclasses.replace(fut.result(), task=t)
        except Exception as exc:  # retries exhausted (worker died repeatedly, unexpected error)
            by_task[t] = TaskResult(t, "failed", error=f"{type(exc).__name__}: {exc}")
        if bar is not None:
            bar.update(1)
    return [by_task[t] for t in tasks]


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
    "plan_tasks",
    "run_task",
    "task_status",
    "upscale_many",
    "worker_model",
]
