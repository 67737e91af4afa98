"""Exponential moving average of model weights (the weights that are validated and shipped)."""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
from torch import nn


class EMA:
    """``ema = decay * ema + (1 - decay) * weights`` after every optimizer step.

    Buffers (normalization means) are copied, not averaged. The first updates use a smaller
    effective decay, ``min(decay, (1 + n) / (10 + n))``, so early EMA weights are not dominated
    by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - d)
        for eb, b in zip(self.model.buffers(), model.buffers(), strict=True):
            eb.copy_(b)

    def state_dict(self) -> dict[str, object]:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.model.load_state_dict(cast("dict[str, Any]", state["model"]))
        self.updates = int(cast(int, state["updates"]))


__all__ = ["EMA"]
