"""Array-level core shared by the MONAI transform and inferer (numpy/torch only, no MONAI).

One channel-first image ``(C, *spatial)`` in, its SR array out, through the shared engine:
2-D images go through :meth:`~sr_domains.inference.Upscaler.upscale` (exactly what
:func:`~sr_domains.array_api.upscale_array` does), 3-D images slice by slice through
:func:`sr_domains.medical.volume.upscale_volume` (per channel with a 1-channel model) or plane by
plane with all channels at once (a model whose ``in_channels`` equals ``C``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engine_build import build_upscaler, scale_error
from ..errors import ConfigError, GeometryError
from ..inference import Upscaler
from ..intensity import IntensityProfile, check_pixel_array, profile_from_any, work_dtype
from ..medical.common import card_recipe
from ..medical.geometry import check_axes, default_axes, scale_factors, voxel_sizes
from ..medical.volume import upscale_volume
from ..models.base import BaseSRConfig, SRModel
from ..value_domain import ValueOptions, array_reader, build_rules
from ..value_facts import band_extremes, residue_floor, zero_facts
from ..value_ops import keep_infinite
from .layout import check_channel_first

log = logging.getLogger(__name__)

ModelArg = SRModel | Upscaler | nn.Module | str | None
ProfileArg = str | IntensityProfile | dict[str, Any] | None

#: Normalized intensities whose 1st..99th percentile leave this range trigger a warning.
EXPECTED_RANGE = (-0.5, 1.5)


class ModuleSR(SRModel):
    """Any upscaling ``nn.Module`` posing as an :class:`SRModel` for the shared engine.

    Its receptive field is unknown unless given (tiles then blend over a fixed margin, see
    :func:`~sr_domains.inference.resolve_tiling`), and autocast stays off unless forced.
    """

    arch = "module"
    fp16_safe = False
    bf16_safe = False

    def __init__(
        self,
        net: nn.Module,
        scale: int,
        in_channels: int,
        out_channels: int | None = None,
        receptive_radius: int | None = None,
    ) -> None:
        super().__init__(
            BaseSRConfig(in_channels=in_channels, out_channels=out_channels, scale=scale)
        )
        self.net = net
        self._radius = receptive_radius
        #: what messages call it (:func:`~sr_domains.model_label.model_label`): its class name
        self.network_name = type(net).__name__

    def receptive_radius(self) -> int | None:
        return self._radius

    def body(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        n, _, h, w = x.shape
        want = (n, self.out_channels, h * self.scale, w * self.scale)
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != want:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ConfigError(
                f"{type(self.net).__name__} returned {got} for an input of {tuple(x.shape)}; "
                f"expected {want} (set scale= / out_channels= to what the network does)"
            )
        return y


def declared_scale(net: nn.Module) -> int | None:
    """The ``scale`` attribute a network declares (SRModel and many SR nets have one)."""
    s = getattr(net, "scale", None)
    return int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None


def resolve_upscaler(
    model: ModelArg,
    weights: str | os.PathLike[str] | None,
    *,
    scale: int | None = None,
    channels: int = 1,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = "auto",
    amp: str | bool | None = "auto",
    progress: bool = False,
) -> Upscaler:
    """An :class:`Upscaler` for images of ``channels`` channels.

    ``model`` is an :class:`Upscaler`, an :class:`SRModel`, any upscaling ``nn.Module`` (its
    declared ``scale`` must match), a shipped weights or architecture name, or None for the
    shipped default (see :func:`sr_domains.engine_build.build_upscaler`). ``scale`` None
    means the given model's scale, else 2.
    """
    if scale is None:
        if isinstance(model, (SRModel, Upscaler)):
            scale = model.scale
        elif isinstance(model, nn.Module):
            scale = declared_scale(model)
        scale = 2 if scale is None else int(scale)
    if isinstance(model, nn.Module) and not isinstance(model, SRModel):
        if weights is not None:
            raise ConfigError("weights= loads an sr_domains checkpoint; pass model=None or a name")
        declared = declared_scale(model)
        if declared is not None and declared != scale:
            raise scale_error(model, scale)
        model = ModuleSR(model, scale, in_channels=channels)
    return build_upscaler(
        model,
        weights,
        scale=scale,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        amp=amp,
        progress=progress,
        n_bands=None if channels == 1 else channels,  # 1 channel: planes go to any model
    )


@dataclass(frozen=True)
class Geometry:
    """Which spatial axes grow, by how much.

    Attributes:
        factors: per spatial axis (1 = unchanged).
        plane: the in-plane axis pair of a 3-D image (None for 2-D).
        through_plane: the slice axis of a 3-D image grows too.
    """

    factors: tuple[float, ...]
    plane: tuple[int, int] | None
    through_plane: bool = False


def plan_geometry(
    spatial_shape: Sequence[int],
    affine: np.ndarray | None,
    scale: int,
    axes: Sequence[int] | None = None,
    through_plane: bool = False,
) -> Geometry:
    """Resolve the axes of a channel-first image's spatial part (2-D or 3-D).

    3-D default: the two axes with the finest spacing of ``affine`` (as in
    :mod:`sr_domains.medical`; a NIfTI ``pixdim`` of 0 is resolved by the callers into
    ``axes``: :func:`~sr_domains.monai._spacing.unknown_spacing_plane`); 2-D images always grow
    on both axes.
    """
    nd = len(spatial_shape)
    if affine is not None and not np.isfinite(np.asarray(affine, np.float64)).all():
        raise GeometryError(f"the image's affine holds NaN or inf values:\n{np.asarray(affine)}")
    if nd == 2:
        if axes is not None and tuple(sorted(int(a) for a in axes)) != (0, 1):
            raise ConfigError(f"a 2-D image is upscaled on both axes; got axes={tuple(axes)}")
        if through_plane:
            raise ConfigError("through_plane needs a 3-D image (C, H, W, D)")
        return Geometry((float(scale), float(scale)), None)
    if nd != 3:
        raise ConfigError(
            f"expected a channel-first 2-D (C, H, W) or 3-D (C, H, W, D) image, "
            f"got {nd} spatial axes {tuple(spatial_shape)}"
        )
    if axes is not None:
        ax = check_axes(axes)
    else:
        spacing = [1.0, 1.0, 1.0]
        if affine is not None:
            a = np.asarray(affine, np.float64)
            if a.shape[-1] < 4:
                raise GeometryError(f"a 3-D image needs a 4x4 affine, got {a.shape}")
            spacing = list(voxel_sizes(a)[:3])
        ax = default_axes(spacing, spatial_shape)
    return Geometry(scale_factors(ax, scale, through_plane), ax, through_plane)


def fit_image_profile(spec: ProfileArg, model: SRModel, image: np.ndarray) -> IntensityProfile:
    """Fit the intensity profile once on a whole channel-first image.

    ``spec`` None means the model card's recipe, else ``mr``. Per-band recipes
    (``percentile``) get one range per channel. Warns when the normalized intensities are far
    from the ``[0, 1]`` range the models are trained on (e.g. raw intensities with
    ``identity``). Refuses what is not real intensities (a boolean mask, complex values, an
    empty image: :func:`~sr_domains.intensity.check_pixel_array`).
    """
    check_pixel_array(image, "image")
    chosen = spec if spec is not None else (card_recipe(model) or "mr")
    finite = np.isfinite(image) if image.dtype.kind == "f" else None
    valid = None if finite is None or finite.all() else finite
    prof = profile_from_any(chosen, image, dtype=image.dtype, valid_mask=valid)
    c = image.shape[0]
    if prof.n_bands not in (1, c):
        raise ConfigError(f"profile {prof.recipe!r} has {prof.n_bands} bands, the image has {c}")
    flat = image.reshape(c, -1)
    sample = prof.normalize(flat[:, :: max(1, flat.shape[1] // 100_000)])
    sample = sample[np.isfinite(sample)]
    if sample.size:
        lo, hi = np.percentile(sample, [1, 99])
        if lo < EXPECTED_RANGE[0] or hi > EXPECTED_RANGE[1]:
            log.warning(
                "after profile %r the intensities span %.3g..%.3g (1st..99th percentile); the "
                "models expect roughly 0..1: scale intensities first (e.g. "
                "ScaleIntensityRangePercentilesd) or pass profile='mr'",
                prof.recipe,
                lo,
                hi,
            )
    return prof


def _band(profile: IntensityProfile, i: int) -> IntensityProfile:
    if profile.n_bands == 1:
        return profile
    return IntensityProfile(profile.recipe, (profile.scale[i],), (profile.offset[i],))


def _mask_invalid(out: np.ndarray, image: np.ndarray, scale: int) -> np.ndarray:
    """NaN where the input pixel was NaN, +-inf where it was +-inf (the rule of
    ``upscale_array``)."""
    valid = np.isfinite(image)
    if valid.all():
        return out
    if out.shape[0] != valid.shape[0]:
        valid = np.broadcast_to(valid.all(axis=0, keepdims=True), (out.shape[0], *valid.shape[1:]))
    up = valid.repeat(scale, axis=-2).repeat(scale, axis=-1)
    res = np.where(up, out, np.float32(np.nan))
    keep_infinite(res, image, scale)
    return res


def slice_count(shape: Sequence[int], geom: Geometry, in_channels: int) -> int:
    """2-D slices the engine runs for one channel-first 3-D image (the progress bar's unit):
    per channel for a 1-channel model, once for a model taking all channels."""
    c, *spatial = (int(n) for n in shape)
    if geom.plane is None:
        return 1
    if geom.through_plane:
        planes = sum(spatial)
    else:
        (k,) = {0, 1, 2} - set(geom.plane)
        planes = spatial[k]
    return planes * (c if in_channels == 1 else 1)


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "slice") -> Any:
    """A tqdm bar (kept on screen when done) or None when ``enabled`` is False."""
    if not enabled or total < 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


class _CountingUpscaler:
    """An :class:`Upscaler` stand-in that advances a progress bar by the slices of every call
    (a 1-channel model gets stacks of slices as bands; a joint model one slice at a time)."""

    def __init__(self, upscaler: Upscaler, bar: Any) -> None:
        self._up = upscaler
        self._bar = bar

    def __getattr__(self, name: str) -> Any:
        return getattr(self._up, name)

    def upscale(self, array: np.ndarray, **kwargs: Any) -> np.ndarray:
        out = self._up.upscale(array, **kwargs)
        self._bar.update(int(array.shape[0]) if self._up.model.in_channels == 1 else 1)
        return out


def image_rules(x: np.ndarray, values: ValueOptions | None, joint: bool) -> list[Any]:
    """Value-fidelity rules (:mod:`sr_domains.value_domain`) per channel of a float image
    (one rules object for all channels when the model takes them ``joint``ly): local-range
    envelope, non-negative channels stay non-negative, zero background stays zero (float
    resampling residues within :data:`~sr_domains.value_facts.ZERO_TOLERANCE` included)."""
    if joint:
        flat = x.reshape(x.shape[0], -1)
        return [build_rules(values, residue_floor(*band_extremes(flat), floating=True))]
    out = []
    for i in range(x.shape[0]):
        z = zero_facts(x[i])  # resampling residues near 0 count as 0 (ZERO_TOLERANCE)
        out.append(build_rules(values, [z.non_negative_minimum], zero=z))
    return out


def super_resolve(
    image: np.ndarray,
    upscaler: Upscaler,
    profile: IntensityProfile,
    geom: Geometry,
    bar: Any = None,
    values: ValueOptions | None = None,
) -> np.ndarray:
    """SR of one channel-first image ``(C, *spatial)`` in the image's units: float32, or
    float64 for values float32 cannot hold (:func:`~sr_domains.intensity.work_dtype`).

    ``bar`` (a tqdm bar, see :func:`progress_bar`) advances by the 2-D slices of a 3-D image
    as they are done (:func:`slice_count` in all). ``values``: value-fidelity options
    (default: on, see :func:`image_rules`).
    """
    c = image.shape[0]
    s = upscaler.scale
    x = np.asarray(image)
    x = x.astype(work_dtype(x.dtype), copy=False)
    c_in = upscaler.model.in_channels
    if geom.plane is None and c == 1 and c_in > 1:  # a gray image through a colour model
        (rules,) = image_rules(x, values, joint=True)
        rep = np.repeat(x, c_in, axis=0)
        out = upscaler.upscale(rep, profile=profile, rules=None).mean(axis=0, keepdims=True)
        if rules is not None and rules.active:
            rules.apply(out, array_reader(x), x.shape[1:], 0, s)
        return _mask_invalid(out, x, s)
    if geom.plane is None:
        (rules,) = image_rules(x, values, joint=True)
        return _mask_invalid(upscaler.upscale(x, profile=profile, rules=rules), x, s)
    engine: Any = upscaler if bar is None else _CountingUpscaler(upscaler, bar)
    if c_in == 1 or c == 1:  # per channel (a colour model gets each plane repeated)
        per_channel = image_rules(x, values, joint=False)
        vols = [
            upscale_volume(
                x[i],
                engine,
                profile=_band(profile, i),
                axes=geom.plane,
                through_plane=geom.through_plane,
                rules=per_channel[i],
            )
            for i in range(c)
        ]
        return np.stack(vols)
    upscaler.band_mode(c)  # raises unless in_channels == C
    if geom.through_plane:
        raise ConfigError(
            "through-plane SR runs a 1-channel model per channel; a model taking all "
            f"{c} channels supports in-plane SR only"
        )
    (rules,) = image_rules(x, values, joint=True)
    (k,) = {0, 1, 2} - set(geom.plane)
    stack = np.moveaxis(x, 1 + k, 1)  # (C, n_k, a, b): planes spanned by geom.plane
    n, a, b = stack.shape[1:]
    out = np.empty((upscaler.out_channels(c), n, a * s, b * s), x.dtype)
    for j in range(n):
        plane = np.ascontiguousarray(stack[:, j])
        out[:, j] = _mask_invalid(engine.upscale(plane, profile=profile, rules=rules), plane, s)
    return np.moveaxis(out, 1, 1 + k)


__all__ = [
    "Geometry",
    "ModuleSR",
    "check_channel_first",
    "declared_scale",
    "fit_image_profile",
    "image_rules",
    "plan_geometry",
    "progress_bar",
    "resolve_upscaler",
    "slice_count",
    "super_resolve",
]
