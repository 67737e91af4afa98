"""In-memory arrays in, super-resolved arrays out: :func:`upscale_array` (also
``sr_domains.upscale_array``), the convenience built on :class:`~sr_domains.inference.Upscaler`
(same path as the file writers, so tiled and whole-image results come from identical code)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, TypedDict, overload

import numpy as np
import torch

from .errors import ConfigError
from .inference import Upscaler, default_profile
from .intensity import IntensityProfile, cast_to_dtype, check_pixel_array, profile_from_any
from .models.base import SRModel
from .value_domain import ValueOptions, build_rules
from .value_facts import band_extremes, residue_floor

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

log = logging.getLogger(__name__)


class ArrayKeywords(TypedDict, total=False):
    """The keywords of :func:`upscale_array` other than ``return_mask`` (they type its
    overloads; the implementation documents them)."""

    profile: str | IntensityProfile | None
    valid_mask: np.ndarray | None
    nodata: float | None
    out_dtype: np.dtype | type | str | None
    tile: int | None
    overlap: int | None
    batch_size: int | None
    device: str | torch.device | None
    amp: str | bool | None
    progress: bool
    values: ValueOptions | None
    backend: str | None
    threads: int | None
    max_memory: int | str | None


@overload
def upscale_array(
    array: np.ndarray,
    model: SRModel,
    *,
    return_mask: Literal[False] = False,
    **keywords: Unpack[ArrayKeywords],
) -> np.ndarray: ...


@overload
def upscale_array(
    array: np.ndarray,
    model: SRModel,
    *,
    return_mask: Literal[True],
    **keywords: Unpack[ArrayKeywords],
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def upscale_array(
    array: np.ndarray,
    model: SRModel,
    *,
    return_mask: bool = False,
    **keywords: Unpack[ArrayKeywords],
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...


def upscale_array(
    array: np.ndarray,
    model: SRModel,
    *,
    profile: str | IntensityProfile | None = None,
    valid_mask: np.ndarray | None = None,
    nodata: float | None = None,
    out_dtype: np.dtype | type | str | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = "auto",
    amp: str | bool | None = "auto",
    progress: bool = False,
    return_mask: bool = False,
    values: ValueOptions | None = None,
    backend: str | None = None,
    threads: int | None = None,
    max_memory: int | str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Super-resolve a ``(C, H, W)`` (or ``(H, W)``) array of any dtype.

    Args:
        array: input pixels; NaN/inf count as invalid.
        model: the network; a 1-channel model is applied band by band to multi-band data.
        profile: intensity profile or recipe (see :mod:`sr_domains.intensity`); default: the
            model card's, else ``dtype`` for integer input and ``identity`` for float input.
            Data-dependent recipes are fitted once on the whole array.
        valid_mask: True where pixels are valid, ``(H, W)`` or ``(C, H, W)``.
        nodata: value written to output pixels whose nearest input pixel is invalid (default:
            NaN for float output, the network's value from the fill otherwise).
        out_dtype: output dtype (default: the input's); integers are rounded and clipped.
        tile, overlap, batch_size, device, amp, progress, backend, threads, max_memory: see
            :class:`Upscaler`.
        return_mask: also return the upscaled validity mask.
        values: value-fidelity options (:class:`~sr_domains.value_domain.ValueOptions`):
            by default the output stays within the local input range (envelope), the physical
            domain (non-negative input stays non-negative, integer dtype range) and keeps
            saturated pixels saturated; ``ValueOptions(clamp=False)`` returns the raw network.

    Returns:
        ``(C_out, H*s, W*s)`` array (2-D input gives 2-D output), and the mask if requested.

    Raises:
        ConfigError: the array is not real intensities (boolean, complex, empty, not 2-D/3-D:
            :func:`~sr_domains.intensity.check_pixel_array`) or does not fit the model.
    """
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise ConfigError(f"expected an (H, W) or (C, H, W) array, got shape {arr.shape}")
    check_pixel_array(arr, "array")
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if valid_mask is not None and np.ndim(valid_mask) == 2 and not squeeze:
        valid_mask = np.asarray(valid_mask, bool)
    elif valid_mask is not None and squeeze:
        valid_mask = np.asarray(valid_mask, bool)[None] if np.ndim(valid_mask) == 2 else valid_mask
    recipe = profile if profile is not None else default_profile(model, arr.dtype)
    fitted = profile_from_any(recipe, arr, dtype=arr.dtype, valid_mask=valid_mask)
    up = Upscaler(
        model,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        amp=amp,
        progress=progress,
        backend=backend,
        threads=threads,
        max_memory=max_memory,
    )
    mins, mags = band_extremes(arr, valid_mask)
    rules = build_rules(values, residue_floor(mins, mags, arr.dtype.kind == "f"), dtype=arr.dtype)
    out = up.upscale(arr, profile=fitted, valid_mask=valid_mask, rules=rules)
    if rules is not None and rules.stats.envelope + rules.stats.domain:
        log.info("value fidelity: %s", rules.stats.describe())
    s = up.scale
    valid: np.ndarray = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    if valid_mask is not None:
        valid = valid & np.broadcast_to(np.asarray(valid_mask, bool), arr.shape)
    if out.shape[0] != valid.shape[0]:
        valid = np.broadcast_to(valid.all(axis=0, keepdims=True), (out.shape[0], *arr.shape[1:]))
    dt = np.dtype(out_dtype) if out_dtype is not None else arr.dtype
    all_valid = valid_mask is None and arr.dtype.kind != "f"
    mask_up = None
    if return_mask or not all_valid:  # (an all-valid integer image needs no upscaled mask)
        mask_up = valid.repeat(s, axis=-2).repeat(s, axis=-1)
        if nodata is not None:
            out = np.where(mask_up, out, out.dtype.type(nodata))
        elif dt.kind == "f":
            out = np.where(mask_up, out, np.nan)
    result = cast_to_dtype(out, dt)
    if mask_up is None:
        return result[0] if squeeze else result
    if squeeze:
        result, mask_up = result[0], mask_up[0]
    return (result, mask_up) if return_mask else result


__all__ = ["ArrayKeywords", "upscale_array"]
