"""Output safety shared by every writer: path checks, locks, atomic replacement, temp cleanup.

The rules (also in ``docs/output_safety.md``):

1. **Inputs are never touched.** Paths are resolved (symbolic links, ``..``, hard links): an
   output equal to an input, an output inside an input folder, or an input inside an output
   folder is refused, even with ``overwrite``.
2. **Only our own outputs are replaced.** An existing output is replaced only with
   ``overwrite``; an existing non-empty *folder* only when sr_domains wrote it: its manifest
   (:data:`MANIFEST`) must list every entry in it, so unrelated files are never deleted.
3. **One writer per destination.** An exclusive lock (``.NAME.sr-lock`` beside the output,
   ``flock``) is held while the output is written; a second run fails at once, and a run that
   finds the output finished meanwhile stops with "output exists".
4. **Atomic.** Outputs are written under a hidden temporary name in the same folder
   (``.NAME.sr-tmp-PID-XXXXXXXX``), flushed to disk, then renamed onto the final name: files
   with ``os.replace``; folders with an atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``)
   so the final name never goes missing, or, where that is unsupported, two renames whose
   interruption the next run repairs by restoring the previous output.
5. **No litter.** A failed run removes its temporary files and the parent folders it created;
   temporaries left by a killed run are removed by the next run that takes the lock (the CLI
   also turns SIGTERM into a clean exit).
6. Created files and folders honour the umask.

Rules 1 and 2 are checked without touching any file by :mod:`sr_domains.output_checks`
(re-exported here). Moved out, and re-exported here too: the destination lock (rule 3) to
:mod:`sr_domains.io_locks`; temporary names and the cleanup of stale ones (rules 4-5) to
:mod:`sr_domains.io_temps`. The atomic replacement, manifests and checksums stay here.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import functools
import hashlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import (
    OutputBusyError,  # noqa: F401  (re-exported: what a held lock raises)
    UnsafeOutputError,
)
from .io_locks import LOCK_TAG, destination_lock, lock_path  # noqa: F401  (re-exported, rule 3)
from .io_temps import (  # re-exported: temporary names and their cleanup live there
    OLD_TAG,  # noqa: F401
    TMP_TAG,  # noqa: F401
    clean_stale,
    full_suffix,
    keep_if_foreign,
    old_name,
    remove_temp,
    temp_name,
)
from .output_checks import (  # re-exported: the path rules live there
    MANIFEST,
    Kind,
    PathArg,
    check_existing,
    check_paths,
    check_writable,
    foreign_entries,
    preflight,
    read_manifest,
)
from .strict_json import provenance_json

log = logging.getLogger(__name__)


# -- replacement ------------------------------------------------------------------------------
def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_path(Path(root) / name)
        _fsync_path(Path(root))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: PathArg, b: PathArg) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def replace_dir(tmp: Path, dst: Path) -> None:
    """Move the finished folder ``tmp`` onto ``dst`` (rule 4); the previous ``dst`` is deleted
    only once the new one is in place, and only when it holds nothing sr_domains did not
    write (:func:`_drop_previous`)."""
    if not os.path.lexists(dst):
        os.rename(tmp, dst)  # (fails on a folder made meanwhile that is not empty)
        return
    if dst.is_dir() and not dst.is_symlink() and read_manifest(dst) is None:
        _replace_empty(tmp, dst)  # (no manifest: it was empty, a folder the user made)
        return
    if exchange(tmp, dst):  # dst is the new folder now; tmp holds the previous one
        _drop_previous(tmp, dst)
        return
    old = old_name(dst)
    os.rename(dst, old)
    try:
        os.rename(tmp, dst)
    except BaseException:
        os.rename(old, dst)
        raise
    _drop_previous(old, dst)


def _replace_empty(tmp: Path, dst: Path) -> None:
    """Rename ``tmp`` onto the empty folder ``dst`` (atomic, and refused by the OS once the
    folder is not empty): a file saved into it meanwhile stays where the user put it; a swap
    would move it under a temporary name that only a manifest could tell from ours."""
    try:
        os.rename(tmp, dst)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        try:
            entries = sorted(os.listdir(dst))
        except OSError:
            entries = []
        raise UnsafeOutputError(
            dst,
            f"received entries during the run ({', '.join(entries[:5])}); it is never "
            "replaced: remove them yourself or choose another folder",
        ) from None


def _drop_previous(old: Path, dst: Path) -> None:
    """Delete the folder the new ``dst`` replaced, unless entries sr_domains did not write
    appeared in it after the last check (a file saved into it during the swap): then it is
    kept beside the output under a visible name, with a warning (:func:`keep_if_foreign`;
    should that fail or be interrupted, the next run's :func:`clean_stale` keeps it too)."""
    if not keep_if_foreign(old, dst):
        remove_temp(old)


def _write_manifest(folder: Path, sources: Sequence[PathArg], extra: dict[str, Any]) -> None:
    from . import __version__

    files = sorted(n for n in os.listdir(folder) if n != MANIFEST)
    data = {
        "software": "sr_domains",
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sources": [os.fspath(s) for s in sources],
        **extra,
        "files": files,
    }
    (folder / MANIFEST).write_text(provenance_json(data, indent=1) + "\n", encoding="utf-8")


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p`` that returns the folders it created (outermost first)."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created = []
    for q in reversed(missing):
        try:
            q.mkdir()
        except FileExistsError:
            continue
        created.append(q)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for q in reversed(folders):
        with contextlib.suppress(OSError):
            q.rmdir()


def errno_cause(exc: OSError) -> OSError:
    """The OS error that carries the ``errno`` behind ``exc``.

    Some writers re-raise a system error as a bare copy with a longer message and no errno
    (pydicom's "With tag (7FE0,0010) got exception: [Errno 28] ..."); the original is in the
    ``__cause__``/``__context__`` chain. ``exc`` itself when it has an errno or none is found.
    """
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return exc


@contextlib.contextmanager
def atomic_output(
    dst: PathArg,
    inputs: Sequence[PathArg] = (),
    *,
    kind: Kind = "file",
    overwrite: bool = False,
    manifest: dict[str, Any] | None = None,
    fmt: str | None = None,
) -> Iterator[Path]:
    """Yield a temporary path to write the output of ``inputs`` to; on success it replaces
    ``dst`` atomically, on failure it is removed (see the module rules).

    Args:
        dst: the final output file or folder.
        inputs: the input files/folders the output is made from (rule 1).
        kind: ``"file"`` (the temp path has ``dst``'s suffixes) or ``"dir"`` (an empty temp
            folder is created; a manifest is added before the swap).
        overwrite: replace an existing output (rule 2).
        manifest: extra fields for a folder's manifest.
        fmt: the model format written (see :func:`~sr_domains.output_checks.check_existing`;
            default: told by the suffix), for every check of an existing output.
    """
    dst = Path(dst)
    preflight(dst, inputs, kind=kind, overwrite=overwrite, fmt=fmt)
    created = _make_parents(dst.parent)
    try:
        with destination_lock(dst):
            clean_stale(dst)  # may restore an output an interrupted run moved aside
            check_existing(dst, kind=kind, overwrite=overwrite, fmt=fmt)  # again, now held
            if dst.is_symlink():  # (replaced itself: never written through)
                log.warning(
                    "%s: a symbolic link (to %s): the output replaces the link; what it points "
                    "to is left as it is",
                    dst,
                    os.readlink(dst),
                )
            tmp = temp_name(dst, "" if kind == "dir" else full_suffix(dst))
            if kind == "dir":
                os.mkdir(tmp)  # 0o777 & ~umask, unlike tempfile.mkdtemp's 0o700
            try:
                try:
                    yield tmp
                except OSError as exc:
                    cause = errno_cause(exc)
                    if cause.filename is None and cause.errno is not None:  # name the output
                        raise OSError(cause.errno, cause.strerror, str(dst)) from exc
                    raise
                if kind == "dir":
                    _write_manifest(tmp, inputs, manifest or {})
                    _fsync_tree(tmp)
                    # again: a file saved into the folder during the run is the user's
                    check_existing(dst, kind=kind, overwrite=overwrite)
                    replace_dir(tmp, dst)
                else:
                    if not tmp.is_file():
                        raise FileNotFoundError(
                            errno.ENOENT, "the writer produced no file", str(tmp)
                        )
                    _fsync_path(tmp)
                    os.replace(tmp, dst)
                _fsync_path(dst.parent)
            finally:
                remove_temp(tmp)  # the temp itself if it failed, its sidecars in any case
    except BaseException:
        _remove_empty(created)
        raise


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (provenance of weights and outputs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_file` of a weights file, read once per version of the file: a batch asks
    for it per task and per existing output, and a weights file can be tens of MB. The
    version is the file's identity (device, inode, size, mtime), so a file saved again (by an
    atomic rename: a new inode) is read again."""
    st = os.stat(path)
    return _sha256_of_version(
        os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
    )


@functools.lru_cache(maxsize=64)
def _sha256_of_version(path: str, dev: int, ino: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def batch_entry(path: Path) -> bool:
    """True for what a batch lists from a folder: a regular file, or a broken link (kept, so
    that it fails with its own error instead of vanishing from the batch); hidden names are
    skipped."""
    if path.name.startswith("."):
        return False
    return path.is_file() or (path.is_symlink() and not path.exists())


__all__ = [
    "MANIFEST",
    "atomic_output",
    "batch_entry",
    "check_existing",
    "check_paths",
    "check_writable",
    "clean_stale",
    "destination_lock",
    "errno_cause",
    "exchange",
    "foreign_entries",
    "full_suffix",
    "preflight",
    "read_manifest",
    "remove_temp",
    "replace_dir",
    "sha256_file",
    "temp_name",
    "weights_sha256",
]
