"""The derived SeriesNumber stays a valid IS value and differs per derivation kind and scale,
and the outputs of different source series never share one (``K SSS NNNNN``: kind, scale in
tenths, source)."""

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
    assert _numbers(tmp_path / "out") == {2147483000 - 102_000_000}


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
    assert got == [{102_000_003}, {202_000_003}, {300_000_003 + 100_000 * round(10 * factor)}]


def test_series_number_rule():
    from sr_domains.medical.dicom_derive import SERIES_NUMBER_OFFSETS, derived_series_number

    assert derived_series_number(5, "in-plane", 2) == 102_000_005
    assert derived_series_number(5, "in-plane", 4) == 104_000_005
    assert derived_series_number(5, "isotropic", 1.5) == 301_500_005
    assert derived_series_number(5, "through-plane", 2.5) == 202_500_005
    assert derived_series_number(5, "isotropic", 500) == 399_900_005  # 3 digits of tenths
    assert derived_series_number(2**31 - 1, "through-plane", 2) == 2**31 - 1 - 202_000_000
    assert derived_series_number(2**31 - 1, "in-plane", 3) == 2**31 - 1 - 103_000_000
    assert derived_series_number(-(2**31), "in-plane", 2) == -(2**31) + 102_000_000
    assert derived_series_number(2**32, "in-plane", 2) is None  # a source out of range
    assert sorted(SERIES_NUMBER_OFFSETS.values()) == [100_000_000, 200_000_000, 300_000_000]
    with pytest.raises(TypeError):
        derived_series_number(5)  # type: ignore[call-arg]  # (the scale is part of the number)


def test_different_sources_never_share_a_number():
    """Series 3 at x4 and series 23 at x2 both got 1043 (source + kind + scale in tenths):
    every source 0..99999, kind and scale of tenths 1..999 gets its own number."""
    from sr_domains.medical.dicom_derive import derived_series_number

    assert derived_series_number(3, "in-plane", 4) != derived_series_number(23, "in-plane", 2)
    kinds = ("in-plane", "through-plane", "isotropic")
    tenths = (1, 10, 15, 20, 25, 30, 40, 99, 100, 999)
    seen: dict[int, tuple] = {}
    for source in (*range(0, 1200), 9999, 10_000, 99_999):
        for kind in kinds:
            for t in tenths:
                n = derived_series_number(source, kind, t / 10)
                assert n is not None and 100_000_000 <= n < 2**31 and len(str(n)) <= 12
                assert seen.setdefault(n, (source, kind, t)) == (source, kind, t)


def test_two_series_of_one_study_keep_their_own_numbers(tmp_path):
    """The review's case, end to end: series 3 at x4 and series 23 at x2, one study."""
    for name, number, s in (("s3", 3, 4), ("s23", 23, 2)):
        files = make_dicom_series(tmp_path / name, n_slices=3, rows=8, cols=8)
        _set_series_number(files, number)
        upscale_dicom_series(
            tmp_path / name, tmp_path / f"{name}_x{s}", model=interp_model(s), scale=s
        )
    got = [_numbers(tmp_path / d) for d in ("s3_x4", "s23_x2")]
    assert got == [{104_000_003}, {102_000_023}]  # (both were 1043)


def test_scales_of_one_source_get_their_own_numbers(tmp_path):
    """x2, x3 and x4 in-plane outputs of one series: a PACS listed them as one series number
    (1003 each); a re-run gives the same number again."""
    make_dicom_series(tmp_path / "in", n_slices=3, rows=8, cols=8)  # SeriesNumber 3
    for s in (2, 3, 4):
        upscale_dicom_series(tmp_path / "in", tmp_path / f"x{s}", model=interp_model(s), scale=s)
    upscale_dicom_series(tmp_path / "in", tmp_path / "again", model=interp_model(4), scale=4)
    got = [_numbers(tmp_path / d) for d in ("x2", "x3", "x4", "again")]
    assert got == [{102_000_003}, {103_000_003}, {104_000_003}, {104_000_003}]
