"""A small real torch model shared by the band-ratio tests."""

from __future__ import annotations

import torch

from sr_domains.models.base import BaseSRConfig, SRModel


class Sharpen(SRModel):
    """Bicubic upsampling plus an unsharp mask whose strength depends on the local value:
    each band gets its own detail and overshoot at an edge, as from a network run band by
    band."""

    arch = "sharpen"

    def __init__(self, channels: int = 1, scale: int = 2) -> None:
        super().__init__(BaseSRConfig(in_channels=channels, scale=scale))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        up = torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic")
        blur = torch.nn.functional.avg_pool2d(up, 5, stride=1, padding=2, count_include_pad=False)
        return up + (0.5 + up) * (up - blur)

    def receptive_radius(self) -> int:
        return 4
