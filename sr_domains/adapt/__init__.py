"""Internal (self-supervised) learning: fit a model on pairs made from the input itself.

One shared piece for every per-input learner (through-plane MRI super-resolution, and a later
per-image adaptation of in-plane SR):

* :class:`PatchSampler` draws patches of the input's own high-resolution content;
* a *degradation* (any callable on patch batches, e.g. :class:`RowDegradation` for a slice
  profile) turns them into model inputs, :class:`InternalPairs` into training batches;
* :func:`fit` trains any :class:`~sr_domains.models.SRModel` on them within a
  :class:`Budget` (time and/or steps), deterministically for a seed, with a tqdm bar and ETA;
* :class:`AxisSR` is the compact network for one coarse axis at any real factor.

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

from .axis_sr import AxisSR, AxisSRConfig, axis_sr, warm_start_from
from .pairs import Degradation, InternalPairs, RowDegradation
from .sampler import PatchSampler
from .trainer import Budget, FitReport, PairSource, fit

__all__ = [
    "AxisSR",
    "AxisSRConfig",
    "Budget",
    "Degradation",
    "FitReport",
    "InternalPairs",
    "PairSource",
    "PatchSampler",
    "RowDegradation",
    "axis_sr",
    "fit",
    "warm_start_from",
]
