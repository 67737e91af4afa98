"""Patch sampling for internal learning: random crops of the input's own high-resolution images,
drawn where there is structure, with flips.

:class:`PatchSampler` holds one or more stacks of 2-D images (e.g. the in-plane slices of an MRI
volume, once as they are and once transposed) and draws ``(n, 1, h, w)`` float32 patches; stacks
of multi-band images ``(N, C, H, W)`` give ``(n, C, h, w)`` patches (every stack must then have
the same ``C``; the structure score sums the bands).
Positions are drawn with probability proportional to the mean gradient magnitude inside the
patch plus a floor (``uniform`` share of the mean), so flat background is rarely picked but
never impossible. Every draw uses the ``torch.Generator`` it is given: same generator state,
same patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError


def _box_sum(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum of ``a`` ``(N, H, W)`` over every ``h x w`` window -> ``(N, H-h+1, W-w+1)``."""
    c = np.zeros((a.shape[0], a.shape[1] + 1, a.shape[2] + 1), np.float64)
    c[:, 1:, 1:] = a.cumsum(1).cumsum(2)
    return c[:, h:, w:] - c[:, :-h, w:] - c[:, h:, :-w] + c[:, :-h, :-w]


class NoPatchError(ConfigError):
    """No image of the stacks is as large as the patch and has content (structure and,
    with ``foreground``, a bright enough mean) to draw it from."""


@dataclass
class _Stack:
    images: torch.Tensor  # (N, C, H, W) float32
    cdf: torch.Tensor  # cumulative position weights, float64
    shape: tuple[int, int]  # valid top-left positions per image (rows, cols)


class PatchSampler:
    """Random ``h x w`` patches from stacks of 2-D images (module docs).

    Args:
        stacks: arrays ``(N, H, W)`` or ``(N, C, H, W)`` (each stack may have its own
            ``H, W``; at least one image must be as large as the patch).
        size: patch ``(h, w)``.
        uniform: share of the mean weight given to every position (0 = gradient only).
        flips: random flips of the rows and/or the columns.
        foreground: ignore positions whose patch mean is below this value (None: keep all).
    """

    def __init__(
        self,
        stacks: Sequence[np.ndarray],
        size: tuple[int, int],
        *,
        uniform: float = 0.1,
        flips: tuple[bool, bool] = (True, True),
        foreground: float | None = None,
    ) -> None:
        h, w = (int(v) for v in size)
        if h < 1 or w < 1:
            raise ConfigError(f"patch size must be positive, got {size}")
        self.size = (h, w)
        self.flips = flips
        self._stacks: list[_Stack] = []
        self.channels = 0
        for arr in stacks:
            a = np.asarray(arr, np.float32)
            if a.ndim == 3:
                a = a[:, None]
            if a.ndim != 4:
                raise ConfigError(
                    f"a stack of images is (N, H, W) or (N, C, H, W), got shape {a.shape}"
                )
            if self.channels and a.shape[1] != self.channels:
                raise ConfigError(f"stacks have {self.channels} and {a.shape[1]} bands")
            self.channels = a.shape[1]
            if a.shape[2] < h or a.shape[3] < w:
                continue
            # differences between two pixels of the same patch only (bands summed)
            score = np.zeros((a.shape[0], a.shape[2] - h + 1, a.shape[3] - w + 1))
            if h > 1:
                score += _box_sum(np.abs(np.diff(a, axis=2)).sum(1), h - 1, w)
            if w > 1:
                score += _box_sum(np.abs(np.diff(a, axis=3)).sum(1), h, w - 1)
            mean = float(score.mean())
            score += uniform * mean if mean > 0 else 1.0
            if foreground is not None:
                score[_box_sum(a.mean(1), h, w) / (h * w) < foreground] = 0.0
            flat = torch.from_numpy(score.ravel())
            if not float(flat.sum()) > 0:
                continue
            cdf = torch.cumsum(flat, 0)
            self._stacks.append(_Stack(torch.from_numpy(a), cdf / cdf[-1], score.shape[1:]))
        if not self._stacks:
            raise NoPatchError(f"no image is large enough (with content) for {h}x{w} patches")

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` patches ``(n, C, h, w)`` (C = 1 for 2-D stacks), stacks drawn with equal
        probability."""
        h, w = self.size
        out = torch.empty((n, self.channels, h, w), dtype=torch.float32)
        which = torch.randint(len(self._stacks), (n,), generator=generator)
        picks = torch.rand(n, generator=generator, dtype=torch.float64)
        flip = torch.rand((n, 2), generator=generator) < 0.5
        for k in range(n):
            st = self._stacks[int(which[k])]
            pos = int(torch.searchsorted(st.cdf, picks[k : k + 1]).clamp(max=st.cdf.numel() - 1))
            rows, cols = st.shape
            img, rem = divmod(pos, rows * cols)
            r, c = divmod(rem, cols)
            patch = st.images[img, :, r : r + h, c : c + w]
            if self.flips[0] and flip[k, 0]:
                patch = patch.flip(-2)
            if self.flips[1] and flip[k, 1]:
                patch = patch.flip(-1)
            out[k] = patch
        return out


__all__ = ["NoPatchError", "PatchSampler"]
