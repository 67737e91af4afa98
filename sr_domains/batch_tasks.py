"""The tasks of a batch (one per GeoTIFF, NIfTI file or DICOM series), what each did, and the
run's report. :func:`plan_tasks` finds them; :mod:`sr_domains.distributed` runs them."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from .errors import ConfigError, InputFileError
from .io_safety import batch_entry, check_paths
from .options import output_name

_TIFF = (".tif", ".tiff")
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
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    sha256: str = ""
    model: str = ""
    weights_sha256: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "input": self.task.src,
                "output": self.task.dst,
                "domain": self.task.domain,
                "series_uid": self.task.series_uid,
                "status": self.status,
                "error": self.error,
                "seconds": round(self.seconds, 3),
                "output_sha256": self.sha256,
                "model": self.model,
                "weights_sha256": self.weights_sha256,
            }
        )


@dataclass
class RunReport:
    """All task results of a run, and where its manifest is."""

    results: list[TaskResult]
    manifest: Path

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        return (
            f"{self.count('ok')} written, {self.count('skipped')} already complete, "
            f"{self.count('failed')} failed; manifest {self.manifest}"
        )


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


def _is_nifti(p: Path) -> bool:
    return p.name.lower().endswith(_NIFTI)


def _series_tasks(folder: Path, out_dir: Path, suffix: str = "") -> list[Task]:
    from .medical.dicom_read import list_dicom_series

    try:
        series = list_dicom_series(folder)
    except InputFileError:
        return []
    names = []
    for s in series:
        common = Path(os.path.commonpath([str(f.parent) for f in s.files]))
        rel = common.relative_to(folder) if common != folder else Path(folder.name)
        names.append(str(rel).replace(os.sep, "_") or "series")
    tasks = []
    for s, name in zip(series, names):
        if names.count(name) > 1:  # several series in one folder
            name = f"{name}_{s.uid.rsplit('.', 1)[-1]}"
        tasks.append(Task("dicom", str(folder), str(out_dir / output_name(name, suffix)), s.uid))
    return tasks


def plan_tasks(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    suffix: str = "",
) -> list[Task]:
    """The tasks of a batch: each GeoTIFF and NIfTI file (of a folder, glob or list) and each
    DICOM series under a folder; outputs go to ``out_dir`` under the same names with
    ``suffix`` before the extension (a DICOM series gets a folder named after the folder
    holding it)."""
    out_dir = Path(out_dir)

    def out(p: Path) -> str:
        return str(out_dir / output_name(p.name, suffix))

    tasks: list[Task] = []
    roots: list[Path] = []
    for p in _expand(inputs):
        if p.is_dir():
            roots.append(p)
            children = sorted(q for q in p.iterdir() if batch_entry(q))
            for q in children:
                if q.suffix.lower() in _TIFF:
                    tasks.append(Task("geotiff", str(q), out(q)))
                elif _is_nifti(q):
                    tasks.append(Task("nifti", str(q), out(q)))
            tasks.extend(_series_tasks(p, out_dir, suffix))
        elif p.suffix.lower() in _TIFF:
            tasks.append(Task("geotiff", str(p), out(p)))
        elif _is_nifti(p):
            tasks.append(Task("nifti", str(p), out(p)))
        elif p.is_file():
            tasks.extend(_series_tasks(p, out_dir, suffix))
        else:
            raise InputFileError(p, "no such file or folder")
    if not tasks:
        raise InputFileError(str(inputs), "no GeoTIFF, NIfTI or DICOM input found")
    dsts = [t.dst for t in tasks]
    dupes = sorted({d for d in dsts if dsts.count(d) > 1})
    if dupes:
        raise ConfigError(f"several inputs would be written to {dupes}; rename them")
    check_paths(out_dir, [*roots, *(Path(t.src) for t in tasks)], kind="dir")
    return tasks


__all__ = ["RunReport", "Task", "TaskResult", "plan_tasks"]
