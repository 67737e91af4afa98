"""DICOM files that ship inside pydicom, for the tests (never downloaded)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
