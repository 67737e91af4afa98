"""One optimizer step of :class:`~sr_domains.train.trainer.Trainer`: degrade the HR batch
(noise seeded by ``(seed, rank, step)``), the generator's losses, then the discriminator's in
the GAN stage, EMA update.

Split from :mod:`sr_domains.train.trainer`; ``Trainer.train_step`` calls :func:`train_step`,
``Trainer.fit`` :func:`log_row`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..degrade import degrade
from .dist import mean_across

if TYPE_CHECKING:
    from .run_files import CsvLog
    from .trainer import Trainer


def _autocast(trainer):
    dev = trainer.info.device.type
    return torch.autocast(dev, dtype=trainer.amp, enabled=trainer.amp is not None)


def train_step(trainer: Trainer, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimizer step (generator, then discriminator in the GAN stage)."""
    c, dev = trainer.config, trainer.info.device
    hr = batch["hr"].to(dev, non_blocking=True)
    valid = batch.get("valid")
    mask = None if valid is None or bool(valid.all()) else valid.to(dev)
    gen = torch.Generator(device=dev).manual_seed(
        (c.seed * 1_000_003 + trainer.info.rank) * 1_000_003 + trainer.step
    )
    with torch.no_grad():
        lr = degrade(hr, c.scale, c.degradation, gen)
    if trainer.channels_last:
        lr = lr.contiguous(memory_format=torch.channels_last)
    lc = c.loss
    out: dict[str, torch.Tensor] = {}  # the losses, logged as their mean over the processes
    with _autocast(trainer):
        sr = trainer.net(lr)
        loss = lc.pixel_weight * trainer.pixel(sr.float(), hr, mask)
        out["loss_pixel"] = loss.detach()
        if trainer.spectral is not None:
            ls = trainer.spectral(sr.float(), hr, mask)
            out["loss_spectral"] = ls.detach()
            loss = loss + lc.spectral_weight * ls
        if trainer.perceptual is not None:
            lp = trainer.perceptual(sr.float(), hr, mask)
            out["loss_perceptual"] = lp.detach()
            loss = loss + lc.perceptual_weight * lp
        if trainer.disc is not None:
            # the unwrapped discriminator: no gradients of its own here, so no DDP sync
            for p in trainer.disc.parameters():
                p.requires_grad_(False)
            real = trainer.disc(hr).detach()
            fake = trainer.disc(sr)
            lg = trainer.ragan.generator_loss(real.float(), fake.float())
            out["loss_gan"] = lg.detach()
            loss = loss + lc.gan_weight * lg
    trainer.opt.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    if c.optim.grad_clip:
        trainer.scaler.unscale_(trainer.opt)
        nn.utils.clip_grad_norm_(trainer.model.parameters(), c.optim.grad_clip)
    used = float(trainer.opt.param_groups[0]["lr"])  # (the scheduler moves it on next)
    trainer.scaler.step(trainer.opt)
    trainer.sched.step()
    if trainer.disc_net is not None:
        for p in trainer.disc.parameters():  # type: ignore[union-attr]
            p.requires_grad_(True)
        with _autocast(trainer):
            real = trainer.disc_net(hr)
            fake = trainer.disc_net(sr.detach())
            ld = trainer.ragan.discriminator_loss(real.float(), fake.float())
        trainer.opt_d.zero_grad(set_to_none=True)
        trainer.scaler.scale(ld).backward()
        trainer.scaler.step(trainer.opt_d)
        trainer.sched_d.step()
        out["loss_d"] = ld.detach()
    trainer.scaler.update()
    if trainer.ema is not None:
        trainer.ema.update(trainer.model)
    trainer.step += 1
    out["loss"] = loss.detach()
    # every column averaged over the ranks like ``loss`` (one all-reduce, one device sync)
    means = mean_across(torch.stack([v.float() for v in out.values()]), trainer.info)
    stats = dict(zip(out, means.tolist(), strict=True))
    stats["lr"] = used  # the rate this step trained at (get_last_lr(): the next step's)
    return stats


def log_row(
    trainer: Trainer,
    acc: list[dict[str, float]],
    losses: list[float],
    logs: CsvLog | None,
    tb: Any,
    t0: float,
) -> list[dict[str, float]]:
    """Log the steps ``acc`` (those since the last row) as one row at the trainer's step:
    ``losses``, log.csv and TensorBoard get each loss column's mean over them; returns the
    next ``acc`` (empty)."""
    means = interval_means(acc)  # every loss column over the same steps
    losses.append(means["loss"])
    if logs is not None:
        logs.write({**means, "step": trainer.step, "sec": time.perf_counter() - t0})
    if tb is not None:
        for k, v in means.items():
            tb.add_scalar(f"train/{k}", v, trainer.step)
    return []


def interval_means(steps: list[dict[str, float]]) -> dict[str, float]:
    """One log row from the steps since the last: the mean of each loss over the steps that
    report it (``loss_d``: discriminator steps only), the learning rate of the last step."""
    keys = dict.fromkeys(k for st in steps for k in st)
    row = {k: float(np.mean([st[k] for st in steps if k in st])) for k in keys if k != "lr"}
    if "lr" in steps[-1]:
        row["lr"] = steps[-1]["lr"]
    return row


__all__ = ["interval_means", "log_row", "train_step"]
