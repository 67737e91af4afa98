"""Image-quality metrics with explicit data ranges (docs/degradations_and_metrics.md).

* :func:`psnr`, :func:`ssim` - equal to ``skimage.metrics.peak_signal_noise_ratio`` /
  ``structural_similarity`` for the same options; plus a valid mask, a border crop, the BT.601
  Y channel of RGB benchmarks (BasicSR ``test_y_channel``) and 3-D SSIM.
* :func:`sam`, :func:`ergas` - multispectral spectral angle and Wald's relative global error.
* :func:`data_range_for` - the peak-to-peak range PSNR/SSIM need, from an integer dtype or a
  fitted intensity profile; float data without a profile must be given one explicitly.

Inputs are numpy arrays (or torch tensors, converted); maths in float64; results are floats.
No scipy at run time.
"""

from __future__ import annotations

import math
from types import EllipsisType
from typing import Any, cast

import numpy as np

from .errors import ConfigError
from .intensity import IntensityProfile

_K1, _K2 = 0.01, 0.03
_TRUNCATE = 3.5  # skimage's Gaussian truncation (11 taps for sigma 1.5)


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def data_range_for(
    x: np.dtype | str | IntensityProfile | Any | None = None,
    *,
    default: float | None = None,
    band: int | None = None,
) -> float:
    """The data range (max - min of the value scale) to give :func:`psnr` / :func:`ssim`.

    * integer dtype (or an array of it): ``iinfo.max - iinfo.min`` (uint8 255, uint16 65535,
      int16 65535); bool 1.
    * fitted :class:`~sr_domains.intensity.IntensityProfile`: the width in stored units that
      maps to 1.0 in normalized space, ``1/|scale|`` (all bands must agree unless ``band``
      picks one).
    * float dtype, or ``None``: ``default`` if given, otherwise ConfigError - a float image has
      no implied range, and guessing 1 or 255 silently gives wrong PSNRs.
    """
    if isinstance(x, IntensityProfile):
        widths = [1.0 / abs(s) for s in x.scale]
        if band is not None:
            if len(widths) == 1:
                return widths[0]
            try:
                return widths[band]
            except IndexError:
                raise ConfigError(
                    f"band {band} out of range for a {len(widths)}-band profile"
                ) from None
        if not np.allclose(widths, widths[0], rtol=1e-9, atol=0):
            raise ConfigError(
                f"profile {x.recipe!r} has per-band ranges {widths}; pass band=B to pick one "
                "(or compute the metric band by band)"
            )
        return widths[0]
    if x is None:
        if default is None:
            raise ConfigError("no dtype or profile given: pass an explicit data_range")
        return float(default)
    dt = x if isinstance(x, (type, str, np.dtype)) else getattr(x, "dtype", x)
    if type(dt).__module__.startswith("torch"):
        dt = str(dt).removeprefix("torch.")
    try:
        dt = np.dtype(dt)
    except TypeError as exc:
        raise ConfigError(f"cannot derive a data range from {x!r}") from exc
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return float(info.max) - float(info.min)
    if dt.kind == "b":
        return 1.0
    if default is not None:
        return float(default)
    raise ConfigError(
        f"{dt} data has no implied range; pass data_range explicitly (e.g. 1.0 for [0, 1] "
        "normalized data) or give the intensity profile the data was normalized with"
    )


def rgb_to_y(x: Any, data_range: float, *, channel_axis: int = 0) -> np.ndarray:
    """BT.601 luma like MATLAB ``rgb2ycbcr`` (and BasicSR ``test_y_channel``), in input units.

    With ``R, G, B`` in ``[0, data_range]``:
    ``Y = data_range/255 * (16 + (65.481 R + 128.553 G + 24.966 B) / data_range)``, i.e. the
    16..235 studio range scaled to the input's units (exactly BasicSR's values for 255 data).
    The channel axis is removed.
    """
    a = _array(x).astype(np.float64)
    if a.ndim < 1 or a.shape[channel_axis] != 3:
        raise ConfigError(f"y_channel needs 3 RGB channels on axis {channel_axis}, got {a.shape}")
    r, g, b = np.moveaxis(a, channel_axis, 0)
    return (16.0 * data_range + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _prepare(
    pred: Any,
    target: Any,
    data_range: float,
    mask: Any,
    y_channel: bool,
    crop_border: int,
    n_crop: int,
    channel_axis: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p = _array(pred).astype(np.float64)
    t = _array(target).astype(np.float64)
    if p.shape != t.shape:
        raise ConfigError(f"pred and target shapes differ: {p.shape} vs {t.shape}")
    if data_range is None:
        raise ConfigError(
            "data_range is needed: the span of the data's valid values (1.0 for normalized "
            "data; data_range_for(dtype) gives an integer type's span)"
        )
    if not (math.isfinite(data_range) and data_range > 0):
        raise ConfigError(f"data_range must be a finite number > 0, got {data_range!r}")
    m: np.ndarray | None = None
    if mask is not None:
        mk = _array(mask).astype(bool)
        if channel_axis is not None and p.ndim == n_crop + 1 and mk.ndim == n_crop:
            mk = np.expand_dims(mk, channel_axis)  # a spatial mask: every channel
        try:
            m = np.broadcast_to(mk, p.shape)
        except ValueError:
            raise ConfigError(
                f"mask shape {np.shape(mask)} does not broadcast to {p.shape}"
            ) from None
    if channel_axis is not None and p.ndim == n_crop + 1:  # channels first from here on
        p, t = np.moveaxis(p, channel_axis, 0), np.moveaxis(t, channel_axis, 0)
        m = None if m is None else np.moveaxis(m, channel_axis, 0)
    if y_channel:
        p, t = rgb_to_y(p, data_range), rgb_to_y(t, data_range)
        m = None if m is None else cast(np.ndarray, m.all(axis=0))
    if crop_border:
        if crop_border < 0 or p.ndim < n_crop:
            raise ConfigError(f"crop_border must be >= 0 on >= {n_crop}-D data")
        sl: tuple[EllipsisType | slice, ...] = (
            Ellipsis,
            *[slice(crop_border, -crop_border)] * n_crop,
        )
        p, t = p[sl], t[sl]
        m = None if m is None else m[sl]
        if p.size == 0:
            raise ConfigError(f"crop_border {crop_border} leaves no pixels")
    return p, t, m


def psnr(
    pred: Any,
    target: Any,
    *,
    data_range: float,
    mask: Any = None,
    y_channel: bool = False,
    crop_border: int = 0,
    volumetric: bool = False,
) -> float:
    """``10 log10(data_range^2 / MSE)`` over all (valid) elements; ``inf`` when identical.

    Args:
        pred, target: same-shape ``(H, W)``, ``(C, H, W)`` or ``(D, H, W)`` arrays.
        data_range: peak-to-peak range of the value scale (see :func:`data_range_for`).
        mask: True = valid, broadcastable to the data (e.g. ``(H, W)`` for all channels).
        y_channel: compare the BT.601 Y of RGB ``(3, H, W)`` data (:func:`rgb_to_y`); the
            range stays ``data_range``.
        crop_border: pixels dropped at each side of the last two axes (three if
            ``volumetric``), as in SR benchmarks (usually the scale).
    """
    p, t, m = _prepare(
        pred, target, data_range, mask, y_channel, crop_border, 3 if volumetric else 2, 0
    )
    diff2 = (p - t) ** 2
    if m is not None:
        if not m.any():
            raise ConfigError("psnr: the mask has no valid pixel")
        diff2 = diff2[m]
    mse = float(np.mean(diff2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _filter(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Separable correlation with ``weights`` along every axis, half-sample symmetric padding."""
    r = (len(weights) - 1) // 2
    for axis in range(a.ndim):
        n = a.shape[axis]
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r, r)
        ap = np.pad(a, pad, mode="symmetric")
        out = np.zeros_like(a)
        for k, wk in enumerate(weights):
            out += wk * np.take(ap, np.arange(k, k + n), axis=axis)
        a = out
    return a


def _window_valid(m: np.ndarray, win: int) -> np.ndarray:
    """True where the whole ``win``-box window lies inside the image and inside the mask."""
    r = (win - 1) // 2
    ok = m
    for axis in range(m.ndim):
        pad = [(0, 0)] * m.ndim
        pad[axis] = (r + 1, r)
        c = np.cumsum(np.pad(ok.astype(np.int64), pad), axis=axis)
        n = m.shape[axis]
        upper = np.take(c, np.arange(win, win + n), axis=axis)
        lower = np.take(c, np.arange(0, n), axis=axis)
        ok = (upper - lower) == win
    return ok


def _ssim_map(a, b, data_range, weights, cov_norm, k1, k2) -> np.ndarray:
    ux, uy = _filter(a, weights), _filter(b, weights)
    vx = cov_norm * (_filter(a * a, weights) - ux * ux)
    vy = cov_norm * (_filter(b * b, weights) - uy * uy)
    vxy = cov_norm * (_filter(a * b, weights) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    return num / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim_window(sigma: float = 1.5) -> int:
    """Taps of :func:`ssim`'s Gaussian window for ``sigma`` (11 for Wang's 1.5): an image
    needs at least this many pixels per side, after any border crop, to be scored."""
    return 2 * int(_TRUNCATE * sigma + 0.5) + 1


def ssim(
    pred: Any,
    target: Any,
    *,
    data_range: float,
    mask: Any = None,
    y_channel: bool = False,
    crop_border: int = 0,
    gaussian: bool = True,
    win_size: int | None = None,
    sigma: float = 1.5,
    channel_axis: int | None = 0,
    volumetric: bool = False,
    sample_covariance: bool | None = None,
    k1: float = _K1,
    k2: float = _K2,
) -> float:
    """Mean SSIM (Wang et al. 2004), equal to ``skimage.metrics.structural_similarity``.

    Defaults are Wang's: Gaussian weights, sigma 1.5, 11-tap window, population covariance
    (skimage ``gaussian_weights=True, use_sample_covariance=False``). ``gaussian=False`` uses a
    uniform ``win_size`` (default 7) window with the sample covariance (skimage's defaults).
    The mean is taken over pixels whose whole window lies inside the image (skimage's border
    crop) and, with a ``mask``, inside the valid region; channels are averaged.

    Args:
        pred, target: ``(H, W)``; ``(C, H, W)`` with channels on ``channel_axis``; with
            ``volumetric=True`` ``(D, H, W)`` (3-D windows) or ``(C, D, H, W)``.
        data_range: peak-to-peak range (see :func:`data_range_for`).
        mask: True = valid, broadcastable to the data.
        y_channel: SSIM of the BT.601 Y of RGB data (:func:`rgb_to_y`).
        crop_border: pixels dropped at each side of the spatial axes first.
        sample_covariance: override the covariance normalization (``None``: see above).
    """
    nd = 3 if volumetric else 2
    p, t, m = _prepare(pred, target, data_range, mask, y_channel, crop_border, nd, channel_axis)
    if p.ndim == nd:
        p, t = p[None], t[None]
        m = None if m is None else m[None]
    elif p.ndim != nd + 1 or channel_axis is None:  # else: channels already first
        raise ConfigError(
            f"ssim: {p.ndim}-D data with channel_axis={channel_axis}, volumetric={volumetric}; "
            "use (H, W), (C, H, W), or volumetric=True for (D, H, W) / (C, D, H, W)"
        )
    if gaussian:
        r = ssim_window(sigma) // 2
        x = np.arange(-r, r + 1, dtype=np.float64)
        weights = np.exp(-0.5 * (x / sigma) ** 2)
        win = 2 * r + 1 if win_size is None else win_size
    else:
        win = 7 if win_size is None else win_size
        weights = np.ones(win, np.float64)
    weights = weights / weights.sum()
    if win % 2 != 1 or win < 1:
        raise ConfigError(f"ssim: win_size must be odd, got {win}")
    if min(p.shape[1:]) < win:
        raise ConfigError(f"ssim: window {win} exceeds the image extent {p.shape[1:]}")
    use_sample = (not gaussian) if sample_covariance is None else sample_covariance
    n_win = win**nd
    cov_norm = n_win / (n_win - 1) if use_sample else 1.0
    means = []
    for c in range(p.shape[0]):
        s_map = _ssim_map(p[c], t[c], data_range, weights, cov_norm, k1, k2)
        valid = _window_valid(np.ones(s_map.shape, bool) if m is None else m[c], win)
        if not valid.any():
            raise ConfigError("ssim: no pixel has a fully valid window (mask too sparse?)")
        means.append(float(np.mean(s_map[valid])))
    return float(np.mean(means))


def _spectral(pred: Any, target: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(B, P)`` valid pixel vectors of pred and target (bands on axis 0)."""
    p, t = _array(pred).astype(np.float64), _array(target).astype(np.float64)
    if p.shape != t.shape or p.ndim < 2:
        raise ConfigError(f"need same-shape (B, ...) arrays, got {p.shape} and {t.shape}")
    p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
    if mask is None:
        valid = np.ones(p.shape[1], bool)
    else:
        m = _array(mask).astype(bool)
        shape = _array(pred).shape
        try:
            m = (
                cast(np.ndarray, np.broadcast_to(m, shape).all(axis=0))
                if m.ndim == len(shape)
                else m
            )
            valid = np.broadcast_to(m, shape[1:]).reshape(-1)
        except ValueError:
            raise ConfigError(f"mask shape {m.shape} does not broadcast to {shape}") from None
    if not valid.any():
        raise ConfigError("the mask has no valid pixel")
    return p[:, valid], t[:, valid], valid


def sam(pred: Any, target: Any, *, mask: Any = None, eps: float = 1e-12) -> float:
    """Mean spectral angle in degrees: ``mean_pixels arccos(<p, t> / (|p| |t|))``.

    Bands on axis 0; ``mask`` (True = valid) is spatial or full-shape (a pixel counts when all
    its bands are valid). A zero vector has angle 90 degrees (``|p||t|`` floored at ``eps``):
    mask nodata pixels out.
    """
    p, t, _ = _spectral(pred, target, mask)
    np_, nt = np.linalg.norm(p, axis=0), np.linalg.norm(t, axis=0)
    zero = np_ * nt < eps
    u, v = p / np.where(zero, 1.0, np_), t / np.where(zero, 1.0, nt)
    # 2 atan2(|u - v|, |u + v|): arccos of a cosine rounded below 1 gave identical spectra an
    # angle (2.3e-7 degrees); this is exact there and accurate at every angle
    angle = 2.0 * np.arctan2(np.linalg.norm(u - v, axis=0), np.linalg.norm(u + v, axis=0))
    return float(np.degrees(np.mean(np.where(zero, np.pi / 2, angle))))


def ergas(pred: Any, target: Any, *, scale: float, mask: Any = None) -> float:
    """ERGAS (Wald 2000): ``100/s * sqrt(mean_b(RMSE_b^2 / mu_b^2))``.

    ``s`` is the SR factor (HR/LR resolution ratio; Wald's ``h/l`` = ``1/s``), ``RMSE_b`` the
    band's RMSE and ``mu_b`` the band's mean of ``target`` over valid pixels (bands on axis 0).
    """
    if not scale > 0:
        raise ConfigError(f"ergas: scale must be > 0, got {scale}")
    p, t, _ = _spectral(pred, target, mask)
    mse = np.mean((p - t) ** 2, axis=1)
    mu = np.mean(t, axis=1)
    if np.any(mu == 0):
        raise ConfigError("ergas: a target band has zero mean; ERGAS is undefined")
    return float(100.0 / scale * math.sqrt(np.mean(mse / mu**2)))


__all__ = ["data_range_for", "ergas", "psnr", "rgb_to_y", "sam", "ssim", "ssim_window"]
