"""The training loop: HR patches -> on-the-fly degradation -> generator (+ GAN stage) -> weights.

:func:`train` runs one :class:`~sr_domains.train.config.TrainConfig` and writes to its run
folder ``out_dir/name/``:

* ``config.yaml`` (the resolved config), ``log.csv`` (losses, lr every ``log_every`` steps),
  ``val.csv`` (PSNR/SSIM vs bicubic every ``val.every`` steps), TensorBoard events if asked;
* ``last.pt``: everything needed to resume (generator, EMA, optimizers, schedulers, GAN
  discriminator, grad scaler, step), written atomically every ``checkpoint_every`` steps;
* ``weights.safetensors``: the final (EMA) weights with a complete model card.

A Ctrl-C or SIGTERM pauses the run after the current step, or right after the validation or
the checkpoint write it came in (``last.pt`` written, as with ``stop_at``), then stops it
(:mod:`sr_domains.train.interrupts`).

Each process draws its own patches (the dataset is indexed deterministically), the LR of every
step is degraded with a generator seeded by ``(seed, rank, step)``, so a resumed run continues
with exactly the patches and noise it would have seen. Under ``torchrun`` the generator is
wrapped in DDP; rank 0 logs, validates and saves.

Moved out of :class:`Trainer` (its methods call them): the loop (:meth:`Trainer.fit`, and
:class:`TrainResult`) to :mod:`sr_domains.train.trainer_loop`; the optimizer step to
:mod:`sr_domains.train.trainer_steps`; the resume state (``last.pt``) to
:mod:`sr_domains.train.trainer_state`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import save_checkpoint
from ..errors import ConfigError, TrainingDivergedError
from ..inference import Upscaler, resolve_amp
from ..io_safety import destination_lock
from ..models.base import SRModel
from ..rng import rng_kept, seed_for
from . import trainer_loop, trainer_state, trainer_steps
from .config import TrainConfig
from .data import PatchDataset, load_images
from .dist import DistInfo, barrier, init_distributed, shutdown
from .ema import EMA
from .run_files import (
    check_resumable,
    check_run_dir,
    clear_run_dir,
    final_card,
    load_resume_state,
    missing_folders,
    remove_empty,
)
from .run_parts import build_generator, lr_lambda
from .scoring import score_images, summarize
from .trainer_loop import TrainResult, resume_early


class Trainer:
    """One run of :class:`TrainConfig`; use :func:`train` unless you need the pieces."""

    def __init__(
        self, config: TrainConfig, info: DistInfo, progress: bool = True, resuming: bool = False
    ) -> None:
        self.config = config
        self.info = info
        self.progress = progress and info.is_main
        dev = info.device
        seed_for(config.seed + info.rank, dev)  # (the CPU and this device, no other)
        self.dataset = PatchDataset(config.data, scale=config.scale, seed=config.seed)
        self.model = build_generator(config, resuming=resuming).to(dev).train()
        if self.dataset.channels != self.model.in_channels:
            raise ConfigError(
                f"the data has {self.dataset.channels} channel(s) but model.in_channels is "
                f"{self.model.in_channels}; set data.channels or model.in_channels"
            )
        self.channels_last = dev.type == "cuda"
        if self.channels_last:
            # Module.to(memory_format=) exists; torch's overloads omit it
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.amp = resolve_amp(config.amp, dev, self.model)
        self.ema = EMA(self.model, config.optim.ema_decay) if config.optim.ema_decay else None
        self.net: nn.Module = self.model
        if info.enabled:
            ids = [dev.index] if dev.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        o = config.optim
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(config))
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp == torch.float16 and dev.type == "cuda"
        )
        from .losses import (
            PerceptualLoss,
            RelativisticAverageGANLoss,
            SpectralAngleLoss,
            pixel_loss,
        )

        lc = config.loss
        self.pixel = pixel_loss(lc.pixel).to(dev)
        self.spectral = SpectralAngleLoss().to(dev) if lc.spectral_weight > 0 else None
        self.perceptual = None
        if lc.perceptual_weight > 0:
            self.perceptual = PerceptualLoss(
                lc.vgg_weights, lc.perceptual_layers, fallback=lc.perceptual_fallback
            ).to(dev)
        self.disc: nn.Module | None = None
        self.disc_net: nn.Module | None = None
        if lc.adversarial:
            from ..models.discriminator import build_discriminator

            dcfg = dataclasses.replace(lc.discriminator, in_channels=self.model.out_channels)
            self.disc = build_discriminator(dcfg).to(dev).train()
            self.disc_net = self.disc
            if info.enabled:
                ids = [dev.index] if dev.type == "cuda" else None
                self.disc_net = nn.parallel.DistributedDataParallel(self.disc, device_ids=ids)
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lc.d_lr, betas=o.betas)
            self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lr_lambda(config))
            self.ragan = RelativisticAverageGANLoss()
        self.step = 0
        self.world_sizes = [(0, info.world_size)]  # (first step, processes) per run segment
        self.val_images: list | None = None
        vc = config.val
        if info.is_main and vc.data is not None:  # a wrong path fails before step 1
            images = load_images(
                vc.data, max_pixels=vc.max_pixels, with_profile=True, section="val.data"
            )
            self.val_images = images[: vc.max_images]
            for name, hr, *_ in self.val_images:  # (not at the first validation, steps later)
                if hr.shape[0] != self.model.in_channels:
                    raise ConfigError(
                        f"val.data: {name} has {hr.shape[0]} channel(s) but model.in_channels "
                        f"is {self.model.in_channels}; give validation data like the training "
                        "data (val.data.bands / val.data.channels)"
                    )

    # -- state (sr_domains.train.trainer_state) -------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return trainer_state.state_dict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``last.pt`` state; one that does not fit this run's network (or
        optimizers) is a :class:`CheckpointError` naming the file, not a torch traceback."""
        trainer_state.load_state_dict(self, state)

    @property
    def eval_model(self) -> SRModel:
        return self.ema.model if self.ema is not None else self.model  # type: ignore[return-value]

    # -- one step (sr_domains.train.trainer_steps) ----------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimizer step (generator, then discriminator in the GAN stage)."""
        return trainer_steps.train_step(self, batch)

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM of the EMA (or current) generator vs bicubic on the validation images."""
        vc = self.config.val
        if vc.data is None:
            return {}
        if self.val_images is None:
            images = load_images(
                vc.data, max_pixels=vc.max_pixels, with_profile=True, section="val.data"
            )
            self.val_images = images[: vc.max_images]
        model = self.eval_model
        up = Upscaler(model, device=self.info.device, amp="off", tile=512)
        try:
            scores, _ = score_images(
                up, self.val_images, degradation=self.config.degradation, seed=self.config.seed
            )
        finally:
            if model is self.model:
                self.model.train()
        return summarize(scores)

    # -- the loop -------------------------------------------------------------------------
    def fit(
        self, resume: bool = False, stop_at: int | None = None, *, loaded: bool = False
    ) -> TrainResult:
        """Train to ``config.steps`` (or pause at ``stop_at``: ``last.pt`` is written, no
        weights; resume later). Returns what was produced. ``loaded``: the resumed ``last.pt``
        was read, answered (:func:`resume_early`) and loaded already (:func:`train`).

        A Ctrl-C or SIGTERM (main thread) pauses after the step it came in (or the
        validation or checkpoint write after it), as ``stop_at`` that step would (every rank
        at the same step), then stops as the signal would have (:class:`KeyboardInterrupt`;
        ``sr-domains``: exit status 130 / 143; a program calling ``main()``:
        :class:`KeyboardInterrupt` / ``SystemExit(143)``); a second one stops at once
        (:mod:`sr_domains.train.interrupts`). The loop: :mod:`sr_domains.train.trainer_loop`."""
        return trainer_loop.fit(self, resume, stop_at, loaded=loaded)

    def _diverged(self, stats: dict[str, float]) -> TrainingDivergedError:
        """The one-line error of a non-finite loss: the run folder, the step, what to do."""
        bad = ", ".join(f"{k}={v:g}" for k, v in stats.items() if not np.isfinite(v))
        last = self.config.run_dir / "last.pt"
        kept = f"; {last} holds the last good checkpoint" if last.exists() else ""
        return TrainingDivergedError(
            f"{self.config.run_dir}: the loss is not finite at step {self.step} ({bad}); "
            f"lower the learning rate (optim.lr, now {self.config.optim.lr:g}) or set "
            f"optim.grad_clip{kept}"
        )

    def save_weights(self, path: Path, validation: dict[str, float]) -> Path:
        """The final generator (EMA when enabled) with its model card."""
        model = self.eval_model
        card = final_card(
            self.config, model, self.dataset.describe(), self.info, validation, self.world_sizes
        )
        return save_checkpoint(model, path, card, overwrite=True)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
) -> TrainResult:
    """Run ``config`` (see module docs). Works alone or under ``torchrun``.

    Args:
        resume: continue from ``run_dir/last.pt``.
        overwrite: start over in a run folder that already has outputs.
        stop_at: pause after this step (``last.pt`` written; ``resume=True`` continues).
            A Ctrl-C or SIGTERM pauses after the current step the same way, then raises
            (:class:`KeyboardInterrupt`, ``SystemExit(143)``).
    """
    info = init_distributed(config.device)
    created = missing_folders(config.run_dir) if info.is_main else []
    try:
        if resume:  # (every rank, before creating anything: never a fresh run instead)
            check_resumable(config.run_dir)
        with contextlib.ExitStack() as stack:
            # the caller's thread count and random state are theirs again after the run (the
            # Trainer seeds torch with config.seed + rank)
            stack.callback(torch.set_num_threads, torch.get_num_threads())
            if config.threads:
                torch.set_num_threads(config.threads)
            stack.enter_context(rng_kept(info.device))
            resuming = resume
            if info.is_main:
                config.run_dir.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(destination_lock(config.run_dir))  # one run per folder
                resuming = check_run_dir(config, resume, overwrite)
            barrier(info)
            state = None
            if resuming:  # a resume with nothing to do, or refused, answers at once
                state = load_resume_state(config.run_dir / "last.pt", info.device)
                early = resume_early(config, info, state, stop_at)
                if early is not None:
                    return early
            # data, model and validation set up (and refused) on every rank, together (DDP
            # synchronises its processes when it wraps the model), before a previous run's
            # files are removed with overwrite
            trainer = Trainer(config, info, progress=progress, resuming=resuming)
            if state is not None:
                trainer_state.load_state_dict(trainer, state, checked=True)
                del state  # (not held while the run goes on)
            if info.is_main and not resuming:
                clear_run_dir(config, overwrite)
            barrier(info)
            return trainer.fit(resume=resuming, stop_at=stop_at, loaded=resuming)
    except BaseException:  # a bad model/data setting, Ctrl-C...: leave no empty folder behind
        remove_empty(created)
        raise
    finally:
        shutdown(info)


__all__ = ["TrainResult", "Trainer", "build_generator", "train"]
