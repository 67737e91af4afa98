"""The resume state of :class:`~sr_domains.train.trainer.Trainer` (what ``last.pt`` holds):
generator, EMA, optimizers, schedulers, GAN discriminator, grad scaler, step, and the number
of processes of each segment of the run (a resume with another one is warned: the global
batch changes; the model card says which steps ran with how many).

Split from :mod:`sr_domains.train.trainer`; ``Trainer.state_dict`` and
``Trainer.load_state_dict`` call :func:`state_dict` and :func:`load_state_dict`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..config import dump_yaml
from ..errors import CheckpointError
from .run_files import check_same_model

if TYPE_CHECKING:
    import torch

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


def load_state_dict(trainer: Trainer, state: dict[str, Any]) -> None:
    """Restore a ``last.pt`` state; one that does not fit this run's network (or
    optimizers) is a :class:`CheckpointError` naming the file, not a torch traceback."""
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


__all__ = ["load_state_dict", "state_dict"]
