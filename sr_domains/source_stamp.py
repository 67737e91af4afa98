"""The stamp of an output's input (its size, newest modification time, checksum and which
files it was), recorded with the output, so that a rerun redoes an output whose input changed
since it was made, and does not take one made from another input of the same name for it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .run_manifest import file_sha256

#: Key of the stamp in a NIfTI output's provenance and a DICOM output's folder manifest.
SOURCE_STAMP_KEY = "source_stamp"

#: Why a resume redoes an output whose input changed (:func:`input_changed`).
INPUT_CHANGED = "its input changed since it was made"

#: Why a rerun does not replace an output of another input file of the same name
#: (:func:`other_input`) without ``--overwrite``.
OTHER_INPUT = "made from another input file of the same name, or from this one moved and changed"


def input_ids(paths: Sequence[Path]) -> list[str]:
    """Which input this is, two ways: hashes of the absolute path of ``paths[0]`` (the input
    as named; the other paths are what it reads, such as a VRT's sources, which the user may
    change: that is a changed input, not another one) as given (a git-annex / DataLad / DVC
    link keeps its path when its content, hence its target, changes) and as a real path (a
    folder reached by another link or working directory). The paths themselves are not
    written into outputs that may be shared. No paths: ``[]``."""
    if not paths:
        return []

    def h(name: str) -> str:
        return hashlib.sha256(os.fsencode(name)).hexdigest()[:32]

    return [h(os.path.abspath(paths[0])), h(os.path.realpath(paths[0]))]


def stamp_of(paths: Sequence[Path], named: Path | None = None) -> dict[str, Any]:
    """``{"size", "mtime_ns", "sha256", "input_ids"}`` of the input files: their total size in
    bytes, the newest modification time (ns), the SHA-256 of their bytes in name order, and
    :func:`input_ids` of ``named`` (default: ``paths[0]``, the input as given)."""
    stats = [Path(p).stat() for p in paths]
    return {
        "size": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        "sha256": file_sha256([Path(p) for p in paths]),
        "input_ids": input_ids([named] if named is not None else paths),
    }


def series_stamp(files: Sequence[Path]) -> dict[str, Any]:
    """:func:`stamp_of` a DICOM series' ``files``, known by the folder holding them all (the
    deepest one), not by its first slice: whichever file sorts first, which changes with the
    series. (A series of one file in a folder of several: that folder.)"""
    folder = os.path.commonpath([os.path.abspath(Path(f).parent) for f in files])
    return stamp_of(files, Path(folder))


def other_input(recorded: object, paths: Sequence[Path]) -> bool:
    """Whether an output whose input "changed" (:func:`input_changed`) was made from other
    files than ``paths``: another input of the same name (``a/scene.tif`` then
    ``b/scene.tif`` into one folder), which a rerun must not replace as if it were its own.
    Neither way of naming the files (:func:`input_ids`) may match; an earlier stamp without
    them cannot tell: False."""
    if not isinstance(recorded, dict):
        return False
    ids = recorded.get("input_ids")
    if not isinstance(ids, list) or not ids:
        return False
    return not set(map(str, ids)) & set(input_ids(paths))


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


__all__ = [
    "INPUT_CHANGED",
    "OTHER_INPUT",
    "SOURCE_STAMP_KEY",
    "input_changed",
    "input_ids",
    "other_input",
    "series_stamp",
    "stamp_of",
]
