"""Open a raster, validate it, select bands and read windows with their validity.

Validity rules (True = valid), per band:

* the value equals the band's own nodata value or the ``nodata`` override -> invalid (the
  file's value stays invalid under an override); a NaN nodata matches NaN; an override the
  stored type cannot hold (NaN or -9999 for uint16 data, given for a float output) marks
  nothing;
* float data: NaN and +-inf are always invalid;
* a per-dataset mask (internal ``.msk`` / ``GDAL_TIFF_INTERNAL_MASK``) with value 0 -> invalid
  (GDAL mask semantics, read with ``read_masks``);
* the band marked alpha with value 0 -> invalid, whatever the band count (GDAL derives a mask
  from alpha only in 2- and 4-band files; a 5-band R,G,B,NIR,alpha orthophoto has one too).

An alpha band is never fed to the network: it is excluded from the default band list and
carried to the output (nearest-upscaled) instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputFileError, MissingDependencyError
from ..value_ops import nodata_problem
from .gdal_errors import gdal_message
from .gdal_paths import open_dataset

try:
    from rasterio.enums import ColorInterp, MaskFlags
    from rasterio.errors import RasterioError
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover - exercised without rasterio only
    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)

#: Supported pixel types (GDAL complex types are refused).
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
#: Values read (bands x pixels) at most for fitting percentiles and the fill value.
SAMPLE_VALUES = 8 * 2**20


def alpha_band(ds: Any) -> int | None:
    """The 1-based index of the band of open dataset ``ds`` marked alpha, or None."""
    alpha = [i for i, ci in zip(ds.indexes, ds.colorinterp) if ci == ColorInterp.alpha]
    return alpha[0] if alpha else None


def default_bands(ds: Any) -> tuple[int, ...]:
    """The bands a run reads when none are selected: all but an alpha band (the selection
    written to ``SR_DOMAINS_SOURCE_BANDS``, which a resume compares)."""
    return tuple(i for i in ds.indexes if i != alpha_band(ds))


@dataclass
class Block:
    """One window of the selected bands.

    Attributes:
        values: ``(C, h, w)`` stored values.
        valid: ``(C, h, w)`` bool, True = valid (see module docs).
        mask: ``(h, w)`` uint8 per-dataset mask (0/255) when the source has one, else None.
        alpha: ``(h, w)`` alpha band values when the source has an alpha band, else None.
    """

    values: np.ndarray
    valid: np.ndarray
    mask: np.ndarray | None = None
    alpha: np.ndarray | None = None


class RasterSource:
    """An open raster with a band selection and validity rules (use as a context manager).

    Args:
        path: the raster file.
        bands: 1-based band indexes to process (default: all bands except an alpha band).
        nodata: nodata override (default: the file's nodata, if any): the output's nodata
            value, also invalid in the input. It is checked against the output's type by the
            job (:func:`~sr_domains.geo.dtype_checks.check_output_nodata`), not here: a float or NaN
            value for a float output of integer data is valid, and marks no input pixel.
    """

    def __init__(
        self,
        path: str | Path,
        bands: tuple[int, ...] | list[int] | None = None,
        nodata: float | None = None,
        *,
        overview_level: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._samples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._full_samples: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        self.ds = open_dataset(self.path, overview_level=overview_level)
        try:
            self._setup(bands, nodata)
        except BaseException:
            self.ds.close()
            raise

    def _setup(self, bands: tuple[int, ...] | list[int] | None, nodata: float | None) -> None:
        ds = self.ds
        dtypes = set(ds.dtypes)
        if len(dtypes) != 1:
            raise InputFileError(self.path, f"bands have different data types {sorted(dtypes)}")
        name = str(ds.dtypes[0])  # checked as GDAL's name: numpy knows no complex_int16
        if name not in SUPPORTED_DTYPES:
            raise InputFileError(
                self.path,
                f"data type {name} is not supported (supported: {', '.join(SUPPORTED_DTYPES)})",
            )
        self.dtype = np.dtype(name)
        self.alpha_index: int | None = alpha_band(ds)
        if bands is None:
            self.indexes = default_bands(ds)
        else:
            self.indexes = tuple(int(b) for b in bands)
            if not self.indexes:
                raise ConfigError(f"{self.path}: empty band selection")
            bad = [b for b in self.indexes if not 1 <= b <= ds.count]
            if bad:
                raise ConfigError(
                    f"{self.path}: band(s) {bad} do not exist; the file has bands 1..{ds.count} "
                    "(band numbers are 1-based)"
                )
            if len(set(self.indexes)) != len(self.indexes):
                raise ConfigError(
                    f"{self.path}: band selection {list(self.indexes)} repeats a band"
                )
            if self.alpha_index in self.indexes:
                raise ConfigError(
                    f"{self.path}: band {self.alpha_index} is the alpha band; it is carried to the "
                    "output automatically, select only data bands"
                )
        if not self.indexes:
            raise InputFileError(self.path, "has no data bands (only an alpha band)")
        self.nodata_override = nodata is not None
        per_band = [ds.nodatavals[i - 1] for i in self.indexes]
        #: each selected band's own nodata value (None: none), whatever the override
        self.own_nodata: tuple[float | None, ...] = tuple(per_band)
        distinct = {"nan" if v is not None and np.isnan(v) else v for v in per_band}
        if len(distinct) > 1 and nodata is None:
            raise InputFileError(
                self.path,
                f"the selected bands have different nodata values {[str(v) for v in per_band]}"
                " and a GeoTIFF holds one: pass --nodata V for the output (each band's own "
                "value still marks its invalid pixels)",
            )
        #: the output's one nodata value: the override, else the file's
        self.nodata: float | None = float(nodata) if nodata is not None else per_band[0]
        if self.nodata is not None and not self.nodata_override:  # the file's own tag
            _check_nodata(self.path, self.nodata, self.dtype)
        #: each selected band's invalid values (stored type, NaN left to the finite test): the
        #: band's own nodata, which stays invalid under an override (a -3.4e38 fill taken for
        #: data would wreck every pixel near it), and the override
        self.invalid_values: tuple[tuple[Any, ...], ...] = tuple(
            self._typed_invalid((own, nodata)) for own in per_band
        )
        #: the same without the override: the file's own rules
        self.own_invalid_values = tuple(self._typed_invalid((own,)) for own in per_band)
        flags = [set(ds.mask_flag_enums[i - 1]) for i in self.indexes]
        self.has_dataset_mask = any(
            MaskFlags.per_dataset in f and MaskFlags.alpha not in f for f in flags
        )
        self.has_alpha = self.alpha_index is not None

    def _typed_invalid(self, values: tuple[float | None, ...]) -> tuple[Any, ...]:
        """The distinct non-NaN ``values`` in the stored type, leaving out those the type cannot
        hold (they occur in no pixel; cast, -9999 would mark uint16 55537)."""
        typed: list[Any] = []
        for v in values:
            if v is not None and not np.isnan(v) and nodata_problem(v, self.dtype) is None:
                t = np.array(v).astype(self.dtype)[()]
                if t not in typed:
                    typed.append(t)
        return tuple(typed)

    # -- properties --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return (self.ds.height, self.ds.width)

    @property
    def n_bands(self) -> int:
        return len(self.indexes)

    @property
    def may_have_invalid(self) -> bool:
        """False when no pixel can be invalid (integer data, no nodata, no mask, no alpha)."""
        return (
            self.nodata is not None
            or self.has_dataset_mask
            or self.has_alpha
            or self.dtype.kind == "f"
        )

    # -- reading ------------------------------------------------------------------------------
    def _validity(
        self,
        values: np.ndarray,
        gdal_mask: np.ndarray | None,
        alpha: np.ndarray | None,
        invalid_values: tuple[tuple[Any, ...], ...] | None = None,
    ) -> np.ndarray:
        valid = np.ones(values.shape, bool)
        if gdal_mask is not None:
            valid &= gdal_mask > 0
        if alpha is not None:  # GDAL derives a mask from alpha only in 2- and 4-band files
            valid &= alpha > 0
        rules = self.invalid_values if invalid_values is None else invalid_values
        for k, band_values in enumerate(rules):
            for v in band_values:
                valid[k] &= values[k] != v
        if self.dtype.kind == "f":  # NaN (also a NaN nodata) and inf are never valid
            valid &= np.isfinite(values)
        return valid

    def read(self, window: Window) -> Block:
        """Read the selected bands, validity, mask and alpha for ``window``."""
        values, gdal_mask, mask2d, alpha = self._read_raw(window)
        return Block(values, self._validity(values, gdal_mask, alpha), mask2d, alpha)

    def _read_raw(
        self, window: Window
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """``(values, GDAL masks, per-dataset mask, alpha)`` of ``window``."""
        try:
            values = self.ds.read(self.indexes, window=window)
            gdal_mask = mask2d = alpha = None
            if self.has_dataset_mask or self.has_alpha:
                gdal_mask = self.ds.read_masks(self.indexes, window=window)
                if self.has_dataset_mask:
                    mask2d = gdal_mask[0]
            if self.has_alpha:
                alpha = self.ds.read(self.alpha_index, window=window)
        except RasterioError as exc:
            raise InputFileError(
                self.path, f"read failed at {window!r} ({gdal_message(exc)}); is the file corrupt?"
            ) from exc
        return values, gdal_mask, mask2d, alpha

    def read_window(self, y0: int, x0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """``(values, valid)`` of a window: the reader callback of ``Upscaler.stream``."""
        block = self.read(Window(x0, y0, w, h))
        return block.values, block.valid

    def sample(self, max_values: int = SAMPLE_VALUES) -> tuple[np.ndarray, np.ndarray]:
        """A subsampled ``(values, valid)`` of the whole raster: every ``f``-th pixel of every
        ``f``-th row (nearest, so no value is invented), taken from the coarsest overview that
        is still fine enough when the file has overviews; the full raster when it is small.
        Read strip by strip, so memory stays bounded. Used to fit percentile profiles and the
        fill value once per file, never per tile; read once per source (the ``--dtype`` check,
        the profile and the value rules share it: read-only arrays)."""
        cached = self._samples.get(max_values)
        if cached is None:
            cached = self._read_sample(max_values)
            for a in cached:
                a.setflags(write=False)
            self._samples[max_values] = cached
        return cached

    def full_resolution_sample(
        self, max_values: int = SAMPLE_VALUES
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The pixels :meth:`sample` stands for, read at full resolution (every ``f``-th pixel
        of every ``f``-th row, strip by strip) when :meth:`sample` read them from the file's
        overviews, whose resampling (cubic, lanczos: the COG driver's default) overshoots the
        data at edges; None when the sample is the full resolution's already. Read once per
        source (the ``--dtype`` and ``--value-range`` checks share it), only when asked."""
        if max_values not in self._full_samples:
            factor = self._sample_factor(max_values)
            full = None
            if any(f <= factor for f in self.ds.overviews(self.indexes[0])):
                full = self._subsample(self, factor)
                for a in full:
                    a.setflags(write=False)
            self._full_samples[max_values] = full
        return self._full_samples[max_values]

    def _sample_factor(self, max_values: int) -> int:
        """The subsampling step of :meth:`sample` (1: the whole raster)."""
        h, w = self.shape
        per_band = max(1, max_values // self.n_bands)
        return max(1, math.ceil(math.sqrt(h * w / per_band)))

    def _read_sample(self, max_values: int) -> tuple[np.ndarray, np.ndarray]:
        factor = self._sample_factor(max_values)
        ovr = [f for f in self.ds.overviews(self.indexes[0]) if f <= factor]
        try:
            if not ovr:
                return self._subsample(self, factor)
            level = len(ovr) - 1
            with RasterSource(
                self.path,
                self.indexes,
                self.nodata if self.nodata_override else None,
                overview_level=level,
            ) as ov:
                return ov._subsample(ov, max(1, factor // ovr[-1]))
        except RasterioError as exc:
            raise InputFileError(
                self.path, f"read failed ({gdal_message(exc)}); is the file corrupt?"
            ) from exc

    def domain_minimum(self, exact: bool = False) -> np.ndarray:
        """The minimum of the valid values of each selected band for the value rules (NaN for
        a band without valid pixels), read strip by strip: exact, except that float round-off
        below zero reads as 0 (:func:`~sr_domains.value_facts.residue_floor`). Unsigned data
        needs no reading: 0 is a lower bound that decides the same (non-negative) domain."""
        if self.dtype.kind == "u" and not exact:  # (exact: compared with a physical zero)
            return np.zeros(self.n_bands)
        from ..value_facts import band_extremes, residue_floor, robust_magnitude

        h, w = self.shape
        itemsize = self.dtype.itemsize * self.n_bands
        strip = max(1, min(max(self.ds.block_shapes[0][0], 64), (64 * 2**20) // (itemsize * w)))
        mins, mags = np.full(self.n_bands, np.nan), np.zeros(self.n_bands)
        for y0 in range(0, h, strip):
            block = self.read(Window(0, y0, w, min(strip, h - y0)))
            lo, mag = band_extremes(block.values, block.valid, robust=False)
            mins, mags = np.fmin(mins, lo), np.fmax(mags, mag)
        floating = self.dtype.kind == "f"
        if floating and np.any(mins < 0):  # (the magnitude decides only a minimum below 0)
            values, valid = self.sample()
            for k in range(self.n_bands):
                ok = valid[k] & np.isfinite(values[k])
                mags[k] = robust_magnitude(values[k][ok], mags[k])
        return residue_floor(mins, mags, floating)

    def own_valid_stats(self, value: float | None = None) -> tuple[float, float, int]:
        """``(min, max, count)`` over the pixels of the selected bands that are valid by the
        file's own rules (its nodata, NaN, mask or alpha; the override left out): their exact
        range (NaN, NaN when none is valid) and how many equal ``value`` in the stored type (0
        for None or a value the type cannot hold). Read strip by strip."""
        typed = self._typed_invalid((value,))
        h, w = self.shape
        itemsize = self.dtype.itemsize * self.n_bands
        strip = max(1, min(max(self.ds.block_shapes[0][0], 64), (64 * 2**20) // (itemsize * w)))
        lo, hi, count = math.inf, -math.inf, 0
        for y0 in range(0, h, strip):
            values, gdal_mask, _, alpha = self._read_raw(Window(0, y0, w, min(strip, h - y0)))
            valid = self._validity(values, gdal_mask, alpha, self.own_invalid_values)
            if not valid.any():
                continue
            v = values[valid]
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
            if typed:
                count += int(np.count_nonzero(v == typed[0]))
        if lo > hi:
            return math.nan, math.nan, 0
        return lo, hi, count

    @staticmethod
    def _subsample(src: RasterSource, factor: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = src.shape
        if factor == 1:
            block = src.read(Window(0, 0, w, h))
            return block.values, block.valid
        itemsize = src.dtype.itemsize * src.n_bands
        strip = max(src.ds.block_shapes[0][0], 64)
        strip = max(factor, min(strip, (64 * 2**20) // max(1, itemsize * w)))
        strip = (strip // factor) * factor
        values, valid = [], []
        for y0 in range(0, h, strip):  # y0 is a multiple of factor
            block = src.read(Window(0, y0, w, min(strip, h - y0)))
            # copies, not views: a view would keep the whole strip alive
            values.append(block.values[:, ::factor, ::factor].copy())
            valid.append(block.valid[:, ::factor, ::factor].copy())
            del block
        log.debug("%s: sampled every %d-th pixel for profile fitting", src.path.name, factor)
        return np.concatenate(values, axis=1), np.concatenate(valid, axis=1)

    # -- context manager ----------------------------------------------------------------------
    def close(self) -> None:
        self.ds.close()

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_nodata(path: Path, nodata: float, dtype: np.dtype) -> None:
    problem = nodata_problem(nodata, dtype)
    if problem:
        raise ConfigError(f"{path}: {problem}")


__all__ = ["Block", "RasterSource", "alpha_band", "default_bands"]
