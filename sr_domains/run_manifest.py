"""The run manifest of a batch (:data:`~sr_domains.output_checks.RUN_MANIFEST`,
``sr-domains-run.jsonl`` next to the outputs): writing it, and reading back the checksum it
recorded for an output (a resumed batch then knows a cut-short file of its own from a user's).

Written by every batch: on Dask or in this process
(:func:`sr_domains.distributed.upscale_many`) and the sequential GeoTIFF batch
(:func:`sr_domains.geo.batch.write_many`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .batch_tasks import TaskResult
from .errors import OutputBusyError, UnsafeOutputError
from .io_safety import atomic_output
from .output_checks import MANIFEST, RECORD_START, RUN_MANIFEST, read_manifest

log = logging.getLogger(__name__)


def file_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 of the files' bytes, in name order (a DICOM series: all of its files)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def output_files(dst: Path) -> list[Path]:
    """The files whose checksum a run manifest records for the output ``dst``: the file, or
    for a DICOM series' folder the files its writer wrote (those its folder manifest lists,
    as the written record names them; without that manifest, every file but the run
    manifest, which changes as a batch of that one series goes)."""
    dst = Path(dst)
    if not dst.is_dir():
        return [dst]
    listed = read_manifest(dst)
    if listed is not None:
        return sorted(dst / str(name) for name in listed["files"])
    return sorted(p for p in dst.iterdir() if p.name not in (RUN_MANIFEST, MANIFEST))


def output_sha256(dst: Path) -> str:
    """The checksum a run manifest records for the output ``dst`` (:func:`output_files`)."""
    return file_sha256(output_files(dst))


def check_manifest_slot(out_dir: Path) -> None:
    """Refuse, before any work, a batch whose run manifest would replace somebody else's file
    of that name (even with ``--overwrite``: it is no output of the batch). Ours: empty, or
    starting as every record of :meth:`TaskResult.to_json` does (one cut short is ours too)."""
    path = Path(out_dir) / RUN_MANIFEST
    if not os.path.lexists(path):
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(RECORD_START))
        ours = path.is_file() and not path.is_symlink() and RECORD_START.startswith(head)
    except OSError:
        ours = False
    if not ours:
        raise UnsafeOutputError(
            path,
            "exists and is not a run manifest of sr_domains, which the batch writes there: "
            "move it away (--overwrite does not replace it)",
        )


def write_run_manifest(
    out_dir: Path, results: Sequence[TaskResult], sources: Sequence[Path]
) -> Path | None:
    """Write ``out_dir/sr-domains-run.jsonl`` atomically: one JSON line per task of this run
    (a skipped task keeps its output's checksum, and the weights the record that wrote it
    names, in its own record), after the records of earlier runs for the other outputs of
    the folder (:func:`earlier_records`), so a run over part of a batch does not forget the
    rest: a later resume still knows them as ours. A task that failed on an output it does
    not own (another run writing it or done with it, a user's file: ``TaskResult.not_ours``)
    leaves that output's record alone, if it has one; two runs ending at once write the
    manifest one after the other.

    None, and no file, where there was none and no output of the run is there (every task
    failed: a user's folder refused as an output keeps no file of ours)."""
    manifest = Path(out_dir) / RUN_MANIFEST
    if not _ours_in(results) and not os.path.lexists(manifest):
        return None
    for attempt in range(50):  # (another run rewriting it holds it for milliseconds)
        try:
            with atomic_output(manifest, list(sources), overwrite=True) as tmp:
                records = _records(out_dir)  # (read once, under the manifest's lock)
                recorded = {Path(str(rec["output"])).name for _, rec in records}
                own = [r for r in results if not (r.not_ours and _name(r) in recorded)]
                touched = {_name(r) for r in own}
                kept = earlier_records(Path(out_dir), touched, records)
                made = _weights_of(records)
                lines = [*kept, *(_with_weights(r, made).to_json() for r in own)]
                tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            return manifest
        except OutputBusyError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    return manifest  # pragma: no cover - (the loop returns or raises)


def _ours_in(results: Sequence[TaskResult]) -> bool:
    """Whether an output of ``results`` is there (written, or found complete)."""
    return any(r.status in ("ok", "skipped") for r in results)


def _name(result: TaskResult) -> str:
    return Path(result.task.dst).name


def _weights_of(
    records: list[tuple[str, dict[str, Any]]],
) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(output name, output_sha256): (model, weights_sha256)}`` of the run manifest
    ``records`` that name weights (a later record of the same bytes wins)."""
    made: dict[tuple[str, str], tuple[str, str]] = {}
    for _, rec in records:
        if rec.get("model") and rec.get("output_sha256"):
            key = (Path(str(rec["output"])).name, str(rec["output_sha256"]))
            made[key] = (str(rec["model"]), str(rec.get("weights_sha256") or ""))
    return made


def _with_weights(result: TaskResult, made: dict[tuple[str, str], tuple[str, str]]) -> TaskResult:
    """A skipped task's result with the model and weights of the record that wrote the same
    output bytes (a resumed run does not load or name weights for it)."""
    if result.status != "skipped" or result.model or not result.sha256:
        return result
    found = made.get((Path(result.task.dst).name, result.sha256))
    if found is None:
        return result
    return dataclasses.replace(result, model=found[0], weights_sha256=found[1])


def _records(out_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(line, record)`` of every whole record of ``out_dir``'s run manifest, in the order
    written (never read through a symbolic link)."""
    text = _read_text(Path(out_dir) / RUN_MANIFEST)
    return [(line.strip(), json.loads(line)) for line in text.splitlines() if _record_output(line)]


def _read_text(path: Path) -> str:
    """A run manifest's text, "" when it cannot be read; bytes that are not UTF-8 (a disk
    error, an editor) become U+FFFD, so their line is no JSON record and is skipped as one
    cut short is, and the other records still count (every reader of the manifest reads it
    so). Never through a symbolic link (a batch refuses one as its manifest)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def earlier_records(
    out_dir: Path, skip: set[str], records: list[tuple[str, dict[str, Any]]] | None = None
) -> list[str]:
    """The records of ``out_dir``'s run manifest (``records`` when already read) for outputs
    not named in ``skip`` (output file names) that still exist, the last one of each output
    (as :func:`recorded_sha` reads them), as JSON lines in the order they were written; lines
    cut short are dropped. Never read through a symbolic link."""
    last: dict[str, str] = {}
    for line, rec in _records(out_dir) if records is None else records:
        name = Path(str(rec["output"])).name
        if name not in skip:
            last.pop(name, None)  # (re-inserted: the order of the last records)
            last[name] = line
    return [line for name, line in last.items() if _output_exists(out_dir, name)]


def _record_output(line: str) -> str:
    """The output file name a manifest line records, or "" (not a whole record of ours)."""
    if not line.encode("utf-8").startswith(RECORD_START):
        return ""
    try:
        rec = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(rec, dict) or not rec.get("output") or "status" not in rec:
        return ""
    return Path(str(rec["output"])).name


def _output_exists(out_dir: Path, name: str) -> bool:
    """Whether the output ``name`` of a record is still in ``out_dir`` (a DICOM series of a
    batch of one series: ``out_dir`` itself)."""
    return os.path.lexists(out_dir / name) or (name == out_dir.resolve().name)


def append_run_record(out_dir: Path, result: TaskResult) -> None:
    """Append the record of a task that just ended to ``out_dir``'s run manifest, so a run
    stopped part-way (Ctrl-C, a killed job) leaves the checksums of what it wrote for the
    next run; :func:`write_run_manifest` writes the whole manifest again when the run ends.
    A record appended later wins over an earlier one for the same output. Never through a
    symbolic link; a failure to append is logged, not raised (the outputs are the job). A
    failure starts no manifest (:func:`write_run_manifest` writes it if an output is there)."""
    if result.not_ours:  # another run's output, or one refused: its record stands
        return
    path = Path(out_dir) / RUN_MANIFEST
    line = (result.to_json() + "\n").encode("utf-8")
    create = os.O_CREAT if _ours_in([result]) else 0
    flags = os.O_RDWR | os.O_APPEND | create | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(path, flags, 0o666), "r+b") as fh:
            if fh.seek(0, os.SEEK_END) and (fh.seek(-1, os.SEEK_END), fh.read(1))[1] != b"\n":
                line = b"\n" + line  # after a record cut short by a kill: a line of its own
            fh.write(line)  # one write (appended): a kill leaves at most this line cut short
    except OSError as exc:
        log.debug("could not append to the run manifest %s: %s", path, exc)


def recorded_sha(src: Path, dst: Path) -> str:
    """The checksum the run manifest in ``dst``'s folder (where a batch writes its GeoTIFFs
    and its manifest) records for ``dst`` written from ``src``, or "". A cut-short output of
    ours (a file too damaged to read its tags) has other bytes than that: it is ours, not a
    user's file. A failed repair keeps the checksum in its record, so the next run still
    knows the file. (A manifest in a folder above, of another batch, vouches for nothing.)"""
    manifest = Path(dst).resolve().parent / RUN_MANIFEST
    try:
        st = manifest.stat()
    except OSError:
        return ""
    if not stat.S_ISREG(st.st_mode):
        return ""
    records = _manifest_shas(str(manifest), st.st_mtime_ns, st.st_size)
    return records.get((Path(src).name, Path(dst).name), "")


@functools.lru_cache(maxsize=8)
def _manifest_shas(path: str, mtime_ns: int, size: int) -> dict[tuple[str, str], str]:
    """``{(input name, output name): output_sha256}`` of a run manifest, parsed once per
    process and version of the file (every task of a resumed batch asks it: parsing it each
    time made a resume quadratic in the batch size). The last record of a pair counts (a
    run appends one per task as it ends, :func:`append_run_record`); one cut short, or not
    UTF-8 (:func:`_read_text`), is skipped; never read through a symbolic link."""
    lines = _read_text(Path(path)).splitlines()
    shas: dict[tuple[str, str], str] = {}
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or not rec.get("output_sha256"):
            continue
        key = (Path(str(rec.get("input", ""))).name, Path(str(rec.get("output", ""))).name)
        shas[key] = str(rec["output_sha256"])  # (paths as that run gave them)
    return shas


__all__ = [
    "append_run_record",
    "check_manifest_slot",
    "earlier_records",
    "file_sha256",
    "output_files",
    "output_sha256",
    "recorded_sha",
    "write_run_manifest",
]
