"""The training configuration: frozen dataclasses that YAML files in ``configs/`` map onto 1:1.

Load with :func:`load_train_config` (unknown keys are rejected with a "did you mean"). Every
field has a default except ``name``, ``data`` and ``model.arch``, so a config says only what
differs from the defaults documented here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ..config import dump_yaml, from_dict, load_yaml, to_dict
from ..degrade import DegradationConfig
from ..errors import ConfigError
from ..models.discriminator import DiscriminatorConfig
from .data import DataConfig


@dataclass(frozen=True)
class ModelConfig:
    """The generator.

    Attributes:
        arch: architecture or preset name (``sr-domains models``), e.g. ``edsr-lite-ca``.
        in_channels: input bands (1 for MRI/CT/panchromatic, 3 for RGB, ...).
        options: overrides of the architecture config (``n_blocks``, ``n_feats``...).
        init_from: an sr_domains checkpoint to start from (e.g. the PSNR-stage generator for
            the ESRGAN stage, or x2 weights for an x4 model).
        init_partial: load only the tensors whose names and shapes match (x2 -> x4 transfer:
            the trunk is kept, the upsampler starts fresh); the skipped names are logged.
    """

    arch: str
    in_channels: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    init_partial: bool = False


@dataclass(frozen=True)
class OptimConfig:
    """Adam with a learning-rate schedule, gradient clipping and EMA.

    Attributes:
        lr: peak learning rate.
        schedule: ``cosine`` (to ``min_lr`` at the last step), ``step`` (times ``gamma`` at each
            of ``milestones``) or ``constant``; all after ``warmup_steps`` of linear warm-up.
        grad_clip: max gradient norm (0 = off).
        ema_decay: exponential moving average of the weights (0 = off); the EMA weights are
            validated and saved.
    """

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    warmup_steps: int = 0
    min_lr: float = 1e-7
    grad_clip: float = 0.0
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"optim.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0 or self.warmup_steps < 0:
            raise ConfigError("optim.grad_clip and optim.warmup_steps must be >= 0")
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"optim.milestones must increase, got {self.milestones}")


@dataclass(frozen=True)
class LossConfig:
    """Pixel loss, and for the ESRGAN stage perceptual + relativistic GAN losses.

    Attributes:
        pixel: ``l1``, ``l2`` or ``charbonnier``.
        perceptual_weight: > 0 adds the VGG perceptual loss (``vgg_weights``: a local VGG19
            file; without one, the documented fallback of :mod:`sr_domains.train.losses`).
        gan_weight: > 0 enables the adversarial stage (RaGAN, ``discriminator``).
        spectral_weight: > 0 adds the spectral-angle loss (multi-band models: 1 - cosine of
            the angle between the SR and HR band vectors, averaged over valid pixels).
    """

    pixel: Literal["l1", "l2", "charbonnier"] = "l1"
    pixel_weight: float = 1.0
    spectral_weight: float = 0.0
    perceptual_weight: float = 0.0
    vgg_weights: str | None = None
    perceptual_layers: dict[str, float] = field(default_factory=lambda: {"conv5_4": 1.0})
    perceptual_fallback: Literal["gradient", "none"] = "gradient"
    gan_weight: float = 0.0
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    d_lr: float = 1e-4

    @property
    def adversarial(self) -> bool:
        return self.gan_weight > 0


@dataclass(frozen=True)
class ValConfig:
    """Validation every ``every`` steps on whole images (PSNR/SSIM vs bicubic).

    ``data`` uses the training data's profile and channels unless it sets its own.
    """

    data: DataConfig | None = None
    every: int = 500
    max_images: int = 8
    max_pixels: int = 512 * 512


@dataclass(frozen=True)
class CardConfig:
    """Model-card fields of the saved weights (the rest is filled in by the trainer);
    ``spectral`` is :attr:`~sr_domains.checkpoint.ModelCard.spectral`."""

    name: str = ""
    bands: tuple[str, ...] = ()
    modality: str = "any"
    notes: str = ""
    spectral: Literal["model", "bicubic"] = "model"


@dataclass(frozen=True)
class TrainConfig:
    """One training run; see ``configs/`` and docs/training.md.

    Attributes:
        name: run name; outputs go to ``out_dir/name/``.
        scale: 2, 3 or 4.
        steps: optimizer steps (each ``batch_size`` patches per process).
        data: training patches (:class:`~sr_domains.train.data.DataConfig`).
        degradation: how LR inputs are made from HR patches, on the fly.
        device: ``auto``, ``cpu``, ``cuda``...; under ``torchrun`` each process takes its
            ``LOCAL_RANK`` GPU.
        amp: ``auto`` (bf16/fp16 on CUDA when the model declares it safe), ``off``, ...
        threads: torch CPU threads per process (0 = torch's default).
    """

    name: str
    model: ModelConfig
    data: DataConfig
    scale: int = 2
    steps: int = 1000
    batch_size: int = 16
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    val: ValConfig = field(default_factory=ValConfig)
    card: CardConfig = field(default_factory=CardConfig)
    num_workers: int = 0
    device: str = "auto"
    amp: str = "auto"
    threads: int = 0
    seed: int = 0
    out_dir: str = "runs"
    log_every: int = 50
    checkpoint_every: int = 500
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if (
            not self.name
            or self.name in (".", "..")
            or any(sep in self.name for sep in ("/", "\\", "\0"))
        ):
            raise ConfigError(
                f"name {self.name!r} must be a plain folder name (no '/', '\\' or '..'): "
                "the run is written to out_dir/name"
            )
        if self.scale not in (2, 3, 4):
            raise ConfigError(f"scale must be 2, 3 or 4, got {self.scale}")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        n, k = self.model.in_channels, len(self.degradation.mtf_nyquist)
        if self.degradation.kind == "wald" and k not in (1, n):  # (here, not at step 1)
            raise ConfigError(
                f"degradation.mtf_nyquist: {k} values for {n} band(s) (model.in_channels); "
                f"give one value{'' if n == 1 else f' or {n}'}"
            )
        if self.data.patch_size % self.scale:
            raise ConfigError(
                f"data.patch_size {self.data.patch_size} is not a multiple of scale {self.scale}"
            )

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


def load_train_config(
    path: str | PathLike[str], overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML training config strictly.

    Args:
        path: the YAML file.
        overrides: dotted keys replacing values, e.g. ``{"steps": 30, "optim.lr": 1e-3}``
            (the CLI's ``--set steps=30``); unknown keys are rejected like unknown YAML keys.
    """
    cfg = load_yaml(path, TrainConfig)
    return apply_overrides(cfg, overrides) if overrides else cfg


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A copy of ``cfg`` with dotted-key ``overrides`` applied (strictly re-validated)."""
    data = to_dict(cfg)
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {key!r}: {part!r} is not a section")
            node = node[part]
        if leaf not in node and not (parents and parents[-1] in _FREE_SECTIONS):
            close = difflib.get_close_matches(leaf, list(node), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"override {key!r}: unknown key {leaf!r}{hint}")
        node[leaf] = value
    return from_dict(TrainConfig, data)


_FREE_SECTIONS = {"options", "perceptual_layers"}  # dict-valued fields take any key


__all__ = [
    "CardConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "ValConfig",
    "apply_overrides",
    "dump_yaml",
    "load_train_config",
]
