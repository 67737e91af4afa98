"""A uniform series whose ImagePositionPatient values were written with few decimals (0.1 mm:
a gap between two rounded positions is off by up to 0.1 mm, 8 % of 1.25 mm) is read; a missing
slice or a moved slice in such a series is still refused, the message quoting the spacing
fitted to the positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series  # noqa: E402
from sr_domains.testing.dicom import OBLIQUE_IOP  # noqa: E402
from sr_domains.testing.medical import make_dicom_series  # noqa: E402

AXIAL = (1, 0, 0, 0, 1, 0)
CASES = [  # (spacing, decimals written, orientation, slices)
    (1.25, 1, AXIAL, 8),
    (0.625, 1, AXIAL, 40),
    (1.25, 1, AXIAL, 120),
    (3.0, 2, OBLIQUE_IOP, 10),  # (2 decimals of 3 mm: read before too; the refusals are new)
]


def _rounded_series(folder: Path, spacing: float, decimals: int, iop, n: int) -> list[Path]:
    """A CT series with its positions rewritten as ``decimals``-place strings (spatial order)."""
    files = make_dicom_series(
        folder,
        modality="CT",
        n_slices=n,
        rows=8,
        cols=6,
        slice_spacing=spacing,
        iop=iop,
        origin=(-125.3, -140.7, -301.25),
        shuffle_filenames=False,
    )
    for f in files:
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [f"{float(v):.{decimals}f}" for v in ds.ImagePositionPatient]
        ds.save_as(f)
    return files


def _move(path: Path, mm: float, decimals: int) -> None:
    """Move a slice ``mm`` along its normal, written as the others are."""
    ds = pydicom.dcmread(path)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    pos = np.array([float(v) for v in ds.ImagePositionPatient]) + mm * np.cross(iop[:3], iop[3:])
    ds.ImagePositionPatient = [f"{v:.{decimals}f}" for v in pos]
    ds.save_as(path)


@pytest.mark.parametrize("n", [8, 40, 120])
@pytest.mark.parametrize("spacing", [1.25, 0.625])
def test_positions_rounded_when_written_are_a_uniform_series(tmp_path, spacing, n):
    _rounded_series(tmp_path / "s", spacing, 1, AXIAL, n)
    series = load_dicom_series(tmp_path / "s")
    assert series.n_slices == n
    assert series.slice_spacing == pytest.approx(spacing, abs=0.1 / (n - 1) + 1e-9)
    # written to 6 decimals, a slice off by what rounding to 0.1 mm would explain is refused
    files = make_dicom_series(
        tmp_path / "full", n_slices=n, rows=8, cols=6, slice_spacing=spacing, iop=AXIAL,
        shuffle_filenames=False,
    )  # fmt: skip
    ds = pydicom.dcmread(files[n // 2])
    pos = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [*pos[:2], round(pos[2] + 0.08, 6)]
    ds.save_as(files[n // 2])
    with pytest.raises(InputFileError, match="non-uniform slice spacing"):
        load_dicom_series(tmp_path / "full")


@pytest.mark.parametrize(("spacing", "decimals", "iop", "n"), CASES)
def test_a_missing_slice_among_rounded_positions_is_still_refused(
    tmp_path, spacing, decimals, iop, n
):
    files = _rounded_series(tmp_path / "s", spacing, decimals, iop, n)
    files[n // 2].unlink()
    with pytest.raises(InputFileError, match=r"1 missing slice\(s\)") as info:
        load_dicom_series(tmp_path / "s")
    text = str(info.value)
    assert files[n // 2 - 1].name in text and files[n // 2 + 1].name in text
    fitted = float(text.split("expected ")[1].split(" mm")[0])
    assert fitted == pytest.approx(spacing, rel=0.02)  # the fitted spacing, not a median gap
    assert "the spacing fitted to the slice positions" in text


@pytest.mark.parametrize(("spacing", "decimals", "iop", "n"), CASES)
def test_a_moved_slice_among_rounded_positions_is_still_refused(
    tmp_path, spacing, decimals, iop, n
):
    files = _rounded_series(tmp_path / "s", spacing, decimals, iop, n)
    _move(files[n // 2], 0.3 * spacing, decimals)
    with pytest.raises(InputFileError, match="non-uniform slice spacing") as info:
        load_dicom_series(tmp_path / "s")
    assert files[n // 2].name in str(info.value)
    # (3 mm at 2 decimals: rounding within the 2 %, judged by the median gap, as before)
    basis = "the median gap" if decimals == 2 else "the spacing fitted to the slice positions"
    assert f"mm ({basis})" in str(info.value)
