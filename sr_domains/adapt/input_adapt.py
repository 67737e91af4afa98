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

Parts: :mod:`~sr_domains.adapt.samples` (the images given), :mod:`~sr_domains.adapt.policy`
(the pair degradation; inputs left as they are), :mod:`~sr_domains.adapt.report`.
"""

from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import TooSmallToAdaptError
from ..inference import Upscaler
from ..models.base import SRModel
from ..options import DEFAULT_ADAPT_STEPS, AdaptOptions
from ..rng import seeded
from .estimate import estimate_degradation
from .pairs import InternalPairs
from .policy import ASSUMED_PSF as ASSUMED_PSF  # (the policy's constants, importable here)
from .policy import CLEAN_NOISE as CLEAN_NOISE
from .policy import SHARP_SIGMA as SHARP_SIGMA
from .policy import PairDegradation, nothing_to_adapt, pair_psf
from .report import AdaptReport, save_adapted
from .sampler import PatchSampler
from .samples import NORMALIZED_SPAN as NORMALIZED_SPAN
from .samples import check_normalized, sampler_stacks
from .trainer import Budget, fit

log = logging.getLogger(__name__)


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
    stacks = sampler_stacks(images, int(model.in_channels))
    check_normalized(stacks)
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
    psf, what = pair_psf(estimate, opts, s)
    noise = float(estimate.noise if opts.noise == "estimate" and estimate else opts.noise)
    skip = nothing_to_adapt(estimate, opts)
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
    degrade = PairDegradation(s, psf)
    pairs = InternalPairs(sampler, degrade, batch_size=opts.batch_size, noise=noise)
    val_lr, val_hr = InternalPairs(sampler, degrade, batch_size=32, noise=noise)(
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


__all__ = [
    "DEFAULT_ADAPT_STEPS",
    "AdaptOptions",
    "AdaptReport",
    "adapt_engine",
    "adapt_model",
    "save_adapted",
]
