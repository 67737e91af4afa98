"""Geometry metadata of MONAI MetaTensors under a change of grid resolution.

MONAI keeps three geometry entries in ``MetaTensor.meta``:

* ``affine``: the *current* voxel-centre -> world (RAS) matrix; ``SaveImage(resample=False)``
  writes it as the file's affine.
* ``original_affine`` and ``spatial_shape``: the grid *as loaded* from the file, before any
  Orientation/Spacing transform; ``SaveImage(resample=True)`` resamples the data back onto it.
* ``pixdim`` (NIfTI loads): voxel sizes, kept in step with ``affine`` by MONAI's spatial
  transforms.

Upscaling (factors ``s``) or downscaling (factors ``1/s``) a grid changes all of them by the one
voxel-centre rule (:func:`sr_domains.image.upscale_matrix`): the current affine becomes
``affine @ T``; the as-loaded grid is rescaled on the *file* axes that the current axes map to,
so ``SaveImage(resample=True)`` writes the file's own orientation at the new resolution.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch

from ..image import upscale_matrix

log = logging.getLogger(__name__)

#: A column of ``inv(original) @ affine`` counts as one-hot when its other entries are below
#: this fraction of its largest entry (tolerates float32 header round-off).
ONE_HOT_TOL = 1e-4
#: Relative distance below which a voxel-size ratio counts as an integer (or 1/integer).
SNAP_TOL = 1e-4


def pad_factors(factors: Sequence[float], rank: int) -> tuple[float, ...]:
    """Per-axis factors of the first ``len(factors)`` spatial axes, padded with 1 to ``rank``."""
    f = tuple(float(v) for v in factors)
    if len(f) > rank:
        raise ValueError(f"{len(f)} spatial axes but the affine describes only {rank}")
    return f + (1.0,) * (rank - len(f))


def _as_numpy(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _axis_major(v: Any) -> bool:
    """A collated tuple: MONAI's ``list_data_collate`` turns a tuple entry (``spatial_shape``
    of its ``PydicomReader``) into one ``(B,)`` tensor per element, axis by axis."""
    return (
        isinstance(v, (list, tuple))
        and len(v) > 0
        and all(isinstance(e, torch.Tensor) and e.ndim == 1 for e in v)
    )


def _rows(v: Any, batch: int) -> np.ndarray:
    """A per-item entry (batched or not) as ``(batch, n)`` rows."""
    if _axis_major(v):
        return np.stack([_as_numpy(e) for e in v], axis=-1).reshape(batch, -1)
    return _as_numpy(v).reshape(batch, -1)


def in_layout_of(new: np.ndarray, old: Any) -> Any:
    """``new`` (one item's value, or ``(B, ...)`` rows of a batch) in the container of ``old``:
    tensor, array, tuple, or a collated tuple (one tensor per element), so that MONAI's
    ``decollate_batch`` splits it as it would have split ``old``."""
    if _axis_major(old):
        return [torch.as_tensor(new[:, i]) for i in range(new.shape[-1])]
    if isinstance(old, tuple):
        return tuple(new.tolist())
    return torch.as_tensor(new) if isinstance(old, torch.Tensor) else new


def _axis_map(original: np.ndarray, affine: np.ndarray) -> list[int] | None:
    """For each current index axis, the file index axis it runs along, or None when the current
    grid is not a permutation/flip/rescale of the file grid (e.g. after a rotation)."""
    try:
        m = np.linalg.solve(original, affine)
    except np.linalg.LinAlgError:
        return None
    r = m.shape[0] - 1
    out: list[int] = []
    for i in range(r):
        col = np.abs(m[:r, i])
        big = col > ONE_HOT_TOL * max(float(col.max()), 1e-300)
        if int(big.sum()) != 1:
            return None
        out.append(int(np.argmax(col)))
    return out if len(set(out)) == r else None


def _snap(v: float) -> float:
    """``v`` rounded to the nearest integer or integer reciprocal when within float noise."""
    k = float(round(v)) if v >= 1 else 1.0 / max(1, round(1.0 / v))
    return k if abs(v - k) <= SNAP_TOL * k else v


def rescale_original(
    original: np.ndarray,
    spatial_shape: Sequence[int] | None,
    affine: np.ndarray,
    factors: Sequence[float],
    new_affine: np.ndarray,
    new_shape: Sequence[int],
) -> tuple[np.ndarray, np.ndarray | None]:
    """The as-loaded ``(original_affine, spatial_shape)`` after the current grid (``affine``)
    was rescaled by ``factors`` to ``(new_affine, new_shape)``.

    When the current grid is an axis permutation/flip/rescale of the file grid (after
    ``Orientation``, ``Spacing``, crops, pads), each file axis that a rescaled axis maps to
    gets the *new* voxel size of that axis (the file's own on the others), by the voxel-centre
    rule: ``SaveImage(resample=True)`` then writes the file's orientation and field of view at
    the resolution the model produced -- not the file's resolution times ``s`` when
    ``Spacing`` had changed it first. A fractional size is rounded to whole voxels and the
    voxel size adjusted so the field of view stays exact (so an odd-sized file made LR and
    super-resolved again comes back to its own grid). After a rotation no axis map exists;
    the current grid then becomes the new "original", so ``SaveImage(resample=True)`` writes
    it as it is.
    """
    o = np.asarray(original, np.float64)
    r = o.shape[0] - 1
    f = pad_factors(factors, r)
    a = np.asarray(affine, np.float64)
    amap = _axis_map(o, a) if o.shape == a.shape else None
    if amap is not None:
        new = np.asarray(new_affine, np.float64)
        fo = [1.0] * r
        for i, j in enumerate(amap):
            if f[i] != 1.0:
                fo[j] = _snap(float(np.linalg.norm(o[:r, j]) / np.linalg.norm(new[:r, i])))
        shape = None
        if spatial_shape is not None:
            new_n = [int(n) for n in spatial_shape]
            for j in range(min(r, len(new_n))):
                if fo[j] != 1.0:  # whole voxels, exact field of view
                    n = new_n[j]
                    new_n[j] = max(1, int(np.floor(n * fo[j] + 0.5)))
                    fo[j] = new_n[j] / n
            shape = np.asarray(new_n, np.int64)
        return o @ upscale_matrix(fo), shape
    log.info(
        "the current grid is not an axis permutation of the loaded file's grid; "
        "original_affine/spatial_shape now describe the current grid"
    )
    shape = None if spatial_shape is None else np.asarray(new_shape, np.int64)
    return np.asarray(new_affine, np.float64), shape


def scale_meta(meta: dict[str, Any], factors: Sequence[float], new_shape: Sequence[int]) -> None:
    """Update ``meta`` (of a MetaTensor, batched or not) in place for a grid rescaled by
    ``factors`` (per spatial axis) to ``new_shape`` (spatial, without batch/channel)."""
    affine = meta.get("affine")
    if affine is None:
        return
    a = _as_numpy(affine).astype(np.float64)
    batched = a.ndim == 3
    a3 = a if batched else a[None]
    r = a3.shape[-1] - 1
    t = upscale_matrix(pad_factors(factors, r))
    new = a3 @ t
    meta["affine"] = torch.as_tensor(new if batched else new[0], dtype=torch.float64)
    if "pixdim" in meta:
        pix = np.array(_as_numpy(meta["pixdim"]), dtype=np.float64, copy=True)
        spacing = np.linalg.norm(new[:, :r, :r], axis=1)  # (B, r)
        p2 = pix.reshape(-1, pix.shape[-1])
        k = min(r, p2.shape[-1] - 1)
        p2[:, 1 : 1 + k] = spacing[:, :k]
        pix = p2.reshape(pix.shape)
        meta["pixdim"] = in_layout_of(pix.astype(_as_numpy(meta["pixdim"]).dtype), meta["pixdim"])
    shapes = meta.get("spatial_shape")
    if meta.get("original_affine") is None:
        # No file affine (e.g. PNG): writers resize to spatial_shape, in the current axis order.
        if shapes is not None:
            s = _rows(shapes, len(a3)).astype(np.float64)
            f = np.ones(s.shape[-1])
            k = min(len(factors), len(f))
            f[:k] = np.asarray(factors, np.float64)[:k]
            scaled = s * f
            if not np.allclose(scaled, np.round(scaled), atol=1e-6):
                scaled = np.broadcast_to(np.asarray(new_shape, np.float64), s.shape)
            out = np.round(scaled).astype(np.int64)
            meta["spatial_shape"] = in_layout_of(out if batched else out[0], shapes)
        return
    orig = _as_numpy(meta["original_affine"]).astype(np.float64)
    o3 = orig if batched else orig[None]
    s3 = None if shapes is None else _rows(shapes, len(o3))
    out_o, out_s = [], []
    for b in range(len(o3)):
        o_new, s_new = rescale_original(
            o3[b], None if s3 is None else s3[b], a3[b], factors, new[b], new_shape
        )
        out_o.append(o_new)
        out_s.append(s_new)
    o_arr = np.stack(out_o) if batched else out_o[0]
    meta["original_affine"] = in_layout_of(o_arr, meta["original_affine"])
    if shapes is not None and all(s is not None for s in out_s):
        done = cast("list[np.ndarray]", out_s)  # (none is None)
        s_arr = np.stack(done) if batched else done[0]
        meta["spatial_shape"] = in_layout_of(s_arr, shapes)


def copy_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a meta dict whose arrays/tensors can be edited without touching the input."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().clone()
        elif isinstance(v, np.ndarray):
            out[k] = v.copy()
        else:
            out[k] = v
    return out


__all__ = ["copy_meta", "in_layout_of", "pad_factors", "rescale_original", "scale_meta"]
