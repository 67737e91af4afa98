"""A budgeted trainer for internal (self-supervised) learning: fit a model on pairs made from
the input itself, within a time or step budget, deterministically for a given seed.

The schedule depends only on the step index and the planned number of steps ``N``:

* ``Budget(steps=N)``: exactly ``N`` steps (bit-for-bit reproducible with the same seed, model
  and thread count).
* ``Budget(seconds=S)``: the first :attr:`Budget.warmup_steps` steps (linear learning-rate
  warm-up) also time the machine (the first step, which pays one-off costs, excluded); then
  ``N`` is fixed from the remaining time and the run
  goes on exactly as ``Budget(steps=N)`` would. ``S`` is also a hard limit: a machine that
  slows down stops early (reported as ``stopped_by="time"``). The report gives ``N``, so any
  run can be repeated exactly with ``Budget(steps=N)``.

After warm-up the learning rate follows a cosine from ``lr`` to ``lr / 100``. Adam, L1 loss,
gradient clipping at norm 1. A tqdm bar (``progress=True``) shows steps, ETA and the loss.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import SRModel

log = logging.getLogger(__name__)

#: ``pairs(generator) -> (inputs, targets)``: one training batch, drawn with ``generator``.
PairSource = Callable[[torch.Generator], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class Budget:
    """How long internal learning may run.

    Attributes:
        seconds: wall-clock limit of the fit (None: no time limit).
        steps: exact number of optimisation steps (None: as many as ``seconds`` allows).
        warmup_steps: linear learning-rate warm-up, also used to time the machine.
    """

    seconds: float | None = 240.0
    steps: int | None = None
    warmup_steps: int = 10

    def __post_init__(self) -> None:
        if self.seconds is None and self.steps is None:
            raise ConfigError("a budget needs seconds, steps or both")
        if self.seconds is not None and not self.seconds >= 0:
            raise ConfigError(f"budget seconds must be >= 0, got {self.seconds}")
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"budget steps must be >= 0, got {self.steps}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warm-up steps must be >= 0, got {self.warmup_steps}")

    @classmethod
    def minutes(cls, minutes: float | None, steps: int | None = None) -> Budget:
        """``Budget(seconds=60 * minutes, steps=steps)``."""
        return cls(None if minutes is None else 60.0 * float(minutes), steps)

    def describe(self) -> str:
        parts = []
        if self.seconds is not None:
            parts.append(f"{self.seconds / 60:.3g} min")
        if self.steps is not None:
            parts.append(f"{self.steps} steps")
        return " / ".join(parts)


@dataclass
class FitReport:
    """What a fit did.

    Attributes:
        steps: optimisation steps done.
        planned_steps: the ``N`` of the schedule (rerun with ``Budget(steps=N)`` to repeat it).
        seconds: wall time of the fit.
        stopped_by: ``"steps"`` (schedule completed) or ``"time"`` (hard time limit).
        loss_start, loss_end: mean loss over the first and the last 10% of the steps.
        seed: the seed of the batch generator.
    """

    steps: int = 0
    planned_steps: int = 0
    seconds: float = 0.0
    stopped_by: str = "steps"
    loss_start: float = float("nan")
    loss_end: float = float("nan")
    seed: int = 0
    losses: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "planned_steps": self.planned_steps,
            "seconds": round(self.seconds, 2),
            "stopped_by": self.stopped_by,
            "loss_start": round(self.loss_start, 6),
            "loss_end": round(self.loss_end, 6),
            "seed": self.seed,
        }


def lr_at(step: int, planned: int, lr: float, warmup: int) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then cosine to ``lr / 100``."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    span = max(1, planned - warmup)
    t = min(1.0, (step - warmup) / span)
    return lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))


def fit(
    model: SRModel,
    pairs: PairSource,
    budget: Budget,
    *,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
    desc: str = "internal learning",
) -> FitReport:
    """Train ``model`` in place on batches from ``pairs`` within ``budget`` (module docs).

    Args:
        model: any :class:`~sr_domains.models.SRModel` (or module) mapping inputs to targets;
            batches are moved to the device of its parameters.
        pairs: batch source; it must draw all its randomness from the generator it is given.
        budget: time and/or step budget.
        lr: peak learning rate (Adam).
        seed: seeds the batch generator (the caller seeds the model's initialisation).
        progress: show a tqdm bar with ETA.
        desc: the bar's label.

    Returns:
        The :class:`FitReport`; ``model`` is left in eval mode.
    """
    gen = torch.Generator().manual_seed(int(seed))  # batches are drawn on the CPU
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    opt = torch.optim.Adam(params, lr=lr)
    warm = budget.warmup_steps
    planned = budget.steps
    if planned is not None:
        warm = min(warm, planned)
    start = time.perf_counter()
    deadline = None if budget.seconds is None else start + budget.seconds
    report = FitReport(seed=int(seed))
    bar = _bar(progress, planned, desc)
    model.train()
    step = 0
    first_done = start
    try:
        while True:
            now = time.perf_counter()
            if step == 1:  # the first step pays one-off costs (allocations, kernel setup)
                first_done = now
            if planned is None and step == warm:  # timing done: fix the schedule length
                per = (now - first_done) / (step - 1) if step > 1 else now - start
                left = (deadline - now) if deadline is not None else 0.0
                planned = step + max(0, int(left / max(per, 1e-6)))
                if bar is not None:
                    bar.total = planned
                    bar.refresh()
            if planned is not None and step >= planned:
                break
            if deadline is not None and now >= deadline:
                report.stopped_by = "time"
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, planned if planned is not None else warm, lr, warm)
            inputs, targets = pairs(gen)
            inputs, targets = inputs.to(device), targets.to(device)
            loss = F.l1_loss(model(inputs), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            report.losses.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{report.losses[-1]:.4g}")
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    report.steps = step
    report.planned_steps = int(planned if planned is not None else step)
    report.seconds = time.perf_counter() - start
    if report.losses:
        k = max(1, len(report.losses) // 10)
        report.loss_start = sum(report.losses[:k]) / k
        report.loss_end = sum(report.losses[-k:]) / k
    log.info(
        "%s: %d steps in %.1f s (planned %d, stopped by %s), L1 %.4g -> %.4g",
        desc,
        report.steps,
        report.seconds,
        report.planned_steps,
        report.stopped_by,
        report.loss_start,
        report.loss_end,
    )
    return report


def _bar(progress: bool, total: int | None, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)


__all__ = ["Budget", "FitReport", "PairSource", "fit", "lr_at"]
