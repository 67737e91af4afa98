"""The resume state of :class:`~sr_domains.train.trainer.Trainer` (what ``last.pt`` holds):
generator, EMA, optimizers, schedulers, GAN discriminator, grad scaler, step.

Split from :mod:`sr_domains.train.trainer`; ``Trainer.state_dict`` and
``Trainer.load_state_dict`` call :func:`state_dict` and :func:`load_state_dict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import dump_yaml
from ..errors import CheckpointError
from .run_files import check_same_model

if TYPE_CHECKING:
    from .trainer import Trainer


def state_dict(trainer: Trainer) -> dict[str, Any]:
    """What ``last.pt`` holds: everything needed to resume the run."""
    state: dict[str, Any] = {
        "step": trainer.step,
        "model": trainer.model.state_dict(),
        "opt": trainer.opt.state_dict(),
        "sched": trainer.sched.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "config": dump_yaml(trainer.config),
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
    trainer.opt.load_state_dict(state["opt"])
    trainer.sched.load_state_dict(state["sched"])
    trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None and "ema" in state:
        trainer.ema.load_state_dict(state["ema"])
    if trainer.disc is not None and "disc" in state:
        trainer.disc.load_state_dict(state["disc"])
        trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.sched_d.load_state_dict(state["sched_d"])
    trainer.step = int(state["step"])


__all__ = ["load_state_dict", "state_dict"]
