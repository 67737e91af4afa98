"""RRDBNet, the ESRGAN / Real-ESRGAN generator (Wang et al., 2018).

Module names are BasicSR's (``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``) so BasicSR / Real-ESRGAN checkpoints load
without renaming. Upsampling is nearest interpolation + conv + LeakyReLU(0.2): one x2 stage for
x2, two for x4, one x3 stage for x3. ``pixel_unshuffle=True`` reproduces BasicSR's x2 layout
(input pixel-unshuffled by 2, then x4 upsampling); input sizes must then be even.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import ArchSpec, BaseSRConfig, SRModel
from .blocks import RRDB, CAPool, Op, check_ca_pool, check_positive, conv3x3, field_radius


@dataclass(frozen=True)
class RRDBConfig(BaseSRConfig):
    """RRDBNet options (BasicSR's names).

    Attributes:
        num_block: RRDB blocks in the trunk.
        num_feat: feature channels.
        num_grow_ch: growth channels of each dense block.
        channel_attention: add channel attention to the residual branch of each RRDB.
        ca_reduction: channel reduction of the attention bottleneck.
        ca_pool: ``"global"`` or an odd local averaging window (finite receptive field).
        pixel_unshuffle: BasicSR's x2 variant (pixel-unshuffle by 2, then x4); scale must be 2.
    """

    num_block: int = 23
    num_feat: int = 64
    num_grow_ch: int = 32
    channel_attention: bool = False
    ca_reduction: int = 16
    ca_pool: CAPool = "global"
    pixel_unshuffle: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "num_block", "num_feat", "num_grow_ch", "ca_reduction")
        check_ca_pool(self.ca_pool)
        if self.pixel_unshuffle and self.scale != 2:
            raise ConfigError(f"pixel_unshuffle=True needs scale=2, got scale={self.scale}")


class RRDBNet(SRModel):
    """RRDBNet; see :class:`RRDBConfig`. The trunk is the submodule ``body``."""

    arch = "rrdb"
    cpu_channels_last = True  # 1.4-2.2x faster on the CPU (benchmarks/speed.py)
    if TYPE_CHECKING:  # a class annotation would make TorchScript type the dataclass
        config: RRDBConfig

    def __init__(self, config: RRDBConfig) -> None:
        super().__init__(config)
        c = config
        self.unshuffle = bool(c.pixel_unshuffle)
        first_in = c.in_channels * 4 if c.pixel_unshuffle else c.in_channels
        self.conv_first = conv3x3(first_in, c.num_feat)
        self.body = nn.Sequential(
            *(
                RRDB(c.num_feat, c.num_grow_ch, c.channel_attention, c.ca_reduction, c.ca_pool)
                for _ in range(c.num_block)
            )
        )
        self.conv_body = conv3x3(c.num_feat, c.num_feat)
        self.up_factors: tuple[int, ...] = (
            (2, 2) if c.pixel_unshuffle else {2: (2,), 3: (3,), 4: (2, 2)}[c.scale]
        )
        self.up1 = float(self.up_factors[0])
        self.up2 = float(self.up_factors[-1])
        self.conv_up1 = conv3x3(c.num_feat, c.num_feat)
        self.conv_up2 = conv3x3(c.num_feat, c.num_feat) if len(self.up_factors) > 1 else None
        self.conv_hr = conv3x3(c.num_feat, c.num_feat)
        self.conv_last = conv3x3(c.num_feat, c.n_out)

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        """2 with ``pixel_unshuffle`` (input H and W must be even), else 1."""
        return 2 if self.config.pixel_unshuffle else 1

    @property
    def trunk(self) -> nn.Sequential:
        """The RRDB blocks (the submodule ``body``)."""
        return self.body

    def receptive_radius(self) -> int | None:
        c = self.config
        if c.channel_attention and c.ca_pool == "global":
            return None
        ops: list[Op] = [("down", 2)] if c.pixel_unshuffle else []
        ops.append(("conv", 1 + sum(b.radius() for b in self.trunk) + 1))  # type: ignore[operator]
        for f in self.up_factors:
            ops += [("up", f), ("conv", 1)]
        ops += [("conv", 1), ("conv", 1)]
        return field_radius(ops)

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle:
            if x.shape[-2] % 2 != 0 or x.shape[-1] % 2 != 0:
                raise ValueError(
                    f"rrdb with pixel_unshuffle needs even H and W, got {list(x.shape[-2:])}"
                )
            x = F.pixel_unshuffle(x, 2)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        up = F.interpolate(feat, scale_factor=self.up1, mode="nearest")
        feat = F.leaky_relu(self.conv_up1(up), 0.2)
        if self.conv_up2 is not None:
            up = F.interpolate(feat, scale_factor=self.up2, mode="nearest")
            feat = F.leaky_relu(self.conv_up2(up), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


SPEC = ArchSpec(
    name="rrdb",
    config_cls=RRDBConfig,
    model_cls=RRDBNet,
    description="RRDBNet, the ESRGAN / Real-ESRGAN generator (Wang et al. 2018)",
    presets={
        "esrgan": {"num_block": 23, "num_feat": 64, "num_grow_ch": 32},
        "small": {"num_block": 4, "num_feat": 32, "num_grow_ch": 16},
    },
)
