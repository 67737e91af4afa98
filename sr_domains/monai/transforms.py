"""``SuperResolution`` / ``SuperResolutiond``: MONAI transforms that super-resolve a
channel-first MetaTensor and fix its geometry so ``SaveImage(d)`` writes a correct file.

>>> from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, SaveImaged
>>> from sr_domains.monai import SuperResolutiond
>>> pipeline = Compose([                                                 # doctest: +SKIP
...     LoadImaged("image"), EnsureChannelFirstd("image"),
...     SuperResolutiond("image", weights="mri_x2.safetensors", scale=2, profile="mr"),
...     SaveImaged("image", output_dir="out", output_postfix="x2"),
... ])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys, TransformBackends, convert_to_numpy, convert_to_tensor

from ..errors import ConfigError
from ..value_domain import ValueOptions
from ..value_range_check import warn_outside_range
from ._core import (
    ModelArg,
    ProfileArg,
    check_channel_first,
    fit_image_profile,
    plan_geometry,
    progress_bar,
    resolve_upscaler,
    slice_count,
    super_resolve,
)
from ._dict import DEFAULT_POSTFIX, apply_with_meta, iter_meta_keys, meta_key_tuples
from ._intent import check_meta_intent
from ._meta import copy_meta, in_layout_of, scale_meta
from ._spacing import unknown_spacing_plane

log = logging.getLogger(__name__)


def _geometry_backup(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The as-loaded grid entries, stored in the transform record for :meth:`inverse`."""
    out: dict[str, Any] = {}
    for key in ("original_affine", "spatial_shape"):
        v = meta.get(key)
        # np.asarray: MONAI's PydicomReader gives spatial_shape as a tuple, which
        # convert_to_numpy returns as it is
        out[key] = None if v is None else np.asarray(convert_to_numpy(v)).tolist()
    return out


def new_metatensor(data: torch.Tensor, like: MetaTensor) -> MetaTensor:
    """``data`` with an independent copy of ``like``'s meta and applied operations."""
    ops = [dict(op) for op in like.applied_operations]
    return MetaTensor(data, meta=copy_meta(like.meta), applied_operations=ops)


def untracked(x: torch.Tensor) -> torch.Tensor:
    """``x`` as MONAI's ``set_track_meta`` setting wants it (a plain tensor when off)."""
    return x.as_tensor() if isinstance(x, MetaTensor) and not get_track_meta() else x


class SuperResolution(InvertibleTransform):
    """Super-resolve a channel-first image ``(C, H, W)`` or ``(C, H, W, D)``.

    2-D images grow on both axes; 3-D images are super-resolved slice by slice in the plane of
    ``axes`` (optionally through-plane too, by multi-planar averaging), exactly as
    :func:`sr_domains.medical.upscale_nifti` does. A 1-channel model runs channel by channel;
    a model with ``in_channels == C`` sees all channels at once.

    The output is a float32 MetaTensor (float64 for float64 input) on the input's device
    (for numpy / plain tensor input too while MONAI tracks meta, with the identity as the
    input's affine, as MONAI's ``Zoom``) whose ``affine`` is
    ``affine @ T`` (voxel-centre rule: the corners of the field of view stay put) and whose
    ``pixdim``, ``original_affine`` and ``spatial_shape`` are updated to match, so
    ``SaveImage`` writes a file that lines up with the input with ``resample=False`` (current
    grid) and with ``resample=True`` (the file's own orientation, at the new resolution).

    A volume loaded without ``EnsureChannelFirst`` (``(X, Y, Z)``, no channel axis) is refused
    when its meta shows it (``original_channel_dim`` says no channel, the shape is the loaded
    ``spatial_shape``, the affine is 4x4) instead of being read as a 2-D image of ``X`` channels.

    The transform is invertible: :meth:`inverse` (and ``Invertd``) averages each ``s x s``
    block back onto the input grid and restores its geometry (invert probabilities, not label
    indices).

    Args:
        model: a built :class:`~sr_domains.models.SRModel`, an
            :class:`~sr_domains.inference.Upscaler`, any upscaling ``torch.nn.Module`` (with
            ``in_channels == channels``; its ``scale`` attribute, if any, must match), a shipped
            weights or architecture name, or None for the shipped default weights.
        weights: checkpoint path (``.safetensors`` of ours, or a public ``.pt``/``.pth``).
        scale: 2, 3 or 4 (default: the given model's scale, else 2).
        profile: intensity profile mapping the tensor's values to the model's input range,
            fitted once per image and inverted exactly on the output. Default ``"identity"``:
            the values are used as they are, which is right after
            ``ScaleIntensityRangePercentilesd(..., b_min=0, b_max=1)`` and similar. Pass
            ``"mr"`` (or any :mod:`sr_domains.intensity` recipe) for raw intensities; None
            means the model card's recipe, else ``"mr"``.
        axes: in-plane spatial axes of a 3-D image (0-based, channel axis excluded); default:
            the two with the finest spacing of the affine.
        through_plane: also upscale the slice axis of a 3-D image.
        channels: channels of the images it will see; chooses shipped weights and checks a
            checkpoint (a 1-channel model always works, channel by channel).
        tile, overlap, batch_size, device, amp: see :class:`~sr_domains.inference.Upscaler`
            (tile and overlap in LR pixels).
        progress: tqdm bars: one over the slices of each 3-D image, one over the tiles of
            a large 2-D image or slice.
        values: value fidelity (:class:`~sr_domains.value_domain.ValueOptions`); default on:
            outputs stay within the local input range (no ringing halo), non-negative channels
            stay non-negative and exact-zero background stays zero. ``ValueOptions(clamp=False)``
            returns the raw network output.
    """

    # MONAI annotates backend as an instance variable; it is per class here
    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]  # type: ignore[misc]

    def __init__(
        self,
        model: ModelArg = None,
        weights: str | os.PathLike[str] | None = None,
        *,
        scale: int | None = None,
        profile: ProfileArg = "identity",
        axes: Sequence[int] | None = None,
        through_plane: bool = False,
        channels: int = 1,
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int | None = None,
        device: str | torch.device | None = "auto",
        amp: str | bool | None = "auto",
        progress: bool = False,
        values: ValueOptions | None = None,
    ) -> None:
        self.upscaler = resolve_upscaler(
            model,
            weights,
            scale=scale,
            channels=channels,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            device=device,
            amp=amp,
            progress=progress,
        )
        self.scale = self.upscaler.scale
        self.progress = bool(progress)
        self.values = values
        self.profile = profile
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.through_plane = bool(through_plane)

    def __call__(self, img: Any) -> torch.Tensor:
        """Super-resolve one channel-first image (MetaTensor, tensor or array)."""
        return untracked(self.forward(img))

    def forward(self, img: Any) -> torch.Tensor:
        """:meth:`__call__` that returns a MetaTensor for a MetaTensor whatever
        ``set_track_meta`` says (the geometry is read from it either way). Other input (numpy,
        plain tensors) comes back as a MetaTensor while MONAI tracks meta, its affine grown
        from the identity (as MONAI's ``Zoom`` does), else as a plain tensor."""
        x = convert_to_tensor(img, track_meta=False)
        meta = img if isinstance(img, MetaTensor) else MetaTensor(x) if get_track_meta() else None
        if meta is not None:  # a NIfTI label/vector image: refused naming the file
            check_meta_intent(meta.meta)
        if x.ndim not in (3, 4):
            raise ConfigError(
                f"expected a channel-first (C, H, W) or (C, H, W, D) image, got shape "
                f"{tuple(x.shape)} (batched input: use SRInferer)"
            )
        spatial = tuple(int(n) for n in x.shape[1:])
        affine = None if meta is None else convert_to_numpy(meta.affine)
        if meta is not None:
            m = meta.meta
            check_channel_first(
                x.shape, affine, m.get("spatial_shape"), m.get("original_channel_dim")
            )
        axes = self.axes
        if axes is None and meta is not None:  # a NIfTI pixdim of 0: the file's order
            axes = unknown_spacing_plane(meta.meta, affine, spatial)
        geom = plan_geometry(spatial, affine, self.scale, axes, self.through_plane)
        arr = convert_to_numpy(x)
        name = None if meta is None else meta.meta.get("filename_or_obj")
        where = name if isinstance(name, (str, os.PathLike)) and str(name) else "the image"
        warn_outside_range(where, arr, None, self.values, "monai")  # a range the data leave
        prof = fit_image_profile(self.profile, self.upscaler.model, arr)
        c_in = self.upscaler.model.in_channels
        bar = None
        if geom.plane is not None:
            bar = progress_bar(slice_count(arr.shape, geom, c_in), "SuperResolution", self.progress)
        try:
            out_np = super_resolve(arr, self.upscaler, prof, geom, bar, self.values)
        finally:
            if bar is not None:
                bar.close()
        if out_np.dtype == np.float64 and arr.dtype != np.float64:  # MONAI's float32 convention
            out_np = out_np.astype(np.float32)  # (32-bit integers were computed in float64)
        out = torch.from_numpy(out_np).to(x.device)
        if meta is None:
            return out
        res = new_metatensor(out, meta)
        info = {"factors": list(geom.factors), **_geometry_backup(meta.meta)}
        scale_meta(res.meta, geom.factors, out.shape[1:])
        self.push_transform(res, orig_size=spatial, extra_info=info)
        return res

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Block-average back onto the input grid and restore its geometry."""
        op = self.pop_transform(data)
        info = op[TraceKeys.EXTRA_INFO]
        k = [round(float(f)) for f in info["factors"]]
        x = data.as_tensor() if isinstance(data, MetaTensor) else torch.as_tensor(data)
        pool = F.avg_pool2d if len(k) == 2 else F.avg_pool3d
        wide = x.dtype == torch.float64  # (the forward pass: float64 where float32 cannot hold)
        low = pool(x[None].double() if wide else x[None].float(), kernel_size=k, stride=k)[0]
        want = tuple(int(n) for n in op[TraceKeys.ORIG_SIZE])
        if tuple(low.shape[1:]) != want:
            raise ConfigError(f"cannot invert: grid {tuple(x.shape[1:])} is not {want} x {k}")
        if not isinstance(data, MetaTensor):
            return low
        res = new_metatensor(low, data)
        scale_meta(res.meta, [1.0 / f for f in k], want)
        for key in ("original_affine", "spatial_shape"):
            if info.get(key) is not None:  # in the layout the forward pass kept (a tuple...)
                res.meta[key] = in_layout_of(np.asarray(info[key]), data.meta.get(key))
        return res


class SuperResolutiond(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`SuperResolution` (one model shared by all ``keys``).

    Args:
        keys: keys of the images to super-resolve.
        model, weights: see :class:`SuperResolution`.
        meta_keys: meta dictionaries of data that are not MetaTensors (MONAI's meta-dict mode,
            e.g. under ``set_track_meta(False)``): their affine is read and an updated copy
            written back; default ``"<key>_<meta_key_postfix>"``.
        meta_key_postfix: see ``meta_keys`` (default ``"meta_dict"``).
        allow_missing_keys: don't raise if a key is missing.
        **kwargs: every other argument of :class:`SuperResolution` (``scale``, ``profile``,
            ``axes``, ``through_plane``, ``channels``, ``tile``, ``device``, ``progress``...).
    """

    backend = SuperResolution.backend

    def __init__(
        self,
        keys: KeysCollection,
        model: ModelArg = None,
        weights: str | os.PathLike[str] | None = None,
        *,
        meta_keys: KeysCollection | None = None,
        meta_key_postfix: str = DEFAULT_POSTFIX,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.meta_keys, self.meta_key_postfix = meta_key_tuples(
            self.keys, meta_keys, meta_key_postfix
        )
        self.sr = SuperResolution(model, weights, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, mk in iter_meta_keys(self.key_iterator, d, self.meta_keys, self.meta_key_postfix):
            apply_with_meta(self.sr.forward, d, key, mk)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.sr.inverse(d[key])
        return d


__all__ = ["SuperResolution", "SuperResolutiond", "new_metatensor", "untracked"]
