"""LR/HR training pairs for MONAI pipelines, with the correct low-resolution geometry.

:class:`MakeLowResolutiond` degrades an HR image (blur / k-space truncation, then sampling on
the LR grid) and stores the LR image under a new key; :class:`RandMakeLowResolutiond` adds
MONAI-style random augmentation (a blur width and a noise level drawn per call, with
``prob``). The LR affine is the inverse voxel-centre rule, ``affine_lr = affine_hr @ inv(T)``:
each LR voxel centre sits at the centre of its ``s x s`` HR block, so the two fields of view
coincide and :class:`~sr_domains.monai.SuperResolutiond` on the LR image gives back the HR grid
exactly.

>>> from monai.transforms import Compose, LoadImaged, EnsureChannelFirstd, RandSpatialCropd
>>> from sr_domains.monai import RandMakeLowResolutiond, SRPrepareBatch
>>> train = Compose([                                                    # doctest: +SKIP
...     LoadImaged("hr"), EnsureChannelFirstd("hr"), RandSpatialCropd("hr", (96, 96, 1)),
...     RandMakeLowResolutiond("hr", lr_keys="lr", prob=0.8, scale=2, degrade="kspace",
...                            noise="rician", noise_std=(0.0, 0.03)),
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
from monai.transforms import MapTransform, RandomizableTransform, Transform
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor, ensure_tuple

from ..errors import ConfigError
from . import _degrade
from ._core import check_channel_first, plan_geometry
from ._degrade import DegradeFn
from ._dict import DEFAULT_POSTFIX, apply_with_meta, iter_meta_keys, meta_key_tuples
from ._intent import check_meta_intent
from ._meta import scale_meta
from ._spacing import unknown_spacing_plane
from .transforms import new_metatensor, untracked

NOISE = ("none", "gaussian", "rician")
Range = float | tuple[float, float]


def _range(name: str, value: Range | None) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = (float(value), float(value)) if np.ndim(value) == 0 else map(float, value)  # type: ignore[arg-type]
    if not 0 <= lo <= hi:
        raise ConfigError(f"{name} must be >= 0 (or a range lo <= hi), got {value!r}")
    return lo, hi


class _Degrader:
    """The HR -> LR computation shared by the deterministic and the random transforms."""

    def __init__(self, scale: int, axes: Sequence[int] | None, degrade: str | DegradeFn) -> None:
        if int(scale) not in (2, 3, 4):
            raise ConfigError(f"scale must be 2, 3 or 4, got {scale}")
        if isinstance(degrade, str) and degrade not in _degrade.BUILTIN:
            raise ConfigError(f"degrade must be one of {sorted(_degrade.BUILTIN)} or a callable")
        self.scale = int(scale)
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.degrade = degrade

    def _apply(self, planes: torch.Tensor, sigma: float | None) -> torch.Tensor:
        s = self.scale
        if callable(self.degrade):
            y = self.degrade(planes, s)
        elif self.degrade == "gaussian":
            y = _degrade.gaussian(planes, s, sigma)
        else:
            y = _degrade.BUILTIN[self.degrade](planes, s)
        n, c, h, w = planes.shape
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != (n, c, h // s, w // s):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ConfigError(f"degrade returned {got} for {tuple(planes.shape)}, x{s} smaller")
        return y

    @staticmethod
    def _add_noise(x: torch.Tensor, noise: str, std: float, seed: int) -> torch.Tensor:
        if noise == "none" or std == 0:
            return x
        rng = np.random.RandomState(seed)
        n1 = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)).to(x)
        if noise == "gaussian":
            return x + std * n1
        n2 = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)).to(x)
        return torch.sqrt((x + std * n1) ** 2 + (std * n2) ** 2)

    def __call__(
        self,
        img: Any,
        sigma: float | None = None,
        noise: str = "none",
        std: float = 0.0,
        seed: int = 0,
    ) -> torch.Tensor:
        """LR of ``img``; a MetaTensor (whatever ``set_track_meta`` says) gets the LR geometry."""
        meta = img if isinstance(img, MetaTensor) else None
        if meta is not None:  # a NIfTI label/vector image: no intensity training pair
            check_meta_intent(meta.meta)
        x = convert_to_tensor(img, track_meta=False)
        if x.ndim not in (3, 4):
            raise ConfigError(f"expected a channel-first 2-D or 3-D image, got {tuple(x.shape)}")
        spatial = tuple(int(n) for n in x.shape[1:])
        affine = None if meta is None else convert_to_numpy(meta.affine)
        if meta is not None:  # (a volume without its channel axis: refused, not misread)
            m = meta.meta
            check_channel_first(
                x.shape, affine, m.get("spatial_shape"), m.get("original_channel_dim")
            )
        axes = self.axes
        if axes is None and meta is not None:  # a NIfTI pixdim of 0: the file's order
            axes = unknown_spacing_plane(meta.meta, affine, spatial)
        geom = plan_geometry(spatial, affine, self.scale, axes)
        shrink = [i for i, f in enumerate(geom.factors) if f != 1]
        if any(spatial[i] % self.scale for i in shrink):
            raise ConfigError(
                f"spatial shape {spatial} is not a multiple of {self.scale} on axes {shrink}; "
                f"crop or pad first (e.g. DivisiblePadd(k={self.scale}))"
            )
        x = x.float()
        if geom.plane is None:
            lr = self._apply(x[None], sigma)[0]
        else:
            (k,) = {0, 1, 2} - set(geom.plane)
            planes = torch.movedim(x, 1 + k, 0)  # (n_k, C, a, b)
            lr = torch.movedim(self._apply(planes.contiguous(), sigma), 0, 1 + k)
        lr = self._add_noise(lr.contiguous(), noise, std, seed)
        if meta is None:
            return lr
        res = new_metatensor(lr, meta)
        scale_meta(res.meta, [1.0 / f for f in geom.factors], lr.shape[1:])
        return res


class MakeLowResolution(Transform):
    """HR channel-first image -> LR image ``s`` times smaller on the in-plane axes
    (deterministic; random blur widths and noise: :class:`RandMakeLowResolution`).

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
        sigma: Gaussian sigma in HR pixels (only with ``degrade="gaussian"``).
    """

    # MONAI annotates backend as an instance variable; it is per class here
    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]  # type: ignore[misc]

    def __init__(
        self,
        scale: int = 2,
        *,
        axes: Sequence[int] | None = None,
        degrade: str | DegradeFn = "gaussian",
        sigma: float | None = None,
        **random: Any,
    ) -> None:
        if random or (sigma is not None and np.ndim(sigma) != 0):
            given = sorted(random) or ["a sigma range"]
            raise ConfigError(
                f"MakeLowResolution is deterministic ({', '.join(given)} given): random blur "
                "widths and noise are RandMakeLowResolution(d)'s (noise=, noise_std=, prob=)"
            )
        if sigma is not None and degrade != "gaussian":
            raise ConfigError("sigma= applies to degrade='gaussian' only")
        self.maker = _Degrader(scale, axes, degrade)
        self.scale, self.axes, self.degrade = self.maker.scale, self.maker.axes, degrade
        self.sigma = None if sigma is None else float(sigma)

    def __call__(self, img: Any) -> torch.Tensor:
        """The LR version of ``img`` (MetaTensor in, MetaTensor with the LR geometry out)."""
        return untracked(self.forward(img))

    def forward(self, img: Any) -> torch.Tensor:
        """:meth:`__call__` returning a MetaTensor for a MetaTensor whatever ``set_track_meta``
        says."""
        return self.maker(img, self.sigma)


class RandMakeLowResolution(RandomizableTransform):
    """:class:`MakeLowResolution` with MONAI-style random augmentation.

    With probability ``prob`` a call draws a blur width from ``sigma`` and a noise level from
    ``noise_std`` and adds that noise; otherwise it makes the plain LR image (default blur, no
    noise). The draws follow MONAI's seeding (``set_random_state``, ``set_determinism``,
    per-worker seeds).

    Args:
        prob: probability of the random degradation.
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
        sigma: Gaussian sigma in HR pixels, a value or a ``(lo, hi)`` range drawn per call
            (only with ``degrade="gaussian"``; None: FWHM = one LR pixel).
        noise: ``"none"``, ``"gaussian"`` (additive) or ``"rician"`` (magnitude of complex
            Gaussian noise, the MR magnitude model; never negative).
        noise_std: noise standard deviation in intensity units (a value or a ``(lo, hi)``
            range drawn per call).
    """

    # MONAI annotates backend as an instance variable; it is per class here
    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]  # type: ignore[misc]

    def __init__(
        self,
        prob: float = 1.0,
        scale: int = 2,
        *,
        axes: Sequence[int] | None = None,
        degrade: str | DegradeFn = "gaussian",
        sigma: Range | None = None,
        noise: str = "none",
        noise_std: Range = 0.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if sigma is not None and degrade != "gaussian":
            raise ConfigError("sigma= applies to degrade='gaussian' only")
        if noise not in NOISE:
            raise ConfigError(f"noise must be one of {NOISE}, got {noise!r}")
        self.maker = _Degrader(scale, axes, degrade)
        self.scale, self.axes, self.degrade = self.maker.scale, self.maker.axes, degrade
        self.sigma = _range("sigma", sigma)
        self.noise = noise
        self.noise_std = _range("noise_std", noise_std)
        if noise == "none" and self.noise_std != (0.0, 0.0):
            raise ConfigError("noise_std needs noise='gaussian' or 'rician'")
        self._sigma: float | None = None
        self._std = 0.0
        self._noise_seed = 0

    def randomize(self, data: Any = None) -> None:
        """Draw whether to augment, the blur sigma, the noise level and the noise seed."""
        super().randomize(None)
        sigma = None if self.sigma is None else float(self.R.uniform(*self.sigma))
        assert self.noise_std is not None
        std = float(self.R.uniform(*self.noise_std))
        self._noise_seed = int(self.R.randint(0, 2**31 - 1))
        self._sigma, self._std = (sigma, std) if self._do_transform else (None, 0.0)

    def __call__(self, img: Any, randomize: bool = True) -> torch.Tensor:
        """The LR version of ``img`` (MetaTensor in, MetaTensor with the LR geometry out)."""
        return untracked(self.forward(img, randomize))

    def forward(self, img: Any, randomize: bool = True, seed_offset: int = 0) -> torch.Tensor:
        """:meth:`__call__` returning a MetaTensor for a MetaTensor whatever ``set_track_meta``
        says; ``seed_offset`` gives another noise field with the same draws."""
        if randomize:
            self.randomize()
        seed = (self._noise_seed + seed_offset) % (2**31 - 1)
        return self.maker(img, self._sigma, self.noise, self._std, seed)


def _lr_keys(keys: tuple[Any, ...], lr_keys: KeysCollection | None) -> tuple[Any, ...]:
    names = ensure_tuple(lr_keys) if lr_keys is not None else None
    out = names or tuple(f"{k}_lr" for k in keys)
    if len(out) != len(keys):
        raise ConfigError(f"{len(keys)} keys but {len(out)} lr_keys")
    return tuple(out)


class MakeLowResolutiond(MapTransform):
    """Dictionary version of :class:`MakeLowResolution`: reads ``keys`` (HR, left untouched)
    and writes the LR images to ``lr_keys`` (default ``"<key>_lr"``).

    Args:
        keys: HR image keys.
        lr_keys: output keys, one per key.
        meta_keys: meta dictionaries of data that are not MetaTensors (MONAI's meta-dict mode):
            the HR affine is read from ``meta_keys`` (default ``"<key>_<meta_key_postfix>"``)
            and the LR one written to ``"<lr_key>_<meta_key_postfix>"``.
        meta_key_postfix: see ``meta_keys`` (default ``"meta_dict"``).
        allow_missing_keys: don't raise if a key is missing.
        **kwargs: the arguments of :class:`MakeLowResolution` (``scale``, ``axes``,
            ``degrade``, ``sigma``).
    """

    backend = MakeLowResolution.backend

    def __init__(
        self,
        keys: KeysCollection,
        lr_keys: KeysCollection | None = None,
        *,
        meta_keys: KeysCollection | None = None,
        meta_key_postfix: str = DEFAULT_POSTFIX,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.lr_keys = _lr_keys(self.keys, lr_keys)
        self.meta_keys, self.meta_key_postfix = meta_key_tuples(
            self.keys, meta_keys, meta_key_postfix
        )
        self.maker = MakeLowResolution(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        items = iter_meta_keys(
            self.key_iterator, d, self.meta_keys, self.meta_key_postfix, self.lr_keys
        )
        for key, mk, lr_key in items:
            out_mk = f"{lr_key}_{self.meta_key_postfix[0]}"
            apply_with_meta(self.maker.forward, d, key, mk, lr_key, out_mk)
        return d


class RandMakeLowResolutiond(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`RandMakeLowResolution` (HR ``keys`` left untouched, LR
    images written to ``lr_keys``, default ``"<key>_lr"``).

    One draw per call (augment or not, blur width, noise level) is shared by all keys; each
    key gets its own noise field.

    Args:
        keys: HR image keys.
        lr_keys: output keys, one per key.
        prob: probability of the random degradation.
        meta_keys, meta_key_postfix: see :class:`MakeLowResolutiond`.
        allow_missing_keys: don't raise if a key is missing.
        **kwargs: the other arguments of :class:`RandMakeLowResolution` (``scale``,
            ``axes``, ``degrade``, ``sigma``, ``noise``, ``noise_std``).
    """

    backend = RandMakeLowResolution.backend

    def __init__(
        self,
        keys: KeysCollection,
        lr_keys: KeysCollection | None = None,
        prob: float = 1.0,
        *,
        meta_keys: KeysCollection | None = None,
        meta_key_postfix: str = DEFAULT_POSTFIX,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.lr_keys = _lr_keys(self.keys, lr_keys)
        self.meta_keys, self.meta_key_postfix = meta_key_tuples(
            self.keys, meta_keys, meta_key_postfix
        )
        self.maker = RandMakeLowResolution(prob, **kwargs)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandMakeLowResolutiond:
        super().set_random_state(seed, state)
        self.maker.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """One draw for all keys of this call."""
        self.maker.randomize(data)
        self._do_transform = self.maker._do_transform

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        items = iter_meta_keys(
            self.key_iterator, d, self.meta_keys, self.meta_key_postfix, self.lr_keys
        )
        for i, (key, mk, lr_key) in enumerate(items):
            out_mk = f"{lr_key}_{self.meta_key_postfix[0]}"

            def make(x: Any, i: int = i) -> torch.Tensor:
                return self.maker.forward(x, randomize=False, seed_offset=i)

            apply_with_meta(make, d, key, mk, lr_key, out_mk)
        return d


__all__ = [
    "MakeLowResolution",
    "MakeLowResolutiond",
    "RandMakeLowResolution",
    "RandMakeLowResolutiond",
]
