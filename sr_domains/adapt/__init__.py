"""Internal (self-supervised) learning: fit a model on pairs made from the input itself.

One shared piece for every per-input learner (through-plane MRI super-resolution, and the
per-input adaptation of in-plane SR, ``--adapt``):

* :class:`PatchSampler` draws patches of the input's own high-resolution content;
* a *degradation* (any callable on patch batches, e.g. :class:`RowDegradation` for a slice
  profile) turns them into model inputs, :class:`InternalPairs` into training batches;
* :func:`fit` trains any :class:`~sr_domains.models.SRModel` on them within a
  :class:`Budget` (time and/or steps), deterministically for a seed, with a tqdm bar and ETA;
* :class:`AxisSR` is the compact network for one coarse axis at any real factor;
* :func:`adapt_model` fine-tunes any model on one input with its estimated degradation
  (:func:`estimate_degradation`: Gaussian PSF width and noise level).

>>> import numpy as np, torch
>>> from sr_domains.adapt import Budget, InternalPairs, PatchSampler, fit
>>> from sr_domains.degrade import bicubic_downsample
>>> from sr_domains.models import create_model
>>> image = np.random.default_rng(0).random((1, 64, 64), dtype=np.float32)
>>> pairs = InternalPairs(PatchSampler([image], (32, 32)), lambda x: bicubic_downsample(x, 2))
>>> model = create_model("edsr-lite-ca", in_channels=1, scale=2)
>>> report = fit(model, pairs, Budget(seconds=None, steps=2))
>>> report.steps
2
"""

from __future__ import annotations

from ..options import AdaptOptions
from .axis_sr import AxisSR, AxisSRConfig, axis_sr, warm_start_from
from .estimate import (
    DegradationEstimate,
    estimate_degradation,
    estimate_noise,
    estimate_psf_sigma,
    estimate_white_noise,
)
from .input_adapt import AdaptReport, adapt_engine, adapt_model, save_adapted
from .pairs import Degradation, InternalPairs, RowDegradation
from .sampler import PatchSampler
from .trainer import Budget, FitReport, PairSource, fit

__all__ = [
    "AdaptOptions",
    "AdaptReport",
    "AxisSR",
    "AxisSRConfig",
    "Budget",
    "Degradation",
    "DegradationEstimate",
    "FitReport",
    "InternalPairs",
    "PairSource",
    "PatchSampler",
    "RowDegradation",
    "adapt_engine",
    "adapt_model",
    "axis_sr",
    "estimate_degradation",
    "estimate_noise",
    "estimate_psf_sigma",
    "estimate_white_noise",
    "fit",
    "save_adapted",
    "warm_start_from",
]
