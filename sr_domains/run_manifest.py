"""The run manifest of a batch (:data:`~sr_domains.output_checks.RUN_MANIFEST`,
``sr-domains-run.jsonl`` next to the outputs): writing it, and reading back the checksum it
recorded for an output (a resumed batch then knows a cut-short file of its own from a user's).

Written by every batch: on Dask or in this process
(:func:`sr_domains.distributed.upscale_many`) and the sequential GeoTIFF batch
(:func:`sr_domains.geo.batch.write_many`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .batch_tasks import TaskResult
from .errors import UnsafeOutputError
from .io_safety import atomic_output
from .output_checks import RUN_MANIFEST


def file_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 of the files' bytes, in name order (a DICOM series: all of its files)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


#: How every run manifest record starts (the first key of :meth:`TaskResult.to_json`).
_RECORD_START = b'{"input": '


def check_manifest_slot(out_dir: Path) -> None:
    """Refuse, before any work, a batch whose run manifest would replace somebody else's file
    of that name (even with ``--overwrite``: it is no output of the batch). Ours: empty, or
    starting as every record of :meth:`TaskResult.to_json` does (one cut short is ours too)."""
    path = Path(out_dir) / RUN_MANIFEST
    if not os.path.lexists(path):
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_RECORD_START))
        ours = path.is_file() and not path.is_symlink() and _RECORD_START.startswith(head)
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
) -> Path:
    """Write ``out_dir/sr-domains-run.jsonl``, one JSON line per task, atomically (replacing
    the previous run's: a skipped task keeps its output's checksum in its own record)."""
    manifest = Path(out_dir) / RUN_MANIFEST
    with atomic_output(manifest, list(sources), overwrite=True) as tmp:
        tmp.write_text("".join(r.to_json() + "\n" for r in results), encoding="utf-8")
    return manifest


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
    time made a resume quadratic in the batch size). The first record of a pair counts."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    shas: dict[tuple[str, str], str] = {}
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or not rec.get("output_sha256"):
            continue
        key = (Path(str(rec.get("input", ""))).name, Path(str(rec.get("output", ""))).name)
        shas.setdefault(key, str(rec["output_sha256"]))  # (paths as that run gave them)
    return shas


__all__ = ["check_manifest_slot", "file_sha256", "recorded_sha", "write_run_manifest"]
