"""Temporary names beside an output and their cleanup (rules 4 and 5 of
:mod:`sr_domains.io_safety`): ``.NAME.sr-tmp-PID-XXXXXXXX`` while writing, ``.NAME.sr-old-*``
during a folder swap, and the removal of what an interrupted run left. ``NAME`` is the
output's :func:`~sr_domains.output_names.name_key`: its name, shortened with a hash when long,
so that these names fit the file system's limit."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

from .output_checks import PathArg, foreign_entries, read_manifest
from .output_names import full_suffix, name_key

log = logging.getLogger("sr_domains.io_safety")  # the name these messages always had

TMP_TAG = ".sr-tmp-"
OLD_TAG = ".sr-old-"


def remove_temp(path: Path) -> None:
    """Remove a temp file or folder and its sidecars (``NAME.*``, and ``STEM.*``/``STEM_*``
    such as GDAL's ``.aux.xml``, ``.IMD``, ``_RPC.TXT``), never raising. ``STEM`` runs through
    the temporary's own ``PID-XXXXXXXX`` (:func:`temp_stem`), so the sidecars of one temporary
    are never confused with another output's (``.ct.sr-tmp-*`` vs ``.ct.nii.gz.sr-tmp-*``)."""
    stem = temp_stem(path.name)
    prefixes = (path.name + ".",) if stem is None else (path.name + ".", stem + ".", stem + "_")
    try:
        siblings = [
            e
            for e in os.scandir(path.parent)
            if e.name != path.name and e.name.startswith(prefixes) and TMP_TAG in e.name
        ]
    except OSError:
        siblings = []
    for p in [path, *(Path(e.path) for e in siblings)]:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove temporary %s: %s", p, exc)


def temp_stem(name: str) -> str | None:
    """``.NAME.sr-tmp-PID-XXXXXXXX`` of a temporary's name (what follows is its extension and
    GDAL's sidecar endings); None for a name without :data:`TMP_TAG`. Not ``Path.stem``: a
    folder temporary has no extension, and its "stem" would be ``.NAME``, the prefix of every
    other output's temporaries that start with that name."""
    i = name.rfind(TMP_TAG)
    if i < 0:
        return None
    j = name.find(".", i + len(TMP_TAG))
    return name if j < 0 else name[:j]


def keep_if_foreign(folder: Path, dst: Path, *, replaced: bool = True) -> bool:
    """Move a replaced output folder ``folder`` beside ``dst`` as ``NAME.previous-XXXXXX``
    (True) when it holds entries sr_domains did not write (files a user saved into the output
    while a run replaced it), or when it cannot be listed; False when it may be deleted.

    ``replaced=False``: ``folder`` may also be a run's unfinished temporary folder, which is
    judged only once it has a manifest (written last: without it, every entry is ours)."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    if not replaced and read_manifest(folder) is None:
        return False
    try:
        foreign = foreign_entries(folder)
    except OSError as exc:  # (cannot tell: kept)
        foreign = [f"(cannot list it: {exc})"]
    if not foreign:
        return False
    kept = dst.parent / f"{name_key(dst)}.previous-{secrets.token_hex(3)}"
    try:
        os.rename(folder, kept)
    except OSError as exc:
        log.error(
            "%s: the folder it replaced holds entries sr_domains did not write (%s); it could "
            "not be renamed (%s) and stays as %s, which later runs keep",
            dst,
            ", ".join(foreign[:5]),
            exc,
            folder,
        )
        return True
    log.warning(
        "%s: the folder it replaced received entries sr_domains did not write (%s); it is kept "
        "as %s",
        dst,
        ", ".join(foreign[:5]),
        kept,
    )
    return True


def clean_stale(dst: PathArg) -> None:
    """Under the lock of ``dst``: remove temporaries of earlier runs; finish an interrupted
    folder replacement (restore the previous output when the final name is missing). A
    replaced folder holding a user's files is kept (:func:`keep_if_foreign`), never removed."""
    dst = Path(dst)
    try:
        entries = list(os.scandir(dst.parent))
    except OSError:
        return
    key = name_key(dst)
    tmp_prefix, old_prefix = f".{key}{TMP_TAG}", f".{key}{OLD_TAG}"
    olds = sorted(
        (Path(e.path) for e in entries if e.name.startswith(old_prefix)),
        key=lambda p: p.stat().st_mtime,
    )
    if olds and not os.path.lexists(dst):
        os.rename(olds[-1], dst)
        log.warning("%s: restored the previous output after an interrupted replacement", dst)
        olds = olds[:-1]
    for p in olds:
        if not keep_if_foreign(p, dst):
            remove_temp(p)
    for e in entries:
        if e.name.startswith(tmp_prefix) and os.path.lexists(e.path):
            if keep_if_foreign(Path(e.path), dst, replaced=False):
                continue
            log.info("removing %s left by an interrupted run", e.path)
            remove_temp(Path(e.path))


def temp_name(dst: PathArg, suffix: str = "") -> Path:
    """A fresh hidden temporary path beside ``dst`` (same folder: the rename is atomic)."""
    dst = Path(dst)
    return dst.parent / f".{name_key(dst)}{TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def old_name(dst: PathArg) -> Path:
    """Where a replaced output folder waits during a swap without ``renameat2``."""
    dst = Path(dst)
    return dst.parent / f".{name_key(dst)}{OLD_TAG}{secrets.token_hex(4)}"


__all__ = [
    "OLD_TAG",
    "TMP_TAG",
    "clean_stale",
    "full_suffix",
    "keep_if_foreign",
    "old_name",
    "remove_temp",
    "temp_name",
    "temp_stem",
]
