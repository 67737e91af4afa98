"""Explicit, invertible intensity profiles.

A *profile* is a per-band affine map from stored values to the network's normalized space,
``y = x * scale + offset``, and its exact inverse ``x = (y - offset) / scale``. Profiles are
never guessed from a tile: they are named by the user or the model card, and data-dependent
ones (percentiles) are fitted **once per file/volume** with :meth:`ProfileRecipe.fit`.

Recipes (``resolve_recipe(text)``):

=====================  =======================================================================
``identity``           values used as they are (float data already in model range)
``dtype``              full range of the integer dtype to [0, 1] (uint8 /255, uint16 /65535, ...)
``range:LO,HI``        [LO, HI] to [0, 1] for all bands
``scale:S[,O]``        y = x*S + O (e.g. ``scale:0.0001`` reflectance, ``scale:0.0001,-0.1``)
``reflectance``        Landsat/Sentinel-2 surface reflectance x 10000: ``scale:0.0001``
``s2l2a``              Sentinel-2 L2A with BOA_ADD_OFFSET -1000 (baseline >= 04.00):
                       ``scale:0.0001,-0.1``
``percentile[:P,Q]``   per band, P-th..Q-th percentile of valid pixels to [0, 1] (default 1,99)
``mr[:P,Q]``           one range for all channels, P..Q percentile (default 0.5,99.5)
``ct``                 Hounsfield units -1024..3071 to [0, 1]
``ct-window:C,W``      HU window centre C, width W to [0, 1] (values outside are kept, not
                       clipped, so the map stays invertible)
=====================  =======================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .errors import ConfigError
from .value_ops import safe_cast


@dataclass(frozen=True)
class IntensityProfile:
    """A fitted per-band affine intensity map (see module docs).

    Attributes:
        recipe: the recipe text that produced it (e.g. ``"percentile:1,99"``).
        scale: per-band multipliers (one value = all bands).
        offset: per-band offsets (same length as ``scale``).
    """

    recipe: str
    scale: tuple[float, ...]
    offset: tuple[float, ...]

    def __post_init__(self) -> None:
        s = tuple(float(v) for v in self.scale)
        o = tuple(float(v) for v in self.offset)
        if len(s) != len(o) or not s:
            raise ConfigError(f"profile {self.recipe!r}: scale and offset lengths differ")
        if not all(np.isfinite(s)) or not all(np.isfinite(o)) or any(v == 0 for v in s):
            raise ConfigError(f"profile {self.recipe!r}: scale must be finite and non-zero")
        object.__setattr__(self, "scale", s)
        object.__setattr__(self, "offset", o)

    @property
    def n_bands(self) -> int:
        return len(self.scale)

    def _coeffs(self, n: int, ndim: int, band_axis: int) -> tuple[np.ndarray, np.ndarray]:
        if self.n_bands not in (1, n):
            raise ConfigError(
                f"profile {self.recipe!r} has {self.n_bands} bands, data has {n} (a profile is "
                "fitted with bands on band_axis, the first by default: fit one (H, W) image as "
                "image[None])"
            )
        shape = [1] * ndim
        shape[band_axis] = self.n_bands
        return (
            np.asarray(self.scale, np.float64).reshape(shape),
            np.asarray(self.offset, np.float64).reshape(shape),
        )

    def normalize(self, x: np.ndarray, band_axis: int = 0) -> np.ndarray:
        """Stored values -> float32 normalized values (``band_axis`` indexes the bands).

        Nodata sentinels far outside the range (e.g. -3.4e38) may overflow to +-inf, silently:
        callers treat non-finite values as invalid pixels."""
        s, o = self._coeffs(x.shape[band_axis], x.ndim, band_axis)
        if work_dtype(x.dtype) == np.float64:  # scaled before the cast: a narrow range at a
            with np.errstate(over="ignore", invalid="ignore"):  # large offset keeps its steps
                return (x * s + o).astype(np.float32)
        out = x.astype(np.float32, copy=True)
        with np.errstate(over="ignore", invalid="ignore"):
            out *= s.astype(np.float32)
            out += o.astype(np.float32)
        return out

    def denormalize(
        self, y: np.ndarray, band_axis: int = 0, dtype: DTypeLike = np.float32
    ) -> np.ndarray:
        """Normalized values -> stored units (``dtype``: float32, or float64 for data that
        float32 cannot hold (:func:`work_dtype`); cast with :func:`cast_to_dtype`)."""
        s, o = self._coeffs(y.shape[band_axis], y.ndim, band_axis)
        dt = np.dtype(dtype)
        out = np.empty(y.shape, dt)  # C order, whatever the layout of y
        np.subtract(y, o.astype(dt), out=out, dtype=dt)
        out *= (1.0 / s).astype(dt)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "scale": list(self.scale), "offset": list(self.offset)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntensityProfile:
        try:
            return cls(str(d["recipe"]), tuple(d["scale"]), tuple(d["offset"]))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not an intensity profile: {d!r}") from exc


def _range_profile(recipe: str, lo: np.ndarray, hi: np.ndarray) -> IntensityProfile:
    lo = np.atleast_1d(np.asarray(lo, np.float64))
    hi = np.atleast_1d(np.asarray(hi, np.float64))
    width = hi - lo
    width = np.where(width > 0, width, 1.0)  # constant band: shift only
    return IntensityProfile(recipe, tuple(1.0 / width), tuple(-lo / width))


@dataclass(frozen=True)
class ProfileRecipe:
    """An unfitted profile: a kind plus parameters. ``fit`` turns it into a profile."""

    kind: str
    params: tuple[float, ...] = ()
    text: str = field(default="", compare=False)

    @property
    def needs_data(self) -> bool:
        """True when fitting needs pixel values (percentile recipes)."""
        return self.kind in ("percentile", "mr")

    def fit(
        self,
        data: np.ndarray | None = None,
        *,
        dtype: np.dtype | type | str | None = None,
        valid_mask: np.ndarray | None = None,
        band_axis: int = 0,
    ) -> IntensityProfile:
        """Fit to ``data`` (a whole file/volume or a representative sample, bands on
        ``band_axis``: a single-band ``(H, W)`` image is fitted as ``image[None]``); ``dtype``
        is used by ``dtype``; ``valid_mask`` (True = valid, same shape as data or data without
        the band axis) excludes nodata from percentiles."""
        text = self.text or self.kind
        k, p = self.kind, self.params
        if k == "identity":
            return IntensityProfile(text, (1.0,), (0.0,))
        if k == "dtype":
            dt = np.dtype(dtype if dtype is not None else getattr(data, "dtype", None))
            if dt.kind not in "ui":
                raise ConfigError(
                    f"profile 'dtype' needs integer data, got {dt}; use 'identity', "
                    "'range:LO,HI', 'scale:S' or 'percentile' for float data"
                )
            info = np.iinfo(dt)
            return _range_profile(text, np.array([info.min]), np.array([info.max]))
        if k == "range":
            return _range_profile(text, np.array([p[0]]), np.array([p[1]]))
        if k == "scale":
            return IntensityProfile(text, (p[0],), (p[1] if len(p) > 1 else 0.0,))
        if k in ("percentile", "mr"):
            if data is None:
                raise ConfigError(f"profile {text!r} is fitted from data; none was given")
            lo, hi = _percentiles(
                data, valid_mask, band_axis, p[0], p[1], per_band=k == "percentile"
            )
            return _range_profile(text, lo, hi)
        raise ConfigError(f"unknown profile kind {k!r}")  # pragma: no cover - checked in parse


def _percentiles(
    data: np.ndarray,
    mask: np.ndarray | None,
    band_axis: int,
    p_lo: float,
    p_hi: float,
    *,
    per_band: bool,
) -> tuple[np.ndarray, np.ndarray]:
    x = np.moveaxis(np.asarray(data), band_axis, 0)
    n = x.shape[0]
    if mask is not None:
        m = np.asarray(mask, bool)
        m = np.moveaxis(m, band_axis, 0) if m.ndim == np.ndim(data) else np.broadcast_to(m, x.shape)
    else:
        m = np.ones(x.shape, bool)
    m = m & np.isfinite(x) if x.dtype.kind == "f" else m
    if not per_band:
        vals = x[m]
        if vals.size == 0:
            raise ConfigError("cannot fit a percentile profile: no valid pixels")
        lo, hi = np.percentile(vals, [p_lo, p_hi])
        return np.array([lo]), np.array([hi])
    lo = np.empty(n)
    hi = np.empty(n)
    for b in range(n):
        vals = x[b][m[b]]
        if vals.size == 0:
            lo[b], hi[b] = 0.0, 1.0  # all-nodata band: any invertible map will do
            continue
        lo[b], hi[b] = np.percentile(vals, [p_lo, p_hi])
    return lo, hi


_NO_PARAMS = {"identity", "dtype", "reflectance", "s2l2a", "ct"}
_ALIASES = {
    "reflectance": ("scale", (1e-4, 0.0)),
    "s2l2a": ("scale", (1e-4, -0.1)),
    "ct": ("range", (-1024.0, 3071.0)),
}


#: What the recipes with parameters take (for the error on bad ones).
_NEEDS = {
    "range": "two numbers LO,HI with LO < HI",
    "scale": "a non-zero scale S and an optional offset O",
    "percentile": "two percentiles P,Q with 0 <= P < Q <= 100",
    "mr": "two percentiles P,Q with 0 <= P < Q <= 100",
    "ct-window": "a centre C and a width W > 0",
}


def resolve_recipe(text: str | ProfileRecipe) -> ProfileRecipe:
    """Parse a recipe string (see module docs); errors list the valid forms."""
    if isinstance(text, ProfileRecipe):
        return text
    raw = text.strip()
    name, _, args = raw.partition(":")
    name = name.strip().lower()
    try:
        params = tuple(float(v) for v in args.split(",")) if args.strip() else ()
    except ValueError:
        raise ConfigError(f"profile {text!r}: parameters must be numbers") from None
    if name in _NO_PARAMS and params:
        raise ConfigError(f"profile {name!r} takes no parameters")
    if name in _ALIASES:
        kind, p = _ALIASES[name]
        return ProfileRecipe(kind, p, raw)
    if name in ("identity", "dtype"):
        return ProfileRecipe(name, (), raw)
    if name == "range" and len(params) == 2 and params[1] > params[0]:
        return ProfileRecipe("range", params, raw)
    if name == "scale" and len(params) in (1, 2) and params[0] != 0:
        return ProfileRecipe("scale", params, raw)
    if name in ("percentile", "mr"):
        default = (1.0, 99.0) if name == "percentile" else (0.5, 99.5)
        pct = params or default
        if len(pct) == 2 and 0 <= pct[0] < pct[1] <= 100:
            return ProfileRecipe(name, pct, raw)
    if name == "ct-window" and len(params) == 2 and params[1] > 0:
        c, w = params
        return ProfileRecipe("range", (c - w / 2, c + w / 2), raw)
    if name in _NEEDS:  # a known recipe with parameters it cannot take: say which
        given = ", ".join(f"{v:g}" for v in params)
        raise ConfigError(f"profile {text!r}: {name} takes {_NEEDS[name]}, got ({given})")
    raise ConfigError(
        f"invalid intensity profile {text!r}; use one of: identity, dtype, range:LO,HI, "
        "scale:S[,O], reflectance, s2l2a, percentile[:P,Q], mr[:P,Q], ct, ct-window:C,W"
    )


def work_dtype(dtype: DTypeLike) -> np.dtype:
    """The float type that holds every value of ``dtype`` exactly enough to keep it: float64
    for float64 and for 32/64-bit integers (float32 rounds above 2**24), else float32. Output
    in stored units is computed in it, so value bounds and pinned values stay exact."""
    dt = np.dtype(dtype)
    wide = dt == np.float64 or (dt.kind in "ui" and dt.itemsize >= 4)
    return np.dtype(np.float64 if wide else np.float32)


def cast_to_dtype(values: np.ndarray, dtype: np.dtype | type | str) -> np.ndarray:
    """Round (integers) and clip to the range of ``dtype``, then cast. NaN becomes 0 for ints."""
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        v = np.asarray(values)
        # Up to 16-bit targets, float32 rounding and clipping give the same integers as float64
        # (float32 holds every integer below 2**24 exactly) in half the memory traffic.
        small = v.dtype.itemsize <= (4 if v.dtype.kind == "f" else 2)
        work = np.float32 if dt.itemsize <= 2 and small else np.float64
        return safe_cast(v.astype(work), dt)  # (inf becomes the bound; at the type's limits too)
    if dt.kind == "f":
        info = np.finfo(dt)
        return np.clip(values, info.min, info.max).astype(dt)
    if dt.kind == "b":
        return values > 0.5
    raise ConfigError(f"unsupported output dtype {dt}")


def check_pixel_array(array: Any, what: str = "input") -> None:
    """Refuse what is not real scalar intensities: a boolean array (a mask: resample it with
    nearest neighbour), complex values (their imaginary part would be dropped), other dtypes,
    and an empty array. ``what`` names the array in the message."""
    dtype = getattr(array, "dtype", None)
    if dtype is None:
        dt = np.asarray(array).dtype
    elif hasattr(dtype, "is_floating_point"):  # a torch dtype
        kind = "c" if dtype.is_complex else "f" if dtype.is_floating_point else "i"
        dt = np.dtype(bool) if str(dtype) == "torch.bool" else np.dtype(f"{kind}{dtype.itemsize}")
    else:
        dt = np.dtype(dtype)
    shape = tuple(array.shape) if hasattr(array, "shape") else np.shape(array)  # (dask: lazy)
    if dt.kind == "b":
        raise ConfigError(
            f"{what} is boolean (a mask?): super-resolution is for intensities; resample a "
            "mask with nearest neighbour instead"
        )
    if dt.kind == "c":
        raise ConfigError(
            f"{what} is complex ({dt}): super-resolve the magnitude (abs) or the real and "
            "imaginary parts separately"
        )
    if dt.kind not in "uif":
        raise ConfigError(f"{what} has dtype {dt}; expected real numbers (integer or float)")
    if 0 in shape:
        raise ConfigError(f"{what} is empty (shape {shape})")


def profile_from_any(
    spec: str | ProfileRecipe | IntensityProfile | dict[str, Any],
    data: np.ndarray | None = None,
    *,
    dtype: np.dtype | type | str | None = None,
    valid_mask: np.ndarray | None = None,
    band_axis: int = 0,
) -> IntensityProfile:
    """Turn a recipe text, recipe, fitted profile or its dict into a fitted profile."""
    if isinstance(spec, IntensityProfile):
        return spec
    if isinstance(spec, dict):
        if "scale" in spec:
            return IntensityProfile.from_dict(spec)
        spec = str(spec.get("recipe", ""))
    return resolve_recipe(spec).fit(data, dtype=dtype, valid_mask=valid_mask, band_axis=band_axis)


__all__ = [
    "IntensityProfile",
    "ProfileRecipe",
    "cast_to_dtype",
    "check_pixel_array",
    "profile_from_any",
    "resolve_recipe",
    "work_dtype",
]

_ = Sequence
