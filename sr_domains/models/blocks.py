"""Building blocks shared by the architectures, and exact receptive-field arithmetic.

Every block that has a spatial extent can say how far it reaches (``radius()``, in pixels of the
resolution it runs at; ``None`` when it pools globally). Architectures describe their whole
pipeline as a list of :data:`Op` and :func:`field_radius` turns it into the exact radius in input
(LR) pixels, accounting for the resolution each op runs at.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .ops import box_kernels, box_mean

#: One pipeline step for :func:`field_radius`: ``("conv", half_width)`` at the current
#: resolution, ``("up", f)`` nearest / pixel-shuffle upsampling, ``("bicubic", f)`` bicubic
#: upsampling (``align_corners=False``) or ``("down", f)`` pixel-unshuffle.
Op = tuple[Literal["conv", "up", "bicubic", "down"], int]

CAPool = int | str


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution with 'same' zero padding."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


@torch.no_grad()
def scaled_kaiming_(modules: Iterable[nn.Module], scale: float = 1.0) -> None:
    """Kaiming-normal init of every conv in ``modules``, weights times ``scale``, zero bias.

    This is BasicSR's ``default_init_weights``; ``scale=0.1`` keeps deep residual stacks stable.
    """
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, 0.0, scale * math.sqrt(2.0 / fan_in))  # kaiming * scale
                if m.bias is not None:
                    m.bias.zero_()


def check_ca_pool(value: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is ``"global"`` or an odd int >= 1."""
    if value == "global":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ConfigError(
            f"ca_pool must be 'global' or an odd window size >= 1 (local pooling), got {value!r}"
        )


def check_positive(config: object, *names: str) -> None:
    """Raise :class:`ConfigError` unless each named int field of ``config`` is >= 1."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (RCAN's CA layer).

    ``pool="global"`` averages the whole feature map (published RCAN); an odd int ``k`` averages
    a local ``k x k`` window instead (stride 1, borders average only real pixels), which keeps
    the receptive field finite so tiled inference equals whole-image inference.

    The local variant pools *after* the 1x1 ``down`` convolution: both are linear and the window
    weights sum to one, so ``down(mean(x)) == mean(down(x))`` exactly, and the box filter
    (:func:`~sr_domains.models.ops.box_mean`) runs on ``n_feats / reduction`` channels instead of
    ``n_feats`` (same output to float rounding, ~1e-7).
    """

    if TYPE_CHECKING:  # buffers (registered in __init__); not runtime annotations (TorchScript)
        box_h: torch.Tensor
        box_w: torch.Tensor

    def __init__(self, n_feats: int, reduction: int = 16, pool: CAPool = "global") -> None:
        super().__init__()
        check_ca_pool(pool)
        hidden = max(1, n_feats // reduction)
        self.pool = pool
        self.kernel = 0 if pool == "global" else int(pool)  # 0 = global (typed for TorchScript)
        self.down = nn.Conv2d(n_feats, hidden, 1)
        self.up = nn.Conv2d(hidden, n_feats, 1)
        kh, kw = box_kernels(hidden, max(1, self.kernel))  # fixed, never in a checkpoint
        self.register_buffer("box_h", kh, persistent=False)
        self.register_buffer("box_w", kw, persistent=False)

    def radius(self) -> int | None:
        return None if self.kernel == 0 else self.kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel == 0:
            y = self.down(x.mean(dim=(2, 3), keepdim=True))
            return x * torch.sigmoid(self.up(F.relu(y)))
        if not torch.jit.is_scripting():  # noqa: SIM102 - TorchScript skips this block only
            if not torch.is_grad_enabled() and x.is_contiguous(memory_format=torch.channels_last):
                return self._forward_channels_last(x)
        y = box_mean(self.down(x), self.kernel, (self.box_h, self.box_w))
        if torch.is_grad_enabled():
            return x * torch.sigmoid(self.up(F.relu(y)))
        # inference: no autograd graph to keep, so reuse buffers (same values, fewer allocations)
        return torch.sigmoid_(self.up(torch.relu_(y))).mul_(x)

    @torch.jit.unused
    def _forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last inference: the 1x1 convs as matrix products on the ``(N*H*W, C)``
        view (oneDNN has no fast path for 2-channel convs), buffers reused in place."""
        down, up = self.down, self.up
        y = box_mean(_pointwise(x, down.weight, down.bias), self.kernel, (self.box_h, self.box_w))
        return torch.sigmoid_(_pointwise(torch.relu_(y), up.weight, up.bias)).mul_(x)


def _pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1 convolution of a channels-last ``x`` as a matrix product on the ``(N*H*W, C)``
    view (the result is channels-last)."""
    n, c, h, w = x.shape
    k = weight.shape[0]
    flat = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    out = torch.mm(flat, weight.view(k, c).t())
    if bias is not None:
        out = out.add_(bias)
    return out.view(n, h, w, k).permute(0, 3, 1, 2)


def _add(*radii: int | None) -> int | None:
    return None if any(r is None for r in radii) else sum(radii)  # type: ignore[arg-type]


class ResBlock(nn.Module):
    """EDSR residual block ``x + res_scale * [CA](conv(relu(conv(x))))``, no batch norm."""

    def __init__(
        self,
        n_feats: int,
        res_scale: float = 1.0,
        channel_attention: bool = False,
        ca_reduction: int = 16,
        ca_pool: CAPool = "global",
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)
        self.ca = ChannelAttention(n_feats, ca_reduction, ca_pool) if channel_attention else None

    def radius(self) -> int | None:
        return _add(2, 0 if self.ca is None else self.ca.radius())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            res = self.conv2(F.relu(self.conv1(x)))
            if self.ca is not None:
                res = self.ca(res)
            if self.res_scale != 1.0:
                res = res * self.res_scale
            return x + res
        # inference: in-place activations and sums (same values, fewer allocations)
        res = self.conv2(torch.relu_(self.conv1(x)))
        if self.ca is not None:
            res = self.ca(res)
        if self.res_scale != 1.0:
            res = res.mul_(self.res_scale)
        return res.add_(x)


class RCAB(ResBlock):
    """Residual channel attention block: a :class:`ResBlock` that always has channel attention."""

    def __init__(
        self, n_feats: int, reduction: int = 16, pool: CAPool = "global", res_scale: float = 1.0
    ) -> None:
        super().__init__(n_feats, res_scale, True, reduction, pool)


class ResidualGroup(nn.Module):
    """RCAN residual group: ``x + conv(RCAB_n(...RCAB_1(x)))``."""

    def __init__(
        self,
        n_feats: int,
        n_blocks: int,
        reduction: int = 16,
        pool: CAPool = "global",
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(RCAB(n_feats, reduction, pool, res_scale) for _ in range(n_blocks))
        )
        self.conv = conv3x3(n_feats, n_feats)

    def radius(self) -> int | None:
        return _add(*(b.radius() for b in self.blocks), 1)  # type: ignore[operator]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.blocks(x))


class RDB(nn.Module):
    """ESRGAN residual dense block: 5 densely connected convs, ``x + 0.2 * conv5(...)``."""

    if TYPE_CHECKING:  # submodules added by name in __init__ (BasicSR's key layout)
        conv1: nn.Conv2d
        conv2: nn.Conv2d
        conv3: nn.Conv2d
        conv4: nn.Conv2d
        conv5: nn.Conv2d

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        for i in range(5):
            out = num_feat if i == 4 else num_grow_ch
            self.add_module(f"conv{i + 1}", conv3x3(num_feat + i * num_grow_ch, out))
        scaled_kaiming_([self], 0.1)

    def radius(self) -> int:
        return 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.leaky_relu(self.conv1(x), 0.2)
        x2 = F.leaky_relu(self.conv2(torch.cat((x, x1), 1)), 0.2)
        x3 = F.leaky_relu(self.conv3(torch.cat((x, x1, x2), 1)), 0.2)
        x4 = F.leaky_relu(self.conv4(torch.cat((x, x1, x2, x3), 1)), 0.2)
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + 0.2 * [CA](rdb3(rdb2(rdb1(x))))``."""

    def __init__(
        self,
        num_feat: int,
        num_grow_ch: int = 32,
        channel_attention: bool = False,
        ca_reduction: int = 16,
        ca_pool: CAPool = "global",
    ) -> None:
        super().__init__()
        self.rdb1 = RDB(num_feat, num_grow_ch)
        self.rdb2 = RDB(num_feat, num_grow_ch)
        self.rdb3 = RDB(num_feat, num_grow_ch)
        self.ca = ChannelAttention(num_feat, ca_reduction, ca_pool) if channel_attention else None

    def radius(self) -> int | None:
        rdbs = self.rdb1.radius() + self.rdb2.radius() + self.rdb3.radius()
        return _add(rdbs, 0 if self.ca is None else self.ca.radius())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        if self.ca is not None:
            out = self.ca(out)
        return out * 0.2 + x


class Upsampler(nn.Sequential):
    """Pixel-shuffle upsampler: x2 and x3 in one stage, x4 as two x2 stages (EDSR's layout).

    Children are ``conv, PixelShuffle[, conv, PixelShuffle]`` so the keys match EDSR/BasicSR.
    """

    def __init__(self, scale: int, n_feats: int) -> None:
        stages = {2: [2], 3: [3], 4: [2, 2]}.get(scale)
        if stages is None:
            raise ConfigError(f"Upsampler supports scales 2, 3 and 4, got {scale}")
        layers: list[nn.Module] = []
        for f in stages:
            layers += [conv3x3(n_feats, f * f * n_feats), nn.PixelShuffle(f)]
        super().__init__(*layers)
        self.stages = stages

    def ops(self) -> list[Op]:
        """The upsampler as :func:`field_radius` steps."""
        out: list[Op] = []
        for f in self.stages:
            out += [("conv", 1), ("up", f)]
        return out


def field_radius(ops: Sequence[Op]) -> int:
    """Exact receptive-field radius, in input pixels, of a pipeline of :data:`Op` steps.

    Output pixel ``o`` (at the final resolution) depends only on input pixels ``q`` with
    ``|q - o // scale| <= radius``; this is the margin a tile needs for tiled inference to equal
    whole-image inference. Half-kernels at higher resolutions are converted exactly (walking one
    period of output positions back through the pipeline), not just summed and rounded. Models
    with a global pooling step return None themselves and never call this.
    """
    ups = math.prod(v for kind, v in ops if kind in ("up", "bicubic"))
    downs = math.prod(v for kind, v in ops if kind == "down")
    if ups % downs:
        raise ValueError(f"pipeline scale is not an integer: x{ups}/{downs}")
    scale = ups // downs
    worst = 0
    for o in range(ups * downs):  # one full period of output positions
        lo = hi = o
        for kind, v in reversed(ops):
            if kind == "conv":
                lo, hi = lo - v, hi + v
            elif kind == "up":
                lo, hi = lo // v, hi // v
            elif kind == "down":
                lo, hi = lo * v, hi * v + v - 1
            elif kind == "bicubic":
                # Taps floor(src)-1 .. floor(src)+2 with src = (i + 0.5) / v - 0.5. When src is
                # an integer, rounding may put it just below, so allow src-2 .. src+2 then.
                lo = -((v - 1 - 2 * lo) // (2 * v)) - 2  # ceil(src) - 2
                hi = (2 * hi + 1 - v) // (2 * v) + 2  # floor(src) + 2
            else:
                raise ValueError(f"unknown op {kind!r}")
        p = o // scale
        worst = max(worst, p - lo, hi - p)
    return worst


__all__ = [
    "RCAB",
    "RDB",
    "RRDB",
    "CAPool",
    "ChannelAttention",
    "Op",
    "ResBlock",
    "ResidualGroup",
    "Upsampler",
    "check_ca_pool",
    "check_positive",
    "conv3x3",
    "field_radius",
    "scaled_kaiming_",
]
