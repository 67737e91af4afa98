"""``MakeIsotropic`` / ``MakeIsotropicd``: MONAI transforms that make an anisotropic MRI volume
isotropic by self-supervised through-plane SR (:func:`sr_domains.medical.make_isotropic` on a
channel-first MetaTensor), with the geometry updated so ``SaveImage(d)`` writes a correct file.

>>> from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, SaveImaged
>>> from sr_domains.monai import MakeIsotropicd
>>> pipeline = Compose([                                                 # doctest: +SKIP
...     LoadImaged("image"), EnsureChannelFirstd("image"),
...     MakeIsotropicd("image", budget_minutes=4),
...     SaveImaged("image", output_dir="out", output_postfix="iso", resample=False),
... ])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor

from ..errors import ConfigError, InputFileError
from ..intensity import work_dtype
from ..medical.geometry import voxel_sizes
from ..medical.isotropic import IsotropicPlan, plan_isotropic
from ..medical.isotropic_io import VolumeJob, fit_intensity, resolve_slice_profile
from ..options import InternalOptions, IsotropicOptions
from ..value_domain import ValueOptions, build_rules
from ..value_facts import zero_facts
from ..value_range_check import warn_outside_range
from ._dict import DEFAULT_POSTFIX, apply_with_meta, iter_meta_keys, meta_key_tuples
from ._intent import check_meta_intent
from ._meta import scale_meta
from ._spacing import spacing_unknown
from .transforms import new_metatensor, untracked

log = logging.getLogger(__name__)


class MakeIsotropic(Transform):
    """Make a channel-first ``(C, H, W, D)`` image isotropic (every channel fitted on its own).

    The voxel sizes come from the MetaTensor's affine (``pixdim`` of a plain array is not
    enough: pass a MetaTensor). A spacing the header leaves unknown (a NIfTI ``pixdim`` of 0,
    which the affine shows as 1 mm; decided as the other transforms decide it,
    :mod:`sr_domains.monai._spacing`) is refused naming the file: no grid can be planned from
    it. The output is a float32 MetaTensor (float64 for float64 input) whose ``affine`` is
    ``affine @ T`` (voxel-centre rule with real factors, first edge kept) and whose
    ``pixdim``, ``original_affine`` and ``spatial_shape`` match, so ``SaveImage`` writes a file
    that lines up with the input. Not invertible (the thick slices are not recoverable
    exactly); the fitted model of the last call is kept in :attr:`last_fitted`.

    Args:
        target_spacing, slice_profile, slice_thickness, fusion: see
            :class:`~sr_domains.options.IsotropicOptions` (thickness default: the slice spacing,
            MONAI metadata carries no slice thickness).
        budget_minutes, steps, seed, warm_start: see :class:`~sr_domains.options.InternalOptions`.
        weights: a model saved with ``save_model=`` / ``--save-model`` (fine-tuned within the
            budget, or applied as is with ``budget_minutes=0``).
        slice_axis: the spatial axis to super-resolve (default: the coarsest one).
        profile: intensity profile (default ``mr``: robust percentiles, fitted per channel).
        values: value fidelity (default on).
        device: ``auto`` (cuda > mps > cpu), ``cpu``, ...
        progress: tqdm bars (training with ETA, application).
    """

    # MONAI annotates backend as an instance variable; it is per class here
    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]  # type: ignore[misc]

    def __init__(
        self,
        target_spacing: float | None = None,
        slice_profile: str = "gaussian",
        slice_thickness: float | None = None,
        *,
        budget_minutes: float = 4.0,
        steps: int | None = None,
        seed: int = 0,
        warm_start: bool = True,
        weights: str | None = None,
        fusion: str = "mean",
        slice_axis: int | None = None,
        profile: str | None = None,
        values: ValueOptions | None = None,
        device: str = "auto",
        progress: bool = False,
    ) -> None:
        self.iso = IsotropicOptions(target_spacing, slice_profile, slice_thickness, fusion)
        self.internal = InternalOptions(budget_minutes, steps, seed, None, warm_start)
        self.weights, self.slice_axis, self.profile = weights, slice_axis, profile
        self.values, self.device, self.progress = values, device, progress
        self.last_fitted: Any = None

    def plan(self, shape: tuple[int, ...], affine: np.ndarray) -> IsotropicPlan:
        """The target grid of an image of spatial ``shape`` with ``affine``."""
        return plan_isotropic(
            shape,
            voxel_sizes(affine),
            slice_axis=self.slice_axis,
            target_spacing=self.iso.target_spacing,
        )

    def __call__(self, img: Any) -> torch.Tensor:
        return untracked(self.forward(img))

    def forward(self, img: Any) -> torch.Tensor:
        """:meth:`__call__` returning a MetaTensor whatever ``set_track_meta`` says."""
        if not isinstance(img, MetaTensor):
            raise ConfigError("MakeIsotropic needs a MetaTensor (its affine gives the spacing)")
        check_meta_intent(img.meta)  # a NIfTI label/vector image: refused naming the file
        x = convert_to_tensor(img, track_meta=False)
        if x.ndim != 4:
            raise ConfigError(f"expected a channel-first (C, H, W, D) image, got {tuple(x.shape)}")
        affine = convert_to_numpy(img.affine).astype(np.float64)
        spatial = tuple(int(n) for n in x.shape[1:])
        if spacing_unknown(img.meta, affine, spatial):
            raise _unknown_spacing_error(img.meta)
        plan = self.plan(spatial, affine)
        arr = convert_to_numpy(x)
        name = img.meta.get("filename_or_obj")
        where = name if isinstance(name, (str, os.PathLike)) and str(name) else "the image"
        warn_outside_range(where, arr, None, self.values, "monai")  # a range the data leave
        wide_in = arr.dtype == np.float64  # float64 out; else MONAI's float32 convention
        arr = arr.astype(work_dtype(arr.dtype), copy=False)
        outs = []
        for c in range(arr.shape[0]):
            vol = arr[c]
            z = zero_facts(vol)  # resampling residues near 0 count as 0 (ZERO_TOLERANCE)
            intensity = fit_intensity(self.profile, vol, vol.dtype)
            rules = build_rules(self.values, [z.non_negative_minimum], zero=z)
            job = VolumeJob(
                plan,
                resolve_slice_profile(self.iso, plan, None, "MakeIsotropic"),
                intensity,
                rules,
                iso=self.iso,
                internal=self.internal,
                weights=self.weights,
                progress=self.progress,
                device=self.device,
            )
            outs.append(job.process(vol))
            self.last_fitted = job.fitted
        stacked = np.stack(outs)
        out = torch.from_numpy(stacked if wide_in else stacked.astype(np.float32)).to(x.device)
        res = new_metatensor(out, img)
        scale_meta(res.meta, plan.factors, plan.out_shape)
        return res


def _unknown_spacing_error(meta: Mapping[str, Any]) -> ConfigError | InputFileError:
    """The refusal of an image whose voxel spacing is unknown, naming its file if it has one."""
    why = (
        "the voxel spacing is unknown (a NIfTI pixdim of 0; the affine shows an invented 1 mm "
        "there): isotropic SR cannot plan a grid from it; state the spacing in the header "
        "(pixdim, or an sform with code > 0)"
    )
    name = meta.get("filename_or_obj")
    if isinstance(name, (str, os.PathLike)) and str(name):
        return InputFileError(name, why)
    return ConfigError(f"MakeIsotropic: {why}")


class MakeIsotropicd(MapTransform):
    """Dictionary version of :class:`MakeIsotropic` (each key fitted on its own).

    Args:
        keys: keys of the images.
        meta_keys, meta_key_postfix: MONAI's meta-dict mode (see
            :class:`~sr_domains.monai.SuperResolutiond`).
        allow_missing_keys: don't raise if a key is missing.
        **kwargs: the arguments of :class:`MakeIsotropic`.
    """

    backend = MakeIsotropic.backend

    def __init__(
        self,
        keys: KeysCollection,
        *,
        meta_keys: KeysCollection | None = None,
        meta_key_postfix: str = DEFAULT_POSTFIX,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.meta_keys, self.meta_key_postfix = meta_key_tuples(
            self.keys, meta_keys, meta_key_postfix
        )
        self.iso = MakeIsotropic(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, mk in iter_meta_keys(self.key_iterator, d, self.meta_keys, self.meta_key_postfix):
            apply_with_meta(self.iso.forward, d, key, mk)
        return d


__all__ = ["MakeIsotropic", "MakeIsotropicd"]
