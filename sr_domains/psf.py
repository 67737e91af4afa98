"""Sensor-like point-spread functions with area decimation, and Lanczos upsampling.

Same geometry contract as :mod:`sr_domains.degrade`: LR pixel ``k`` covers HR pixels
``[k*s, (k+1)*s)`` and is centred at HR coordinate ``k*s + (s-1)/2``; boundaries are
half-sample symmetric.

* :func:`gaussian_area_downsample` - a Gaussian PSF (``sigma`` in LR pixels; anisotropic and
  rotated for motion-like blur) integrated over each LR pixel's area: LR = (PSF * box_s)
  sampled at LR centres. ``sigma -> 0`` gives plain area averaging.
* :func:`lanczos_upsample` - Lanczos-3 interpolation (the ``gdalwarp -r lanczos`` family), a
  baseline beside bicubic.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ._resample import (
    as_tensor,
    check_scale,
    require_spatial,
    strided_filter,
    strided_weights,
    symmetric_index,
    to_input_type,
)
from .errors import ConfigError

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def _gauss_box_profile(sigma_hr: float, width: float):
    """A Gaussian of ``sigma_hr`` convolved with a box of ``width`` HR samples, at offset o."""
    if sigma_hr <= 1e-6:
        return lambda o: np.clip(
            np.minimum(o + 0.5, width / 2.0) - np.maximum(o - 0.5, -width / 2.0), 0.0, None
        )
    c = sigma_hr * math.sqrt(2.0)
    erf = np.vectorize(math.erf)
    return lambda o: (erf((o + width / 2.0) / c) - erf((o - width / 2.0) / c)) / 2.0


@lru_cache(maxsize=32)
def _kernel_2d(scale: int, sigma: float, sigma_minor: float, angle: float) -> np.ndarray:
    """Rotated anisotropic Gaussian (HR pixels) convolved with an ``s x s`` box; odd size
    when ``s`` is odd, even when even (so the centre falls on the LR centre)."""
    s = scale
    sa, sb = sigma * s, sigma_minor * s
    r = max(1, math.ceil(3.0 * max(sa, sb)))
    o = np.arange(-r, r + 1, dtype=np.float64)
    yy, xx = np.meshgrid(o, o, indexing="ij")
    t = math.radians(angle)
    u = xx * math.cos(t) + yy * math.sin(t)
    v = -xx * math.sin(t) + yy * math.cos(t)
    g = np.exp(-0.5 * ((u / max(sa, 1e-6)) ** 2 + (v / max(sb, 1e-6)) ** 2))
    box = np.ones((s, s))
    k = np.zeros((g.shape[0] + s - 1, g.shape[1] + s - 1))
    for i in range(s):  # full 2-D convolution with the box
        for j in range(s):
            k[i : i + g.shape[0], j : j + g.shape[1]] += g * box[i, j]
    return (k / k.sum()).astype(np.float32)


def gaussian_area_downsample(
    x: ArrayT,
    scale: int,
    sigma: float,
    *,
    sigma_minor: float | None = None,
    angle: float = 0.0,
) -> ArrayT:
    """Blur with a Gaussian PSF and average over each LR pixel's area (module docs).

    Args:
        x: ``(..., H, W)`` (bands on axis -3 when present).
        scale: integer factor (H, W multiples of it; trailing pixels are dropped).
        sigma: PSF standard deviation in LR pixels (major axis for an anisotropic PSF).
        sigma_minor: minor-axis sigma in LR pixels (default: isotropic).
        angle: direction of the major axis in degrees from the x axis (columns) towards the
            y axis (rows): 0 along a row, 90 along a column; with rows running down, as an
            image is shown, positive angles turn clockwise.
    """
    s = check_scale(scale)
    t, was_numpy = as_tensor(x)
    require_spatial(t, "gaussian_area_downsample")
    if sigma < 0 or (sigma_minor is not None and sigma_minor < 0):
        raise ConfigError(f"PSF sigmas must be >= 0, got {sigma}, {sigma_minor}")
    minor = sigma if sigma_minor is None else sigma_minor
    if minor == sigma or angle % 90 == 0:
        sy, sx = (minor, sigma) if angle % 180 == 0 else (sigma, minor)
        out = t
        for dim, sg in ((-2, sy), (-1, sx)):
            prof = _gauss_box_profile(sg * s, float(s))
            taps, r = strided_weights(prof, s, 4.0 * sg * s + s / 2.0 + 1.0)
            weights = torch.from_numpy(taps.astype(np.float32))[None].to(t.device)
            out = strided_filter(out, out.ndim + dim, s, weights, r)
        return to_input_type(out, was_numpy)
    k = torch.from_numpy(_kernel_2d(s, float(sigma), float(minor), float(angle))).to(t.device)
    lead = t.shape[:-2]
    h, w = t.shape[-2:]
    m, n = h // s, w // s
    pad = (k.shape[0] - s) // 2  # the kernel is s + 2*pad wide: centred on each LR pixel
    iy = torch.from_numpy(symmetric_index(np.arange(-pad, m * s + pad), h)).to(t.device)
    ix = torch.from_numpy(symmetric_index(np.arange(-pad, n * s + pad), w)).to(t.device)
    flat = t.reshape(-1, 1, h, w).index_select(2, iy).index_select(3, ix)
    out = F.conv2d(flat, k[None, None].to(flat.dtype), stride=s)
    return to_input_type(out.reshape(*lead, m, n), was_numpy)


def _lanczos3(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    out = np.sinc(x) * np.sinc(x / 3.0)
    return np.where(np.abs(x) < 3.0, out, 0.0)


@lru_cache(maxsize=32)
def _lanczos_taps(n: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    u = (np.arange(n * scale, dtype=np.float64) + 0.5) / scale - 0.5
    left = np.floor(u) - 2
    idx = left[:, None] + np.arange(6)[None, :]
    w = _lanczos3(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    return symmetric_index(idx.astype(np.int64), n), w.astype(np.float32)


def lanczos_upsample(x: ArrayT, scale: int) -> ArrayT:
    """Lanczos-3 interpolation by an integer ``scale`` (voxel-centre rule, symmetric edges)."""
    s = check_scale(scale)
    t, was_numpy = as_tensor(x)
    require_spatial(t, "lanczos_upsample")
    out = t
    for dim in (-2, -1):
        n = out.shape[dim]
        taps, w = _lanczos_taps(n, s)
        idx, wt = torch.from_numpy(taps).to(t.device), torch.from_numpy(w).to(t.device)
        xt = out.movedim(dim, -1)
        acc = xt.index_select(-1, idx[:, 0]) * wt[:, 0]
        for p in range(1, idx.shape[1]):
            acc = acc + xt.index_select(-1, idx[:, p]) * wt[:, p]
        out = acc.movedim(-1, dim)
    return to_input_type(out, was_numpy)


__all__ = ["gaussian_area_downsample", "lanczos_upsample"]
