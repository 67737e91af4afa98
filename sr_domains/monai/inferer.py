"""``SRInferer``: a ``monai.inferers.Inferer`` for upscaling networks that fixes the affine.

MONAI's ``SlidingWindowInferer`` and ``SliceInferer`` accept a network whose output is larger
than its input, but copy the input's metadata unchanged onto the output: the result carries
the low-resolution affine, so a saved file covers ``s`` times the physical extent of the input.
``SRInferer`` runs the shared sr_domains engine (seam-free tiles, device, AMP) and updates the
affine by the voxel-centre rule.

>>> from sr_domains.monai import SRInferer
>>> inferer = SRInferer(tile=256)                                        # doctest: +SKIP
>>> sr = inferer(batch, model)          # (B, C, H, W[, D]) -> (B, C, H*s, W*s[, D])
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.inferers import Inferer
from monai.utils import convert_to_numpy
from torch import nn

from ..engine_build import scale_error
from ..errors import ConfigError
from ..inference import Upscaler
from ..intensity import cast_to_dtype
from ..models.base import SRModel
from ..options import check_tile, whole
from ..runtime import module_state_kept
from ..value_domain import ValueOptions
from ..value_range_check import warn_outside_range
from ._core import (
    Geometry,
    ModuleSR,
    ProfileArg,
    check_channel_first,
    declared_scale,
    fit_image_profile,
    plan_geometry,
    progress_bar,
    slice_count,
    super_resolve,
)
from ._intent import check_meta_intent
from ._meta import _rows, copy_meta, scale_meta
from ._spacing import unknown_spacing_plane

log = logging.getLogger(__name__)


def _tile_from(tile: int | None, roi_size: int | Sequence[int] | None) -> int | None:
    if roi_size is None:
        return tile
    if tile is not None:
        raise ConfigError("give tile or roi_size, not both")
    sizes = {int(roi_size)} if isinstance(roi_size, (int, np.integer)) else set(map(int, roi_size))
    if len(sizes) != 1:
        raise ConfigError(f"tiles are square (LR pixels); got roi_size={roi_size}")
    return sizes.pop()


_BATCH_HINT = (
    ", and give SRInferer a batch (B, C, H, W) or (B, C, H, W, D): image[None] for one image"
)


def _loaded_layout(meta: Mapping[str, Any], n: int, batched: bool) -> tuple[list[Any], list[Any]]:
    """Per item: ``spatial_shape`` and ``original_channel_dim`` as loaded (None when absent);
    an unbatched MetaTensor's entries hold for all its items."""
    grid, cdim = meta.get("spatial_shape"), meta.get("original_channel_dim")
    if not batched:
        return [grid] * n, [cdim] * n
    grids: list[Any] = [None] * n
    if grid is not None:
        rows = _rows(grid, n)
        grids = [rows[b] for b in range(n)]
    if cdim is None or isinstance(cdim, str):
        return grids, [cdim] * n
    flat = np.asarray(convert_to_numpy(cdim), dtype=object).reshape(-1)
    if len(flat) == 1:  # one value for the whole batch
        return grids, [flat[0]] * n
    return grids, list(flat) if len(flat) == n else [None] * n


def _item_names(meta: Mapping[str, Any] | None, n: int, batched: bool) -> list[str]:
    """Per item, the file a value-range warning names: its ``filename_or_obj`` (a collated
    batch holds one per item), else "the image" (or "batch item b" in a batch of several)."""
    name = None if meta is None else meta.get("filename_or_obj")
    names = list(name) if batched and isinstance(name, (list, tuple)) else [name] * n
    if len(names) != n:
        names = [None] * n
    unnamed = ["the image"] if n == 1 else [f"batch item {b}" for b in range(n)]
    return [
        str(v) if isinstance(v, (str, os.PathLike)) and str(v) else unnamed[b]
        for b, v in enumerate(names)
    ]


def _network_device(network: nn.Module, inputs: torch.Tensor) -> torch.device:
    for p in network.parameters():
        return p.device
    return inputs.device


class SRInferer(Inferer):
    """Tiled super-resolution inference for any upscaling network (MONAI ``Inferer``).

    ``inferer(inputs, network)`` takes a batch ``(B, C, H, W)`` (both axes grow) or
    ``(B, C, H, W, D)`` (slice by slice in the plane of ``axes``, optionally through-plane) and
    returns it super-resolved, as the same type. For every image it computes exactly what
    :func:`sr_domains.upscale_array` computes with the same network and tiling. For MetaTensor
    inputs the output's ``affine`` (batched or not), ``pixdim``, ``original_affine`` and
    ``spatial_shape`` follow the voxel-centre rule. Inputs are always batches (``image[None]``
    for one image); items that are exactly the loaded grid of a file without a channel axis
    (no ``EnsureChannelFirst``, or an unbatched volume) are refused.

    It runs under ``torch.inference_mode`` (use it in evaluators and inference, not as a
    trainer's inferer); the network's train/eval mode is restored afterwards.

    Args:
        scale: the network's scale; needed for plain modules without a ``scale`` attribute and
            checked against the attribute when both exist.
        tile: LR window size, >= 8 (default: the largest that fits the memory budget, as
            :class:`~sr_domains.inference.Upscaler`); ``roi_size`` is MONAI's name for it.
        overlap: LR pixels shared by adjacent windows (default: from an
            :class:`~sr_domains.models.SRModel`'s receptive field).
        batch_size: windows per forward pass (``sw_batch_size``).
        axes: in-plane spatial axes of 3-D inputs (default: the two finest of each affine, or
            ``(0, 1)`` for plain tensors).
        through_plane: also upscale the slice axis of 3-D inputs.
        profile: intensity profile, fitted once per image (default ``"identity"``: inputs are
            already in the network's range).
        out_channels, receptive_radius: describe a plain module (default: as many output
            channels as input channels; receptive field unknown).
        device: where the network runs (default: where its parameters are).
        amp: ``"auto"``, ``"off"``, ``"fp16"``, ``"bf16"``; plain modules are never autocast
            under ``"auto"``.
        progress: a tqdm bar over the slices of each 3-D batch (or the images of a 2-D
            batch), and one over the tiles of large slices.
        values: value fidelity, as in :class:`~sr_domains.monai.SuperResolution` (default
            on); pass ``ValueOptions(clamp=False)`` to score a raw network.
    """

    def __init__(
        self,
        scale: int | None = None,
        *,
        tile: int | None = None,
        roi_size: int | Sequence[int] | None = None,
        overlap: int | None = None,
        batch_size: int | None = None,
        axes: Sequence[int] | None = None,
        through_plane: bool = False,
        profile: ProfileArg = "identity",
        out_channels: int | None = None,
        receptive_radius: int | None = None,
        device: str | torch.device | None = None,
        amp: str | bool | None = "auto",
        progress: bool = False,
        values: ValueOptions | None = None,
    ) -> None:
        super().__init__()
        if overlap is not None and (not isinstance(overlap, (int, np.integer)) or overlap < 0):
            raise ConfigError(f"overlap is a number of LR pixels (int >= 0), got {overlap!r}")
        if isinstance(scale, str):  # SRInferer("sr-lite-gray-x2"): the model goes to the call
            raise ConfigError(
                f"SRInferer's first argument is the scale, got {scale!r}: pass the network "
                "to the call, inferer(inputs, network)"
            )
        self.scale = None if scale is None else whole("scale", scale, 2)
        self.tile = _tile_from(tile, roi_size)
        check_tile(self.tile)  # (refused here, not at the first batch)
        self.overlap = overlap
        self.batch_size = None if batch_size is None else whole("batch_size", batch_size, 1)
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.through_plane = bool(through_plane)
        self.profile = profile
        self.out_channels = out_channels
        self.receptive_radius = receptive_radius
        self.device = device
        self.amp = amp
        self.progress = bool(progress)
        self.values = values

    def upscaler(self, network: nn.Module, channels: int, device: torch.device) -> Upscaler:
        """The engine for ``network`` on images of ``channels`` channels."""
        declared = declared_scale(network)
        if self.scale is not None and declared is not None and declared != self.scale:
            raise scale_error(network, self.scale)  # (named as SuperResolution names it)
        scale = self.scale if self.scale is not None else declared
        if scale is None:
            raise ConfigError(
                f"{type(network).__name__} has no 'scale' attribute; pass SRInferer(scale=...)"
            )
        if isinstance(network, SRModel):
            model: SRModel = network
        else:
            model = ModuleSR(
                network, int(scale), channels, self.out_channels, self.receptive_radius
            )
        return Upscaler(
            model,
            tile=self.tile,
            overlap=self.overlap,
            batch_size=self.batch_size,
            device=device if self.device is None else self.device,
            amp=self.amp,
            progress=self.progress,
        )

    def __call__(  # type: ignore[override]  # MONAI: any callable; here an nn.Module
        self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Super-resolve a batch (a tensor, MetaTensor, or NumPy array, read as a tensor: the
        result is then a plain tensor); extra network arguments are not supported."""
        if args or kwargs:
            raise ConfigError("SRInferer calls the network with the image only; got extra args")
        if isinstance(inputs, np.ndarray):
            inputs = torch.as_tensor(inputs)
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(
                "SRInferer takes a batch as a torch.Tensor, MetaTensor or numpy.ndarray "
                f"(B, C, H, W[, D]), got {type(inputs).__name__}"
            )
        if isinstance(inputs, MetaTensor):  # a NIfTI label/vector image: refused
            check_meta_intent(inputs.meta, "the batch")
        if inputs.ndim not in (4, 5) or inputs.shape[0] == 0:
            raise ConfigError(
                f"expected a batch (B, C, H, W) or (B, C, H, W, D), got {tuple(inputs.shape)}"
            )
        with module_state_kept(network) as network:  # comes back as it came
            up = self.upscaler(network, int(inputs.shape[1]), _network_device(network, inputs))
            out, geom = self._run(inputs, up)
        t = torch.from_numpy(out).to(inputs.device)
        if not isinstance(inputs, MetaTensor):
            return t
        # copy_meta_from, not MetaTensor(t, meta=...): the constructor cannot read the
        # collated (per-item) entries of a batch of two or more images
        res = MetaTensor(t).copy_meta_from(inputs)
        res.meta = copy_meta(inputs.meta)
        res.applied_operations = copy.deepcopy(inputs.applied_operations)
        res.is_batch = inputs.is_batch
        scale_meta(res.meta, geom.factors, t.shape[2:])
        return res

    def _run(self, inputs: torch.Tensor, up: Upscaler) -> tuple[np.ndarray, Geometry]:
        x = convert_to_numpy(inputs.detach())
        affines = None
        grids: list[Any] = [None] * len(x)
        channel_dims: list[Any] = [None] * len(x)
        meta, batched = None, False
        if isinstance(inputs, MetaTensor):
            a = convert_to_numpy(inputs.affine).astype(np.float64)
            affines = a if a.ndim == 3 else np.broadcast_to(a, (len(x), *a.shape))
            if len(affines) != len(x):
                raise ConfigError(
                    f"a batch of {len(x)} images carries {len(affines)} affines (3-D volumes "
                    "folded into slices? use SRPrepareBatch(..., fold=False) with SRInferer)"
                )
            grids, channel_dims = _loaded_layout(inputs.meta, len(x), a.ndim == 3)
            meta, batched = inputs.meta, a.ndim == 3
        geoms: list[Geometry] = []
        for b, item in enumerate(x):
            aff = None if affines is None else affines[b]
            check_channel_first(
                item.shape, aff, grids[b], channel_dims[b], _BATCH_HINT, f"batch item {b}"
            )
            axes = self.axes
            if axes is None and meta is not None:  # a NIfTI pixdim of 0: the file's order
                axes = unknown_spacing_plane(meta, aff, item.shape[1:], b if batched else None)
            g = plan_geometry(item.shape[1:], aff, up.scale, axes, self.through_plane)
            if geoms and g != geoms[0]:
                raise ConfigError(
                    f"batch items choose different axes ({geoms[0].plane} vs {g.plane}); pass axes="
                )
            geoms.append(g)
        geom = geoms[0]
        for name, item in zip(_item_names(meta, len(x), batched), x):  # a range the data leave
            warn_outside_range(name, item, None, self.values, "monai")  # (once per item)
        c_in = up.model.in_channels
        if geom.plane is None:
            bar = progress_bar(len(x), "SRInferer", self.progress, unit="image")
        else:
            total = sum(slice_count(item.shape, geom, c_in) for item in x)
            bar = progress_bar(total, "SRInferer", self.progress)
        outs: list[np.ndarray] = []
        try:
            for item in x:
                prof = fit_image_profile(self.profile, up.model, item)
                outs.append(super_resolve(item, up, prof, geom, bar, self.values))
                if bar is not None and geom.plane is None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return cast_to_dtype(np.stack(outs), x.dtype), geom


__all__ = ["SRInferer"]
