"""The derived SeriesNumber stays a valid IS value and differs per derivation kind and scale."""

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
    assert _numbers(tmp_path / "out") == {2147483000 - 1020}


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
    factor = len(list((tmp_path / "iso").glob("*.dcm"))) / 4  # its largest (slices 2 -> 1 mm)
    assert got == [{1023}, {2023}, {3003 + round(10 * factor)}]  # kind + scale in tenths


def test_series_number_rule():
    from sr_domains.medical.dicom_derive import SERIES_NUMBER_OFFSETS, derived_series_number

    assert derived_series_number(5) == 1005
    assert derived_series_number(5, "isotropic") == 3005
    assert derived_series_number(5, "in-plane", 2) == 1025
    assert derived_series_number(5, "in-plane", 4) == 1045
    assert derived_series_number(5, "through-plane", 2.5) == 2030
    assert derived_series_number(5, "isotropic", 500) == 3005 + 999  # the scale part stays < 1000
    assert derived_series_number(2**31 - 1, "through-plane") == 2**31 - 1 - 2000
    assert derived_series_number(2**31 - 1, "in-plane", 3) == 2**31 - 1 - 1030
    assert derived_series_number(-(2**31), "in-plane") == -(2**31) + 1000
    assert derived_series_number(2**32, "in-plane") is None  # a source out of range
    assert sorted(SERIES_NUMBER_OFFSETS.values()) == [1000, 2000, 3000]


def test_scales_of_one_source_get_their_own_numbers(tmp_path):
    """x2, x3 and x4 in-plane outputs of one series: a PACS listed them as one series number
    (1003 each); a re-run gives the same number again."""
    make_dicom_series(tmp_path / "in", n_slices=3, rows=8, cols=8)  # SeriesNumber 3
    for s in (2, 3, 4):
        upscale_dicom_series(tmp_path / "in", tmp_path / f"x{s}", model=interp_model(s), scale=s)
    upscale_dicom_series(tmp_path / "in", tmp_path / "again", model=interp_model(4), scale=4)
    got = [_numbers(tmp_path / d) for d in ("x2", "x3", "x4", "again")]
    assert got == [{1023}, {1033}, {1043}, {1043}]
