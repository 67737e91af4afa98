"""The training loop of :class:`~sr_domains.train.trainer.Trainer`: steps, log rows,
validation, ``last.pt`` every ``checkpoint_every`` steps, and the pause for ``stop_at`` or a
stop signal (:mod:`sr_domains.train.interrupts`).

A Ctrl-C or SIGTERM pauses the run right after the step, the validation or the checkpoint
write it came in (``last.pt`` written, as ``stop_at`` that step writes it), then stops it.

Split from :mod:`sr_domains.train.trainer`; ``Trainer.fit`` calls :func:`fit`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import dump_yaml
from . import trainer_state, trainer_steps
from .config import TrainConfig
from .dist import DistInfo, barrier
from .interrupts import StopRequests
from .run_files import LOG_FIELDS, CsvLog, atomic_torch_save, atomic_write_text, load_resume_state
from .run_parts import Batches

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger(__name__)

#: The columns of ``val.csv``.
VAL_FIELDS = ["step", "psnr", "psnr_bicubic", "psnr_gain_db", "ssim", "ssim_bicubic"]


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    weights: Path | None
    steps: int
    losses: list[float] = field(default_factory=list)  # logged training loss per log_every
    validation: dict[str, float] = field(default_factory=dict)  # last validation summary
    already_finished: bool = False  # resumed a finished run: nothing was run or written


def fit(
    trainer: Trainer, resume: bool = False, stop_at: int | None = None, *, loaded: bool = False
) -> TrainResult:
    """Train to ``config.steps`` or pause at ``stop_at`` (see ``Trainer.fit``)."""
    c, info = trainer.config, trainer.info
    end = c.steps if stop_at is None else min(stop_at, c.steps)
    run = c.run_dir
    last = run / "last.pt"
    if resume:
        if not loaded:
            state = load_resume_state(last, info.device)
            early = resume_early(c, info, state, stop_at)
            if early is not None:  # (every rank: the same checkpoint)
                return early
            trainer_state.load_state_dict(trainer, state, checked=True)
            del state  # (not held while the run goes on)
        log.info("resumed %s at step %d", last, trainer.step)
    if info.is_main:  # (on resume too: the folder describes the run as it goes on)
        atomic_write_text(run / "config.yaml", dump_yaml(c))  # (not through a link)
    logs = valcsv = tb = None
    at = trainer.step if resume else None  # (logs keep the rows up to the checkpoint only)
    if info.is_main:
        logs = CsvLog(run / "log.csv", [*LOG_FIELDS, "sec"], resume_at=at)
        valcsv = CsvLog(run / "val.csv", VAL_FIELDS, resume_at=at)
        if c.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if at is None else at + 1  # TensorBoard drops later events
            tb = SummaryWriter(str(run / "tb"), purge_step=purge)
    batches = Batches(trainer.dataset, c, info).from_step(trainer.step)
    bar = None
    if trainer.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=c.steps, initial=trainer.step, desc=c.name, unit="step")
    result, first = TrainResult(run, None, trainer.step), trainer.step
    acc: list[dict[str, float]] = []  # the steps since the last log row
    t0 = time.perf_counter() - (logs.last_number("sec") if logs is not None else 0.0)
    validation: dict[str, float] = {}
    stop, signum = StopRequests(info), 0  # Ctrl-C / SIGTERM: pause after the step

    def log_row(steps: list[dict[str, float]]) -> list[dict[str, float]]:
        return trainer_steps.log_row(trainer, steps, result.losses, logs, tb, t0)

    def pause_here() -> int:
        """Ask every rank for a signal that came since the last ask; one: the run pauses at
        this step (its log row written now, as a pause at this step writes it)."""
        nonlocal acc, end
        agreed = stop.agreed()  # (the same on every rank)
        if agreed:
            end = trainer.step
            if acc:
                acc = log_row(acc)
        return agreed

    with stop.installed():
        try:
            while trainer.step < end:
                stats = trainer.train_step(next(batches))
                acc.append(stats)
                if not all(np.isfinite(v) for v in stats.values()):
                    raise trainer._diverged(stats)
                signum = stop.agreed()  # (the same on every rank)
                if signum:  # a pause here, as --stop-at this step
                    end = trainer.step
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss']:.4g}")
                if trainer.step % c.log_every == 0 or trainer.step in (c.steps, end):  # (a pause)
                    acc = log_row(acc)
                if trainer.step % c.val.every == 0 or trainer.step == c.steps:
                    if info.is_main:
                        validation = _validate_and_log(trainer, valcsv, tb)
                    if not signum:  # one that came while it validated: a pause here too
                        # (every rank samples its flag once rank 0 has validated: one sent
                        # to another rank meanwhile counts at this step too)
                        barrier(info)
                        signum = pause_here()
                wrote = trainer.step % c.checkpoint_every == 0 or trainer.step == end
                if info.is_main and wrote:
                    atomic_torch_save(trainer.state_dict(), last)
                barrier(info)
                if wrote and not signum:  # one that came while last.pt was written: a pause
                    # here, last.pt is this step's already (every rank asks once it is written)
                    signum = pause_here()
        finally:
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()
        result.steps = trainer.step
        if info.is_main and trainer.step == c.steps == first:  # resumed at steps, no weights
            validation = _validate_finished(trainer, valcsv)
        result.validation = validation
        if info.is_main and trainer.step == c.steps:
            result.weights = trainer.save_weights(run / "weights.safetensors", validation)
        barrier(info)
    signum = signum or stop.signum  # (one that came while the weights were written)
    if signum:  # after the files are written: stop as the signal would have
        done = trainer.step == c.steps
        stop.exit(
            signum,
            trainer.step,
            f"the run had finished, {result.weights} written"
            if done
            else f"paused, {last} written; continue with --resume (Python: resume=True)",
        )
    return result


def _validate_finished(trainer: Trainer, valcsv: CsvLog | None) -> dict[str, float]:
    """The validation of a run resumed at ``steps`` whose weights are missing (a crash while
    they were written): no step runs, so the scores for their card are taken now, from the
    checkpoint's generator (val.csv gets the row unless it has one at ``steps``)."""
    if trainer.config.val.data is None:
        return {}
    log.info(
        "%s: validating the finished run's weights at step %d",
        trainer.config.run_dir,
        trainer.step,
    )
    has_row = valcsv is not None and valcsv.last.get("step") == str(trainer.step)
    return _validate_and_log(trainer, None if has_row else valcsv, None)


def _validate_and_log(trainer: Trainer, valcsv: CsvLog | None, tb: Any) -> dict[str, float]:
    """Validate (main process), then log the scores to val.csv and TensorBoard."""
    validation = trainer.validate()
    if validation and valcsv is not None:
        valcsv.write({"step": trainer.step, **validation})
        log.info(
            "step %d: PSNR %.2f dB (bicubic %.2f)",
            trainer.step,
            validation["psnr"],
            validation["psnr_bicubic"],
        )
        if tb is not None:
            for k, v in validation.items():
                tb.add_scalar(f"val/{k}", v, trainer.step)
    return validation


def resume_early(
    config: TrainConfig, info: DistInfo, state: dict[str, Any], stop_at: int | None
) -> TrainResult | None:
    """The result of a resume from ``state`` that runs nothing (a finished run; a retried
    ``stop_at`` at its step), told from its step alone; None: the run goes on. A refused one
    raises (:func:`~sr_domains.train.trainer_state.resume_answer`)."""
    answer = trainer_state.resume_answer(config, state, stop_at)
    run, step = config.run_dir, int(state["step"])
    if answer == "finished":
        weights = run / "weights.safetensors" if info.is_main else None
        return TrainResult(run, weights, step, already_finished=True)
    return TrainResult(run, None, step) if answer == "paused" else None


__all__ = ["TrainResult", "fit", "resume_early"]
