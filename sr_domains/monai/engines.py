"""``SRPrepareBatch``: the ``prepare_batch`` of MONAI engines for LR/HR pairs.

>>> from monai.engines import SupervisedEvaluator, SupervisedTrainer
>>> from sr_domains.monai import SRInferer, SRPrepareBatch
>>> # trainers: 2-D networks see slices      -> SRPrepareBatch("image_lr", "image")
>>> # evaluators: volumes keep their geometry -> SRPrepareBatch("image_lr", "image", fold=False)
"""

from __future__ import annotations

from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines.utils import PrepareBatch

from ..errors import ConfigError


class SRPrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI engines: ``(batch[lr_key], batch[hr_key])`` on the device.

    With ``fold=True`` (trainers: the networks are 2-D) 3-D batches ``(B, C, H, W, D)`` are
    folded to slices ``(B*D, C, H, W)`` as plain tensors (a stack of slices from several
    volumes has no single geometry); the last spatial axis must be the slice axis of both
    images. With ``fold=False`` (evaluators with :class:`~sr_domains.monai.SRInferer`) the
    batches pass as they are: the inferer runs each volume slice by slice itself, metrics are
    per volume and the predictions keep their MetaTensor geometry for post-transforms
    (:class:`~sr_domains.monai.SRInvertd`, ``SaveImaged``). 2-D batches are never changed.

    Args:
        lr_key: key of the LR (network input) images.
        hr_key: key of the HR (target) images.
        fold: fold 3-D batches into 2-D slices.
    """

    def __init__(self, lr_key: str = "image_lr", hr_key: str = "image", *, fold: bool = True):
        self.lr_key = lr_key
        self.hr_key = hr_key
        self.fold = bool(fold)

    @staticmethod
    def _fold(x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return x
        t = x.as_tensor() if isinstance(x, MetaTensor) else x
        b, c, h, w, d = t.shape
        return t.permute(0, 4, 1, 2, 3).reshape(b * d, c, h, w)

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = batchdata[self.lr_key], batchdata[self.hr_key]
        if self.fold:
            if lr.ndim == 5 and lr.shape[-1] != hr.shape[-1]:
                raise ConfigError(
                    f"LR {tuple(lr.shape)} and HR {tuple(hr.shape)} differ in slices; fold=True "
                    "needs the slice axis last in both (or use fold=False with SRInferer)"
                )
            lr, hr = self._fold(lr), self._fold(hr)
        return (
            lr.to(device=device, non_blocking=non_blocking, **kwargs),
            hr.to(device=device, non_blocking=non_blocking, **kwargs),
        )


__all__ = ["SRPrepareBatch"]
