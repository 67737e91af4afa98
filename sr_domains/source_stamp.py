"""The stamp of an output's input (its size, newest modification time and checksum), recorded
with the output, so that a rerun redoes an output whose input changed since it was made."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .run_manifest import file_sha256

#: Key of the stamp in a NIfTI output's provenance and a DICOM output's folder manifest.
SOURCE_STAMP_KEY = "source_stamp"

#: Why a resume redoes an output whose input changed (:func:`input_changed`).
INPUT_CHANGED = "its input changed since it was made"


def stamp_of(paths: Sequence[Path]) -> dict[str, Any]:
    """``{"size", "mtime_ns", "sha256"}`` of the input files: their total size in bytes, the
    newest modification time (ns) and the SHA-256 of their bytes in name order."""
    stats = [Path(p).stat() for p in paths]
    return {
        "size": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        "sha256": file_sha256([Path(p) for p in paths]),
    }


def input_changed(recorded: object, paths: Sequence[Path]) -> bool:
    """Whether the input files differ from the ``recorded`` stamp (:func:`stamp_of`). An
    output without one (an earlier version) is taken as unchanged; equal size and time are
    trusted without reading; a copy with a new time but the same bytes is unchanged."""
    if not isinstance(recorded, dict) or not {"size", "mtime_ns", "sha256"} <= recorded.keys():
        return False
    try:
        stats = [Path(p).stat() for p in paths]
    except OSError:
        return True  # a file of the input is gone
    size = sum(s.st_size for s in stats)
    mtime_ns = max((s.st_mtime_ns for s in stats), default=0)
    if size != recorded["size"]:
        return True
    if mtime_ns == recorded["mtime_ns"]:
        return False
    try:
        return file_sha256([Path(p) for p in paths]) != recorded["sha256"]
    except OSError:
        return True


__all__ = ["INPUT_CHANGED", "SOURCE_STAMP_KEY", "input_changed", "stamp_of"]
