"""DICOM files that ship inside pydicom, for the tests (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


def shipped(name: str) -> Path:
    """A file shipped inside pydicom; the test is skipped when this pydicom lacks it."""
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if p is None:
        pytest.skip(f"{name} not shipped with this pydicom")
    return Path(p)
