"""Per-input adaptation (``--adapt``): fine-tune a copy of the model on the input itself, then
upscale the input with it (zero-shot / internal learning, as ZSSR and KernelGAN-style methods).

The input plays the high-resolution role: patches of it are degraded with the degradation that
made the input from the scene — estimated from the input (:mod:`sr_domains.adapt.estimate`:
Gaussian PSF width and noise level), MATLAB bicubic, or a PSF width the user gives — and the
model learns to undo that degradation on this very content, for a bounded number of steps
(:func:`sr_domains.adapt.fit`: Adam, L1, warm-up and cosine decay, deterministic for a seed,
with a hard time limit). The degradation is scale-invariant: a PSF of ``sigma`` pixels of the
input is applied as ``sigma`` pixels of the pair's low-resolution grid.

**Self-validation.** Before and after the fit, the model is scored on a fixed held-back batch of
pairs (PSNR, data range 1 in normalized units; bicubic on the same pairs as the reference). If
the fit made the model worse on them, the original weights are kept (``kept="original"``)
unless ``keep_if_worse``. The estimate, the fit and the scores are returned as an
:class:`AdaptReport` and recorded in every output's provenance.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, TooSmallToAdaptError
from ..inference import Upscaler
from ..models.base import SRModel
from ..options import DEFAULT_ADAPT_STEPS, AdaptOptions
from ..rng import seeded
from ..strict_json import finite_json
from .estimate import DegradationEstimate, estimate_degradation
from .pairs import InternalPairs
from .sampler import PatchSampler
from .trainer import Budget, fit

log = logging.getLogger(__name__)

#: With an estimated degradation, inputs sharper than this PSF sigma (pixels; MATLAB-bicubic
#: decimation reads as 0.25-0.4) and cleaner than :data:`CLEAN_NOISE` are left to the model as
#: it is: fine-tuning on them only drifts from what it learned (measured: -0.1 to -1.6 dB).
SHARP_SIGMA = 0.45
#: Noise standard deviation (normalized units) below which an input counts as clean.
CLEAN_NOISE = 0.005
#: The pair degradation when the PSF is to be estimated but the fit is untrusted (``rings``
#: 0: too few rings above the noise, too loose a fit; a strongly blurred input can read so):
#: MATLAB bicubic, what every shipped model learned first (ZSSR's default). An untrusted
#: sigma, 0 included, is never taken for "sharp". A clean input is then left to the model
#: (nothing known to adapt to); a noisy one, or a given noise level, is adapted to.
ASSUMED_PSF = "bicubic"


@dataclass
class AdaptReport:
    """What :func:`adapt_model` did (recorded in provenance).

    Attributes:
        degradation: the pair degradation used (``gaussian sigma=... px`` or ``bicubic``).
        estimate: the blind estimate (None when the user gave the PSF and the noise).
        noise: noise standard deviation added to the degraded patches.
        fit: :meth:`~sr_domains.adapt.FitReport.to_dict` of the fine-tuning.
        psnr_bicubic, psnr_before, psnr_after: self-validation PSNR (dB) of bicubic, the model
            before and after fine-tuning.
        kept: ``"adapted"`` or ``"original"`` (self-validation got worse, or nothing to
            adapt to).
        reason: why the original was kept.
        seconds: wall time of the whole adaptation.
    """

    degradation: str
    estimate: DegradationEstimate | None
    noise: float
    fit: dict[str, Any] = field(default_factory=dict)
    psnr_bicubic: float = float("nan")
    psnr_before: float = float("nan")
    psnr_after: float = float("nan")
    kept: str = "adapted"
    reason: str = ""
    seconds: float = 0.0

    @property
    def gain_db(self) -> float:
        """Self-validation gain of the kept model over the original (0 when kept original)."""
        return self.psnr_after - self.psnr_before if self.kept == "adapted" else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as strict JSON values: a score never computed (NaN: the adaptation was
        skipped) or not finite is None (JSON ``null``), never ``NaN``."""
        return {
            "degradation": self.degradation,
            "estimate": None if self.estimate is None else finite_json(self.estimate.to_dict()),
            "noise": _number(self.noise, 6),
            "fit": finite_json(self.fit),
            "self_validation_psnr": {
                "bicubic": _number(self.psnr_bicubic, 3),
                "before": _number(self.psnr_before, 3),
                "after": _number(self.psnr_after, 3),
            },
            "kept": self.kept,
            **({"reason": self.reason} if self.reason else {}),
            "seconds": _number(self.seconds, 2),
        }

    def describe(self) -> str:
        """One line for logs and DICOM DerivationDescription."""
        if self.reason:
            return f"not adapted: {self.reason}"
        return (
            f"adapted to the input ({self.degradation}, noise {self.noise:.3g}; "
            f"{self.fit.get('steps', 0)} steps; self-validation PSNR {self.psnr_before:.2f} -> "
            f"{self.psnr_after:.2f} dB, bicubic {self.psnr_bicubic:.2f}; kept {self.kept})"
        )


def _number(value: float, digits: int) -> float | None:
    """``value`` rounded to ``digits``, or None when it is NaN or infinite."""
    return round(float(value), digits) if math.isfinite(value) else None


class _Degrade:
    """Patches ``(n, C, h, w)`` -> their low-resolution versions (pair degradation)."""

    def __init__(self, scale: int, psf: str | float) -> None:
        self.scale = scale
        self.psf = psf

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.psf == "bicubic":
            from ..degrade import bicubic_downsample

            return bicubic_downsample(x, self.scale)
        from ..psf import gaussian_area_downsample

        return gaussian_area_downsample(x, self.scale, float(self.psf))


#: The 1st..99th percentile of what :func:`adapt_model` is given must lie within this span: the
#: models work on roughly 0..1 (a profile maps its percentiles there, a little past either end).
NORMALIZED_SPAN = (-1.0, 2.0)


def _check_normalized(stacks: list[np.ndarray]) -> None:
    """Refuse images that are not in the model's intensity space (raw 0..255, 0..4095...):
    fitting on them would wreck the model's weights."""
    values = np.concatenate(
        [a[np.isfinite(a)].ravel()[:: max(1, a.size // 100_000)] for a in stacks]
    )
    if values.size == 0:
        raise ConfigError("adapt_model: the images hold no finite values")
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if lo < NORMALIZED_SPAN[0] or hi > NORMALIZED_SPAN[1]:
        raise ConfigError(
            f"adapt_model takes images in the model's intensity space (roughly 0..1, the "
            f"intensity profile applied); these span {lo:.4g}..{hi:.4g} (1st..99th "
            "percentile): normalize them first, e.g. profile_from_any('percentile', "
            "image).normalize(image)"
        )


def _stacks(images: list[np.ndarray], in_channels: int) -> list[np.ndarray]:
    """Normalized ``(C, H, W)`` images -> sampler stacks with the model's channel count."""
    if len(images) == 0:
        raise ConfigError(
            "adapt_model needs at least one image to adapt on (got none); pass normalized "
            "(C, H, W) or (H, W) samples of the input"
        )
    out = []
    for im in images:
        a = np.asarray(im, np.float32)
        a = a[None] if a.ndim == 2 else a
        if a.ndim != 3:
            raise ConfigError(f"adapt takes (C, H, W) images, got shape {a.shape}")
        finite = np.isfinite(a)
        if not finite.all():
            mean = float(a[finite].mean()) if finite.any() else 0.0
            a = np.where(finite, a, np.float32(mean))
        if a.shape[0] == in_channels:
            out.append(a[None])
        elif in_channels == 1:  # band by band, like the engine
            out.append(a[:, None])
        else:
            raise ConfigError(
                f"adapt needs a model whose input bands match the data: the model takes "
                f"{in_channels}, the data has {a.shape[0]}"
            )
    return out


def _psnr(a: torch.Tensor, b: torch.Tensor, border: int) -> float:
    if border:
        a = a[..., border:-border, border:-border]
        b = b[..., border:-border, border:-border]
    mse = float(F.mse_loss(a.clamp(-0.5, 1.5), b))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def _score(model: SRModel, lr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    with torch.inference_mode():
        device = next(model.parameters()).device
        sr = model(lr.to(device)).float().cpu()
    return _psnr(sr, hr, scale)


def _pair_psf(
    estimate: DegradationEstimate | None, opts: AdaptOptions, s: int
) -> tuple[str | float, str]:
    """``(psf, description)`` of the pair degradation: the user's, the trusted estimate's, or
    :data:`ASSUMED_PSF` when the estimate is untrusted (``rings`` 0: no finding)."""
    if opts.psf != "estimate" or estimate is None:
        psf = opts.psf
        return psf, ("bicubic" if psf == "bicubic" else f"gaussian sigma={float(psf):.3g} px")
    if estimate.rings == 0:
        return ASSUMED_PSF, "bicubic (assumed: the PSF estimate is untrusted, rings 0)"
    # the input's blur includes the scene's own blur at the input's pixel size; the part the
    # decimation added is sqrt(1 - 1/s^2) of it when the scene is as sharp in its own pixels
    # as the input is in its own (scale invariance)
    sigma = round(estimate.psf_sigma * math.sqrt(1.0 - 1.0 / s**2), 3)
    return sigma, (
        f"gaussian sigma={sigma:.3g} px (the estimate's {estimate.psf_sigma:.3g} px x "
        f"sqrt(1 - 1/{s}^2))"
    )


def _nothing_to_adapt(estimate: DegradationEstimate | None, opts: AdaptOptions) -> str:
    """Why the input is left to the model (``""``: adapt): with both estimated, a clean input
    that is sharp, or whose PSF could not be estimated (the assumed degradation is then the
    model's own training one: fine-tuning on it only drifts, -0.2 to -1.4 dB measured)."""
    if estimate is None or opts.psf != "estimate" or opts.noise != "estimate":
        return ""
    if estimate.noise >= CLEAN_NOISE:
        return ""
    clean = f"noise {estimate.noise:.4f} < {CLEAN_NOISE}"
    if estimate.rings == 0:
        return (
            f"the input's PSF could not be estimated (the fit is untrusted, rings 0; its "
            f"{estimate.psf_sigma:.2f} px is no finding) and it is clean ({clean}): with the "
            "assumed degradation (MATLAB bicubic, as in the model's training data) there is "
            "nothing to adapt to; pass --adapt-psf SIGMA when you know the PSF"
        )
    if estimate.psf_sigma < SHARP_SIGMA:
        return (
            f"the input is as sharp and clean as the model's training data (PSF sigma "
            f"{estimate.psf_sigma:.2f} < {SHARP_SIGMA} px, {clean}): nothing to adapt to"
        )
    return ""


def adapt_model(
    model: SRModel,
    images: list[np.ndarray],
    options: AdaptOptions | None = None,
    *,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> tuple[SRModel, AdaptReport]:
    """Fine-tune a copy of ``model`` on ``images`` (module docs).

    Args:
        model: the model to start from (left untouched).
        images: normalized ``(C, H, W)`` (or ``(H, W)``) samples of the input, in the model's
            intensity space (the profile already applied); NaN pixels get the mean.
        options: :class:`AdaptOptions` (default: ``AdaptOptions()``).
        device: where to train (``auto``: CUDA when present).
        progress: show a progress bar.

    Returns:
        ``(model, report)``: the adapted copy (or ``model`` itself when the original was kept).
    """
    from ..engine_config import resolve_device

    opts = options or AdaptOptions()
    if opts.save_model is not None:  # before minutes of fitting, not after
        from ..output_checks import check_model_output

        source = getattr(model, "source_path", None)  # the file the model was loaded from
        check_model_output(opts.save_model, [source] if source else [], overwrite=opts.overwrite)
    t0 = time.perf_counter()
    s = int(model.scale)
    stacks = _stacks(images, int(model.in_channels))
    _check_normalized(stacks)
    biggest = max(stacks, key=lambda a: a.shape[-1] * a.shape[-2])
    side = min(opts.patch, min(max(a.shape[-2], a.shape[-1]) for a in stacks))
    side = min(side, min(biggest.shape[-2:])) // s * s
    if side < 4 * s:
        raise TooSmallToAdaptError(
            f"the input is too small to adapt on ({biggest.shape[-2]}x{biggest.shape[-1]} "
            f"pixels; at least {4 * s}x{4 * s} needed)"
        )
    if all(float(a.min()) == float(a.max()) for a in stacks):  # (NaN already filled)
        report = AdaptReport(degradation="none", estimate=None, noise=0.0, kept="original")
        report.reason = "the input is constant (or has no valid pixel): nothing to adapt to"
        report.seconds = time.perf_counter() - t0
        log.info("adapt skipped: %s", report.reason)
        if opts.save_model is not None:  # --save-model always leaves the model that was used
            save_adapted(model, report, opts.save_model, overwrite=opts.overwrite)
        return model, report
    estimate = None
    if opts.psf == "estimate" or opts.noise == "estimate":
        sample = biggest[0] if biggest.shape[0] == 1 else biggest[biggest.shape[0] // 2]
        estimate = estimate_degradation(sample)
    psf, what = _pair_psf(estimate, opts, s)
    noise = float(estimate.noise if opts.noise == "estimate" and estimate else opts.noise)
    skip = _nothing_to_adapt(estimate, opts)
    untrusted = estimate is not None and opts.psf == "estimate" and estimate.rings == 0
    if skip:
        report = AdaptReport(degradation=what, estimate=estimate, noise=noise, kept="original")
        report.reason = skip
        report.seconds = time.perf_counter() - t0
        (log.warning if untrusted else log.info)("adapt skipped: %s", report.reason)
        if opts.save_model is not None:  # --save-model always leaves the model that was used
            save_adapted(model, report, opts.save_model, overwrite=opts.overwrite)
        return model, report
    if untrusted:
        log.warning("adapt: the PSF estimate is untrusted (rings 0): %s; pass --adapt-psf", what)
    sampler = PatchSampler(stacks, (side, side))
    pairs = InternalPairs(sampler, _Degrade(s, psf), batch_size=opts.batch_size, noise=noise)
    val_lr, val_hr = InternalPairs(sampler, _Degrade(s, psf), batch_size=32, noise=noise)(
        torch.Generator().manual_seed(opts.seed + 1_000_003)
    )
    dev = resolve_device(device)
    net = copy.deepcopy(model).to(dev).float()
    for p in net.parameters():
        p.requires_grad_(True)
    bicubic = F.interpolate(val_lr, scale_factor=s, mode="bicubic", align_corners=False)
    report = AdaptReport(degradation=what, estimate=estimate, noise=noise)
    report.psnr_bicubic = _psnr(bicubic, val_hr, s)
    net.eval()
    report.psnr_before = _score(net, val_lr, val_hr, s)
    with seeded(opts.seed, dev):
        fitted = fit(
            net,
            pairs,
            Budget(seconds=60.0 * opts.max_minutes, steps=opts.steps),
            lr=opts.lr,
            seed=opts.seed,
            progress=progress,
            desc="adapting to the input",
        )
    report.fit = fitted.to_dict()
    report.psnr_after = _score(net, val_lr, val_hr, s)
    for p in net.parameters():
        p.requires_grad_(False)
    if report.psnr_after < report.psnr_before and not opts.keep_if_worse:
        report.kept = "original"
        report.reason = "fine-tuning made self-validation worse"
        log.warning(
            "adaptation made self-validation worse (%.2f -> %.2f dB): keeping the original model",
            report.psnr_before,
            report.psnr_after,
        )
        result: SRModel = model
    else:
        result = net
        card = getattr(model, "card", None)
        if card is not None:
            result.card = card
    report.seconds = time.perf_counter() - t0
    log.info("%s in %.1f s", report.describe(), report.seconds)
    if opts.save_model is not None:
        save_adapted(result, report, opts.save_model, overwrite=opts.overwrite)
    return result, report


def adapt_engine(
    upscaler: Upscaler,
    images: list[np.ndarray],
    options: AdaptOptions,
    *,
    progress: bool = False,
) -> tuple[Upscaler, AdaptReport]:
    """:func:`adapt_model` on ``upscaler``'s model, on its device; returns an engine with the
    same settings around the adapted model (the same engine when the original was kept)."""
    net, report = adapt_model(
        upscaler.model, images, options, device=upscaler.device, progress=progress
    )
    return (upscaler if net is upscaler.model else upscaler.with_model(net)), report


def save_adapted(
    model: SRModel, report: AdaptReport, path: Path, *, overwrite: bool = False
) -> Path:
    """Save an adapted model with a card that says what it was adapted with (an existing
    ``path`` is replaced only with ``overwrite``)."""
    import dataclasses
    import json

    from ..checkpoint import ModelCard, save_checkpoint

    card = getattr(model, "card", None)
    base = card if isinstance(card, ModelCard) else ModelCard(name=Path(path).stem)
    note = "adapted to one input: " + json.dumps(report.to_dict(), allow_nan=False)
    card = dataclasses.replace(
        base, name=Path(path).stem, notes=(base.notes + " " if base.notes else "") + note
    )
    return save_checkpoint(model, path, card, overwrite=overwrite)


__all__ = [
    "DEFAULT_ADAPT_STEPS",
    "AdaptOptions",
    "AdaptReport",
    "adapt_engine",
    "adapt_model",
    "save_adapted",
]
