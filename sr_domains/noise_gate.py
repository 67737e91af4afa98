"""Noise-aware default weights: a noisy input gets the degradation-robust variant.

The single-band defaults (``sr-lite-gray-x2``, ``-x4``) trade the sharpening of soft scenes
against denoising, and lose to bicubic on noisy MRI (k-space truncation + Rician noise); their
``-robust`` variants denoise (docs/weights.md). Noise, unlike scene softness, can be measured
on the input: :func:`~sr_domains.adapt.estimate.estimate_white_noise` (normalized units,
non-finite pixels ignored; the finest-scale detail that does not persist at the next scale,
so fine scene texture does not read as noise) reads 0.010-0.024 on those MRI inputs (29 x 29
px slices included) and at most 0.001 on clean ones, textured drone bands included (the
single-scale estimate read 0.01-0.08 there).
So when ``upscale`` picks the weights itself (no model or weights named), the input's noise is
estimated once from a sample of it and the model is blended in weight space towards its
``-robust`` variant::

    w = clip((sigma - LOW) / (HIGH - LOW), 0, 1),    model = (1 - w) * default + w * robust

(:data:`LOW`, :data:`HIGH`). A clean input keeps the default exactly (``w = 0``); a named
model is used as it is. A sample under :data:`MIN_SIDE` px is not gated (the default as it
is): too small to tell noise from texture. The estimate and the weight are logged and recorded
in provenance (:class:`NoiseChoice`). One decision per input, never per tile: tiles stay
seamless.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .inference import Upscaler

log = logging.getLogger(__name__)

#: Estimated noise sigma (normalized units) below which the default is used as it is, and
#: above which the robust variant is used alone (battery LR images: clean <= 0.001, noisy MRI
#: >= 0.010).
LOW, HIGH = 0.005, 0.012
#: The variant that denoises, by suffix of the shipped default's name.
VARIANT_SUFFIX = "-robust"


@dataclass(frozen=True)
class NoiseChoice:
    """What the noise gate decided for one input.

    Attributes:
        sigma: estimated noise standard deviation (normalized units).
        weight: share of the variant in the blend (0 = the default as it is).
        variant: the shipped weights blended in.
    """

    sigma: float
    weight: float
    variant: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "noise_sigma": round(self.sigma, 5),
            "weight": round(self.weight, 3),
            "variant": self.variant,
            "gate": [LOW, HIGH],
        }

    def describe(self) -> str:
        if self.weight == 0:
            return f"noise {self.sigma:.4f}: default weights as they are"
        return f"noise {self.sigma:.4f}: {self.weight:.2f} x {self.variant} blended in"


#: Side (input pixels) of the central window the gate (and the per-file checks that share its
#: read: adaptation, class codes) look at.
CENTRAL_WINDOW = 512


def central_box(h: int, w: int, size: int = CENTRAL_WINDOW) -> tuple[int, int, int, int]:
    """``(top, left, rows, cols)`` of the central ``size`` square of an ``h x w`` image (the
    whole image when smaller)."""
    th, tw = min(h, size), min(w, size)
    return (h - th) // 2, (w - tw) // 2, th, tw


def gate_sample(values: np.ndarray, valid: Any, fitted: Any) -> np.ndarray:
    """``(C, h, w)`` stored ``values`` normalized by the profile ``fitted``, invalid pixels
    (``valid`` False, broadcast over bands, or not finite) NaN: what the gate estimates on."""
    x = fitted.normalize(values).astype(np.float32)
    ok = np.broadcast_to(np.asarray(valid, bool), x.shape) & np.isfinite(x)
    return np.where(ok, x, np.float32(np.nan))


def chosen_by_default(model: object, weights: object) -> bool:
    """True when ``upscale`` picked the weights itself: nothing named, or the model object a
    Dask worker loaded for an unnamed default (it carries ``chosen_by_default``)."""
    if weights is not None:
        return False
    return model is None or bool(getattr(model, "chosen_by_default", False))


def noise_variant(model: Any) -> str | None:
    """The shipped ``-robust`` variant of a shipped default model, or None."""
    from .model_label import card_name
    from .pretrained import list_pretrained

    name = card_name(model)
    if not name:
        return None
    names = {e.name for e in list_pretrained()}
    variant = f"{name}{VARIANT_SUFFIX}"
    return variant if name in names and variant in names else None


#: Smallest sample side the gate decides on. Under 64 px the white-noise split is read on
#: every offset of its block grids (:func:`~sr_domains.adapt.estimate.estimate_white_noise`);
#: on crops of nine scikit-image photos it then reads a clean crop above :data:`LOW` about as
#: often from 24 px up as the one-grid split does at 64-96 px (8-9% of the crops, against 7-9%),
#: but at 16 px in 14%. (The single-scale estimate it replaced there read fine texture as
#: noise: half of those crops, and 0.04-0.08 on the battery's 44 x 40 drone bands.)
MIN_SIDE = 24


def input_noise(samples: Sequence[np.ndarray]) -> float | None:
    """Median noise estimate over ``(C, H, W)`` samples (normalized; NaN or +-inf = invalid
    pixels); None when no sample is large enough (:data:`MIN_SIDE`) to tell noise from
    texture."""
    from .adapt.estimate import estimate_white_noise

    values = []
    for s in samples:
        if min(np.shape(s)[-2:]) < MIN_SIDE:
            continue
        try:
            values.append(estimate_white_noise(s))
        except ConfigError:
            continue  # too small
    return float(np.median(values)) if values else None


def gate_weight(sigma: float) -> float:
    """Share of the robust variant for an estimated noise ``sigma`` (module docs)."""
    return float(np.clip((sigma - LOW) / (HIGH - LOW), 0.0, 1.0))


def choose_for_noise(
    up: Upscaler, samples: Sequence[np.ndarray]
) -> tuple[Upscaler, NoiseChoice | None]:
    """The engine to use for an input whose normalized ``samples`` are given: ``up`` itself,
    or one around the default blended towards its robust variant (module docs). The choice is
    None when the model has no variant or the samples are too small."""
    from .models.resampled import ResampledSR
    from .pretrained import load_pretrained

    variant = noise_variant(up.model)
    if variant is None:
        return up, None
    sigma = input_noise(samples)
    if sigma is None:
        return up, None
    choice = NoiseChoice(sigma, gate_weight(sigma), variant)
    log.info("%s", choice.describe())
    if choice.weight == 0:
        return up, choice
    model = copy.deepcopy(up.model)
    net = model.base if isinstance(model, ResampledSR) else model  # (x3: the x2 network)
    own = net.state_dict()
    other = load_pretrained(variant).state_dict()
    w = choice.weight
    net.load_state_dict(
        {
            k: ((1 - w) * v.double() + w * other[k].to(v.device).double()).to(v.dtype)
            if v.is_floating_point()
            else v
            for k, v in own.items()
        }
    )
    from .checkpoint import ModelCard

    card = getattr(model, "card", None)
    if isinstance(card, ModelCard):  # provenance names the blend
        model.card = dataclasses.replace(card, name=f"{card.name}+{w:.2f}x{variant}")
    return up.with_model(model), choice


__all__ = [
    "HIGH",
    "LOW",
    "NoiseChoice",
    "choose_for_noise",
    "chosen_by_default",
    "gate_weight",
    "input_noise",
    "noise_variant",
]
