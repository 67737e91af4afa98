"""GAN discriminators for the ESRGAN stage (not SR models; not in the model registry).

Module names follow BasicSR (``VGGStyleDiscriminator``, ``UNetDiscriminatorSN``), so their state
dicts use the same keys and discriminator weights from BasicSR / Real-ESRGAN runs
(``net_d`` files) load with ``load_state_dict`` for the same ``in_channels``/``n_feats``. Spectral
norm uses ``torch.nn.utils.spectral_norm`` (keys ``weight_orig``/``weight_u``/``weight_v``),
as BasicSR does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator options.

    Attributes:
        kind: ``"unet"`` (Real-ESRGAN U-Net, per-pixel logits, any size divisible by 8) or
            ``"vgg"`` (ESRGAN VGG-style, one logit per image, fixed input size).
        in_channels: image channels (1 for MRI, 3 for RGB, up to 13+ bands).
        n_feats: base number of features.
        spectral_norm: spectral normalisation. U-Net: on ``conv1``..``conv8`` as in Real-ESRGAN.
            VGG: on every convolution and linear layer; ESRGAN's original has none, so use
            ``False`` to match BasicSR's ``VGGStyleDiscriminator`` keys.
        input_size: patch size of the ``vgg`` kind: a power of two >= 8 (BasicSR: 128 or 256).
    """

    kind: Literal["vgg", "unet"] = "unet"
    in_channels: int = 3
    n_feats: int = 64
    spectral_norm: bool = True
    input_size: int = 128

    def __post_init__(self) -> None:
        if self.kind not in ("vgg", "unet"):
            raise ConfigError(f"discriminator kind must be 'vgg' or 'unet', got {self.kind!r}")
        if self.in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {self.in_channels}")
        if self.n_feats < 1:
            raise ConfigError(f"n_feats must be >= 1, got {self.n_feats}")
        size = self.input_size
        if self.kind == "vgg" and (size < 8 or size & (size - 1)):
            raise ConfigError(
                f"vgg discriminator input_size must be a power of two >= 8, got {size}"
            )


def _sn(module: nn.Module, use: bool) -> nn.Module:
    return nn.utils.spectral_norm(module) if use else module


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's VGG-style discriminator: stride-2 stages down to 4x4, then two linear layers.

    Stage ``i`` has ``conv{i}_0`` (3x3) and ``conv{i}_1`` (4x4, stride 2), each followed by
    batch norm (``bn{i}_*``; ``conv0_0`` has a bias and no norm) and LeakyReLU(0.2); features
    double per stage up to ``8 * n_feats``. Input 128 gives BasicSR's 5 stages, 256 its 6.
    Returns ``(N, 1)`` logits.
    """

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        sn, nf = config.spectral_norm, config.n_feats
        self.n_stages = int(math.log2(config.input_size // 4))
        self.conv0_0 = _sn(nn.Conv2d(config.in_channels, nf, 3, 1, 1), sn)
        self.conv0_1 = _sn(nn.Conv2d(nf, nf, 4, 2, 1, bias=False), sn)
        self.bn0_1 = nn.BatchNorm2d(nf)
        prev = nf
        for i in range(1, self.n_stages):
            ch = nf * min(2**i, 8)
            self.add_module(f"conv{i}_0", _sn(nn.Conv2d(prev, ch, 3, 1, 1, bias=False), sn))
            self.add_module(f"bn{i}_0", nn.BatchNorm2d(ch))
            self.add_module(f"conv{i}_1", _sn(nn.Conv2d(ch, ch, 4, 2, 1, bias=False), sn))
            self.add_module(f"bn{i}_1", nn.BatchNorm2d(ch))
            prev = ch
        self.linear1 = _sn(nn.Linear(prev * 4 * 4, 100), sn)
        self.linear2 = _sn(nn.Linear(100, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)`` for images ``(N, C, input_size, input_size)``."""
        size = self.config.input_size
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[-2:] != (size, size):
            raise ConfigError(
                f"VGG-style discriminator needs (N, {self.config.in_channels}, {size}, {size}) "
                f"input, got {tuple(x.shape)}"
            )
        act = F.leaky_relu
        feat = act(self.conv0_0(x), 0.2)
        feat = act(self.bn0_1(self.conv0_1(feat)), 0.2)
        for i in range(1, self.n_stages):
            for j in (0, 1):
                conv, bn = getattr(self, f"conv{i}_{j}"), getattr(self, f"bn{i}_{j}")
                feat = act(bn(conv(feat)), 0.2)
        feat = act(self.linear1(feat.flatten(1)), 0.2)
        return self.linear2(feat)


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator: per-pixel realness logits ``(N, 1, H, W)``.

    ``conv0`` then three stride-2 convolutions (``conv1``-``conv3``), three bilinear x2 upsampling
    steps with convolutions (``conv4``-``conv6``) and skip connections added from the encoder,
    two more convolutions (``conv7``, ``conv8``) and ``conv9`` to one channel. LeakyReLU(0.2)
    everywhere. H and W must be divisible by 8.

    Args:
        config: see :class:`DiscriminatorConfig`.
        skip_connection: add the encoder features in the decoder (BasicSR default ``True``).
    """

    def __init__(self, config: DiscriminatorConfig, skip_connection: bool = True) -> None:
        super().__init__()
        self.config = config
        self.skip_connection = skip_connection
        sn, nf = config.spectral_norm, config.n_feats
        self.conv0 = nn.Conv2d(config.in_channels, nf, 3, 1, 1)
        self.conv1 = _sn(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False), sn)
        self.conv2 = _sn(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False), sn)
        self.conv3 = _sn(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False), sn)
        self.conv4 = _sn(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False), sn)
        self.conv5 = _sn(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False), sn)
        self.conv6 = _sn(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False), sn)
        self.conv7 = _sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False), sn)
        self.conv8 = _sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False), sn)
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits ``(N, 1, H, W)`` for images ``(N, C, H, W)``, H and W divisible by 8."""
        c = self.config.in_channels
        if x.ndim != 4 or x.shape[1] != c or x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ConfigError(
                f"U-Net discriminator needs (N, {c}, H, W) input with H, W divisible by 8, "
                f"got {tuple(x.shape)}"
            )

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        skips = (x2, x1, x0) if self.skip_connection else (None, None, None)
        feat = x3
        for conv, skip in zip((self.conv4, self.conv5, self.conv6), skips):
            feat = act(conv(up(feat)))
            if skip is not None:
                feat = feat + skip
        feat = act(self.conv8(act(self.conv7(feat))))
        return self.conv9(feat)


def build_discriminator(config: DiscriminatorConfig) -> nn.Module:
    """The discriminator described by ``config`` (freshly initialised, train mode)."""
    if config.kind == "unet":
        return UNetDiscriminatorSN(config)
    return VGGStyleDiscriminator(config)


__all__ = [
    "DiscriminatorConfig",
    "UNetDiscriminatorSN",
    "VGGStyleDiscriminator",
    "build_discriminator",
]
