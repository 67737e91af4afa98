"""LR/HR training pairs for MONAI pipelines, with the correct low-resolution geometry.

:class:`MakeLowResolutiond` degrades an HR image (blur / k-space truncation, then sampling on
the LR grid, then optional noise) and stores the LR image under a new key. Its affine is the
inverse voxel-centre rule, ``affine_lr = affine_hr @ inv(T)``: each LR voxel centre sits at
the centre of its ``s x s`` HR block, so the two fields of view coincide and
:class:`~sr_domains.monai.SuperResolutiond` on the LR image gives back the HR grid exactly.

>>> from monai.transforms import Compose, LoadImaged, EnsureChannelFirstd, RandSpatialCropd
>>> from sr_domains.monai import MakeLowResolutiond, SRPrepareBatch
>>> train = Compose([                                                    # doctest: +SKIP
...     LoadImaged("hr"), EnsureChannelFirstd("hr"), RandSpatialCropd("hr", (96, 96, 1)),
...     MakeLowResolutiond("hr", lr_keys="lr", scale=2, degrade="kspace", noise="rician",
...                        noise_std=(0.0, 0.03)),
... ])
>>> # SupervisedTrainer(..., prepare_batch=SRPrepareBatch("lr", "hr"))
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.engines.utils import PrepareBatch
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor, ensure_tuple

from ..errors import ConfigError
from . import _degrade
from ._core import plan_geometry
from ._degrade import DegradeFn
from ._meta import scale_meta
from .transforms import new_metatensor

NOISE = ("none", "gaussian", "rician")
Range = float | tuple[float, float]


def _range(name: str, value: Range | None) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = (float(value), float(value)) if np.ndim(value) == 0 else map(float, value)  # type: ignore[arg-type]
    if not 0 <= lo <= hi:
        raise ConfigError(f"{name} must be >= 0 (or a range lo <= hi), got {value!r}")
    return lo, hi


class MakeLowResolution(Randomizable, Transform):
    """HR channel-first image -> LR image ``s`` times smaller on the in-plane axes.

    Args:
        scale: 2, 3 or 4; the in-plane sizes must be multiples of it (crop or pad first, e.g.
            ``RandSpatialCropd`` with a multiple of ``s``, or ``DivisiblePadd(k=s)``).
        axes: in-plane axes of a 3-D image (default: the two finest of the affine, as
            :class:`~sr_domains.monai.SuperResolution` chooses them; pass the same ``axes`` to
            both when the spacing is near-isotropic). 2-D images shrink on both axes.
        degrade: ``"gaussian"`` (blur, default FWHM = one LR pixel, sampled at the LR voxel
            centres), ``"area"`` (mean of each ``s x s`` block), ``"kspace"`` (central k-space
            truncation, the MR acquisition model), ``"bicubic"`` (MATLAB-compatible
            antialiased bicubic) -- all from :mod:`sr_domains.degrade` -- or a callable
            ``f(x: (N, C, H, W) tensor, scale) -> (N, C, H/s, W/s)``; it must keep the LR
            pixel at the centre of its HR block.
        sigma: Gaussian sigma in HR pixels (a value or a ``(lo, hi)`` range drawn per call);
            only with ``degrade="gaussian"``.
        noise: ``"none"``, ``"gaussian"`` (additive) or ``"rician"`` (magnitude of complex
            Gaussian noise, the MR magnitude model; never negative).
        noise_std: noise standard deviation in intensity units (a value or a ``(lo, hi)``
            range drawn per call).
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        scale: int = 2,
        *,
        axes: Sequence[int] | None = None,
        degrade: str | DegradeFn = "gaussian",
        sigma: Range | None = None,
        noise: str = "none",
        noise_std: Range = 0.0,
    ) -> None:
        if int(scale) not in (2, 3, 4):
            raise ConfigError(f"scale must be 2, 3 or 4, got {scale}")
        if isinstance(degrade, str) and degrade not in _degrade.BUILTIN:
            raise ConfigError(f"degrade must be one of {sorted(_degrade.BUILTIN)} or a callable")
        if sigma is not None and degrade != "gaussian":
            raise ConfigError("sigma= applies to degrade='gaussian' only")
        if noise not in NOISE:
            raise ConfigError(f"noise must be one of {NOISE}, got {noise!r}")
        self.scale = int(scale)
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.degrade = degrade
        self.sigma = _range("sigma", sigma)
        self.noise = noise
        self.noise_std = _range("noise_std", noise_std)
        self._sigma: float | None = None
        self._std = 0.0
        self._noise_seed = 0

    def randomize(self, data: Any = None) -> None:
        """Draw this call's blur sigma, noise level and noise field seed."""
        self._sigma = None if self.sigma is None else float(self.R.uniform(*self.sigma))
        assert self.noise_std is not None
        self._std = float(self.R.uniform(*self.noise_std))
        self._noise_seed = int(self.R.randint(0, 2**31 - 1))

    def _apply(self, planes: torch.Tensor) -> torch.Tensor:
        s = self.scale
        if callable(self.degrade):
            y = self.degrade(planes, s)
        elif self.degrade == "gaussian":
            y = _degrade.gaussian(planes, s, self._sigma)
        else:
            y = _degrade.BUILTIN[self.degrade](planes, s)
        n, c, h, w = planes.shape
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != (n, c, h // s, w // s):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ConfigError(f"degrade returned {got} for {tuple(planes.shape)}, x{s} smaller")
        return y

    def _add_noise(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise == "none" or self._std == 0:
            return x
        rng = np.random.RandomState(self._noise_seed)
        n1 = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)).to(x)
        if self.noise == "gaussian":
            return x + self._std * n1
        n2 = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)).to(x)
        return torch.sqrt((x + self._std * n1) ** 2 + (self._std * n2) ** 2)

    def __call__(self, img: Any, randomize: bool = True) -> torch.Tensor:
        """The LR version of ``img`` (MetaTensor in, MetaTensor with the LR geometry out)."""
        if randomize:
            self.randomize()
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.ndim not in (3, 4):
            raise ConfigError(f"expected a channel-first 2-D or 3-D image, got {tuple(img.shape)}")
        spatial = tuple(int(n) for n in img.shape[1:])
        affine = convert_to_numpy(img.affine) if isinstance(img, MetaTensor) else None
        geom = plan_geometry(spatial, affine, self.scale, self.axes)
        shrink = [i for i, f in enumerate(geom.factors) if f != 1]
        if any(spatial[i] % self.scale for i in shrink):
            raise ConfigError(
                f"spatial shape {spatial} is not a multiple of {self.scale} on axes {shrink}; "
                f"crop or pad first (e.g. DivisiblePadd(k={self.scale}))"
            )
        x = (img.as_tensor() if isinstance(img, MetaTensor) else img).float()
        if geom.plane is None:
            lr = self._apply(x[None])[0]
        else:
            (k,) = {0, 1, 2} - set(geom.plane)
            planes = torch.movedim(x, 1 + k, 0)  # (n_k, C, a, b)
            lr = torch.movedim(self._apply(planes.contiguous()), 0, 1 + k)
        lr = self._add_noise(lr.contiguous())
        if not isinstance(img, MetaTensor):
            return lr
        res = new_metatensor(lr, img)
        scale_meta(res.meta, [1.0 / f for f in geom.factors], lr.shape[1:])
        return res


class MakeLowResolutiond(Randomizable, MapTransform):
    """Dictionary version of :class:`MakeLowResolution`: reads ``keys`` (HR, left untouched)
    and writes the LR images to ``lr_keys`` (default ``"<key>_lr"``).

    Deterministic under MONAI's seeding (``Compose(...).set_random_state(seed)``,
    ``set_determinism``, ``Dataset`` workers).

    Args:
        keys: HR image keys.
        lr_keys: output keys, one per key.
        allow_missing_keys: don't raise if a key is missing.
        **kwargs: the arguments of :class:`MakeLowResolution` (``scale``, ``axes``,
            ``degrade``, ``sigma``, ``noise``, ``noise_std``).
    """

    backend = MakeLowResolution.backend

    def __init__(
        self,
        keys: KeysCollection,
        lr_keys: KeysCollection | None = None,
        *,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        names = ensure_tuple(lr_keys) if lr_keys is not None else None
        self.lr_keys = names or tuple(f"{k}_lr" for k in self.keys)
        if len(self.lr_keys) != len(self.keys):
            raise ConfigError(f"{len(self.keys)} keys but {len(self.lr_keys)} lr_keys")
        self.maker = MakeLowResolution(**kwargs)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> MakeLowResolutiond:
        super().set_random_state(seed, state)
        self.maker.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.maker.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, lr_key in self.key_iterator(d, self.lr_keys):
            d[lr_key] = self.maker(d[key])
        return d


class SRPrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI engines: ``(batch[lr_key], batch[hr_key])`` on the device.

    3-D batches ``(B, C, H, W, D)`` of a slice-wise 2-D model are folded to ``(B*D, C, H, W)``
    (the last spatial axis must be the slice axis of both images).
    """

    def __init__(self, lr_key: str = "image_lr", hr_key: str = "image") -> None:
        self.lr_key = lr_key
        self.hr_key = hr_key

    @staticmethod
    def _fold(x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return x
        b, c, h, w, d = x.shape
        return x.permute(0, 4, 1, 2, 3).reshape(b * d, c, h, w)

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = batchdata[self.lr_key], batchdata[self.hr_key]
        if lr.ndim == 5 and lr.shape[-1] != hr.shape[-1]:
            raise ConfigError(f"LR {tuple(lr.shape)} and HR {tuple(hr.shape)} differ in slices")
        lr, hr = self._fold(lr), self._fold(hr)
        return (
            lr.to(device=device, non_blocking=non_blocking, **kwargs),
            hr.to(device=device, non_blocking=non_blocking, **kwargs),
        )


__all__ = ["MakeLowResolution", "MakeLowResolutiond", "SRPrepareBatch"]
