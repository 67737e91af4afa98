"""One DICOM series in memory: its checked, sorted slices, geometry and pixel decoding.

The slices (files or frames) and the checks of their tags are
:mod:`sr_domains.medical.dicom_slice` (``DicomSlice``, ``slices_of``, ``fg_attr``,
``frame_count``, ``header_thickness``, ``text_value``: re-exported here). Stored values become
modality units by RescaleSlope/Intercept or by a Modality LUT (``ModalityLUTSequence``, classic
files).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InputFileError, require
from ..intensity import work_dtype
from .dicom_slice import (
    DicomSlice,
    fg_attr,
    frame_count,
    header_thickness,
    slices_of,
    text_value,
)
from .dicom_values import int_tag as _int_tag
from .dicom_values import padding_range, series_dtype, series_range, stored_kind
from .geometry import dicom_affine, slice_normal
from .pydicom_logs import decoder_failures_at_debug


def _pydicom() -> Any:
    return require("pydicom", "medical", "DICOM files")


@dataclass
class DicomSeries:
    """A checked, spatially sorted series (headers only until :meth:`read_volume`).

    The volume axes are ``(slice, row, column)``; :attr:`affine` maps them to LPS mm.
    """

    source: Path
    series_uid: str
    slices: list[DicomSlice]
    rows: int
    cols: int
    iop: np.ndarray
    pixel_spacing: np.ndarray  # (between rows, between columns)
    step: np.ndarray  # vector between consecutive slice positions
    has_geometry: bool = True
    enhanced: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> Any:
        return self.slices[0].ds

    @property
    def n_slices(self) -> int:
        return len(self.slices)

    @property
    def modality(self) -> str:
        return str(self.first.get("Modality", "OT"))

    @property
    def description(self) -> str:
        return text_value(self.first.get("SeriesDescription", ""))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices, self.rows, self.cols)

    @property
    def slice_spacing(self) -> float:
        """Distance between slice planes along the normal (SpacingBetweenSlices); under gantry
        tilt the step between positions is longer."""
        return float(abs(self.step @ slice_normal(self.iop)))

    @property
    def affine(self) -> np.ndarray:
        """``(slice, row, column)`` -> LPS affine (voxel centres)."""
        p0 = cast(np.ndarray, self.slices[0].position) if self.has_geometry else np.zeros(3)
        return dicom_affine(p0, self.iop, self.pixel_spacing, self.step)

    @property
    def files(self) -> list[Path]:
        return list(dict.fromkeys(s.path for s in self.slices))

    @property
    def stored_dtype(self) -> np.dtype:
        """The integer type of the derived series' pixels (:func:`.dicom_values.series_dtype`):
        one that holds the stored values of every slice (signedness and ``BitsStored`` may
        differ between files) and every Modality LUT output (written as modality values,
        rescale 1/0): 16-bit, 32-bit for a 32-bit source or where 16 bits cannot hold them."""
        return series_dtype(*self._value_sources())

    @property
    def stored_range(self) -> tuple[int, int]:
        """The stored values the series can hold (:func:`.dicom_values.series_range`):
        ``BitsStored`` 12 gives 0..4095 in 16-bit words."""
        return series_range(*self._value_sources())

    def _value_sources(self) -> tuple[list[Any], list[np.ndarray]]:
        files = {id(s.ds): s.ds for s in self.slices}
        return list(files.values()), [s.lut.table for s in self.slices if s.lut is not None]

    @property
    def mixed_stored_types(self) -> bool:
        """Whether the files differ in PixelRepresentation, BitsAllocated or BitsStored."""
        return len({stored_kind(s.ds) for s in self.slices}) > 1

    @property
    def padding(self) -> tuple[int, int] | None:
        """Stored values that mark pixels outside the scanned area: ``PixelPaddingValue``, up
        to ``PixelPaddingRangeLimit`` when present (inclusive), or None."""
        return padding_range(self.first)

    @property
    def padding_value(self) -> int | None:
        """``PixelPaddingValue`` itself (a range's low end may be ``PixelPaddingRangeLimit``)."""
        return _int_tag(self.first, "PixelPaddingValue")

    def read_volume(self, padding_as_nan: bool = False) -> np.ndarray:
        """Decode all slices -> ``(slice, row, column)`` in modality units (rescale applied):
        float32, float64 for 32-bit sources (:func:`~sr_domains.intensity.work_dtype`). With
        ``padding_as_nan``, padding pixels (each file's ``PixelPaddingValue`` [..``RangeLimit``])
        are NaN: they are not anatomy, so
        the network never sees them and the writer puts the padding value back. Errors
        (truncated or undecodable pixel data) name the file."""
        vol = np.empty(self.shape, work_dtype(self.stored_dtype))
        by_file: dict[Path, list[int]] = defaultdict(list)
        for i, s in enumerate(self.slices):
            by_file[s.path].append(i)
        for path, idx in by_file.items():
            arr = decode_pixels(path, self.slices[idx[0]].ds)
            for i in idx:
                s = self.slices[i]
                frame = arr if s.frame is None else arr[s.frame]
                if frame.shape != (self.rows, self.cols):
                    raise InputFileError(
                        path, f"decoded a {frame.shape} image, expected {(self.rows, self.cols)}"
                    )
                if s.lut is not None:
                    vol[i] = s.lut.apply(frame)
                else:
                    vol[i] = frame.astype(np.float64) * s.slope + s.intercept
                pad = padding_range(s.ds) if padding_as_nan else None  # each file's own
                if pad is not None:
                    vol[i][(frame >= pad[0]) & (frame <= pad[1])] = np.nan
        return vol


def decode_pixels(path: Path, ds: Any) -> np.ndarray:
    """Stored pixel values of a file (``(rows, cols)`` or ``(frames, rows, cols)``)."""
    pydicom = _pydicom()
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:  # a fresh full read: clear pydicom messages, nothing cached on the header dataset
        with decoder_failures_at_debug(path):
            arr = pydicom.dcmread(path).pixel_array
    except Exception as exc:
        name = getattr(ts, "name", ts)
        raise InputFileError(path, f"cannot decode the pixel data ({name}): {exc}") from exc
    n = frame_count(path, ds)
    if n > 1 and arr.ndim == 2:
        arr = arr[None]
    return arr


__all__ = [
    "DicomSeries",
    "DicomSlice",
    "decode_pixels",
    "fg_attr",
    "frame_count",
    "header_thickness",
    "slices_of",
    "text_value",
]
