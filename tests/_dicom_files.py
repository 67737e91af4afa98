"""DICOM files for the tests: those that ship inside pydicom (never downloaded), and small
generated series edited slice by slice (one rescale a slice)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def shipped(name: str) -> Path:
    """A file shipped inside pydicom; the test is skipped when this pydicom lacks it."""
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if p is None:
        pytest.skip(f"{name} not shipped with this pydicom")
    return Path(p)


def edit_files(files: list[Path], edit: Callable[[Any, int], None]) -> None:
    """Read each DICOM file with pydicom, apply ``edit(dataset, index)`` and save it back."""
    import pydicom

    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        edit(ds, i)
        ds.save_as(f)


def rescaled_series(
    folder: Path,
    pairs: list[tuple[float, float]],
    phys: np.ndarray,
    *,
    pet: bool = False,
    edit: Callable[[Any, int], None] | None = None,
) -> list[Path]:
    """An axial series, one file a slice in spatial order, whose slice ``i`` has the rescale
    ``pairs[i]`` (slope, intercept) and the modality values ``phys[i]`` on its grid: 12-bit
    unsigned MR (RescaleType US), or with ``pet`` a PT series of signed 16 bits (BQML).
    ``edit(dataset, i)`` changes each slice further before it is saved."""
    from sr_domains.testing.dicom import make_dicom_series

    files = make_dicom_series(
        folder,
        n_slices=len(pairs),
        rows=phys.shape[1],
        cols=phys.shape[2],
        iop=(1, 0, 0, 0, 1, 0),
        shuffle_filenames=False,
        shuffle_instance_numbers=False,
    )

    def rescale(ds: Any, i: int) -> None:
        s, c = pairs[i]
        stored = np.rint((phys[i] - c) / s)
        lo, hi = (-32768, 32767) if pet else (0, 4095)
        assert stored.min() >= lo and stored.max() <= hi
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = s, c, "BQML" if pet else "US"
        if pet:
            ds.Modality = "PT"
            ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1
        else:
            ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        ds.PixelData = stored.astype("<i2" if pet else "<u2").tobytes()
        if edit is not None:
            edit(ds, i)

    edit_files(files, rescale)
    return files
