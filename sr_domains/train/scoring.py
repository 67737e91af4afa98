"""Score a model against bicubic (and Lanczos) on one image or a set: PSNR/SSIM, and SAM/ERGAS
for multi-band data. The protocol is :mod:`sr_domains.train.evaluate`'s; validation during
training, ``evaluate`` and the quality battery all score through :func:`score_image`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from .. import metrics
from ..degrade import DegradationConfig, degrade, imresize
from ..errors import ConfigError
from ..inference import Upscaler
from ..intensity import IntensityProfile
from ..nodata_fill import fill_invalid
from ..psf import lanczos_upsample
from ..value_domain import ValueOptions, ValueRules, band_minimum

log = logging.getLogger(__name__)

IDENTITY = IntensityProfile("identity", (1.0,), (0.0,))
ImageItem = tuple[Any, ...]
"""``(name, hr, valid)`` or ``(name, hr, valid, profile)`` (see ``load_images``)."""


@dataclass(frozen=True)
class ImageScore:
    """Metrics of one image for the SR output and the bicubic baseline."""

    name: str
    shape: tuple[int, ...]
    psnr: float
    psnr_bicubic: float
    ssim: float
    ssim_bicubic: float
    sam: float | None = None
    sam_bicubic: float | None = None
    ergas: float | None = None
    ergas_bicubic: float | None = None
    psnr_lanczos: float | None = None
    ssim_lanczos: float | None = None
    sam_lanczos: float | None = None

    @property
    def gain_db(self) -> float:
        return self.psnr - self.psnr_bicubic


@dataclass(frozen=True)
class Panel:
    """Crops for the comparison figure, normalized units ``(C, h, w)`` at HR size."""

    name: str
    lr_nearest: np.ndarray
    bicubic: np.ndarray
    sr: np.ndarray
    hr: np.ndarray


def make_lr(
    hr: np.ndarray, scale: int, degradation: DegradationConfig, seed: int = 0
) -> np.ndarray:
    """Degrade one ``(C, H, W)`` HR image (H, W multiples of ``scale``) deterministically."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.from_numpy(np.ascontiguousarray(hr, np.float32))[None]
    return degrade(t, scale, degradation, generator=gen)[0].numpy()


def _lr_valid(valid: np.ndarray | None, scale: int) -> np.ndarray | None:
    """An LR pixel is valid when its whole HR block is."""
    if valid is None:
        return None
    v = np.asarray(valid, bool)
    *lead, h, w = v.shape
    return cast(
        np.ndarray, v.reshape(*lead, h // scale, scale, w // scale, scale).all(axis=(-3, -1))
    )


#: The SSIM window (Wang's 11 taps): a scored image must hold one after its border crop.
SSIM_WINDOW = metrics.ssim_window()


def min_scorable(s: int) -> int:
    """The smallest side (pixels) of an image that :func:`scorable` accepts at scale ``s``."""
    return -(-(SSIM_WINDOW + 2 * s) // s) * s


def scorable(h: int, w: int, s: int) -> bool:
    """True when an ``h x w`` HR image can be scored at scale ``s``: SSIM's window fits after
    the ``s``-pixel border crop (of the size cut to a multiple of ``s``)."""
    return min(h - h % s, w - w % s) - 2 * s >= SSIM_WINDOW


def score_image(
    upscaler: Upscaler,
    name: str,
    hr: np.ndarray,
    valid: np.ndarray | None,
    *,
    degradation: DegradationConfig,
    seed: int = 0,
    panel_size: int = 0,
    profile: IntensityProfile | None = None,
    values: ValueOptions | None = None,
    lanczos: bool = False,
    prepare: Callable[[np.ndarray], Upscaler] | None = None,
) -> tuple[ImageScore, Panel | None]:
    """Score one normalized HR image (see module docs); optionally return figure crops.

    ``profile`` is the image's fitted profile: SAM and ERGAS are computed after inverting it
    (stored units, less a physical profile's zero: ``s2l2a``'s +1000); without it they are
    computed on the normalized values. ``values``: apply
    the envelope of these value options to the SR output (as the upscale paths do by default;
    the physical domain is not inferred in normalized units); ``lanczos``: also score Lanczos-3;
    ``prepare``: called with the LR image (NaN where invalid), returns the engine to run
    instead of ``upscaler`` (e.g. one adapted to it).
    """
    s = upscaler.scale
    c, h, w = hr.shape
    if not scorable(h, w, s):
        raise ConfigError(
            f"{name}: {h} x {w} pixels is too small to score at x{s} (at least "
            f"{min_scorable(s)} x {min_scorable(s)}: SSIM's {SSIM_WINDOW}-pixel window "
            f"after a {s}-pixel border)"
        )
    h, w = h - h % s, w - w % s
    hr = np.ascontiguousarray(hr[:, :h, :w], np.float32)
    filled = hr
    if valid is not None:  # (1 | C, H, W); invalid pixels get the valid mean before degrading
        valid = np.asarray(valid, bool)[..., :h, :w]
        filled = np.where(valid, hr, np.float32(hr[np.broadcast_to(valid, hr.shape)].mean()))
    lr = make_lr(filled, s, degradation, seed)
    lr_valid = _lr_valid(valid, s)
    rules = None
    units = profile if profile is not None and c >= 2 else None  # band ratios: stored units
    lr_units = units.denormalize(lr) if units is not None else None
    if values is not None and values.clamp:
        # the scene's domain decides (a file of non-negative values), as the input file's
        # does in the upscale paths; a degraded LR may dip below zero where the file cannot
        ratios = (
            units is not None
            and values.spectral != "model"
            and bool((band_minimum(units.denormalize(hr), valid) >= 0).all())
        )
        if values.envelope is not None or ratios:
            rules = ValueRules(
                envelope=values.envelope,
                radius=values.envelope_radius,
                spectral=(None if values.spectral == "auto" else True) if ratios else False,
            )
    if prepare is not None:  # it sees what upscale sees: no value where the LR is invalid
        seen = lr if lr_valid is None else np.where(np.broadcast_to(lr_valid, lr.shape), lr, np.nan)
        upscaler = prepare(seen.astype(np.float32, copy=False))
    if rules is not None and rules.spectral is not False and units and lr_units is not None:
        sr_units = upscaler.upscale(lr_units, profile=units, valid_mask=lr_valid, rules=rules)
        sr = units.normalize(sr_units).astype(np.float32, copy=False)
    else:
        sr = upscaler.upscale(lr, profile=IDENTITY, valid_mask=lr_valid, rules=rules)
    base = lr  # the baselines interpolate what the model is given: no value where LR is invalid
    if lr_valid is not None and not lr_valid.all():
        base = fill_invalid(lr, ~lr_valid)  # far value: each band's valid mean
    bic = imresize(base, float(s))
    lan = lanczos_upsample(base, s) if lanczos else None
    mask = None
    if lr_valid is not None:
        mask = lr_valid.repeat(s, axis=-2).repeat(s, axis=-1)
    kw: dict[str, Any] = {"data_range": 1.0, "mask": mask, "crop_border": s}
    multi = c >= 2  # (two bands have a spectral angle too)
    if multi:
        to_units = _spectral_units(profile, c)
        sr_u, bic_u, hr_u = to_units(sr), to_units(bic), to_units(hr)
        spectral = {
            "sam": metrics.sam(sr_u, hr_u, mask=mask),
            "sam_bicubic": metrics.sam(bic_u, hr_u, mask=mask),
            "ergas": metrics.ergas(sr_u, hr_u, scale=s, mask=mask),
            "ergas_bicubic": metrics.ergas(bic_u, hr_u, scale=s, mask=mask),
        }
        if lan is not None:
            spectral["sam_lanczos"] = metrics.sam(to_units(lan), hr_u, mask=mask)
    else:
        spectral = {}
    if lan is not None:
        spectral["psnr_lanczos"] = metrics.psnr(lan, hr, **kw)
        spectral["ssim_lanczos"] = metrics.ssim(lan, hr, **kw)
    score = ImageScore(
        name=name,
        shape=tuple(hr.shape),
        psnr=metrics.psnr(sr, hr, **kw),
        psnr_bicubic=metrics.psnr(bic, hr, **kw),
        ssim=metrics.ssim(sr, hr, **kw),
        ssim_bicubic=metrics.ssim(bic, hr, **kw),
        **spectral,
    )
    panel = None
    if panel_size:
        size = min(panel_size - panel_size % s, h, w)
        y0, x0 = (h - size) // 2 // s * s, (w - size) // 2 // s * s
        crop = (slice(None), slice(y0, y0 + size), slice(x0, x0 + size))
        nearest = lr.repeat(s, axis=-2).repeat(s, axis=-1)
        panel = Panel(name, nearest[crop], bic[crop], sr[crop], hr[crop])
    return score, panel


def _spectral_units(profile: IntensityProfile | None, c: int) -> Callable[[np.ndarray], np.ndarray]:
    """The map from normalized values to those SAM and ERGAS are computed on: stored units
    less each band's physical zero (:func:`~sr_domains.spectral.physical_zero`: Sentinel-2
    L2A's +1000 DN offset), so how a product stores its reflectance does not change them (the
    offset rotated spectral angles and inflated ERGAS's band means: SAM 0.62 against 0.25
    degrees for one scene stored both ways); normalized values without a profile."""
    from ..spectral import physical_zero

    if profile is None:
        return lambda a: a
    zero = physical_zero([1.0] * c, [0.0] * c, profile.recipe, profile.scale, profile.offset)
    if zero is None:
        return profile.denormalize
    z = np.asarray(zero, np.float32)[:, None, None]
    return lambda a: profile.denormalize(a) - z


def score_images(
    upscaler: Upscaler,
    images: Iterable[ImageItem],
    *,
    degradation: DegradationConfig,
    seed: int = 0,
    panels: int = 0,
    panel_size: int = 128,
) -> tuple[list[ImageScore], list[Panel]]:
    """:func:`score_image` over ``(name, hr, valid)`` items; crops for the first ``panels``."""
    scores, figs = [], []
    s = upscaler.scale
    for i, (name, hr, valid, *rest) in enumerate(images):
        if not scorable(hr.shape[-2], hr.shape[-1], s):  # before the model runs on it
            log.warning(
                "%s: %d x %d pixels is too small to score at x%d (SSIM's %d-pixel window "
                "after a %d-pixel border): skipped",
                name,
                hr.shape[-2],
                hr.shape[-1],
                s,
                SSIM_WINDOW,
                s,
            )
            continue
        score, panel = score_image(
            upscaler,
            name,
            hr,
            valid,
            degradation=degradation,
            seed=seed + i,
            panel_size=panel_size if i < panels else 0,
            profile=rest[0] if rest else None,
        )
        scores.append(score)
        if panel is not None:
            figs.append(panel)
        log.info("%s: SR %.2f dB, bicubic %.2f dB", name, score.psnr, score.psnr_bicubic)
    return scores, figs


def summarize(scores: Sequence[ImageScore]) -> dict[str, float]:
    """Means over images (``psnr``, ``psnr_bicubic``, ``psnr_gain_db``, ``ssim``, ...)."""
    if not scores:
        return {}
    out: dict[str, float] = {}
    for key in ("psnr", "psnr_bicubic", "ssim", "ssim_bicubic"):
        out[key] = float(np.mean([getattr(s, key) for s in scores]))
    out["psnr_gain_db"] = out["psnr"] - out["psnr_bicubic"]
    for key in ("sam", "sam_bicubic", "ergas", "ergas_bicubic"):
        vals = [getattr(s, key) for s in scores if getattr(s, key) is not None]
        if vals:
            out[key] = float(np.mean(vals))
    return out


__all__ = [
    "IDENTITY",
    "ImageItem",
    "ImageScore",
    "Panel",
    "make_lr",
    "score_image",
    "score_images",
    "summarize",
]
