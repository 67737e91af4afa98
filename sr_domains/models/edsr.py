"""EDSR (Lim et al., 2017): a residual trunk without batch norm and a pixel-shuffle upsampler.

Module names follow BasicSR (``conv_first``, ``body.{i}.conv1/conv2``, ``conv_after_body``,
``upsample.{0,2}``, ``conv_last``) so BasicSR EDSR weights load as they are; the official
EDSR-PyTorch layout is mapped by :mod:`sr_domains.checkpoint`. ``channel_attention=True`` adds an
RCAN-style channel attention layer to each residual block. ``global_skip="bicubic"`` adds the
bicubic upsampling of the input to the output (global residual learning, as in VDSR): the
network only learns the detail bicubic misses, which trains much faster for small models (no
parameters, so checkpoint keys are unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from ..errors import ConfigError
from .base import ArchSpec, BaseSRConfig, SRModel
from .blocks import (
    CAPool,
    ResBlock,
    Upsampler,
    check_ca_pool,
    check_positive,
    conv3x3,
    field_radius,
)
from .ops import BicubicUpsample

#: Inference runs the upsampling tail in bands of this many LR rows (bounded memory) with this
#: many rows of context each side (the tail reaches 2 LR rows: conv, conv at HR, bicubic).
TAIL_ROWS = 128
TAIL_HALO = 3


def _format_of(t: torch.Tensor) -> torch.memory_format:
    cl = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


@dataclass(frozen=True)
class EDSRConfig(BaseSRConfig):
    """EDSR options.

    Attributes:
        n_blocks: residual blocks in the trunk.
        n_feats: feature channels.
        res_scale: residual scaling inside each block (0.1 for the 256-feature model).
        channel_attention: add channel attention to each residual block.
        ca_reduction: channel reduction of the attention bottleneck.
        ca_pool: ``"global"`` or an odd local averaging window (finite receptive field).
        global_skip: ``"bicubic"`` adds the bicubic-upsampled input to the output (needs
            ``out_channels == in_channels``); ``"none"`` is the published EDSR.
        shared_detail: with the bicubic skip, add the band mean of the learned detail to every
            band, so the output's band differences are bicubic's (spectral angles stay within
            what one common detail layer changes: no per-band colour or noise artefacts); for
            multi-band imagery. Changes no parameter, so existing weights load either way.
    """

    n_blocks: int = 16
    n_feats: int = 64
    res_scale: float = 1.0
    channel_attention: bool = False
    ca_reduction: int = 16
    ca_pool: CAPool = "global"
    global_skip: Literal["none", "bicubic"] = "none"
    shared_detail: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "n_blocks", "n_feats", "ca_reduction")
        check_ca_pool(self.ca_pool)
        if self.global_skip not in ("none", "bicubic"):
            raise ConfigError(f"global_skip must be 'none' or 'bicubic', got {self.global_skip!r}")
        if self.global_skip != "none" and self.n_out != self.in_channels:
            raise ConfigError("global_skip needs out_channels == in_channels")
        if self.shared_detail and self.global_skip != "bicubic":
            raise ConfigError("shared_detail needs global_skip='bicubic' (detail over bicubic)")


class EDSR(SRModel):
    """EDSR; see :class:`EDSRConfig`. The trunk is the submodule ``body`` (BasicSR's name)."""

    arch = "edsr"
    cpu_channels_last = True  # 1.4-2.2x faster on the CPU (benchmarks/speed.py)
    if TYPE_CHECKING:  # a class annotation would make TorchScript type the dataclass
        config: EDSRConfig

    def __init__(self, config: EDSRConfig) -> None:
        super().__init__(config)
        c = config
        self.conv_first = conv3x3(c.in_channels, c.n_feats)
        self.body = nn.Sequential(
            *(
                ResBlock(c.n_feats, c.res_scale, c.channel_attention, c.ca_reduction, c.ca_pool)
                for _ in range(c.n_blocks)
            )
        )
        self.conv_after_body = conv3x3(c.n_feats, c.n_feats)
        self.upsample = Upsampler(c.scale, c.n_feats)
        self.conv_last = conv3x3(c.n_feats, c.n_out)
        # F.interpolate(bicubic) as a fixed polyphase conv (no parameters, no checkpoint keys)
        self.skip = BicubicUpsample(c.scale, c.in_channels) if c.global_skip == "bicubic" else None
        self.shared_detail = bool(c.shared_detail)
        self.tail_rows = TAIL_ROWS

    @property
    def trunk(self) -> nn.Sequential:
        """The residual blocks (the submodule ``body``)."""
        return self.body

    def receptive_radius(self) -> int | None:
        if self.config.channel_attention and self.config.ca_pool == "global":
            return None
        lr = 1 + sum(b.radius() for b in self.trunk) + 1  # type: ignore[operator]
        net = field_radius([("conv", lr), *self.upsample.ops(), ("conv", 1)])
        if self.config.global_skip == "bicubic":
            return max(net, field_radius([("bicubic", self.scale)]))
        return net

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        if torch.is_grad_enabled():
            feat = feat + self.conv_after_body(self.body(feat))
            return self._tail(feat, x)
        # inference: sum in place (same values, one allocation less) and run the upsampling
        # tail in row chunks (its s*s*n_feats maps would otherwise dominate peak memory)
        feat = self.conv_after_body(self.body(feat)).add_(feat)
        if not torch.jit.is_scripting():  # noqa: SIM102 - TorchScript skips this block only
            if feat.shape[-2] > 2 * self.tail_rows and self.eager_inference():
                return self._tail_chunked(feat, x)
        return self._tail(feat, x)

    def _tail(self, feat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_last(self.upsample(feat))
        if self.shared_detail:
            out = out.mean(dim=1, keepdim=True)
        if self.skip is not None:
            out = out + self.skip(x)
        return out

    @torch.jit.unused
    def _tail_chunked(self, feat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_tail` on bands of ``TAIL_ROWS`` LR rows with ``TAIL_HALO`` context rows each
        side (every tail op reaches at most 2 LR rows), stitched: the same result."""
        h, s = feat.shape[-2], self.scale
        out: torch.Tensor | None = None
        for a in range(0, h, self.tail_rows):
            b = min(h, a + self.tail_rows)
            a0, b0 = max(0, a - TAIL_HALO), min(h, b + TAIL_HALO)
            y = self._tail(feat[:, :, a0:b0], x[:, :, a0:b0])
            if out is None:
                n, c, _, w = y.shape
                out = torch.empty(
                    (n, c, h * s, w), dtype=y.dtype, device=y.device, memory_format=_format_of(y)
                )
            out[:, :, a * s : b * s] = y[:, :, (a - a0) * s : (b - a0) * s]
        assert out is not None
        return out


SPEC = ArchSpec(
    name="edsr",
    config_cls=EDSRConfig,
    model_cls=EDSR,
    description="EDSR residual network with pixel-shuffle upsampling (Lim et al. 2017)",
    presets={
        "baseline": {"n_blocks": 16, "n_feats": 64, "res_scale": 1.0},
        "full": {"n_blocks": 32, "n_feats": 256, "res_scale": 0.1},
        # the shipped default weights: small, exact tiling (radius 36 <= the auto margin 40)
        "lite-ca": {
            "n_blocks": 8,
            "n_feats": 32,
            "channel_attention": True,
            "ca_pool": 5,
            "global_skip": "bicubic",
        },
    },
)
