"""A budgeted trainer for internal (self-supervised) learning: fit a model on pairs made from
the input itself, within a time or step budget, deterministically for a given seed.

Learning-rate schedule (warm-up, plateau, decay): linear warm-up over
:attr:`Budget.warmup_steps`, the peak ``lr`` until step ``D``, then a cosine to ``lr / 100`` at
step ``N``. It depends only on the step index and ``(D, N)``:

* ``Budget(steps=N)``: exactly ``N`` steps, ``D`` = :attr:`Budget.decay_from` or the start of
  the last :attr:`Budget.decay_fraction` of the steps. Bit-for-bit reproducible with the same
  seed, model and thread count.
* ``Budget(seconds=S)``: the plateau lasts until ``(1 - decay_fraction) * S`` has elapsed;
  then ``D`` is that step and ``N = D + remaining time / recent seconds per step`` (timed on
  the last steps, so a machine whose speed changes is measured when it matters). ``S`` is also
  a hard limit (``stopped_by="time"``). The report gives ``D`` and ``N``:
  ``Budget(seconds=None, steps=N, decay_from=D)`` repeats the run exactly.

Adam, L1 loss, gradient clipping at norm 1. A tqdm bar (``progress=True``) shows steps, ETA
(from the remaining time) and the loss.
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
    """How long internal learning may run (module docs).

    Attributes:
        seconds: wall-clock limit of the fit (None: no time limit).
        steps: exact number of optimisation steps (None: as many as ``seconds`` allows).
        warmup_steps: linear learning-rate warm-up.
        decay_fraction: share of the budget (time, or steps) spent on the final cosine decay.
        decay_from: the step where the decay starts (steps mode; default from the fraction).
    """

    seconds: float | None = 240.0
    steps: int | None = None
    warmup_steps: int = 10
    decay_fraction: float = 0.25
    decay_from: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.steps is None:
            raise ConfigError("a budget needs seconds, steps or both")
        if self.seconds is not None and not self.seconds >= 0:
            raise ConfigError(f"budget seconds must be >= 0, got {self.seconds}")
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"budget steps must be >= 0, got {self.steps}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warm-up steps must be >= 0, got {self.warmup_steps}")
        if not 0 < self.decay_fraction <= 1:
            raise ConfigError(f"decay fraction must be in (0, 1], got {self.decay_fraction}")

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
        planned_steps: the ``N`` of the schedule.
        decay_from: the ``D`` of the schedule (``Budget(steps=N, decay_from=D)`` repeats it).
        seconds: wall time of the fit.
        stopped_by: ``"steps"`` (schedule completed) or ``"time"`` (hard time limit).
        loss_start, loss_end: mean loss over the first and the last 10% of the steps.
        seed: the seed of the batch generator.
    """

    steps: int = 0
    planned_steps: int = 0
    decay_from: int = 0
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
            "decay_from": self.decay_from,
            "seconds": round(self.seconds, 2),
            "stopped_by": self.stopped_by,
            "loss_start": round(self.loss_start, 6),
            "loss_end": round(self.loss_end, 6),
            "seed": self.seed,
        }


def lr_at(step: int, planned: int | None, lr: float, warmup: int, decay_from: int) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, plateau until ``decay_from``, then a
    cosine to ``lr / 100`` at ``planned`` (None: not planned yet, still on the plateau)."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if planned is None or step < decay_from:
        return lr
    t = min(1.0, (step - decay_from) / max(1, planned - decay_from))
    return lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))


def _decay_start(budget: Budget, steps: int, warm: int) -> int:
    if budget.decay_from is not None:
        return min(max(budget.decay_from, warm), steps)
    return warm + round((1.0 - budget.decay_fraction) * max(0, steps - warm))


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
    planned = budget.steps
    warm = budget.warmup_steps if planned is None else min(budget.warmup_steps, planned)
    decay = _decay_start(budget, planned, warm) if planned is not None else 0
    start = time.perf_counter()
    deadline = None if budget.seconds is None else start + budget.seconds
    plan_at = (
        None if budget.seconds is None else start + (1 - budget.decay_fraction) * budget.seconds
    )
    report = FitReport(seed=int(seed))
    bar = _bar(progress, planned, desc)
    times: list[float] = []  # end time of each step
    model.train()
    step = 0
    try:
        while True:
            now = time.perf_counter()
            if planned is None and plan_at is not None and now >= plan_at and step >= warm:
                recent = times[-21:] if len(times) > 1 else [start, now]
                per = (recent[-1] - recent[0]) / max(1, len(recent) - 1)
                decay = step
                planned = step + max(1, int((deadline - now) / max(per, 1e-6)))  # type: ignore[operator]
            if planned is not None and step >= planned:
                break
            if deadline is not None and now >= deadline:
                report.stopped_by = "time"
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, planned, lr, warm, decay)
            inputs, targets = pairs(gen)
            inputs, targets = inputs.to(device), targets.to(device)
            loss = F.l1_loss(model(inputs), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            report.losses.append(float(loss.detach()))
            times.append(time.perf_counter())
            step += 1
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{report.losses[-1]:.4g}")
                    if planned is None and deadline is not None and step > 1:
                        per = (times[-1] - times[0]) / (len(times) - 1)
                        bar.total = step + int((deadline - times[-1]) / max(per, 1e-6))
                        bar.refresh()
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    report.steps = step
    report.planned_steps = int(planned if planned is not None else step)
    report.decay_from = int(decay if planned is not None else step)
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
