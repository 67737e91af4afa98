"""The derived SeriesNumber stays a valid IS value and differs per derivation kind."""

from __future__ import annotations

import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom import config  # noqa: E402

from sr_domains.medical import make_isotropic, upscale_dicom_series  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402


def _set_series_number(files, number):
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SeriesNumber = number
        ds.save_as(f)


def _numbers(folder):
    """SeriesNumbers of a written series, read back in RAISE mode."""
    old = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        return {pydicom.dcmread(f).SeriesNumber for f in sorted(folder.glob("*.dcm"))}
    finally:
        config.settings.reading_validation_mode = old


def test_series_number_near_the_is_limit_stays_readable(tmp_path):
    files = make_dicom_series(tmp_path / "in", n_slices=4, rows=8, cols=8)
    _set_series_number(files, 2147483000)
    upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2))
    assert _numbers(tmp_path / "out") == {2147483000 - 1000}


def test_derived_kinds_get_their_own_numbers(tmp_path):
    make_dicom_series(  # SeriesNumber 3
        tmp_path / "in", n_slices=4, rows=24, cols=24, pixel_spacing=(1, 1), slice_spacing=2
    )
    upscale_dicom_series(tmp_path / "in", tmp_path / "x2", model=interp_model(2))
    upscale_dicom_series(
        tmp_path / "in", tmp_path / "tp", model=interp_model(2), through_plane=True
    )
    make_isotropic(tmp_path / "in", tmp_path / "iso", steps=1, seed=0)
    got = [_numbers(tmp_path / d) for d in ("x2", "tp", "iso")]
    assert got == [{1003}, {2003}, {3003}]


def test_series_number_rule():
    from sr_domains.medical.dicom_derive import SERIES_NUMBER_OFFSETS, derived_series_number

    assert derived_series_number(5) == 1005
    assert derived_series_number(5, "isotropic") == 3005
    assert derived_series_number(2**31 - 1, "through-plane") == 2**31 - 1 - 2000
    assert derived_series_number(-(2**31), "in-plane") == -(2**31) + 1000
    assert derived_series_number(2**32, "in-plane") is None  # a source out of range
    assert sorted(SERIES_NUMBER_OFFSETS.values()) == [1000, 2000, 3000]
