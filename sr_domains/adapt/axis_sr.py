"""``AxisSR``: a compact network that super-resolves **one axis** of 2-D images by any real factor.

Input ``(N, 1, n, W)``: the rows (axis -2) are sampled coarsely, the columns finely. Output
``(N, 1, m, W)`` with ``m = resampled_size(n, factor)`` rows on the voxel-centre grid of
:func:`sr_domains.image.upscale_matrix` (output row ``r`` sits at input row coordinate
``u_r = (r + 1/2) / f - 1/2``).

* **Body in the coarse grid** (cheap: ``1/f`` of the output pixels): a 3x3 head, EDSR residual
  blocks with local-window channel attention (:class:`sr_domains.models.blocks.ResBlock`, the
  same layout as the shipped ``edsr-lite-ca`` weights, so those can warm-start it) and a long
  skip.
* **Any real factor** by a local implicit tail: each output row gathers the features of the
  nearest input row ``i = round(u_r)`` and its two neighbours plus its sub-row offset
  ``u_r - i`` (a 1x1 layer), then two 3x3 layers at the output resolution.
* **Pre-upsampled skip**: the output is the cubic interpolation of the input (Keys a = -0.5,
  same voxel-centre rule) plus what the network adds; the last layer starts at zero, so an
  untrained ``AxisSR`` *is* cubic interpolation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..image import resampled_size
from ..models.base import BaseSRConfig, SRModel
from ..models.blocks import CAPool, check_ca_pool, check_positive, conv3x3


@dataclass(frozen=True)
class AxisSRConfig(BaseSRConfig):
    """AxisSR options (``scale`` is 1: the columns keep their size; ``factor`` acts on rows).

    Attributes:
        factor: output rows per input row (any real number >= 1).
        n_blocks, n_feats: residual blocks and feature channels of the coarse-grid body.
        ca_reduction, ca_pool: channel attention bottleneck and local pooling window.
        tail_feats: channels of the output-resolution tail.
    """

    in_channels: int = 1
    scale: int = 1
    factor: float = 2.0
    n_blocks: int = 8
    n_feats: int = 32
    ca_reduction: int = 16
    ca_pool: CAPool = 5
    tail_feats: int = 32

    def __post_init__(self) -> None:
        if self.in_channels != 1 or self.n_out != 1:
            raise ConfigError("AxisSR works on one channel (in_channels = out_channels = 1)")
        if self.scale != 1:
            raise ConfigError(f"AxisSR keeps the column count (scale 1), got scale {self.scale}")
        if not (np.isfinite(self.factor) and self.factor >= 1.0):
            raise ConfigError(f"AxisSR factor must be a real number >= 1, got {self.factor}")
        if not self.pixel_range > 0:
            raise ConfigError(f"pixel_range must be > 0, got {self.pixel_range}")
        check_positive(self, "n_blocks", "n_feats", "ca_reduction", "tail_feats")
        check_ca_pool(self.ca_pool)


class LocalCA(nn.Module):
    """Channel attention over a local ``k x k`` window, computed as
    :class:`~sr_domains.models.blocks.ChannelAttention` with ``pool=k`` (same parameters, same
    values) but cheaper: the window mean commutes with the linear squeeze layer, so the
    ``n_feats / reduction`` squeezed channels are pooled instead of all features."""

    def __init__(self, n_feats: int, reduction: int, pool: int) -> None:
        super().__init__()
        self.pool = int(pool)
        self.down = nn.Conv2d(n_feats, max(1, n_feats // reduction), 1)
        self.up = nn.Conv2d(max(1, n_feats // reduction), n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.pool
        y = F.avg_pool2d(self.down(x), k, 1, k // 2, count_include_pad=False)
        return x * torch.sigmoid(self.up(F.relu(y)))


class Block(nn.Module):
    """EDSR residual block with :class:`LocalCA` (parameter names of
    :class:`~sr_domains.models.blocks.ResBlock`, so EDSR ``body.*`` weights load)."""

    def __init__(self, n_feats: int, reduction: int, pool: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)
        self.ca = LocalCA(n_feats, reduction, pool)

    def radius(self) -> int:
        return 2 + self.ca.pool // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ca(self.conv2(F.relu(self.conv1(x), inplace=True)))


def _selection(n: int, m: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``(S (m, 3n), offset (m,))``: output row ``r`` picks input rows ``i-1, i, i+1`` of the
    three stacked feature groups, ``i = round(u_r)`` (clamped), and its offset ``u_r - i``."""
    u = (np.arange(m, dtype=np.float64) + 0.5) / factor - 0.5
    i = np.clip(np.floor(u + 0.5), 0, n - 1).astype(np.int64)
    sel = np.zeros((m, 3 * n), np.float32)
    rows = np.arange(m)
    for g, k in enumerate((-1, 0, 1)):
        sel[rows, g * n + np.clip(i + k, 0, n - 1)] = 1.0
    return sel, (u - i).astype(np.float32)


def _cubic_matrix(n: int, m: int, factor: float) -> np.ndarray:
    """Dense ``(m, n)`` cubic interpolation (Keys a = -0.5, voxel-centre rule, mirrored ends)."""
    from .._resample import cubic_contributions

    idx, w = cubic_contributions(n, m, factor, False)
    mat = np.zeros((m, n), np.float64)
    np.add.at(mat, (np.repeat(np.arange(m), idx.shape[1]), idx.ravel()), w.ravel())
    return mat.astype(np.float32)


class AxisSR(SRModel):
    """See the module docs and :class:`AxisSRConfig`."""

    arch = "axis-sr"
    fp16_safe = False  # the implicit tail's gathers and the cubic skip stay in float32
    bf16_safe = False
    config: AxisSRConfig

    def __init__(self, config: AxisSRConfig) -> None:
        super().__init__(config)
        c = config
        self.conv_first = conv3x3(1, c.n_feats)
        if c.ca_pool == "global":
            raise ConfigError("AxisSR needs a local channel-attention window (odd int)")
        # nn.Module.__setattr__ stores this in _modules; self.body stays the method below
        self.body = nn.Sequential(  # type: ignore[method-assign]
            *(Block(c.n_feats, c.ca_reduction, int(c.ca_pool)) for _ in range(c.n_blocks))
        )
        self.conv_after_body = conv3x3(c.n_feats, c.n_feats)
        # the 1x1 layer on [f(i-1), f(i), f(i+1), offset] is linear: its three feature parts
        # run in the coarse grid (cheap) and are gathered afterwards
        self.fuse = nn.Conv2d(c.n_feats, 3 * c.tail_feats, 1)
        self.fuse_offset = nn.Parameter(torch.zeros(1, c.tail_feats, 1, 1))
        self.tail = conv3x3(c.tail_feats, c.tail_feats)
        self.conv_last = conv3x3(c.tail_feats, 1)
        nn.init.zeros_(self.conv_last.weight)
        assert self.conv_last.bias is not None  # conv3x3 has a bias
        nn.init.zeros_(self.conv_last.bias)
        self._cache: dict[tuple[int, str], tuple[torch.Tensor, ...]] = {}

    @property
    def factor(self) -> float:
        return float(self.config.factor)

    @property
    def trunk(self) -> nn.Sequential:
        return self._modules["body"]  # type: ignore[return-value]

    def receptive_radius(self) -> int | None:
        """Input rows/columns each side an output pixel depends on (coarse-grid body, the
        3-row gather, two 3x3 output-resolution layers and the 4-tap cubic skip)."""
        body = 1 + sum(b.radius() for b in self.trunk) + 1  # type: ignore[operator]
        return int(body + 1 + int(np.ceil(2.0 / self.factor)) + 2)

    def out_rows(self, n: int) -> int:
        """Output rows for ``n`` input rows (:func:`sr_domains.image.resampled_size`)."""
        return resampled_size(n, self.factor)

    def _matrices(self, n: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = (n, str(device))
        if key not in self._cache:
            m = self.out_rows(n)
            sel, off = _selection(n, m, self.factor)
            cub = _cubic_matrix(n, m, self.factor)
            self._cache[key] = tuple(
                torch.from_numpy(a).to(device) for a in (sel, off.reshape(1, 1, m, 1), cub)
            )
        return self._cache[key]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        sel, off, cub = (t.to(x.dtype) for t in self._matrices(x.shape[-2], x.device))
        skip = torch.matmul(cub, x)
        feat = self.conv_first(x)
        feat = feat + self.conv_after_body(self.trunk(feat))
        g = self.fuse(feat)  # (N, 3T, n, W): the three taps' parts of the 1x1 layer
        b, t3, n, w = g.shape
        t = t3 // 3
        stacked = g.reshape(b, 3, t, n, w).transpose(1, 2).reshape(b, t, 3 * n, w)
        y = torch.matmul(sel, stacked) + self.fuse_offset * off
        y = self.conv_last(F.relu(self.tail(F.relu(y))))
        return skip + y


def axis_sr(factor: float, **overrides: object) -> AxisSR:
    """An :class:`AxisSR` for ``factor`` (other config fields as keyword overrides)."""
    return AxisSR(AxisSRConfig(factor=float(factor), **overrides))  # type: ignore[arg-type]


def warm_start_from(model: AxisSR, source: SRModel) -> list[str]:
    """Copy the matching coarse-grid weights (``conv_first``, ``body.*``, ``conv_after_body``)
    of an EDSR-layout model (e.g. the shipped ``sr-lite-gray-x2``) into ``model``.

    Returns:
        The parameter names copied (empty when the layouts do not match).
    """
    own = model.state_dict()
    prefixes = ("conv_first.", "body.", "conv_after_body.")
    src = {k: v for k, v in source.state_dict().items() if k.startswith(prefixes)}
    same = [k for k, v in src.items() if k in own and own[k].shape == v.shape]
    if not same or len(same) != len([k for k in own if k.startswith(prefixes)]):
        return []
    with torch.no_grad():
        for k in same:
            own[k].copy_(src[k])
    return same


def load_axis_sr(path: str | os.PathLike[str]) -> AxisSR:
    """Load an :class:`AxisSR` saved with :func:`sr_domains.checkpoint.save_checkpoint` (e.g. by
    ``--save-model``); the model card is attached as ``model.card``."""
    from safetensors.torch import load_file

    from ..checkpoint import ModelCard, load_state_strict, read_card
    from ..config import from_dict
    from ..errors import CheckpointError

    card = read_card(path)
    if card.get("arch") != AxisSR.arch:
        raise CheckpointError(
            f"{path}: a {card.get('arch')!r} checkpoint, not a through-plane model ({AxisSR.arch})"
        )
    try:
        config = from_dict(AxisSRConfig, card.get("config", {}), where=f"{path}: config")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    model = AxisSR(config)
    load_state_strict(model, load_file(str(path)), path)
    model.card = ModelCard.from_json(json.dumps(card))
    return model.eval()


__all__ = ["AxisSR", "AxisSRConfig", "axis_sr", "load_axis_sr", "warm_start_from"]
