"""Opened training inputs: pixels as 2-D planes, one intensity profile fitted per file.

A :class:`Source` exposes ``n_planes`` planes of one shape ``(H, W)`` with ``channels``
channels: an image or raster has one plane; a volume has one plane per slice (and time point)
along its in-plane axes. ``read(plane, y, x, h, w)`` returns normalized float32 values
``(C, h, w)`` (invalid pixels replaced by the file's mean valid value, normalized) and the pixel
validity ``(h, w)`` (True = valid: every channel valid).

* Images, NIfTI and DICOM are decoded whole and kept in an :class:`ArrayCache` (LRU bounded by
  bytes, per process; reloaded when evicted). Rasters are read window by window with
  :class:`sr_domains.geo.reader.RasterSource` and never loaded whole; their profile and validity
  grid come from :meth:`RasterSource.sample` (bounded memory, every f-th pixel).
* The profile is fitted **once per file** (all planes, valid pixels only), never per patch.
* Channels: with a target of 1 channel, a 3-channel source becomes BT.601 luma
  ``0.299 R + 0.587 G + 0.114 B`` before the profile is fitted; any other mismatch raises
  :class:`SkipInput` (the caller logs and skips the file).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np

from ..errors import ConfigError, InputFileError, require
from ..intensity import IntensityProfile, profile_from_any, resolve_recipe
from .inputs import InputSpec

log = logging.getLogger(__name__)

LUMA_BT601 = (0.299, 0.587, 0.114)
#: Values (bands x pixels) read at most from a raster to fit its profile and validity grid.
RASTER_SAMPLE_VALUES = 8 * 2**20


class SkipInput(Exception):
    """An input that gives no training data; the message says why (logged, file skipped)."""


@dataclass(frozen=True)
class SourceOptions:
    """What every source needs from the data config."""

    profile: str = "percentile:0.5,99.5"
    bands: tuple[int, ...] | None = None
    channels: int | None = None
    slice_axes: tuple[int, int] | None = None


class ArrayCache:
    """Decoded arrays by key, least recently used dropped beyond ``max_bytes`` (the newest
    entry is always kept). Per process: pickling (spawned workers) gives an empty cache."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.nbytes = 0

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][0]
        value = load()
        self.put(key, value)
        return value

    def put(self, key: str, value: Any) -> None:
        if key in self._items:
            self.nbytes -= self._items.pop(key)[1]
        size = sum(a.nbytes for a in value if isinstance(a, np.ndarray))
        self._items[key] = (value, size)
        self.nbytes += size
        while self.nbytes > self.max_bytes and len(self._items) > 1:
            self.nbytes -= self._items.popitem(last=False)[1][1]

    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["max_bytes"])


def luma_needed(natural: int, target: int | None, spec: InputSpec) -> bool:
    """True when 3 channels must become 1 (luma); SkipInput for any other mismatch."""
    if target is None or target == natural:
        return False
    if target == 1 and natural == 3:
        return True
    raise SkipInput(f"has {natural} channel(s), {target} required (only RGB -> 1 is converted)")


def to_luma(values: np.ndarray, axis: int) -> np.ndarray:
    """BT.601 luma of the 3 channels on ``axis`` (kept as a length-1 axis), float32."""
    x = np.moveaxis(values, axis, 0).astype(np.float32)
    y = LUMA_BT601[0] * x[0] + LUMA_BT601[1] * x[1] + LUMA_BT601[2] * x[2]
    return np.expand_dims(y, axis)


def fit_file_profile(
    recipe: str, data: np.ndarray, valid: np.ndarray | None, dtype: np.dtype, band_axis: int
) -> tuple[IntensityProfile, np.ndarray]:
    """The profile fitted on a whole file (or its sample) and the per-channel fill value (mean
    of the valid values, normalized). ``valid`` has ``data``'s shape or lacks the band axis."""
    rec = resolve_recipe(recipe)
    prof = profile_from_any(
        rec, data if rec.needs_data else None, dtype=dtype, valid_mask=valid, band_axis=band_axis
    )
    axes = tuple(a for a in range(data.ndim) if a != band_axis)
    if valid is None:
        raw = data.mean(axis=axes, dtype=np.float64)
    else:
        m = valid if valid.ndim == data.ndim else np.expand_dims(valid, band_axis)
        m = np.broadcast_to(m, data.shape)
        count = m.sum(axis=axes)
        raw = np.sum(data, axis=axes, where=m, dtype=np.float64) / np.maximum(count, 1)
    scale, offset = np.asarray(prof.scale), np.asarray(prof.offset)
    return prof, (raw * scale + offset).astype(np.float32)


class Source:
    """Common attributes of an opened input (see module docs).

    Attributes:
        spec: the input. channels: channels after band selection / luma. dtype: stored type.
        profile: fitted once per file. fill: ``(C,)`` normalized fill for invalid pixels.
        n_planes, shape: planes and their ``(H, W)``. n_times, n_slices: volume layout
        (planes are ``t * n_slices + k``). axes: a volume's in-plane axes.
        valid_fraction: valid pixel fraction (rasters: of the sample). note: e.g. "RGB -> luma".
    """

    spec: InputSpec
    channels: int
    dtype: np.dtype
    profile: IntensityProfile
    fill: np.ndarray
    n_planes: int = 1
    shape: tuple[int, int] = (0, 0)
    n_times: int = 1
    n_slices: int = 1
    axes: tuple[int, int] | None = None
    valid_fraction: float = 1.0
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.spec.kind}:{self.spec.path}:{self.spec.series_uid or ''}"

    @property
    def name(self) -> str:
        return self.spec.name

    def summary(self) -> str:
        """e.g. ``camera.png (image, 512x512, 1 ch)``."""
        h, w = self.shape
        what = f"{w}x{h}"
        if self.axes is not None:
            what = f"{self.n_planes} planes {w}x{h} along axes {self.axes}"
        extra = [self.note] if self.note else []
        if self.valid_fraction < 1:
            extra.append(f"{100 * (1 - self.valid_fraction):.0f}% invalid")
        tail = "".join(f", {e}" for e in extra)
        return f"{self.name} ({self.spec.kind}, {what}, {self.channels} ch{tail})"

    def grid(self, plane: int, cache: ArrayCache) -> tuple[np.ndarray | None, float, float]:
        """Pixel validity of ``plane`` on a grid of ``(fy, fx)`` full-resolution pixels per
        cell (1, 1: exact), or None when every pixel is valid."""
        raise NotImplementedError

    def read(
        self, plane: int, y: int, x: int, h: int, w: int, cache: ArrayCache
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(values (C, h, w) float32 normalized, valid (h, w) bool)`` of a window."""
        raise NotImplementedError


class Loaded(NamedTuple):
    data: np.ndarray  # (N, C, H, W) stored values (after band selection / luma)
    valid: np.ndarray | None  # (N, H, W) or None
    dtype: np.dtype
    n_times: int = 1
    n_slices: int = 1
    axes: tuple[int, int] | None = None
    note: str = ""


def _read_image(spec: InputSpec, opts: SourceOptions) -> Loaded:
    pil = require("PIL.Image", "train", "image files")
    try:
        with pil.open(spec.path) as im:
            if getattr(im, "n_frames", 1) > 1:
                log.debug("%s: %d frames, the first is used", spec.path, im.n_frames)
            im.load()
            mode = im.mode
            if mode in ("P", "PA"):
                im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
            elif mode in ("1", "La"):
                im = im.convert({"1": "L", "La": "LA"}[mode])
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
                im = im.convert("RGBA" if mode == "RGBa" else "RGB")
            arr, mode = np.asarray(im), im.mode
    except (OSError, ValueError, SyntaxError) as exc:  # PIL.UnidentifiedImageError is OSError
        raise InputFileError(spec.path, f"not a readable image ({exc})") from exc
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    valid = None
    if mode in ("LA", "RGBA"):
        valid, arr = arr[..., -1] > 0, arr[..., :-1]
    arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr).all(axis=0)
        valid = finite if valid is None else valid & finite
    if opts.bands is not None:
        bad = [b for b in opts.bands if not 1 <= b <= arr.shape[0]]
        if bad:
            raise ConfigError(
                f"{spec.path}: band(s) {bad} do not exist; the image has bands 1..{arr.shape[0]}"
            )
        arr = arr[[b - 1 for b in opts.bands]]
    dtype, note = arr.dtype, ""
    if luma_needed(arr.shape[0], opts.channels, spec):
        arr, note = to_luma(arr, 0), "RGB -> luma"
    arr = np.ascontiguousarray(arr)
    return Loaded(arr[None], None if valid is None else valid[None], dtype, note=note)


def _volume_planes(spec: InputSpec, vol: np.ndarray, spacing: Any, opts: SourceOptions) -> Loaded:
    """``vol`` (3 spatial axes, then extra axes) -> planes ``(T*K, 1, A, B)``."""
    from ..medical.geometry import check_axes, default_axes, slice_axis

    if opts.bands not in (None, (1,)):
        raise ConfigError(f"{spec.path}: a volume has one channel; bands {opts.bands} is invalid")
    luma_needed(1, opts.channels, spec)
    v = vol.reshape(*vol.shape[:3], -1)
    axes = check_axes(opts.slice_axes) if opts.slice_axes else default_axes(spacing, v.shape[:3])
    k = slice_axis(axes)
    planes = np.moveaxis(v, (3, k, *axes), (0, 1, 2, 3))
    t, n = planes.shape[:2]
    data = np.ascontiguousarray(planes.reshape(t * n, 1, *planes.shape[2:]), dtype=np.float32)
    finite = np.isfinite(data[:, 0])
    return Loaded(data, None if finite.all() else finite, np.dtype(np.float32), t, n, axes)


def _read_nifti(spec: InputSpec, opts: SourceOptions) -> Loaded:
    from ..medical.nifti import nifti_default_axes, read_nifti

    vol = read_nifti(spec.path)
    if not opts.slice_axes:  # (the planes `upscale` takes: a pixdim of 0 is no spacing)
        axes = nifti_default_axes(vol.path, vol.header, vol.affine, vol.data.shape[:3])
        opts = dataclasses.replace(opts, slice_axes=axes)
    out = _volume_planes(spec, vol.data, vol.spacing, opts)
    unscaled = vol.slope in (1, None) and vol.inter in (0, None)
    return out._replace(dtype=np.dtype(vol.dtype) if unscaled else out.dtype)


def _read_dicom(spec: InputSpec, opts: SourceOptions) -> Loaded:
    from ..medical.dicom_read import read_header, select_series
    from ..medical.geometry import voxel_sizes

    items = [(f, read_header(f)) for f in spec.files]
    series = select_series(spec.path, {spec.series_uid or "": items}, spec.series_uid or "")
    vol = series.read_volume()
    out = _volume_planes(spec, vol, voxel_sizes(series.affine), opts)
    unscaled = all(s.slope == 1 and s.intercept == 0 for s in series.slices)
    # (a Modality LUT's outputs may need 32 bits: the series' own stored type)
    return out._replace(dtype=series.stored_dtype if unscaled else out.dtype)


_READERS = {"image": _read_image, "nifti": _read_nifti, "dicom": _read_dicom}


class ArraySource(Source):
    """Image, NIfTI or DICOM input decoded whole (kept in the cache)."""

    def __init__(self, spec: InputSpec, opts: SourceOptions, cache: ArrayCache) -> None:
        self.spec, self.opts = spec, opts
        got = self._load_full()
        self.dtype, self.note, self.axes = got.dtype, got.note, got.axes
        self.n_times, self.n_slices = got.n_times, got.n_slices
        self.n_planes, self.channels = got.data.shape[0], got.data.shape[1]
        self.shape = (int(got.data.shape[2]), int(got.data.shape[3]))
        self.valid_fraction = 1.0 if got.valid is None else float(got.valid.mean())
        if self.valid_fraction == 0:
            raise SkipInput("has no valid pixels (all transparent, NaN or nodata)")
        self.profile, self.fill = fit_file_profile(
            opts.profile, got.data, got.valid, got.dtype, band_axis=1
        )
        cache.put(self.key, (got.data, got.valid))

    def _load_full(self) -> Loaded:
        return _READERS[self.spec.kind](self.spec, self.opts)

    def _arrays(self, cache: ArrayCache) -> tuple[np.ndarray, np.ndarray | None]:
        return cache.get(self.key, lambda: tuple(self._load_full()[:2]))

    def grid(self, plane: int, cache: ArrayCache) -> tuple[np.ndarray | None, float, float]:
        valid = self._arrays(cache)[1]
        return (None if valid is None else valid[plane]), 1.0, 1.0

    def read(
        self, plane: int, y: int, x: int, h: int, w: int, cache: ArrayCache
    ) -> tuple[np.ndarray, np.ndarray]:
        data, valid = self._arrays(cache)
        values = self.profile.normalize(data[plane, :, y : y + h, x : x + w])
        if valid is None:
            return values, np.ones((h, w), bool)
        ok = valid[plane, y : y + h, x : x + w]
        return np.where(ok, values, self.fill[:, None, None]), ok.copy()


class RasterFileSource(Source):
    """A raster read window by window (never whole); one handle per process."""

    def __init__(self, spec: InputSpec, opts: SourceOptions, cache: ArrayCache) -> None:
        from rasterio.enums import ColorInterp

        from ..geo.reader import RasterSource

        self.spec, self.opts = spec, opts
        self._rs: Any = None
        self._pid = -1
        with RasterSource(spec.path, opts.bands) as rs:
            if any(rs.ds.colorinterp[i - 1] == ColorInterp.palette for i in rs.indexes):
                raise SkipInput("has a colour table (categorical data, not an image)")
            self.luma = luma_needed(rs.n_bands, opts.channels, spec)
            self.shape, self.dtype = rs.shape, rs.dtype
            values, valid = rs.sample(RASTER_SAMPLE_VALUES)
        pix = cast(np.ndarray, valid.all(axis=0))
        self.valid_fraction = float(pix.mean())
        if self.valid_fraction == 0:
            raise SkipInput("has no valid pixels (all nodata, NaN or masked)")
        if self.luma:
            values, valid, self.note = to_luma(values, 0), pix[None], "RGB -> luma"
        self.channels = values.shape[0]
        self.profile, self.fill = fit_file_profile(
            opts.profile, values, valid, self.dtype, band_axis=0
        )
        self._grid = None if pix.all() else pix
        self._step = (self.shape[0] / pix.shape[0], self.shape[1] / pix.shape[1])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rs"], state["_pid"] = None, -1
        return state

    def _source(self) -> Any:
        if self._rs is None or self._pid != os.getpid():  # never share a handle across forks
            from ..geo.reader import RasterSource

            self._rs, self._pid = RasterSource(self.spec.path, self.opts.bands), os.getpid()
        return self._rs

    def grid(self, plane: int, cache: ArrayCache) -> tuple[np.ndarray | None, float, float]:
        return self._grid, self._step[0], self._step[1]

    def read(
        self, plane: int, y: int, x: int, h: int, w: int, cache: ArrayCache
    ) -> tuple[np.ndarray, np.ndarray]:
        values, valid = self._source().read_window(y, x, h, w)
        pix = valid.all(axis=0)
        if self.luma:
            values, valid = to_luma(values, 0), pix[None]
        out = self.profile.normalize(values)
        return np.where(valid, out, self.fill[:, None, None]), pix


def open_source(spec: InputSpec, opts: SourceOptions, cache: ArrayCache) -> Source:
    """Open ``spec`` (decode or sample it, fit its profile). Raises SkipInput for inputs that
    give no training data, InputFileError for unreadable ones, ConfigError for bad options."""
    if spec.kind == "geotiff":
        return RasterFileSource(spec, opts, cache)
    return ArraySource(spec, opts, cache)


__all__ = [
    "LUMA_BT601",
    "ArrayCache",
    "ArraySource",
    "RasterFileSource",
    "SkipInput",
    "Source",
    "SourceOptions",
    "fit_file_profile",
    "open_source",
    "to_luma",
]
