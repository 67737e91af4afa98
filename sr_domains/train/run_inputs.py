"""The files a training config reads, and refusing those that are the run's own files.

A run replaces its files in ``out_dir/name/`` as it goes, and ``--overwrite`` deletes them
before it starts (:mod:`sr_domains.train.run_files`): an input there would be lost, e.g.
``model.init_from: RUN_DIR/weights.safetensors`` ("fine-tune the last result") is gone before
the first step, and a paused run can no longer be resumed. Such an input is refused before
anything is changed. A path is compared entry by entry as it is resolved (a symlink on the way
into the run folder, ``..``). A hard link to a run file is not refused: the run replaces its
files (a temporary renamed into place) and ``--overwrite`` unlinks them, which leaves the
other name's contents as they were.

Of ``data`` / ``val.data`` only the files named directly are checked: folders and glob matches
are read for images only (:mod:`sr_domains.train.inputs`), which a run never writes, so a data
folder or ``imgs/**`` that reaches the run folder is no risk (and no reason to refuse a resume).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError, InputFileError, UnsafeOutputError
from .config import TrainConfig
from .run_names import RUN_DIRS, is_run_entry

PathArg = str | os.PathLike[str]


def config_inputs(config: TrainConfig) -> list[tuple[str, Path]]:
    """``(setting, path)`` of the paths ``config`` reads that a run could replace or delete:
    ``model.init_from``, ``loss.vgg_weights``, the files ``data`` and ``val.data`` name
    directly (see the module docs) and a corpus's files present here."""
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
        named = [e for e in data.paths if not any(c in e for c in "*?[")]
        out += [(f"{section}.paths", Path(e)) for e in named if not Path(e).is_dir()]
    return out


def check_inputs(run: Path, inputs: Iterable[tuple[str, PathArg]]) -> None:
    """Refuse an input that is the run folder ``run`` or one of the files the run writes or
    ``--overwrite`` deletes there (:data:`~sr_domains.train.run_names.RUN_FILES`, their
    temporaries, anything under ``tb/``).

    Raises:
        UnsafeOutputError: naming the input and the setting it comes from.
    """
    real = Path(os.path.realpath(run))
    for setting, path in inputs:
        how = _in_run(Path(path), real)
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


__all__ = ["check_inputs", "config_inputs"]
