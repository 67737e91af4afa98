"""The resume state of :class:`~sr_domains.train.trainer.Trainer` (what ``last.pt`` holds):
generator, EMA, optimizers, schedulers, GAN discriminator, grad scaler, step, and the number
of processes of each segment of the run (a resume with another one is warned: the global
batch changes; the model card says which steps ran with how many).

Split from :mod:`sr_domains.train.trainer`; ``Trainer.state_dict`` and
``Trainer.load_state_dict`` call :func:`state_dict` and :func:`load_state_dict`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch.distributed as dist

from ..config import dump_yaml
from ..errors import CheckpointError, ConfigError
from .run_files import check_same_model

if TYPE_CHECKING:
    import torch

    from .config import TrainConfig
    from .trainer import Trainer

log = logging.getLogger(__name__)


def state_dict(trainer: Trainer) -> dict[str, Any]:
    """What ``last.pt`` holds: everything needed to resume the run."""
    state: dict[str, Any] = {
        "step": trainer.step,
        "model": trainer.model.state_dict(),
        "opt": trainer.opt.state_dict(),
        "sched": trainer.sched.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "config": dump_yaml(trainer.config),
        "world_sizes": [list(segment) for segment in trainer.world_sizes],
    }
    if trainer.ema is not None:
        state["ema"] = trainer.ema.state_dict()
    if trainer.disc is not None:
        state["disc"] = trainer.disc.state_dict()
        state["opt_d"] = trainer.opt_d.state_dict()
        state["sched_d"] = trainer.sched_d.state_dict()
    return state


def resume_answer(config: TrainConfig, state: dict[str, Any], stop_at: int | None) -> str:
    """What resuming from ``state`` (``last.pt``) comes to, from its step and config alone
    (:func:`~sr_domains.train.trainer.train` asks before the data and the model are set up,
    so a resume with nothing to do answers at once): ``"finished"`` (at ``steps``, weights
    written: nothing is run or written), ``"paused"`` (``stop_at`` at its step before
    ``steps``: paused there already), ``""`` (train on; at ``steps`` without weights, write
    them).

    Raises:
        ConfigError: before any file is touched, for a changed model, scale or profile
            (:func:`~sr_domains.train.run_files.check_same_model`), a checkpoint past
            ``steps`` (``steps`` lowered) or a ``stop_at`` before its step.
    """
    check_same_model(state, config)
    run = config.run_dir
    step = checkpoint_step(state, run / "last.pt")
    if step > config.steps:
        raise ConfigError(
            f"{run / 'last.pt'}: the run is at step {step}, past steps={config.steps}; "
            f"a run cannot go back: resume with steps >= {step}, or start over "
            "(--overwrite, or another name)"
        )
    if stop_at is not None and stop_at < step:
        raise ConfigError(
            f"{run / 'last.pt'}: the run is at step {step}; --stop-at {stop_at} "
            f"(Python: stop_at) must not be before it (>= {step})"
        )
    if step == config.steps and (run / "weights.safetensors").exists():
        if not (dist.is_initialized() and dist.get_rank() != 0):  # (rank 0 logs)
            log.info("nothing to resume: %s finished at step %d", run, step)
        return "finished"
    if stop_at == step < config.steps:  # (a retried `--resume --stop-at N`)
        log.info("%s: already paused at step %d", run / "last.pt", step)
        return "paused"
    return ""  # (at steps without weights: they are written as a finished run's)


def checkpoint_step(state: dict[str, Any], path: Path) -> int:
    """The step of a ``last.pt`` state (a :class:`CheckpointError` naming ``path`` when it
    is not a number)."""
    try:
        return int(state["step"])
    except (TypeError, ValueError, RuntimeError):
        raise CheckpointError(
            f"{path}: not a sr_domains training checkpoint (step {state['step']!r})"
        ) from None


def load_state_dict(trainer: Trainer, state: dict[str, Any], *, checked: bool = False) -> None:
    """Restore a ``last.pt`` state; one that does not fit this run's network (or
    optimizers) is a :class:`CheckpointError` naming the file, not a torch traceback.
    ``checked``: :func:`resume_answer` has checked its config already."""
    if not checked:
        check_same_model(state, trainer.config)
    try:
        _load_state(trainer, state)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(":.")
        raise CheckpointError(
            f"{trainer.config.run_dir / 'last.pt'}: does not fit the network of this config "
            f"({first}); resume with the settings it was written with, or start over "
            "(--overwrite, or another name)"
        ) from exc


def _load_state(trainer: Trainer, state: dict[str, Any]) -> None:
    trainer.model.load_state_dict(state["model"])
    o = trainer.config.optim
    trainer.opt.load_state_dict(state["opt"])
    trainer.sched.load_state_dict(state["sched"])
    _apply_settings(trainer.opt, trainer.sched, o.lr, o.betas, o.weight_decay)
    trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None and "ema" in state:
        trainer.ema.load_state_dict(state["ema"])
    if trainer.disc is not None and "disc" in state:
        trainer.disc.load_state_dict(state["disc"])
        trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.sched_d.load_state_dict(state["sched_d"])
        d_lr = trainer.config.loss.d_lr
        _apply_settings(trainer.opt_d, trainer.sched_d, d_lr, o.betas, None)
    trainer.step = int(state["step"])
    trainer.world_sizes = _segments(trainer, state.get("world_sizes"))


def _segments(trainer: Trainer, saved: Any) -> list[tuple[int, int]]:
    """``(first step, processes)`` of each segment of the run, this one's added when the
    number of processes changed (warned: the global batch changes). A ``last.pt`` written
    before it was recorded: the steps so far are an unrecorded first segment (0 processes)."""
    try:
        segments = [(int(a), int(b)) for a, b in saved]
    except (TypeError, ValueError):
        segments = []
    if not segments and trainer.step:
        segments = [(0, 0)]
    now = trainer.info.world_size
    if segments and segments[-1][1] != now:
        was = segments[-1][1]
        if was and trainer.info.is_main:
            b = trainer.config.batch_size
            log.warning(
                "%s: the run so far had %d process(es), it resumes with %d: the global batch "
                "changes from %d to %d patches per step (batch_size %d is per process) and "
                "each process draws other patches; resume with %d process(es) to go on as "
                "before",
                trainer.config.run_dir / "last.pt",
                was,
                now,
                was * b,
                now * b,
                b,
                was,
            )
        if segments[-1][0] == trainer.step:  # (a segment without a step)
            segments.pop()
        segments.append((trainer.step, now))
    return segments or [(0, now)]


def _apply_settings(
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float | None,
) -> None:
    """The config's learning rate, betas and weight decay on a restored optimizer (its state
    brought the run's first ones back): a resume with ``--set optim.lr=...`` trains at that
    rate from here on, along the config's schedule, as its config.yaml then says."""
    for group in opt.param_groups:
        group["initial_lr"], group["betas"] = lr, tuple(betas)
        if weight_decay is not None:
            group["weight_decay"] = weight_decay
    sched.base_lrs = [lr for _ in opt.param_groups]
    for group, factor in zip(opt.param_groups, sched.lr_lambdas, strict=True):
        group["lr"] = lr * factor(sched.last_epoch)
    sched._last_lr = [group["lr"] for group in opt.param_groups]  # what get_last_lr() says


__all__ = ["checkpoint_step", "load_state_dict", "resume_answer", "state_dict"]
