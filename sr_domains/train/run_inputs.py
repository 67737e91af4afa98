"""The files a training config reads, and refusing those that are the run's own files.

A run replaces its files in ``out_dir/name/`` as it goes, and ``--overwrite`` deletes them
before it starts (:mod:`sr_domains.train.run_files`): an input there would be lost, e.g.
``model.init_from: RUN_DIR/weights.safetensors`` ("fine-tune the last result") is gone before
the first step, and a paused run can no longer be resumed. Such an input is refused before
anything is changed. A path is compared entry by entry as it is resolved (a symlink on the way
into the run folder, ``..``) and by file identity (a hard link).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError, InputFileError, UnsafeOutputError
from .config import TrainConfig
from .run_files import RUN_DIRS, is_run_entry

PathArg = str | os.PathLike[str]


def config_inputs(config: TrainConfig) -> list[tuple[str, Path]]:
    """``(setting, path)`` of every path ``config`` reads: ``model.init_from``,
    ``loss.vgg_weights``, and the files, folders and glob matches of ``data`` and ``val.data``
    (a corpus: its files present here)."""
    out: list[tuple[str, Path]] = []
    if config.model.init_from:
        out.append(("model.init_from", Path(config.model.init_from)))
    if config.loss.vgg_weights:
        out.append(("loss.vgg_weights", Path(config.loss.vgg_weights)))
    for section, data in (("data", config.data), ("val.data", config.val.data)):
        if data is None:
            continue
        if data.corpus:
            from .corpora import corpus_files

            try:
                files = corpus_files(data.corpus)
            except (ConfigError, InputFileError):  # (the data set-up says so)
                files = []
            out += [(f"{section}.corpus", p) for p in files]
        for entry in data.paths:
            # a glob as the data set-up expands it (inputs.expand_paths)
            found = glob.glob(entry, recursive=True) if any(c in entry for c in "*?[") else []
            out += [(f"{section}.paths", Path(p)) for p in found or [entry]]
    return out


def check_inputs(run: Path, inputs: Iterable[tuple[str, PathArg]]) -> None:
    """Refuse an input that is the run folder ``run``, one of the files the run writes or
    ``--overwrite`` deletes there (:data:`~sr_domains.train.run_files.RUN_FILES`, their
    temporaries, anything under ``tb/``), or the same file as one of those (a hard link).

    Raises:
        UnsafeOutputError: naming the input and the setting it comes from.
    """
    real = Path(os.path.realpath(run))
    owned = _owned_files(run)
    for setting, path in inputs:
        how = _in_run(Path(path), real) or _same_as(Path(path), run, owned)
        if how:
            raise UnsafeOutputError(
                path,
                f"{setting} {how} the run folder {run}: the run replaces its files and "
                "--overwrite (Python: overwrite=True) deletes them before it starts, so this "
                f"input would be lost; copy it out of the run folder (or give the run another "
                f"name) and point {setting} at the copy",
            )


def _in_run(path: Path, real: Path) -> str:
    """How ``path`` depends on the run folder ``real`` (a real path), or "": each folder entry
    resolving ``path`` goes through (following symlinks one at a time, as the OS does) is
    checked, so a symlink inside the run folder pointing elsewhere counts too."""
    pending = list((path if path.is_absolute() else Path.cwd() / path).parts)
    cur = Path(pending.pop(0))  # (the root; cur never holds a symlink)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            cur = cur.parent
            continue
        entry = cur / part
        if entry.parent == real and is_run_entry(part):
            if pending and part in RUN_DIRS:
                return f"lies in the run's {part}/ folder in"
            return f"is the run's own {part} in"
        if entry.is_symlink() and hops < 40:  # (a loop: the OS refuses it, we stop there)
            hops += 1
            target = Path(os.readlink(entry))
            if target.is_absolute():
                cur = Path(target.anchor)
                pending = [*target.parts[1:], *pending]
            else:
                pending = [*target.parts, *pending]
            continue
        cur = entry
    return "is" if cur == real else ""


def _owned_files(run: Path) -> list[Path]:
    """The regular files the run replaces or ``--overwrite`` deletes in ``run`` (no symlinks:
    removing one leaves its target)."""
    if not run.is_dir():
        return []
    out = [e for e in run.iterdir() if is_run_entry(e.name) and e.name not in RUN_DIRS]
    for name in RUN_DIRS:
        if (run / name).is_dir() and not (run / name).is_symlink():
            for root, _, files in os.walk(run / name):
                out += [Path(root) / f for f in files]
    return [p for p in out if p.is_file() and not p.is_symlink()]


def _same_as(path: Path, run: Path, owned: list[Path]) -> str:
    for f in owned:
        try:
            if os.path.samefile(path, f):
                return f"is the same file (a hard link) as the run's {f.relative_to(run)} in"
        except OSError:
            continue
    return ""


__all__ = ["check_inputs", "config_inputs"]
