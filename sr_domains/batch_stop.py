"""A Dask batch stopped part-way (Ctrl-C, SIGTERM): what
:func:`sr_domains.distributed.upscale_many` does on its way out.

* Its tasks are cancelled, quietly (:func:`cancel_quietly`), and the workers of an embedded
  cluster ignore the terminal's Ctrl-C (:data:`IGNORE_CTRL_C`, a worker preload): the run
  stops them itself, instead of each dumping a ``KeyboardInterrupt`` traceback.
* The lock and temporary files its killed workers left are removed (:func:`remove_leftovers`),
  and a run removes at its start what an earlier run could not (:func:`clean_litter`: one
  killed, or interrupted a second time while it stopped).
* The outputs its tasks in flight committed all the same are recorded
  (:func:`record_stopped`). ``Client.cancel`` does not stop a task that is running, and the
  embedded cluster's workers finish or die while it closes: a task may rename its finished
  output into place after the stop, or just before it with its result still on the way, and
  that result never reaches the run. Once the cluster is closed (nothing of the run writes
  any more), each such output that is new since the run planned it (another file, or series
  folder, than was there) and complete as the run asks is appended to the run manifest as
  written, so the CLI prints it. (A task of an existing cluster's worker may still be
  running: it finishes on its own and is recorded by no one; a rerun skips its output.)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .batch_tasks import Task, TaskResult
from .batch_worker import task_status
from .errors import OutputBusyError
from .io_safety import LOCK_TAG, OLD_TAG, TMP_TAG, clean_stale, destination_lock, lock_path
from .made_with import MADE_KEY, Made
from .options import UpscaleOptions
from .output_checks import MANIFEST, read_manifest
from .run_manifest import append_run_record, output_sha256

log = logging.getLogger(__name__)

#: A worker preload (Python source) of the embedded cluster: its worker processes share the
#: terminal's process group, and Ctrl-C there killed each one with a traceback on stderr while
#: the run was stopping them anyway (on the main thread only, where signals are set).
IGNORE_CTRL_C = (
    "import signal, threading\n"
    "if threading.current_thread() is threading.main_thread():\n"
    "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
)

_Stat = tuple[int, int, int, int]
#: What is at a task's output path: the file or folder, and a series folder's manifest.
Stamp = tuple[_Stat | None, _Stat | None]


def _lstat(path: str) -> _Stat | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def stamp(task: Task) -> Stamp:
    """What is at ``task``'s output now (outputs are renamed into place: a new one is another
    file, or folder with another manifest)."""
    dst = os.path.abspath(task.dst)
    return (_lstat(dst), _lstat(os.path.join(dst, MANIFEST)))


def stamps(tasks: Iterable[Task]) -> dict[Task, Stamp]:
    return {t: stamp(t) for t in tasks}


def cancel_quietly(c: Any, futures: list[Any], own_workers: bool) -> None:
    """Cancel ``futures`` of a stopped run, quietly: Dask logs each cancelled task at WARNING
    (``CancelledError``) on the client and the workers, which is noise after Ctrl-C. (Here
    until the run returns; on the workers only when they are the run's own: a user's
    long-lived workers keep their logging.)"""
    _quiet_dask()
    if own_workers:
        with contextlib.suppress(Exception):  # (the workers answer while their tasks run)
            c.run(_quiet_dask, on_error="ignore")
    with contextlib.suppress(Exception):
        c.cancel(futures, force=True)


def _quiet_dask() -> None:
    """Log only Dask's errors (here and on each worker): the run was stopped."""
    logging.getLogger("distributed").setLevel(logging.ERROR)


def remove_leftovers(tasks: Iterable[Task]) -> None:
    """Remove the lock and temporary files of ``tasks`` a stopped run left (its workers were
    killed before their cleanup ran, :mod:`sr_domains.io_safety`). Only where the output's
    lock can be taken: a lock still held belongs to a live writer (a worker of an existing
    cluster still finishing, or another run) and is left alone with its files; under the
    lock, temporaries are stale by the output rules (:func:`~sr_domains.io_safety.
    clean_stale`)."""
    for t in tasks:
        dst = Path(os.path.abspath(t.dst))
        if not dst.parent.is_dir():
            continue
        try:
            with destination_lock(dst):  # (removes the lock file as it lets go)
                clean_stale(dst)
        except (OutputBusyError, OSError) as exc:
            log.info("%s: left alone (%s)", dst, exc)


def clean_litter(tasks: Iterable[Task]) -> None:
    """Before a run: remove the lock and temporary files an earlier run left beside the outputs
    of ``tasks`` (its workers killed, or a second Ctrl-C before its own cleanup). A writer
    cleans its output's temporaries when it takes the lock, but a complete output is skipped,
    never written, so what was left beside it stayed for good. One listing per output
    folder; :func:`remove_leftovers` for the outputs that have any (a live writer's are left)."""
    by_folder: dict[str, list[Task]] = {}
    for t in tasks:
        by_folder.setdefault(os.path.dirname(os.path.abspath(t.dst)), []).append(t)
    litter: list[Task] = []
    for folder, group in by_folder.items():
        try:
            names = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
        except OSError:
            continue
        for t in group:
            key = lock_path(t.dst).name[: -len(LOCK_TAG)]  # ".NAME", as every tag follows it
            marks = (key + TMP_TAG, key + OLD_TAG, key + LOCK_TAG)
            if any(n.startswith(marks) for n in names):
                litter.append(t)
    remove_leftovers(litter)


def record_stopped(
    out_dir: Path,
    tasks: Iterable[Task],
    before: dict[Task, Stamp],
    options: UpscaleOptions,
    model: Any = None,
) -> None:
    """Append to ``out_dir``'s run manifest a record of each of ``tasks`` (in flight when the
    run stopped, their results lost) whose output is new since ``before`` and complete as
    ``options`` ask: it was written by this run. Called once no worker of the run writes
    any more. A check that fails leaves that output unrecorded (the stop goes on)."""
    for t in sorted(tasks, key=lambda t: t.dst):
        if stamp(t) == before.get(t):
            continue  # not written (an output that was complete already stays as it was)
        try:
            result = _written(t, options, model)
        except Exception as exc:  # (a stop: never traded for another error)
            log.debug("%s: not recorded after the stop: %s", t.dst, exc)
            continue
        if result is not None:
            append_run_record(out_dir, result)


def _written(task: Task, options: UpscaleOptions, model: Any) -> TaskResult | None:
    """The record of ``task``'s output as written, or None when it is not complete."""
    status, _ = task_status(task, options, model)
    if status != "complete":
        return None
    made = _made(task) or Made()
    return TaskResult(
        task,
        "ok",
        outputs=[task.dst],
        sha256=output_sha256(Path(task.dst)),  # (as the ok and skipped records of it)
        model=made.weights,
        weights_sha256=made.sha256,
    )


def _made(task: Task) -> Made | None:
    """What ``task``'s output records it was made with (weights name and checksum)."""
    dst = Path(task.dst)
    if task.domain == "geotiff":
        from .geo.output_spec import TAG_PREFIX
        from .geo.reader import open_dataset

        with open_dataset(dst) as ds:
            return Made.from_tags(ds.tags(), TAG_PREFIX)
    if task.domain == "nifti":
        from .medical.nifti_io import load_nifti
        from .medical.nifti_upscale import _provenance

        return Made.from_dict(_provenance(load_nifti(dst).header).get(MADE_KEY))
    return Made.from_dict((read_manifest(dst) or {}).get(MADE_KEY))


__all__ = [
    "IGNORE_CTRL_C",
    "cancel_quietly",
    "clean_litter",
    "record_stopped",
    "remove_leftovers",
    "stamp",
    "stamps",
]
