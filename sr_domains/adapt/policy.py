"""What :func:`~sr_domains.adapt.adapt_model` adapts to: the pair degradation (the user's, the
trusted estimate's, or an assumed one) and when an input is left to the model as it is."""

from __future__ import annotations

import math

import torch

from ..options import AdaptOptions
from .estimate import DegradationEstimate

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


class PairDegradation:
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


def pair_psf(
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


def nothing_to_adapt(estimate: DegradationEstimate | None, opts: AdaptOptions) -> str:
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


__all__ = [
    "ASSUMED_PSF",
    "CLEAN_NOISE",
    "SHARP_SIGMA",
    "PairDegradation",
    "nothing_to_adapt",
    "pair_psf",
]
