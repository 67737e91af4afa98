"""The pieces a training run is made of: the generator (optionally initialised from a
checkpoint), the learning-rate schedule and the resumable per-rank batches."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..checkpoint_fit import state_mismatch
from ..errors import ConfigError
from ..models import create_model
from ..models.base import SRModel
from .config import TrainConfig
from .data import PatchDataset
from .dist import DistInfo
from .interrupts import held_stop_signals, ignore_stop_signals

log = logging.getLogger(__name__)


def build_generator(config: TrainConfig, *, resuming: bool = False) -> SRModel:
    """The generator of ``config``, optionally initialised from a checkpoint; not when
    ``resuming``: the run's ``last.pt`` holds its weights, and ``model.init_from`` may have
    been moved or deleted since the run started."""
    m = config.model
    model = create_model(m.arch, in_channels=m.in_channels, scale=config.scale, **m.options)
    if m.init_from and resuming:
        gone = "" if Path(m.init_from).exists() else " (no longer there)"
        msg = "resuming: model.init_from %s%s not read; the run's last.pt holds the weights"
        log.info(msg, m.init_from, gone)
    elif m.init_from:
        init, card = load_checkpoint(m.init_from)
        src = init.state_dict()
        own = model.state_dict()
        if m.init_partial:
            keep = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
            skipped = sorted(set(own) - set(keep))
            model.load_state_dict({**own, **keep})
            log.info("initialised from %s; fresh: %s", m.init_from, ", ".join(skipped) or "none")
        else:
            report = state_mismatch(own, src)
            if report:  # the two models in one line each, then the first few keys
                differ = [  # options of the same family that differ (a width, a depth)
                    f"{k} {card.config.get(k)!r} vs {v!r}"
                    for k, v in m.options.items()
                    if k in card.config and card.config[k] != v
                ]
                raise ConfigError(
                    f"{m.init_from}: its {card.arch or 'model'} x{card.scale or init.scale}, "
                    f"{init.in_channels} band(s), does not fit this config's {m.arch} "
                    f"x{config.scale}, {m.in_channels} band(s)"
                    + (f" ({', '.join(differ)})" if differ else "")
                    + f" (set model.init_partial: true to load the tensors that fit only): {report}"
                )
            model.load_state_dict(src, strict=True)
    return model


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """The factor of the base learning rate at each step (warm-up, then the schedule)."""
    o = config.optim
    total = config.steps

    def factor(step: int) -> float:
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        if o.schedule == "step":
            return o.gamma ** sum(step >= m for m in o.milestones)
        t = (step - o.warmup_steps) / max(1, total - o.warmup_steps)
        floor = o.min_lr / o.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


class Batches:
    """Endless batches of patch indices for this rank, resumable at any step.

    Epoch ``e`` uses dataset epoch ``e`` (``set_epoch``) and indices ``rank::world``; a new
    DataLoader iterator is made per epoch so worker processes see the new epoch. The workers
    leave the process group (a Ctrl-C or SIGTERM to the group does not kill them mid-step; the
    trainer pauses between steps, then they end with it); a group signal in the few
    milliseconds between a worker's start and that reaches it blocked and is dropped.
    """

    def __init__(self, dataset: PatchDataset, config: TrainConfig, info: DistInfo) -> None:
        self.dataset = dataset
        self.config = config
        self.info = info
        own = len(range(info.rank, len(dataset), info.world_size))
        self.per_epoch = own // config.batch_size
        if self.per_epoch < 1:
            raise ConfigError(
                f"data.patches_per_epoch ({len(dataset)}) must hold at least batch_size "
                f"({config.batch_size}) x processes ({info.world_size}) patches"
            )

    def from_step(self, step: int) -> Iterator[dict[str, torch.Tensor]]:
        epoch, offset = divmod(step, self.per_epoch)
        b = self.config.batch_size
        while True:
            self.dataset.set_epoch(epoch)
            idx = list(range(self.info.rank, len(self.dataset), self.info.world_size))
            idx = idx[offset * b : self.per_epoch * b]
            loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_size=b,
                sampler=idx,
                num_workers=self.config.num_workers,
                drop_last=True,
                pin_memory=self.info.device.type == "cuda",
                worker_init_fn=ignore_stop_signals,  # (out of the process group)
            )
            with held_stop_signals():  # (while its workers start)
                batches = iter(loader)
            yield from batches
            epoch, offset = epoch + 1, 0


__all__ = ["Batches", "build_generator", "lr_lambda"]
