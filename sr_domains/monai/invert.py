"""``SRInvert(d)``: put a super-resolved prediction back on the grid its input was loaded on,
at the resolution the model produced.

MONAI's ``Invertd`` is made for predictions on the *input* grid (segmentation): it replaces the
prediction's metadata with the input's and replays the inverse of each pre-transform. After
:class:`~sr_domains.monai.SRInferer` that puts the LR affine on the SR array, and the inverse of
``Spacingd`` then resamples that misread array onto the file's grid at the *input* resolution
(the SR detail is lost and the content misplaced). ``SRInvertd`` instead resamples the
prediction once, from its own (correct) affine onto its ``original_affine`` / ``spatial_shape``
-- the file's orientation and field of view, which :class:`~sr_domains.monai.SRInferer` and
:class:`~sr_domains.monai.SuperResolution` rescale to the voxel size they produced (see
:func:`sr_domains.monai._meta.rescale_original`). It writes what
``SaveImaged(resample=True)`` writes, as a transform.

>>> from monai.transforms import Compose, SaveImaged
>>> from sr_domains.monai import SRInvertd
>>> post = Compose([SRInvertd("pred"), SaveImaged("pred", output_dir="out")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, SpatialResample, Transform
from monai.utils import TransformBackends, convert_to_numpy

from ..errors import ConfigError
from ._dict import DEFAULT_POSTFIX, apply_with_meta, iter_meta_keys, meta_key_tuples
from ._meta import copy_meta
from .transforms import untracked


class SRInvert(Transform):
    """Resample a channel-first MetaTensor from its ``affine`` onto its ``original_affine`` /
    ``spatial_shape`` (one interpolation; axis permutations and flips alone are exact).

    The result lies on the grid it was loaded on -- rescaled to the SR voxel size on the axes
    the model upscaled -- and its ``applied_operations`` are cleared (no pre-transform is left
    to undo). Intensities are not touched (MONAI's ``Invertd`` does not undo intensity
    transforms either).

    Args:
        mode: interpolation, ``"bilinear"`` (default) or ``"nearest"`` (see MONAI's
            ``SpatialResample``).
        padding_mode: outside the prediction's field of view, ``"border"`` (default, as
            ``SaveImage(resample=True)``) or ``"zeros"`` / ``"reflection"``.
        align_corners: see ``SpatialResample`` (MetaTensor affines are voxel-centre: False).
        dtype: computation dtype (default float32).
    """

    # MetaTensor in. MONAI annotates backend as an instance variable; it is per class here
    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]  # type: ignore[misc]

    def __init__(
        self,
        mode: str = "bilinear",
        padding_mode: str = "border",
        align_corners: bool = False,
        dtype: DtypeLike = np.float32,
    ) -> None:
        self.resampler = SpatialResample(mode, padding_mode, align_corners, dtype)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """``img`` on its as-loaded grid."""
        return untracked(self.forward(img))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """:meth:`__call__` returning a MetaTensor whatever ``set_track_meta`` says."""
        if not isinstance(img, MetaTensor):
            raise ConfigError(
                "SRInvert needs a MetaTensor (or, in a dictionary, its meta dict via meta_keys)"
            )
        original = img.meta.get("original_affine")
        shape = img.meta.get("spatial_shape")
        if original is None or shape is None:
            missing = " and ".join(
                k for k, v in (("original_affine", original), ("spatial_shape", shape)) if v is None
            )
            raise ConfigError(
                f"the image has no {missing}: it was not loaded by LoadImage, or by a reader "
                "that records no file grid (PNG, JPEG: PILReader); there is no grid to put it "
                "back on, so save the prediction as it is"
            )
        dst = torch.as_tensor(convert_to_numpy(original), dtype=torch.float64)
        size = tuple(int(n) for n in np.asarray(convert_to_numpy(shape)).reshape(-1))  # a tuple too
        # 2-D files: LoadImage (NIfTI) stores a 4x4 original_affine; SpatialResample takes it
        fits = dst.shape == (len(size) + 1,) * 2 or (len(size) < 3 and dst.shape == (4, 4))
        if len(size) != img.ndim - 1 or not fits:
            raise ConfigError(
                f"spatial_shape {size} / original_affine {tuple(dst.shape)} do not fit an image "
                f"of shape {tuple(img.shape)} (a batch? SRInvertd works on decollated items)"
            )
        with self.resampler.trace_transform(False):
            out = self.resampler(img, dst_affine=dst, spatial_size=size)
        meta = copy_meta(img.meta)
        if isinstance(out, MetaTensor):  # set_track_meta(True)
            meta.update(copy_meta(out.meta))
        meta["affine"] = dst
        if "pixdim" in meta:
            pix = np.array(convert_to_numpy(meta["pixdim"]), np.float64).reshape(-1)
            r = min(len(size), len(pix) - 1)
            pix[1 : 1 + r] = np.linalg.norm(dst.numpy()[:r, :r], axis=0)
            meta["pixdim"] = pix.astype(np.float32)
        res = MetaTensor(out.as_tensor() if isinstance(out, MetaTensor) else out, meta=meta)
        res.applied_operations = []
        return res


class SRInvertd(MapTransform):
    """Dictionary version of :class:`SRInvert`: the recommended post-transform after
    :class:`~sr_domains.monai.SRInferer` (instead of MONAI's ``Invertd``).

    Args:
        keys: keys of the (decollated) predictions.
        mode, padding_mode, align_corners, dtype: see :class:`SRInvert`.
        meta_keys: meta dictionaries of predictions that are not MetaTensors (MONAI's meta-dict
            mode); default ``"<key>_<meta_key_postfix>"``.
        meta_key_postfix: see ``meta_keys`` (default ``"meta_dict"``).
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = SRInvert.backend

    def __init__(
        self,
        keys: KeysCollection,
        mode: str = "bilinear",
        padding_mode: str = "border",
        align_corners: bool = False,
        dtype: DtypeLike = np.float32,
        *,
        meta_keys: KeysCollection | None = None,
        meta_key_postfix: str = DEFAULT_POSTFIX,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.meta_keys, self.meta_key_postfix = meta_key_tuples(
            self.keys, meta_keys, meta_key_postfix
        )
        self.inverter = SRInvert(mode, padding_mode, align_corners, dtype)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, mk in iter_meta_keys(self.key_iterator, d, self.meta_keys, self.meta_key_postfix):
            apply_with_meta(self.inverter.forward, d, key, mk)
        return d


__all__ = ["SRInvert", "SRInvertd"]
