"""The tasks of a batch (one per GeoTIFF, NIfTI file or DICOM series), what each did, and the
run's report. :func:`plan_tasks` finds them; :mod:`sr_domains.distributed` runs them."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .errors import ConfigError, InputFileError, UnsafeOutputError
from .geo.names import BATCH_SUFFIXES, geotiff_output_name
from .io_safety import batch_entry, check_paths
from .options import output_name
from .output_checks import check_batch_folder
from .output_names import check_names
from .strict_json import provenance_json

_NIFTI = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Task:
    """One unit of work: a GeoTIFF, a NIfTI file or a DICOM series."""

    domain: str  # "geotiff" | "nifti" | "dicom"
    src: str
    dst: str
    series_uid: str | None = None


@dataclass
class TaskResult:
    """What a task did (one line of the run manifest)."""

    task: Task
    status: str  # "ok" | "skipped" | "failed"
    error: str = ""
    seconds: float | None = None  # None: not measured (an output found after a stop): null
    outputs: list[str] = field(default_factory=list)
    sha256: str = ""
    model: str = ""
    weights_sha256: str = ""
    #: failed on an output another run holds (writing it, or written since this run planned
    #: it, or a file the run refuses to replace): its record is left as it is in the run
    #: manifest (:mod:`sr_domains.run_manifest`)
    not_ours: bool = False

    def to_json(self) -> str:
        return provenance_json(
            {
                "input": self.task.src,
                "output": self.task.dst,
                "domain": self.task.domain,
                "series_uid": self.task.series_uid,
                "status": self.status,
                "error": self.error,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "output_sha256": self.sha256,
                "model": self.model,
                "weights_sha256": self.weights_sha256,
                "pid": os.getpid(),  # the process that recorded it (a stopped run's own lines)
            }
        )


@dataclass
class RunReport:
    """All task results of a run, and where its manifest is."""

    results: list[TaskResult]
    manifest: Path | None  # None: none written (every task failed, none there before)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        manifest = f"manifest {self.manifest}" if self.manifest else "no manifest (no output)"
        return (
            f"{self.count('ok')} written, {self.count('skipped')} already complete, "
            f"{self.count('failed')} failed; {manifest}"
        )

    def failures(self) -> str:
        """``"2 of 5 file(s) failed"``: of the inputs the run tried, with the complete ones it
        skipped named apart (``"3 of 5 file(s) tried failed; 4 already complete"``), so the
        count is not read against the whole folder."""
        tried = self.count("ok") + self.count("failed")
        what = "input(s)" if any(r.task.domain == "dicom" for r in self.results) else "file(s)"
        skipped = self.count("skipped")
        if not skipped:
            return f"{self.count('failed')} of {tried} {what} failed"
        return f"{self.count('failed')} of {tried} {what} tried failed; {skipped} already complete"


class BatchOutputs(list[Path]):
    """The outputs a sequential batch wrote (a list, skipped ones left out) and its
    :class:`RunReport` (``report``: what each input did, and the summary)."""

    def __init__(self, written: Sequence[Path], report: RunReport) -> None:
        super().__init__(written)
        self.report = report


class BatchFailedError(InputFileError):
    """Some inputs of a sequential batch failed (the message names each, with its problem);
    the others ran. ``report``: the whole run (:class:`RunReport`)."""

    def __init__(self, report: RunReport) -> None:
        listing = "; ".join(r.error for r in report.failed)
        super().__init__(None, f"{report.failures()}: {listing}")
        self.report = report


def _expand(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(inputs, (list, tuple)):
        return [p for item in inputs for p in _expand(item)]
    text = os.fspath(cast("str | os.PathLike[str]", inputs))  # (other sequences: TypeError)
    if any(ch in text for ch in "*?[") and not Path(text).exists():
        found = sorted(Path(p) for p in glob.glob(text))
        if not found:
            raise InputFileError(text, "no file matches this pattern")
        return found
    return [Path(text)]


#: The domains a batch plans tasks for (``plan_tasks(domain=...)``).
DOMAINS = ("geotiff", "nifti", "dicom")


def _is_nifti(p: Path) -> bool:
    return p.name.lower().endswith(_NIFTI)


def _scan_tolerant(folder: Path) -> tuple[list[Any], list[Path]]:
    """The series under ``folder`` whose files are all readable, and the folders holding a
    DICOM file that cannot be read (each becomes a task that fails with that file's error)."""
    from .medical.dicom_read import scan_series, summarize

    files: list[Path] = []
    groups = scan_series(folder, bad=files)
    bad = {f.parent for f in files}
    good = {u: g for u, g in groups.items() if not any(f.parent in bad for f, _ in g)}
    return summarize(good), sorted(bad)


def _series_tasks(
    source: Path, out_dir: Path, suffix: str = "", series_uid: str | None = None
) -> list[Task]:
    """One task per DICOM series under ``source`` (a folder, or a file: its own series), or only
    the one ``series_uid`` names. A task reads the series' own folder (the one holding all its
    files) and writes a folder of ``out_dir`` named after that folder's path below ``source``
    (``source``'s own name for files directly in it, the file's stem for a file). A folder
    holding a DICOM file that cannot be read gives a task that fails with that file's error
    (the series of other folders still run); a named file that is not DICOM gives none."""
    from .medical.dicom_read import NO_DICOM, has_dicm_preamble, list_dicom_series

    bad: list[Path] = []
    try:
        series = list_dicom_series(source)
    except InputFileError as exc:
        if exc.problem == NO_DICOM or (source.is_file() and not has_dicm_preamble(source)):
            return []  # (a sidecar, a world file, notes: not a batch input)
        if source.is_file():
            bad = [source]
            series = []
        else:
            series, bad = _scan_tolerant(source)
    if series_uid is not None:
        series = [s for s in series if s.uid == series_uid]
    top = Path(source.resolve().name)  # (an input of "." has no name of its own)
    homes, names = [], []
    for s in series:
        if source.is_file():
            home, name = source, source.stem
        else:
            home = Path(os.path.commonpath([str(f.parent) for f in s.files]))
            rel = home.relative_to(source) if home != source else top
            name = str(rel).replace(os.sep, "_")
        homes.append(home)
        names.append(name or "series")
    tasks = []
    for s, home, name in zip(series, homes, names):
        if names.count(name) > 1:  # several series in one folder
            name = f"{name}_{s.uid.rsplit('.', 1)[-1]}"
        tasks.append(Task("dicom", str(home), str(out_dir / output_name(name, suffix)), s.uid))
    for folder in bad:  # fails on its worker with the file's error: recorded and counted
        if source.is_file():
            name = source.stem
        else:
            rel = folder.relative_to(source) if folder != source else top
            name = str(rel).replace(os.sep, "_") or "series"
        tasks.append(Task("dicom", str(folder), str(out_dir / output_name(name, suffix)), None))
    return tasks


def plan_tasks(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    suffix: str = "",
    series_uid: str | None = None,
    domain: str | None = None,
) -> list[Task]:
    """The tasks of a batch: each GeoTIFF and NIfTI file (of a folder, glob or list) and each
    DICOM series under a folder (only the one ``series_uid`` names, when given; only inputs of
    ``domain``, when given: ``geotiff``, ``nifti`` or ``dicom``); outputs go to ``out_dir``
    under the same names with ``suffix`` before the extension.

    A DICOM series is written where the sequential ``sr-domains upscale INPUT OUT`` writes it:
    a batch of one series (a series folder, a study folder holding one series or one chosen by
    ``series_uid``, a DICOM file) is ``out_dir`` itself, read from ``INPUT`` as given; beside
    other tasks a series gets a folder of ``out_dir`` named after the folder holding it and
    is read from that folder (:func:`_series_tasks`)."""
    out_dir = Path(out_dir)

    def out(p: Path) -> str:
        return str(out_dir / output_name(p.name, suffix))

    def out_tif(p: Path) -> str:  # (a JPEG 2000 or VRT input's output is a .tif)
        return str(out_dir / geotiff_output_name(p, suffix))

    tasks: list[Task] = []
    given: dict[Task, Path] = {}  # each DICOM task's input, as given
    roots: list[Path] = []
    for p in _expand(inputs):
        if p.is_dir():
            roots.append(p)
            children = sorted(q for q in p.iterdir() if batch_entry(q))
            for q in children:
                if q.suffix.lower() in BATCH_SUFFIXES:
                    tasks.append(Task("geotiff", str(q), out_tif(q)))
                elif _is_nifti(q):
                    tasks.append(Task("nifti", str(q), out(q)))
            found = _series_tasks(p, out_dir, suffix, series_uid)
        elif p.suffix.lower() in BATCH_SUFFIXES:
            tasks.append(Task("geotiff", str(p), out_tif(p)))
            continue
        elif _is_nifti(p):
            tasks.append(Task("nifti", str(p), out(p)))
            continue
        elif p.is_file():
            found = _series_tasks(p, out_dir, suffix, series_uid)
        else:
            raise InputFileError(p, "no such file or folder")
        tasks.extend(found)
        given.update((t, p) for t in found)
    if domain is not None:
        if domain not in DOMAINS:
            raise ConfigError(f"--domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
        tasks = [t for t in tasks if t.domain == domain]
    if series_uid is not None and not given:
        raise InputFileError(str(inputs), f"no DICOM series {series_uid!r} found")
    if not tasks:
        what = {"geotiff": "GeoTIFF", "nifti": "NIfTI", "dicom": "DICOM"}.get(domain or "")
        what = what or "GeoTIFF, NIfTI or DICOM"
        raise InputFileError(str(inputs), f"no {what} input found")
    if len(tasks) == 1 and tasks[0].domain == "dicom":  # the sequential layout: OUT is the series
        (t,) = tasks
        tasks = [Task("dicom", str(given[t]), str(out_dir), t.series_uid)]
    one_by_one = [t.series_uid for t in tasks if t.domain == "dicom" and Path(t.src).is_file()]
    split = sorted({u for u in one_by_one if u and one_by_one.count(u) > 1})
    if split:  # each file would become a derived series of its own
        raise ConfigError(
            f"several files of DICOM series {split[0]} are named one by one (a glob?): "
            "pass the folder holding the series"
        )
    refuse_collisions([(t.src, t.dst) for t in tasks])
    check_paths(out_dir, [*roots, *(Path(t.src) for t in tasks)], kind="dir")
    check_names(out_dir, [(t.dst, "dir" if t.domain == "dicom" else "file") for t in tasks])
    check_batch_reads(tasks, out_dir)
    if not (len(tasks) == 1 and Path(tasks[0].dst) == Path(out_dir)):  # (not one series' folder)
        check_batch_folder(out_dir)
    return tasks


def refuse_collisions(pairs: Sequence[tuple[str, str]]) -> None:
    """Refuse a batch in which several inputs would be written to one output (``pairs``:
    ``(input, output)`` paths as the user sees them), naming each such output and its inputs:
    ``several inputs would be written to out/a.tif (x/a.tif, y/a.tif); rename them``. One
    rule for the sequential batch and ``--workers`` (a :class:`ConfigError`: exit status 2)."""
    by_dst: dict[str, list[str]] = {}
    for src, dst in pairs:
        by_dst.setdefault(dst, []).append(src)
    dupes = [f"{d} ({', '.join(s)})" for d, s in sorted(by_dst.items()) if len(s) > 1]
    if dupes:
        raise ConfigError(f"several inputs would be written to {'; '.join(dupes)}; rename them")


def check_batch_reads(tasks: Sequence[Task], out_dir: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a batch in which the output of a task is a file that a task of
    the batch reads: by real path (links, ``..``) or as the same file (a hard link), a VRT's
    source rasters included (``vin/c.vrt`` reading ``../out/a.tif`` while ``vin/a.tif`` is
    written to ``out/a.tif``: the user's raster was replaced). Each output is looked up in one
    set of the files read (not every output against every input); every clash is named, with
    the input that reads the file.

    Raises:
        UnsafeOutputError: naming each output, the task writing it and the input reading it.
    """
    by_path: dict[Path, tuple[Path, Task]] = {}
    by_inode: dict[tuple[int, int], tuple[Path, Task]] = {}
    for t in tasks:
        for f in _reads(t):
            by_path.setdefault(Path(os.path.realpath(f)), (f, t))
            ident = _inode(f)
            if ident is not None:
                by_inode.setdefault(ident, (f, t))
    clashes = []
    for t in tasks:
        hit = by_path.get(Path(os.path.realpath(t.dst)))
        ident = _inode(Path(t.dst)) if hit is None else None
        hit = hit or (by_inode.get(ident) if ident is not None else None)
        if hit is not None:
            f, reader = hit
            what = f"the input {f}" if f == Path(reader.src) else f"{f}, which {reader.src} reads"
            clashes.append((t, f"the output of {t.src} would replace {what}"))
    if len(clashes) == 1:
        ((t, why),) = clashes
        raise UnsafeOutputError(t.dst, f"{why}; choose another output folder")
    if clashes:
        listing = "; ".join(f"{t.dst}: {why}" for t, why in clashes)
        raise UnsafeOutputError(
            out_dir,
            f"{len(clashes)} outputs would replace files the batch reads: {listing}; "
            "choose another output folder",
        )


def _reads(task: Task) -> list[Path]:
    """The files ``task`` reads: its input, and for a GDAL virtual raster (VRT) the rasters it
    references, also those missing now (another task may write one before it is read)."""
    src = Path(task.src)
    if task.domain != "geotiff":
        return [src]
    from .geo.gdal_paths import raster_inputs

    try:
        return raster_inputs(src)
    except InputFileError:  # a source missing now: the names the VRTs give
        return _named(src, set())


def _named(path: Path, seen: set[Path]) -> list[Path]:
    """``path`` and, for a VRT that opens, every file it names, missing or not, and those
    its VRT sources name (nested VRTs, once each)."""
    from .geo.gdal_paths import is_vrt, open_dataset

    seen.add(path)
    if not path.is_file() or not is_vrt(path):
        return [path]
    try:
        with open_dataset(path) as ds:
            files = [Path(f) for f in ds.files if not str(f).startswith("/vsi")]
    except (InputFileError, OSError):
        return [path]
    out = [path]
    for f in files:
        out += [] if f in seen else _named(f, seen)
    return out


def _inode(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of an existing regular file (a hard link is the same file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


__all__ = [
    "BatchFailedError",
    "BatchOutputs",
    "RunReport",
    "Task",
    "TaskResult",
    "check_batch_reads",
    "plan_tasks",
    "refuse_collisions",
]
