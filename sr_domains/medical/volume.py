"""Slice-wise 2-D super-resolution of volumes, shared by the NIfTI, DICOM and MONAI paths.

In-plane mode: every plane spanned by ``axes`` (the slices along the remaining axis) goes
through the 2-D model; the two in-plane axes grow by ``s``, the slice axis is untouched.

Through-plane mode (all three axes grow by ``s``), *multi-planar averaging*: the volume is
super-resolved three times, once per family of orthogonal planes ((i, j), (i, k), (j, k)); each
result is brought to the full grid by linear interpolation along the axis its planes did not
cover (voxel-centre rule, edges clamped), and the three are averaged. Every axis is thus
super-resolved in two of the three estimates. On strongly anisotropic data the model sees
stretched pixels in the planes that contain the slice axis; treat the result as a smooth,
geometry-exact estimate, not as measured detail.

The intensity profile is fitted once per volume by the caller and used for every plane.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..inference import Upscaler
from ..intensity import IntensityProfile, work_dtype
from ..value_domain import ValueRules, array_reader
from ..value_facts import pin_hits
from ..value_ops import restore_footprint
from .geometry import check_axes, default_axes, upscaled_affine, voxel_sizes

log = logging.getLogger(__name__)

#: Slices handed to the upscaler at once (bounds the temporary memory of a chunk).
CHUNK = 16


def upscale_planes(
    planes: np.ndarray,
    upscaler: Upscaler,
    profile: IntensityProfile,
    valid: np.ndarray | None = None,
    rules: ValueRules | None = None,
) -> np.ndarray:
    """Super-resolve a stack of 2-D planes ``(N, H, W)`` -> ``(N, H*s, W*s)`` float32 (float64
    for planes float32 cannot hold: :func:`~sr_domains.intensity.work_dtype`).

    A single-channel model runs plane by plane; a model with more input channels gets each
    plane repeated on all channels and its output channels are averaged. ``rules`` (value
    fidelity, one band) are applied to every plane.
    """
    n, h, w = planes.shape
    s = upscaler.scale
    out = np.empty((n, h * s, w * s), work_dtype(planes.dtype))
    c_in = upscaler.model.in_channels
    for i0 in range(0, n, CHUNK):
        chunk = planes[i0 : i0 + CHUNK]
        mask = None if valid is None else valid[i0 : i0 + CHUNK]
        if c_in == 1:
            out[i0 : i0 + len(chunk)] = upscaler.upscale(
                chunk, profile=profile, valid_mask=mask, rules=rules
            )
            continue
        for j, plane in enumerate(chunk):
            rep = np.repeat(plane[None], c_in, axis=0)
            m = None if mask is None else mask[j]
            avg = upscaler.upscale(rep, profile=profile, valid_mask=m).mean(axis=0)[None]
            if rules is not None and rules.active:
                read = array_reader(plane[None], None if m is None else m[None])
                rules.apply(avg, read, (h, w), 0, s)
            out[i0 + j] = avg[0]
    return out


def upscale_stack(
    planes: np.ndarray,
    upscaler: Upscaler,
    profile: IntensityProfile,
    rules: ValueRules | None = None,
) -> np.ndarray:
    """Super-resolve planes ``(N, H, W)`` (physical units) -> ``(N, H*s, W*s)`` (dtype: see
    :func:`upscale_planes`).

    Non-finite voxels are invalid: filled before the network and written back unchanged over
    their nearest-neighbour footprint (:func:`restore_footprint`). ``rules``: value fidelity.
    """
    finite = np.isfinite(planes)
    valid = None if finite.all() else finite
    out = upscale_planes(planes, upscaler, profile, valid, rules)
    if valid is not None:
        s = upscaler.scale
        restore_footprint(out, planes, (1, s, s))
    return out


def _sr_along(
    volume: np.ndarray,
    upscaler: Upscaler,
    profile: IntensityProfile,
    plane: tuple[int, int],
    valid: np.ndarray | None,
    rules: ValueRules | None = None,
) -> np.ndarray:
    """SR of every plane spanned by ``plane`` (two axes of a 3-D volume)."""
    (k,) = {0, 1, 2} - set(plane)
    order = (k, *plane)
    stack = np.transpose(volume, order)
    vstack = None if valid is None else np.transpose(valid, order)
    out = upscale_planes(np.ascontiguousarray(stack), upscaler, profile, vstack, rules)
    return np.transpose(out, np.argsort(order))


def _linear_along(volume: np.ndarray, axis: int, scale: int) -> np.ndarray:
    """Linear interpolation along one axis by ``scale`` (voxel-centre rule, edges clamped)."""
    moved = np.moveaxis(volume, axis, -1)
    lead = moved.shape[:-1]
    t = torch.from_numpy(np.ascontiguousarray(moved.reshape(1, -1, moved.shape[-1])))
    up = torch.nn.functional.interpolate(
        t, size=moved.shape[-1] * scale, mode="linear", align_corners=False
    )
    return np.moveaxis(up.numpy().reshape(*lead, -1), -1, axis)


def upscale_volume(
    volume: np.ndarray,
    upscaler: Upscaler,
    *,
    profile: IntensityProfile,
    axes: Sequence[int] = (0, 1),
    through_plane: bool = False,
    rules: ValueRules | None = None,
) -> np.ndarray:
    """Super-resolve one 3-D volume (values in stored/physical units).

    Args:
        volume: ``(n0, n1, n2)`` array; NaN/inf voxels are treated as invalid and come back
            unchanged over their nearest-neighbour footprint.
        upscaler: the bound model.
        profile: intensity profile fitted once on the whole volume (or series of volumes).
        axes: the in-plane axis pair.
        through_plane: also upscale the slice axis (multi-planar averaging, see module docs).
        rules: value fidelity (:class:`~sr_domains.value_domain.ValueRules`), applied to every
            plane; pinned values (exact-zero background) are restored over their 3-D footprint.

    Returns:
        the volume with the chosen axes ``s`` times larger: float32, or float64 for values
        float32 cannot hold (:func:`~sr_domains.intensity.work_dtype`).
    """
    if volume.ndim != 3:
        raise ConfigError(f"expected a 3-D volume, got shape {volume.shape}")
    ax = check_axes(axes)
    s = upscaler.scale
    vol = np.asarray(volume, work_dtype(np.asarray(volume).dtype))
    finite = np.isfinite(vol)
    valid = None if finite.all() else finite
    if not through_plane:
        out = _sr_along(vol, upscaler, profile, ax, valid, rules)
        factors = [s if a in ax else 1 for a in range(3)]
    else:
        if min(vol.shape) < 2:
            raise ConfigError(f"through-plane SR needs >= 2 voxels on every axis, got {vol.shape}")
        out = np.zeros(tuple(n * s for n in vol.shape), vol.dtype)
        for plane in ((0, 1), (0, 2), (1, 2)):
            (k,) = {0, 1, 2} - set(plane)
            est = _sr_along(vol, upscaler, profile, plane, valid, rules)
            out += _linear_along(est, k, s)
        out /= 3.0
        factors = [s, s, s]
        if rules is not None and rules.envelope == 0.0 and finite.any():
            # strict envelope (the default): the mean of three estimates within the input's
            # range can leave it by one rounding step ((v + v + v) / 3 != v); a widened or
            # disabled envelope allows more, so it is left as the user asked
            np.clip(out, vol[finite].min(), vol[finite].max(), out=out)
        for v in {p for pins in (rules.pinned if rules else ()) for p in pins}:
            # linear blending moved them
            restore_footprint(out, vol, factors, pin_hits(vol, v, rules.pin_tol if rules else 0))
    if valid is not None:
        restore_footprint(out, vol, factors)
    return out


def upscale_image(
    data: np.ndarray,
    affine: np.ndarray,
    upscaler: Upscaler,
    *,
    profile: IntensityProfile,
    axes: Sequence[int] | None = None,
    through_plane: bool = False,
    rules: ValueRules | Sequence[ValueRules | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Array + affine in, SR array + affine out: the reusable core of every volume writer.

    Args:
        data: ``(n0, n1, n2)`` or ``(n0, n1, n2, *extra)`` array; the trailing axes (time,
            echoes, ...) are processed volume by volume with the same profile.
        affine: 4x4 voxel-centre affine of the first three axes.
        upscaler, profile, through_plane: see :func:`upscale_volume`.
        rules: value fidelity (:func:`upscale_volume`): one for every volume, or one per volume
            in file order (the 4th axis fastest, as NIfTI stores them).
        axes: in-plane axes; default: the two with the finest spacing (:func:`default_axes`).

    Returns:
        ``(sr_data, new_affine)`` (dtype: see :func:`upscale_volume`); the world corners of
        the grid are unchanged.
    """
    if data.ndim < 3:
        raise ConfigError(f"expected at least 3 axes, got shape {data.shape}")
    ax = check_axes(axes) if axes is not None else default_axes(voxel_sizes(affine), data.shape)
    extra = data.shape[3:]
    flat = data.reshape(*data.shape[:3], -1, order="F")  # volumes in file order
    n = flat.shape[-1]
    if rules is None or isinstance(rules, ValueRules):
        per: list[ValueRules | None] = [rules] * n
    else:
        per = list(rules)
    if len(per) != n:
        raise ConfigError(f"{len(per)} value rules for {n} volumes")
    out: np.ndarray | None = None
    for v in range(n):
        if n > 1:
            log.info("volume %d/%d", v + 1, n)
        sr = upscale_volume(
            flat[..., v],
            upscaler,
            profile=profile,
            axes=ax,
            through_plane=through_plane,
            rules=per[v],
        )
        if out is None:
            out = np.empty((*sr.shape, n), sr.dtype)
        out[..., v] = sr
    assert out is not None
    out = out.reshape(*out.shape[:3], *extra, order="F")
    return out, upscaled_affine(affine, ax, upscaler.scale, through_plane)


__all__ = [
    "restore_footprint",
    "upscale_image",
    "upscale_planes",
    "upscale_stack",
    "upscale_volume",
]
