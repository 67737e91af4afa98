"""The files of a training run folder (``out_dir/name/``): preparing it (resume or start over),
``last.pt`` written atomically and read back weights-only, and the CSV logs."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..checkpoint import ModelCard, unpickle_error
from ..config import dump_yaml
from ..degrade import describe_degradation
from ..errors import CheckpointError, ConfigError, OutputExistsError, UnsafeOutputError
from ..models.base import SRModel
from .config import TrainConfig
from .dist import DistInfo
from .run_names import RUN_DIRS, RUN_FILES, RUN_TEMP, is_run_entry

log = logging.getLogger(__name__)


def _run_temp(path: Path) -> Path:
    """A temporary beside ``path`` named as :data:`RUN_TEMP` matches."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file renamed into place (no half-written ``last.pt``)."""
    tmp = _run_temp(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """``text`` to a temporary file renamed into place: never written through a link at
    ``path`` (into the file it points to) nor left half-written by a crash."""
    tmp = _run_temp(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_resume_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read ``last.pt`` with ``torch.load(weights_only=True)``: tensors, numbers, strings and
    containers only, so a crafted file cannot run code."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no checkpoint to resume from") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: {unpickle_error(exc)}") from exc
    if not isinstance(state, dict) or "step" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a sr_domains training checkpoint")
    return state


class CsvLog:
    """A CSV log that appends one row per call (a ``step`` column first).

    A new log (``resume_at`` None, or no file yet) starts with the header. ``resume_at``
    continues a log from the checkpoint of that step: rows past it (logged after ``last.pt``
    was written, before the interruption) and broken rows (a write cut short) are dropped,
    the file rewritten atomically, so the resumed run logs those steps once. ``last`` is the
    last row kept (empty for a new log).
    """

    def __init__(self, path: Path, fields: list[str], resume_at: int | None = None) -> None:
        self.path = path
        self.fields = fields
        self.last: dict[str, str] = {}
        if resume_at is not None and path.exists():
            self._keep_through(resume_at)
        else:
            _write_rows(path, [fields])

    def _keep_through(self, step: int) -> None:
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        kept = [self.fields]
        for row in rows[1:]:
            if len(row) == len(self.fields) and row[0].isdigit() and int(row[0]) <= step:
                kept.append(row)
        if len(kept) > 1:
            self.last = dict(zip(self.fields, kept[-1], strict=True))
        if kept != rows or not text.endswith("\n"):
            _write_rows(self.path, kept)

    def last_number(self, field: str) -> float:
        """``field`` of the last row kept, as a number (0 when none)."""
        try:
            return float(self.last.get(field) or 0)
        except ValueError:
            return 0.0

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(k, "")) for k in self.fields])


def _write_rows(path: Path, rows: list[list[Any]]) -> None:
    """Write a whole CSV file through a temporary renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


LOG_FIELDS = [
    "step",
    "lr",
    "loss",
    "loss_pixel",
    "loss_spectral",
    "loss_perceptual",
    "loss_gan",
    "loss_d",
]


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


#: A TensorBoard event file (``SummaryWriter``): what ``tb/`` holds.
TB_EVENTS = re.compile(r"events\.out\.tfevents\..+")


def _foreign_in_tb(tb: Path) -> list[str]:
    """Files under the run's ``tb/`` that are not TensorBoard event files (a user's notes):
    ``--overwrite`` would delete them with the folder."""
    if not tb.is_dir() or tb.is_symlink():
        return []
    found = []
    for root, _dirs, files in os.walk(tb):
        for name in files:
            if not TB_EVENTS.fullmatch(name):
                found.append(str((Path(root) / name).relative_to(tb.parent)))
    return sorted(found)


def prepare_run_dir(config: TrainConfig, resume: bool, overwrite: bool) -> bool:
    """Create the run folder; True when resuming from ``last.pt``.

    ``overwrite`` starts over in a folder that holds a run's outputs: those are removed (the
    old TensorBoard events too, so runs do not mix); a folder that also holds anything else
    is refused, so a user's files are never deleted. (:func:`check_run_dir` first, then
    :func:`clear_run_dir`: :func:`~sr_domains.train.trainer.train` sets the run up between
    the two, so a bad setting stops it before the previous run's files are removed.)
    """
    resuming = check_run_dir(config, resume, overwrite)
    if not resuming:
        clear_run_dir(config, overwrite)
    return resuming


def check_run_dir(config: TrainConfig, resume: bool, overwrite: bool) -> bool:
    """Refuse a run folder the run may not use (see :func:`prepare_run_dir`), changing
    nothing; True when resuming from ``last.pt``. An input of the config that is one of the
    run's files (:func:`~sr_domains.train.run_inputs.check_inputs`) is refused in every case."""
    from .run_inputs import check_inputs, config_inputs

    run = config.run_dir
    check_inputs(run, config_inputs(config))
    if resume:
        if (run / "last.pt").exists():
            return True
        check_resumable(run)
    if run.exists() and not run.is_dir():
        raise UnsafeOutputError(run, "exists and is not a folder; choose another out_dir/name")
    if run.exists() and any(run.iterdir()) and not overwrite:
        raise OutputExistsError(run)
    if run.exists() and overwrite:
        foreign = sorted(n for n in _entries(run) if not is_run_entry(n))
        foreign += [f for name in RUN_DIRS for f in _foreign_in_tb(run / name)]
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise UnsafeOutputError(
                run,
                f"holds files that are not a run's outputs ({shown}); it is not cleared, even "
                "with --overwrite (Python: overwrite=True): remove them yourself or choose "
                "another out_dir/name",
            )
    return False


def clear_run_dir(config: TrainConfig, overwrite: bool) -> None:
    """Remove a previous run's outputs from the run folder (with ``overwrite``; the folder
    passed :func:`check_run_dir`) and create it."""
    run = config.run_dir
    if run.exists() and overwrite:
        for name in [*RUN_FILES, *_temps(run)]:  # (temporaries of a killed run)
            (run / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            if (run / name).is_dir() and not (run / name).is_symlink():
                shutil.rmtree(run / name)
            else:
                (run / name).unlink(missing_ok=True)
    run.mkdir(parents=True, exist_ok=True)


def _entries(run: Path) -> list[str]:
    return [e.name for e in run.iterdir()]


def _temps(run: Path) -> list[str]:
    return [n for n in _entries(run) if RUN_TEMP.fullmatch(n)]


def check_resumable(run: Path) -> None:
    """Resuming needs ``run/last.pt``: a missing run folder (a mistyped ``out_dir`` or
    ``name``) or one without ``last.pt`` is a :class:`ConfigError`, never a fresh run."""
    if (run / "last.pt").exists():
        return
    if not run.exists():
        raise ConfigError(
            f"{run}: cannot resume, the run folder does not exist (nothing to resume; check "
            "out_dir and name, or start a new run without resume)"
        )
    if not run.is_dir():
        raise UnsafeOutputError(run, "exists and is not a folder; choose another out_dir/name")
    if any(run.iterdir()):
        raise ConfigError(
            f"{run}: cannot resume, no last.pt (pass --overwrite (Python: overwrite=True) to "
            "start over)"
        )
    raise ConfigError(
        f"{run}: cannot resume, no last.pt (nothing to resume; start a new run without resume)"
    )


def missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:  # not empty: the run's files, or anyone's
            return


def check_same_model(state: dict[str, Any], config: TrainConfig) -> None:
    """Resuming needs the network ``last.pt`` was written by: a changed ``scale``, ``model``
    section or ``data.profile`` (the normalization it learned) is one clear error (not a
    state-dict traceback); other changes are logged (and
    apply: :func:`~sr_domains.train.trainer_state.load_state_dict` puts the config's
    learning rate, betas and weight decay on the restored optimizers)."""
    import yaml

    try:
        saved = yaml.safe_load(str(state.get("config", ""))) or {}
    except yaml.YAMLError:
        saved = {}
    now = yaml.safe_load(dump_yaml(config)) or {}
    if not isinstance(saved, dict) or not saved:
        return
    last = config.run_dir / "last.pt"
    if "scale" in saved and saved["scale"] != now.get("scale"):
        raise ConfigError(
            f"{last}: the run was started at x{saved['scale']}, the config now says "
            f"x{now.get('scale')}; resume at the same scale, or start over (--overwrite, or "
            "another name)"
        )
    if saved.get("model") != now.get("model"):
        raise ConfigError(
            f"{last}: the run was started with model "
            f"{saved.get('model')}, the config now says {now.get('model')}; resume with the "
            "same model, or start over (--overwrite, or another name)"
        )
    was = (saved.get("data") or {}).get("profile") if isinstance(saved.get("data"), dict) else None
    if was is not None and was != (now.get("data") or {}).get("profile"):
        raise ConfigError(
            f"{last}: the run was started with data.profile {was!r}, the config now says "
            f"{now['data'].get('profile')!r}: the network has learned values normalized the "
            "first way (and its card would name only the second); resume with the same "
            "profile, or start over (--overwrite, or another name)"
        )
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed and not (dist.is_initialized() and dist.get_rank() != 0):  # rank 0 logs
        log.warning("resuming with changed settings: %s", ", ".join(changed))


def final_card(
    config: TrainConfig,
    model: SRModel,
    data: str,
    info: DistInfo,
    validation: dict[str, float],
    world_sizes: list[tuple[int, int]] | None = None,
) -> ModelCard:
    """The model card of ``weights.safetensors``: the config's card section, the training data
    (``data``: the dataset's description) and degradation, and the last validation scores.
    ``world_sizes``: ``(first step, processes)`` of each segment of a resumed run (one
    segment, or None: ``info.world_size`` throughout)."""
    c = config
    return ModelCard.for_model(
        model,
        name=c.card.name or c.name,
        bands=list(c.card.bands),
        source_bands=list(c.data.bands or ()),
        modality=c.card.modality,
        profile={"recipe": c.data.profile},
        training_data=(
            f"{data} Degradation: {describe_degradation(c.degradation)}. "
            + _batches(c, info.world_size, world_sizes)
            + (f" Started from {Path(c.model.init_from).name}." if c.model.init_from else "")
        ),
        metrics={k: round(v, 4) for k, v in validation.items()},
        notes=c.card.notes,
        spectral=c.card.spectral,
    )


def _batches(c: TrainConfig, world_size: int, segments: list[tuple[int, int]] | None) -> str:
    """How many steps of how many patches, e.g. ``6 steps x 2 patches x 1 process(es).``; a
    run resumed with another number of processes says which steps ran with how many: ``6 steps
    x 2 patches per process, 2 process(es) for steps 1-3 then 1 process(es) for steps 4-6.``"""
    if not segments or len(segments) == 1:
        n = segments[0][1] if segments else world_size
        return f"{c.steps} steps x {c.batch_size} patches x {n} process(es)."
    ends = [start for start, _ in segments[1:]] + [c.steps]
    parts = [
        f"{n} process(es)" if n else "a number of processes not recorded" for (_, n) in segments
    ]
    said = [
        f"{p} for steps {a + 1}-{b}" for p, (a, _), b in zip(parts, segments, ends, strict=True)
    ]
    return f"{c.steps} steps x {c.batch_size} patches per process, {' then '.join(said)}."


__all__ = [
    "LOG_FIELDS",
    "RUN_DIRS",
    "RUN_FILES",
    "RUN_TEMP",
    "CsvLog",
    "atomic_torch_save",
    "check_resumable",
    "check_run_dir",
    "check_same_model",
    "clear_run_dir",
    "final_card",
    "is_run_entry",
    "load_resume_state",
    "missing_folders",
    "prepare_run_dir",
    "remove_empty",
]
