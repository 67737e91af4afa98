"""Fast fixed operators of the model core: local box means and polyphase bicubic upsampling.

Both replace a generic PyTorch call with the same arithmetic done in fewer passes, and both
export to ONNX / TorchScript / ``torch.export`` with dynamic ``H, W``:

* :func:`box_mean` is ``F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)``
  as two 1-D depthwise box convolutions divided by the exact number of in-image pixels of each
  window (an outer product of two 1-D counts).
* :class:`BicubicUpsample` is bicubic upsampling by an integer factor ``s`` as one depthwise
  ``5 x 5`` convolution with ``s * s`` output phases followed by a pixel shuffle. With
  ``a = -0.75`` and edge padding it equals ``F.interpolate(mode="bicubic",
  align_corners=False)``; with ``a = -0.5`` and symmetric padding it equals MATLAB
  ``imresize(x, s, "bicubic")`` (see :func:`sr_domains.degrade.imresize`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Cubic-convolution parameter of PyTorch's bicubic mode and of MATLAB's ``imresize``.
TORCH_CUBIC_A = -0.75
MATLAB_CUBIC_A = -0.5


def _window_counts(n: int, r: int, like: torch.Tensor) -> torch.Tensor:
    """How many of ``[i - r, i + r]`` lie in ``[0, n)``, for each ``i`` (float, like ``like``)."""
    i = torch.arange(n, device=like.device, dtype=like.dtype)
    return torch.clamp(i + r, max=n - 1) - torch.clamp(i - r, min=0) + 1


def box_kernels(channels: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(C, 1, k, 1)`` and ``(C, 1, 1, k)`` ones kernels of :func:`box_mean`."""
    return torch.ones(channels, 1, k, 1), torch.ones(channels, 1, 1, k)


def box_mean(
    x: torch.Tensor, k: int, kernels: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """Mean over each ``k x k`` window (odd ``k``) of the in-image pixels of ``(N, C, H, W)``.

    Equals ``F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)`` to float rounding: two
    depthwise convolutions with ones (``k x 1`` then ``1 x k``, zero padding) give the window
    sums, divided by the number of in-image pixels of each window.
    """
    r = k // 2
    if r == 0:
        return x
    h, w = x.shape[-2], x.shape[-1]
    if kernels is None:  # modules pass fixed kernels (static shapes for the ONNX exporter)
        kernels = box_kernels(x.shape[1], k)
    kh, kw = kernels[0].to(x), kernels[1].to(x)
    y = F.conv2d(x, kh, padding=(r, 0), groups=kh.shape[0])
    y = F.conv2d(y, kw, padding=(0, r), groups=kw.shape[0])
    count = _window_counts(h, r, x)[:, None] * _window_counts(w, r, x)[None, :]
    return y / count


def cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    """Keys (1981) cubic convolution kernel with parameter ``a`` at offsets ``t``."""
    x = np.abs(np.asarray(t, np.float64))
    inner = ((a + 2) * x - (a + 3)) * x * x + 1
    outer = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, inner, np.where(x < 2, outer, 0.0))


def cubic_phases(scale: int, a: float) -> np.ndarray:
    """``(scale, 5)`` taps: output ``q * scale + p`` = ``sum_j w[p, j] * in[q + j - 2]``.

    Output sample ``o`` sits at input coordinate ``(o + 0.5) / scale - 0.5`` (pixel-area
    geometry, PyTorch ``align_corners=False`` and MATLAB alike), so each phase ``p`` reads the
    same five neighbours of its input pixel ``q``; rows are normalized to sum to one.
    """
    d = (np.arange(scale) + 0.5) / scale - 0.5
    w = cubic_kernel(d[:, None] - (np.arange(5)[None, :] - 2), a)
    return w / w.sum(axis=1, keepdims=True)


class BicubicUpsample(nn.Module):
    """Bicubic upsampling by an integer ``scale`` as a fixed depthwise conv + pixel shuffle.

    Args:
        scale: integer factor >= 1.
        channels: number of channels (the kernel is replicated per channel).
        a: cubic parameter (:data:`TORCH_CUBIC_A` or :data:`MATLAB_CUBIC_A`).
        padding: ``"replicate"`` (PyTorch's border rule) or ``"symmetric"`` (MATLAB's).

    The kernel is a non-persistent buffer: it never appears in a state dict or checkpoint.
    """

    if TYPE_CHECKING:  # buffer (registered in __init__); not a runtime annotation (TorchScript)
        weight: torch.Tensor

    def __init__(
        self, scale: int, channels: int, a: float = TORCH_CUBIC_A, padding: str = "replicate"
    ) -> None:
        super().__init__()
        if padding not in ("replicate", "symmetric"):
            raise ValueError(f"padding must be 'replicate' or 'symmetric', got {padding!r}")
        self.scale = int(scale)
        self.channels = int(channels)
        self.symmetric = padding == "symmetric"
        w1 = cubic_phases(self.scale, a)
        w2 = np.einsum("pi,qj->pqij", w1, w1).reshape(self.scale**2, 1, 5, 5)
        weight = torch.from_numpy(np.tile(w2, (self.channels, 1, 1, 1)).astype(np.float32))
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            x = _pad_symmetric2(x)
        else:
            x = F.pad(x, (2, 2, 2, 2), mode="replicate")
        y = F.conv2d(x, self.weight.to(x.dtype), groups=self.channels)
        return F.pixel_shuffle(y, self.scale)


def _pad_symmetric2(x: torch.Tensor) -> torch.Tensor:
    """Half-sample symmetric padding by 2 on both spatial axes (needs ``H, W >= 2``)."""
    x = torch.cat([x[:, :, 1:2], x[:, :, 0:1], x, x[:, :, -1:], x[:, :, -2:-1]], dim=2)
    return torch.cat([x[..., 1:2], x[..., 0:1], x, x[..., -1:], x[..., -2:-1]], dim=3)


def conv_macs(module: nn.Module, lr_shape: tuple[int, int], scale: int) -> float:
    """Multiply-accumulates per *output* pixel of the convolutions of an SR model.

    Runs one forward on a small input with hooks on every ``nn.Conv2d`` (fixed operators such
    as :class:`BicubicUpsample` count too); ``lr_shape`` should be a few dozen pixels.
    """
    total = 0

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = math.prod(cast(nn.Conv2d, m).weight.shape[1:])  # hooked on Conv2d only
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    try:
        param = next(module.parameters(), None)
        dev = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(1, cast(int, module.in_channels), *lr_shape, device=dev)
        with torch.inference_mode():
            module(x)
    finally:
        for h in handles:
            h.remove()
    fixed = sum(
        m.weight.shape[0] * 25 * lr_shape[0] * lr_shape[1]
        for m in module.modules()
        if isinstance(m, BicubicUpsample)
    )
    return (total + fixed) / (lr_shape[0] * lr_shape[1] * scale * scale)


__all__ = [
    "MATLAB_CUBIC_A",
    "TORCH_CUBIC_A",
    "BicubicUpsample",
    "box_kernels",
    "box_mean",
    "conv_macs",
    "cubic_kernel",
    "cubic_phases",
]
