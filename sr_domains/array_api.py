"""In-memory arrays in, super-resolved arrays out: :func:`upscale_array` (also
``sr_domains.upscale_array``), the convenience built on :class:`~sr_domains.inference.Upscaler`
(same path as the file writers, so tiled and whole-image results come from identical code)."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import numpy as np
import torch

from .errors import ConfigError
from .inference import Upscaler, default_profile
from .intensity import IntensityProfile, cast_to_dtype, check_pixel_array, profile_from_any
from .models.base import SRModel
from .pretrained import resolve_model
from .runtime import module_state_kept
from .spectral import declares_reflectance, physical_zero
from .value_domain import ValueOptions, build_rules
from .value_facts import band_extremes, residue_floor
from .value_ops import keep_infinite, nodata_problem, nudge_from_nodata
from .value_range_check import warn_outside_range

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

log = logging.getLogger(__name__)

#: What ``model`` may be: a built model, a shipped weights name, or an engine used as is.
ModelLike = SRModel | Upscaler | str


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
    model: ModelLike,
    *,
    return_mask: Literal[False] = False,
    **keywords: Unpack[ArrayKeywords],
) -> np.ndarray: ...


@overload
def upscale_array(
    array: np.ndarray,
    model: ModelLike,
    *,
    return_mask: Literal[True],
    **keywords: Unpack[ArrayKeywords],
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def upscale_array(
    array: np.ndarray,
    model: ModelLike,
    *,
    return_mask: bool = False,
    **keywords: Unpack[ArrayKeywords],
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...


def upscale_array(
    array: np.ndarray,
    model: ModelLike,
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
        array: input pixels; NaN/inf count as invalid, and so do the masked pixels of a
            ``numpy.ma.MaskedArray``; +-inf come back unchanged over their ``s x s``
            footprint in float output (as in NIfTI). Bands come first: a channels-last
            ``(H, W, 3)`` image is read as ``H`` bands (a warning says so); pass
            ``np.moveaxis(a, -1, 0)``.
        model: an :class:`~sr_domains.models.SRModel` (a 1-channel model is applied band by
            band to multi-band data), a shipped weights name (``sr_domains.list_pretrained()``)
            or an :class:`Upscaler`, used as is (the engine keywords below must then be left
            at their defaults).
        profile: intensity profile or recipe (see :mod:`sr_domains.intensity`); default: the
            model card's, else ``dtype`` for integer input and ``identity`` for float input.
            Data-dependent recipes are fitted once on the whole array.
        valid_mask: True where pixels are valid, ``(H, W)`` or ``(C, H, W)``; combined with
            the mask of a masked array (a pixel is valid only if both say so).
        nodata: value written to output pixels whose nearest input pixel is invalid (default:
            NaN for float output, the network's value from the fill otherwise); it must be a
            value of the output dtype, and valid output pixels never equal it (they move one
            step away, as in the GeoTIFF writer). Input pixels equal to it are *not* made
            invalid (a warning says so): pass ``valid_mask=(array != nodata)``.
        out_dtype: output dtype, integer or float (default: the input's); integers are rounded
            and clipped.
        tile, overlap, batch_size, device, amp, progress, backend, threads, max_memory: see
            :class:`Upscaler` (``tile`` >= 8).
        return_mask: also return the upscaled validity mask.
        values: value-fidelity options (:class:`~sr_domains.value_domain.ValueOptions`):
            by default the output stays within the local input range (envelope), the physical
            domain (non-negative input stays non-negative, integer dtype range) and keeps
            saturated pixels saturated; ``ValueOptions(clamp=False)`` returns the raw network.

    Returns:
        ``(C_out, H*s, W*s)`` array (2-D input gives 2-D output unless the model makes several
        bands from one), and the mask if requested.

    Raises:
        ConfigError: the array is not real intensities (boolean, complex, empty, not 2-D/3-D:
            :func:`~sr_domains.intensity.check_pixel_array`) or does not fit the model; the
            model, ``valid_mask``, ``nodata``, ``out_dtype`` or ``tile`` is not one accepted.
    """
    if isinstance(array, torch.Tensor):  # (a tensor with grad, on a GPU: its values)
        array = array.detach().cpu().numpy()
    arr = np.ma.getdata(array)
    if arr.ndim not in (2, 3):
        raise ConfigError(f"expected an (H, W) or (C, H, W) array, got shape {arr.shape}")
    check_pixel_array(arr, "array")
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    _warn_channels_last(arr.shape)
    valid_mask = _combined_mask(array, valid_mask, arr.shape)
    mask = None if valid_mask is None else np.broadcast_to(valid_mask, arr.shape)
    warn_outside_range("the array", arr, mask, values, "array")  # a range the data leave
    dt = _output_dtype(out_dtype, arr.dtype)
    if nodata is not None:
        nodata = _checked_nodata(nodata, dt)
        _warn_fill_as_data(arr, valid_mask, nodata)
    engine: dict[str, Any] = {
        "tile": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "device": device,
        "amp": amp,
        "progress": progress,
        "backend": backend,
        "threads": threads,
        "max_memory": max_memory,
    }
    with module_state_kept(model) as model:  # a caller's module comes back as it came
        up = _engine(model, arr.shape[0], engine)
        recipe = profile if profile is not None else default_profile(up.model, arr.dtype)
        fitted = profile_from_any(recipe, arr, dtype=arr.dtype, valid_mask=valid_mask)
        mins, mags = band_extremes(arr, valid_mask)
        n = arr.shape[0]  # a physical profile (s2l2a) says where zero reflectance is stored
        zero = physical_zero([1.0] * n, [0.0] * n, fitted.recipe, fitted.scale, fitted.offset)
        floor = residue_floor(mins, mags, arr.dtype.kind == "f")
        rules = build_rules(
            values,
            floor,
            dtype=arr.dtype,
            physical_zero=zero,
            reflectance=declares_reflectance(fitted.recipe),
            out_dtype=dt,
        )
        out = up.upscale(arr, profile=fitted, valid_mask=valid_mask, rules=rules)
        if rules is not None and rules.stats.envelope + rules.stats.domain:
            log.info("value fidelity: %s", rules.stats.describe())
    s = up.scale
    valid: np.ndarray = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    user_valid = None if valid_mask is None else np.broadcast_to(valid_mask, arr.shape)
    if user_valid is not None:
        valid = valid & user_valid
    if out.shape[0] != valid.shape[0]:
        valid = np.broadcast_to(valid.all(axis=0, keepdims=True), (out.shape[0], *arr.shape[1:]))
    all_valid = valid_mask is None and arr.dtype.kind != "f"
    result = cast_to_dtype(out, dt)
    mask_up = None
    if return_mask or nodata is not None or not all_valid:  # (else no upscaled mask needed)
        mask_up = valid.repeat(s, axis=-2).repeat(s, axis=-1)
        if nodata is not None:
            nudge_from_nodata(result, mask_up, nodata)
            result[~mask_up] = np.array(nodata).astype(dt)
        elif dt.kind == "f":
            result[~mask_up] = np.nan
        # +-inf come back unchanged over their footprint (as in NIfTI), unless masked
        keep_infinite(result, arr, s, user_valid)
    squeeze = squeeze and result.shape[0] == 1  # a model making several bands keeps them
    if mask_up is None:
        return result[0] if squeeze else result
    if squeeze:
        result, mask_up = result[0], mask_up[0]
    return (result, mask_up) if return_mask else result


def _engine(model: object, n_bands: int, settings: dict[str, Any]) -> Upscaler:
    """The engine for ``model`` (an SRModel, a shipped weights name or an Upscaler)."""
    if isinstance(model, Upscaler):
        defaults = inspect.signature(Upscaler).parameters  # (an Upscaler brings its own)
        given = [k for k, v in settings.items() if v != defaults[k].default]
        if given:
            raise ConfigError(
                f"{', '.join(given)} given with an Upscaler: set them on the Upscaler, or pass "
                "its model instead"
            )
        return model
    if isinstance(model, str):
        _refuse_bare_arch(model)
        model = resolve_model(model, scale=None, n_bands=n_bands)
    if not isinstance(model, SRModel):
        raise ConfigError(
            f"model must be an SRModel, an Upscaler or a shipped weights name "
            f"(sr_domains.list_pretrained()), got {type(model).__name__}"
        )
    return Upscaler(model, **settings)


def _refuse_bare_arch(name: str) -> None:
    """Refuse an architecture name (no weights), saying how ``upscale_array`` takes weights."""
    from .models import list_models
    from .pretrained import list_pretrained, looks_like_path

    if looks_like_path(name):
        raise ConfigError(
            f"{name!r} looks like a weights file, and upscale_array takes a model name or a "
            "model: pass load_checkpoint(path)[0] (sr_domains .safetensors) or "
            "load_public_checkpoint(path) (third-party .pth/.safetensors)"
        )
    if name in list_models() and name not in {e.name for e in list_pretrained()}:
        shipped = ", ".join(e.name for e in list_pretrained()) or "none"
        raise ConfigError(
            f"{name!r} is an architecture without weights; pass upscale_array a shipped "
            f"weights name ({shipped}) or a model loaded from your weights file: "
            "load_checkpoint(path)[0] (sr_domains .safetensors) or "
            "load_public_checkpoint(path) (third-party .pth/.safetensors). For random weights "
            f"(tests only) pass sr_domains.create_model({name!r}, ...)"
        )


#: A ``(C, H, W)`` array with more leading bands than this and 3 or 4 trailing ones looks
#: channels-last; so does one whose first two axes are both over twice the last (``(12, 12,
#: 3)``: 12 bands of 12 x 3 pixels is an unlikely image).
CHANNELS_LAST_BANDS = 16


def _warn_channels_last(shape: tuple[int, ...]) -> None:
    """Warn when a ``(C, H, W)`` shape looks like a channels-last ``(H, W, 3|4)`` image."""
    small = min(shape[0], shape[1]) > 2 * shape[-1]
    if shape[-1] in (3, 4) and (shape[0] > CHANNELS_LAST_BANDS or small):
        log.warning(
            "array of shape %s is read as (bands, rows, cols): %d bands of %dx%d pixels; "
            "for a channels-last image pass np.moveaxis(a, -1, 0)",
            shape,
            *shape,
        )


def _combined_mask(
    array: np.ndarray, valid_mask: np.ndarray | None, shape: tuple[int, ...]
) -> np.ndarray | None:
    """``valid_mask`` as booleans of shape ``(H, W)`` or ``shape`` (``(C, H, W)``), False also
    where ``array`` is a masked array's masked pixel (None: no mask at all)."""
    if valid_mask is not None:
        valid_mask = np.asarray(valid_mask, bool)
        if valid_mask.shape not in (shape[1:], (1, *shape[1:]), shape):
            raise ConfigError(
                f"valid_mask has shape {valid_mask.shape} but the array {np.shape(array)}: pass "
                f"one (H, W) mask {shape[1:]} for all bands, or one per band {shape}"
            )
        if valid_mask.shape != shape:  # one mask for all bands: (H, W), or (1, H, W) if C = 1
            valid_mask = valid_mask.reshape(shape if shape[0] == 1 else shape[1:])
    masked = np.ma.getmaskarray(array) if np.ma.isMaskedArray(array) else None
    if masked is None or not masked.any():
        return valid_mask
    valid = ~masked.reshape(shape)
    return valid if valid_mask is None else valid & valid_mask


def _output_dtype(out_dtype: np.dtype | type | str | None, default: np.dtype) -> np.dtype:
    """``out_dtype`` (default: ``default``), refused unless integer or float."""
    if out_dtype is None:
        return default
    try:
        dt = np.dtype(out_dtype)
    except TypeError as exc:
        raise ConfigError(f"out_dtype {out_dtype!r} is not a numpy dtype: {exc}") from None
    if dt.kind not in "uif":
        raise ConfigError(f"out_dtype must be an integer or float dtype, got {dt}")
    return dt


def _warn_fill_as_data(arr: np.ndarray, valid_mask: np.ndarray | None, nodata: float) -> None:
    """Warn when valid input pixels equal ``nodata``: unlike a GeoTIFF's nodata, ``nodata=``
    only sets the output fill, so a DEM's -32768 voids would be upscaled as data."""
    if not np.isfinite(nodata):  # (NaN and +-inf pixels are never valid)
        return
    same = arr == nodata
    if valid_mask is not None:
        same &= np.broadcast_to(valid_mask, arr.shape)
    n = int(np.count_nonzero(same))
    if n:
        log.warning(
            "array: %d valid input pixel(s) equal nodata=%g and are upscaled as data (nodata= "
            "only sets the output fill); pass valid_mask=(array != %g) to mark them invalid",
            n,
            nodata,
            nodata,
        )


def _checked_nodata(nodata: float, dtype: np.dtype) -> float:
    """``nodata`` as a float that ``dtype`` holds (refused otherwise: it would be written as
    another value); the GeoTIFF reader's rule."""
    try:
        value = float(nodata)
    except (TypeError, ValueError):
        raise ConfigError(f"nodata must be a number, got {nodata!r}") from None
    problem = nodata_problem(value, dtype)
    if problem:
        raise ConfigError(f"{problem}: pass another nodata, or an out_dtype that holds it")
    return value


__all__ = ["ArrayKeywords", "upscale_array"]
