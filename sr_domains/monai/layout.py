"""The channel layout MONAI images must have here: channel-first ``(C, *spatial)``.

A volume loaded without ``EnsureChannelFirst`` (``(X, Y, Z)``, or a 4-D NIfTI's channel-last
``(X, Y, Z, C)``) would be read with a spatial axis as channels; the evidence is in the
meta data ``LoadImage`` writes (``original_channel_dim``, ``spatial_shape``, the affine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import GeometryError


def _no_channel(v: Any) -> bool:
    """MONAI's ``original_channel_dim`` marker of a file read without a channel axis
    (``"no_channel"``, or NaN since MONAI 1.3)."""
    if isinstance(v, str):
        return v == "no_channel"
    try:
        return bool(np.isnan(float(v)))  # float, numpy scalar, one-element tensor
    except (TypeError, ValueError):
        return False


def _last_channel(v: Any, rank: int) -> bool:
    """MONAI's ``original_channel_dim`` marker of a file whose channels are its last axis
    (``-1``, or the index after its ``rank`` spatial axes)."""
    if v is None or isinstance(v, str):
        return False
    try:
        d = float(v)
    except (TypeError, ValueError):
        return False
    return d in (-1.0, float(rank))


def check_channel_first(
    shape: Sequence[int],
    affine: np.ndarray | None,
    loaded_shape: Any,
    channel_dim: Any,
    hint: str = "",
    what: str = "an array",
) -> None:
    """Refuse a volume without its channel axis that would be read as a 2-D ``(C, H, W)`` image,
    and a channel-last array (a 4-D NIfTI as ``LoadImage`` gives it: ``(X, Y, Z, C)``, its
    ``original_channel_dim`` -1).

    ``LoadImage`` without ``EnsureChannelFirst`` gives a 3-D file as ``(X, Y, Z)``: read as
    ``(C, H, W)`` its last two axes would grow while the affine grows on its first two. The
    evidence cannot come from a genuine 2-D image: the loader says the file had no channel
    axis (``channel_dim``, the meta's ``original_channel_dim``), the whole array is the grid
    as loaded (``loaded_shape``, the meta's ``spatial_shape``) and the affine still describes
    all of that grid's axes (a slice squeezed by ``SqueezeDim`` has a 3x3 affine).

    Raises:
        GeometryError: naming ``what`` and the fix (``EnsureChannelFirst``), plus ``hint``.
    """
    if affine is None or loaded_shape is None:
        return
    grid = tuple(int(n) for n in np.asarray(loaded_shape).reshape(-1))
    dims = tuple(int(n) for n in shape)
    if _last_channel(channel_dim, len(grid)) and dims[:-1] == grid and dims[0] != dims[-1]:
        raise GeometryError(
            f"{what} of shape {dims} is channel-last: the grid as loaded {grid} with its "
            f"{dims[-1]} channel(s) behind it (original_channel_dim -1, a 4-D NIfTI read by "
            "LoadImage); read as channel-first (C, H, W[, D]) its first spatial axis would "
            "count as channels. Add EnsureChannelFirst(d) after LoadImage(d)"
            f"{hint}"
        )
    if not _no_channel(channel_dim):
        return
    rank = np.asarray(affine).shape[-1] - 1
    if len(dims) - 1 < rank == len(grid) and dims == grid:
        raise GeometryError(
            f"{what} of shape {dims} is the whole {len(grid)}-D grid of a file loaded without a "
            f"channel axis (spatial_shape {grid}, original_channel_dim: no channel): read as "
            "channel-first (C, H, W), its first spatial axis would count as channels and the "
            "affine would grow on the wrong axes. Add EnsureChannelFirst(d) after LoadImage(d)"
            f"{hint} (if the first axis really holds channels, set "
            "meta['original_channel_dim'] = 0)"
        )


__all__ = ["check_channel_first"]
