"""A tiny deterministic convolutional SR model for fast tests."""

from __future__ import annotations

import torch
from torch import nn

from ..models.base import BaseSRConfig, SRModel


class ToySR(SRModel):
    """conv3x3 -> ReLU -> conv3x3 -> pixel shuffle, plus a nearest-upsampled skip.

    Receptive radius 2 LR pixels, deterministic weights from ``seed``.
    """

    arch = "toy"

    def __init__(self, config: BaseSRConfig, seed: int = 0, feats: int = 8) -> None:
        super().__init__(config)
        g = torch.Generator().manual_seed(seed)
        s, cin, cout = config.scale, config.in_channels, config.n_out
        self.conv1 = nn.Conv2d(cin, feats, 3, padding=1)
        self.conv2 = nn.Conv2d(feats, cout * s * s, 3, padding=1)
        self.shuffle = nn.PixelShuffle(s)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(self.conv2(torch.relu(self.conv1(x))))
        skip = x if x.shape[1] == y.shape[1] else x.mean(dim=1, keepdim=True)
        return y + nn.functional.interpolate(skip, scale_factor=self.scale, mode="nearest")

    def receptive_radius(self) -> int:
        return 2


def tiny_model(in_channels: int = 1, scale: int = 2, seed: int = 0) -> ToySR:
    """A :class:`ToySR` in eval mode (fast enough for any test)."""
    return ToySR(BaseSRConfig(in_channels=in_channels, scale=scale), seed=seed).eval()


class KillOnceModel(ToySR):
    """A :class:`ToySR` whose first forward anywhere kills its own process (SIGKILL) unless
    ``marker`` exists, which it creates first: simulates a worker dying mid-task, once."""

    def __init__(self, config: BaseSRConfig, marker: str, seed: int = 0) -> None:
        super().__init__(config, seed=seed)
        self.marker = marker

    def body(self, x: torch.Tensor) -> torch.Tensor:
        import os
        import signal

        if not os.path.exists(self.marker):
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().body(x)
