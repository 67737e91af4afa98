"""Metadata of through-plane and isotropic DICOM outputs: an enhanced file's top-level
SliceThickness / SpacingBetweenSlices say what its functional groups say; a series whose
positions were written rounded (0.1 mm) gets new slices on the line fitted to them at its stated
spacing (not the step between its two end slices); the SeriesNumber counts the planned factor
(not the rounded slice count), and an SR of an SR output never takes a first-generation one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from sr_domains.medical import make_isotropic, upscale_dicom_series  # noqa: E402
from sr_domains.medical.dicom_derive import derived_series_number  # noqa: E402
from sr_domains.testing.medical import (  # noqa: E402
    interp_model,
    make_dicom_series,
    make_enhanced_dicom,
)

AXIAL = (1, 0, 0, 0, 1, 0)


def _shared_measures(ds):
    return ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]


def _enhanced(tmp_path: Path, **top) -> Path:
    """5 frames 2.5 mm apart, 1 mm pixels, with top-level tags ``top`` beside the groups."""
    p = make_enhanced_dicom(tmp_path / "in" / "e.dcm", pixel_spacing=(1.0, 1.0), slice_spacing=2.5)
    ds = pydicom.dcmread(p)
    for key, value in top.items():
        setattr(ds, key, value)
    ds.save_as(p)
    return p.parent


def test_enhanced_isotropic_top_level_thickness_and_series_number(tmp_path):
    for name, top, want in (("zero", "0", None), ("given", "2.5", "1")):
        src = _enhanced(tmp_path / name, SliceThickness=top)
        out = make_isotropic(src, tmp_path / name / "iso", steps=0)
        ds = pydicom.dcmread(out[0])
        assert float(_shared_measures(ds).SliceThickness) == 1.0
        # the stale 0 removed; a value there replaced by the groups' new one
        assert ds.get("SliceThickness") == (None if want is None else pytest.approx(1.0))
        # 5 frames x2.5 -> 13 (12.5 rounded): the planned 2.5 is numbered (25), not 13/5 (26)
        assert ds.NumberOfFrames == 13
        assert ds.SeriesNumber == 302_500_003


def test_enhanced_through_plane_top_level_spacing(tmp_path):
    for name, top, want in (("stated", "2.5", 1.25), ("zero", "0", None)):
        src = _enhanced(tmp_path / name, SpacingBetweenSlices=top)
        out = upscale_dicom_series(
            src, tmp_path / name / "tp", model=interp_model(2), through_plane=True
        )
        ds = pydicom.dcmread(out[0])
        assert float(_shared_measures(ds).SpacingBetweenSlices) == 1.25
        assert ds.get("SpacingBetweenSlices") == (None if want is None else pytest.approx(want))


def _rounded_series(folder: Path, stated: str | None = "1.25", n: int = 8) -> list[Path]:
    """A 1.25 mm axial CT series whose positions were written to 0.1 mm (the ends 1.2429 mm
    apart per slice), its SpacingBetweenSlices ``stated``."""
    files = make_dicom_series(
        folder, modality="CT", n_slices=n, rows=24, cols=24, slice_spacing=1.25, iop=AXIAL,
        pixel_spacing=(0.5, 0.5), origin=(-125.3, -140.7, -301.25), shuffle_filenames=False,
    )  # fmt: skip
    for f in files:
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [f"{float(v):.1f}" for v in ds.ImagePositionPatient]
        if stated is not None:
            ds.SpacingBetweenSlices = stated
        ds.save_as(f)
    return files


def _z(files: list[Path]) -> tuple[np.ndarray, list]:
    dss = sorted(
        (pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2])
    )
    return np.array([float(d.ImagePositionPatient[2]) for d in dss]), dss


def test_rounded_positions_through_plane_on_the_fitted_grid(tmp_path):
    _rounded_series(tmp_path / "in")
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "tp", model=interp_model(2), through_plane=True
    )
    z, dss = _z(out)
    assert len(z) == 16
    np.testing.assert_allclose(np.diff(z), 0.625, atol=1e-9)  # (was 0.62142857 throughout)
    # the slices of the true grid (-301.25 + 1.25 k, voxel-centre rule), which the fitted line
    # finds: the first new slice is a quarter of a source slice before the first source slice
    np.testing.assert_allclose(z, -301.25 - 0.3125 + 0.625 * np.arange(16), atol=1e-9)
    assert {d["SpacingBetweenSlices"].value.original_string for d in dss} == {"0.625"}
    # no stated spacing: the fitted one (1.2452 mm), not the ends' 1.2429
    _rounded_series(tmp_path / "bare", stated=None)
    out = upscale_dicom_series(
        tmp_path / "bare", tmp_path / "tp2", model=interp_model(2), through_plane=True
    )
    z, dss = _z(out)
    fitted = np.polyfit(
        np.arange(8), [-301.2, -300, -298.8, -297.5, -296.2, -295, -293.8, -292.5], 1
    )
    np.testing.assert_allclose(np.diff(z), fitted[0] / 2, atol=1e-9)
    assert float(dss[0].SpacingBetweenSlices) == pytest.approx(fitted[0] / 2, abs=1e-9)


def test_rounded_positions_in_plane_keep_positions_and_stated_spacing(tmp_path):
    files = _rounded_series(tmp_path / "in")
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "x2", model=interp_model(2))
    z, dss = _z(out)
    # the stated 1.25 is kept (it was rewritten as the ends' 1.24285714285714)
    assert {d["SpacingBetweenSlices"].value.original_string for d in dss} == {"1.25"}
    src_z, _ = _z(files)
    np.testing.assert_allclose(
        z[[0, -1]], src_z[[0, -1]], atol=1e-9
    )  # the in-plane line, as before


def test_rounded_positions_isotropic_on_the_fitted_grid(tmp_path):
    _rounded_series(tmp_path / "in")
    out = make_isotropic(tmp_path / "in", tmp_path / "iso", steps=0)
    z, dss = _z(out)
    assert len(z) == 20  # 8 x 1.25 / 0.5
    # the first edge of the fitted grid (-301.875) kept: first centre -301.625 (was -301.571)
    np.testing.assert_allclose(z, -301.625 + 0.5 * np.arange(20), atol=1e-9)
    assert float(dss[0].SpacingBetweenSlices) == 0.5 and float(dss[0].SliceThickness) == 0.5


def test_isotropic_series_number_counts_the_planned_factor(tmp_path):
    """5 slices 3 mm -> 0.7 mm: x4.2857 planned (43 tenths), 21 slices written (21/5 = 4.2)."""
    make_dicom_series(tmp_path / "in", n_slices=5, rows=28, cols=28, pixel_spacing=(0.7, 0.7))
    out = make_isotropic(tmp_path / "in", tmp_path / "iso", steps=0)
    assert len(out) == 21
    assert {pydicom.dcmread(f).SeriesNumber for f in out} == {304_300_003}


def test_an_sr_of_an_sr_output_never_takes_a_first_generation_number(tmp_path):
    make_dicom_series(tmp_path / "in", n_slices=4, rows=8, cols=8)  # SeriesNumber 3
    upscale_dicom_series(tmp_path / "in", tmp_path / "x2", model=interp_model(2))
    again = upscale_dicom_series(tmp_path / "x2", tmp_path / "x2x2", model=interp_model(2))
    tp4 = upscale_dicom_series(
        tmp_path / "in", tmp_path / "tp4", model=interp_model(4), scale=4, through_plane=True
    )
    # (both were 204000003: 102000003 + 102000000 = 3 + 204000000)
    assert pydicom.dcmread(tp4[0]).SeriesNumber == 204_000_003
    assert pydicom.dcmread(again[0]).SeriesNumber == 1_204_000_003
    kinds, tenths = ("in-plane", "through-plane", "isotropic"), (5, 10, 15, 20, 25, 30, 40, 999)
    first = {
        derived_series_number(s, k, t / 10)
        for s in (0, 3, 23, 999, 99_999)
        for k in kinds
        for t in tenths
    }
    second = {
        derived_series_number(int(n), k, t / 10) for n in first for k in kinds for t in tenths
    }
    assert None not in second and not first & second
