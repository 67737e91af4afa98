"""Training pairs made from the input itself: a patch sampler, a degradation and a target crop.

``InternalPairs(sampler, degrade)`` is a :data:`~sr_domains.adapt.trainer.PairSource`: each
call draws high-resolution patches and returns ``(degrade(patches), target(patches))``. The
degradation is any callable on ``(N, 1, h, w)`` tensors, e.g.

* :class:`RowDegradation` — a 1-D linear map along the rows (thick-slice simulation with a slice
  profile, :func:`sr_domains.medical.slice_profile.degradation_matrix`), the target being the
  rows it covers: through-plane MRI;
* ``lambda x: sr_domains.degrade.bicubic_downsample(x, 2)`` — in-plane SR adaptation of a
  scale-2 model to one image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .sampler import PatchSampler

Degradation = Callable[[torch.Tensor], torch.Tensor]


class RowDegradation:
    """Degrade patch rows with a fixed ``(n, L)`` matrix; the target is rows ``[a, a + m)``.

    Args:
        matrix: LR sample ``j`` = ``Σ_i matrix[j, i] * row_i`` (``L`` = patch height).
        target_rows: ``(a, m)``: the high-resolution rows the LR samples stand for.
    """

    def __init__(self, matrix: np.ndarray, target_rows: tuple[int, int]) -> None:
        self.matrix = torch.from_numpy(np.asarray(matrix, np.float32))
        a, m = (int(v) for v in target_rows)
        if a < 0 or m < 1 or a + m > self.matrix.shape[1]:
            raise ConfigError(
                f"target rows {target_rows} outside a {self.matrix.shape[1]}-row patch"
            )
        self.rows = (a, m)

    @property
    def patch_rows(self) -> int:
        return int(self.matrix.shape[1])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("jl,nclw->ncjw", self.matrix.to(x.dtype), x)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        a, m = self.rows
        return x[:, :, a : a + m]


@dataclass
class InternalPairs:
    """A batch source of ``(degraded, target)`` pairs from a :class:`PatchSampler`.

    Attributes:
        sampler: where the high-resolution patches come from.
        degrade: patches -> model inputs.
        target: patches -> model targets (default: the patches themselves).
        batch_size: patches per batch.
        noise: standard deviation of Gaussian noise added to the inputs (0 = none).
    """

    sampler: PatchSampler
    degrade: Degradation
    target: Callable[[torch.Tensor], torch.Tensor] | None = None
    batch_size: int = 16
    noise: float = 0.0

    def __call__(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        hr = self.sampler.sample(self.batch_size, generator)
        lr = self.degrade(hr)
        if self.noise > 0:
            lr = lr + self.noise * torch.randn(lr.shape, generator=generator)
        return lr, (self.target(hr) if self.target is not None else hr)


__all__ = ["Degradation", "InternalPairs", "RowDegradation"]
