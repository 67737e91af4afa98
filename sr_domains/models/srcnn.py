"""SRCNN (Dong et al., 2014): bicubic upsampling followed by three convolutions (9-5-5).

The network runs at HR resolution on the bicubic-interpolated input. With ``residual=True`` the
convolutions predict a correction added to the interpolated image (VDSR-style), otherwise they
predict the HR image directly (classic SRCNN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import ArchSpec, BaseSRConfig, SRModel
from .blocks import field_radius
from .ops import BicubicUpsample


@dataclass(frozen=True)
class SRCNNConfig(BaseSRConfig):
    """SRCNN options.

    Attributes:
        features: channels after the first and second convolution.
        kernels: kernel sizes of the three convolutions (odd).
        residual: add the bicubic-interpolated input to the network output.
    """

    features: tuple[int, int] = (64, 32)
    kernels: tuple[int, int, int] = (9, 5, 5)
    residual: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.features) != 2 or any(f < 1 for f in self.features):
            raise ConfigError(f"features must be two integers >= 1, got {self.features!r}")
        if len(self.kernels) != 3 or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ConfigError(f"kernels must be three odd integers >= 1, got {self.kernels!r}")
        if self.residual and self.n_out != self.in_channels:
            raise ConfigError("residual=True needs out_channels == in_channels")


class SRCNN(SRModel):
    """SRCNN on a bicubic-upsampled input; see :class:`SRCNNConfig`."""

    arch = "srcnn"
    cpu_channels_last = True  # 1.4-2.2x faster on the CPU (benchmarks/speed.py)
    if TYPE_CHECKING:  # a class annotation would make TorchScript type the dataclass
        config: SRCNNConfig

    def __init__(self, config: SRCNNConfig) -> None:
        super().__init__(config)
        (f1, f2), (k1, k2, k3) = config.features, config.kernels
        self.conv1 = nn.Conv2d(config.in_channels, f1, k1, padding=k1 // 2)
        self.conv2 = nn.Conv2d(f1, f2, k2, padding=k2 // 2)
        self.conv3 = nn.Conv2d(f2, config.n_out, k3, padding=k3 // 2)
        self.residual = bool(config.residual)
        # F.interpolate(bicubic, align_corners=False) as a fixed polyphase conv (no parameters)
        self.upsample = BicubicUpsample(config.scale, config.in_channels)

    def receptive_radius(self) -> int:
        ops = [("bicubic", self.scale)] + [("conv", k // 2) for k in self.config.kernels]
        return field_radius(ops)  # type: ignore[arg-type]

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)
        y = self.conv3(F.relu(self.conv2(F.relu(self.conv1(up)))))
        return y + up if self.residual else y


SPEC = ArchSpec(
    name="srcnn",
    config_cls=SRCNNConfig,
    model_cls=SRCNN,
    description="SRCNN 9-5-5 on a bicubic-upsampled input (Dong et al. 2014)",
    presets={"residual": {"residual": True}},
)
