"""RCAN (Zhang et al., 2018): residual groups of residual channel-attention blocks.

Module names: ``conv_first``, ``body.{g}.blocks.{b}.conv1/conv2/ca.down/ca.up``,
``body.{g}.conv``, ``conv_after_body``, ``upsample.*``, ``conv_last``. The official
(yulunzhang/RCAN, EDSR-PyTorch) and BasicSR layouts are mapped by :mod:`sr_domains.checkpoint`.
With ``ca_pool`` set to an odd window size the attention pools locally and the receptive field
becomes finite (exact tiling); the default global pooling matches the published model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .base import ArchSpec, BaseSRConfig, SRModel
from .blocks import (
    CAPool,
    ResidualGroup,
    Upsampler,
    check_ca_pool,
    check_positive,
    conv3x3,
    field_radius,
)


@dataclass(frozen=True)
class RCANConfig(BaseSRConfig):
    """RCAN options.

    Attributes:
        n_resgroups: residual groups.
        n_resblocks: residual channel-attention blocks per group.
        n_feats: feature channels.
        reduction: channel reduction of the attention bottleneck.
        res_scale: residual scaling inside each block (1 in the published model).
        ca_pool: ``"global"`` or an odd local averaging window (finite receptive field).
    """

    n_resgroups: int = 10
    n_resblocks: int = 20
    n_feats: int = 64
    reduction: int = 16
    res_scale: float = 1.0
    ca_pool: CAPool = "global"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "n_resgroups", "n_resblocks", "n_feats", "reduction")
        check_ca_pool(self.ca_pool)


class RCAN(SRModel):
    """RCAN; see :class:`RCANConfig`. The groups are the submodule ``body``."""

    arch = "rcan"
    cpu_channels_last = True  # 1.4-2.2x faster on the CPU (benchmarks/speed.py)
    if TYPE_CHECKING:  # a class annotation would make TorchScript type the dataclass
        config: RCANConfig
    fp16_safe = False  # spandrel marks RCAN as not half-safe (overflow); bf16 is fine

    def __init__(self, config: RCANConfig) -> None:
        super().__init__(config)
        c = config
        self.conv_first = conv3x3(c.in_channels, c.n_feats)
        self.body = nn.Sequential(
            *(
                ResidualGroup(c.n_feats, c.n_resblocks, c.reduction, c.ca_pool, c.res_scale)
                for _ in range(c.n_resgroups)
            )
        )
        self.conv_after_body = conv3x3(c.n_feats, c.n_feats)
        self.upsample = Upsampler(c.scale, c.n_feats)
        self.conv_last = conv3x3(c.n_feats, c.n_out)

    @property
    def trunk(self) -> nn.Sequential:
        """The residual groups (the submodule registered as ``body``)."""
        return self.body

    def receptive_radius(self) -> int | None:
        if self.config.ca_pool == "global":
            return None
        lr = 1 + sum(g.radius() for g in self.trunk) + 1  # type: ignore[operator]
        return field_radius([("conv", lr), *self.upsample.ops(), ("conv", 1)])

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_after_body(self.body(feat))
        return self.conv_last(self.upsample(feat))


SPEC = ArchSpec(
    name="rcan",
    config_cls=RCANConfig,
    model_cls=RCAN,
    description="RCAN residual channel-attention network (Zhang et al. 2018)",
    presets={
        "small": {"n_resgroups": 3, "n_resblocks": 4, "n_feats": 32, "reduction": 8},
    },
)
