"""Output slices between source slices of different RescaleSlope/Intercept (through-plane and
isotropic outputs; PET gives every slice a slope sized to its own maximum): each output slice
is written with a rescale whose value grid holds its own values, so none is clipped to its
nearest source slice's range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_files import rescaled_series  # noqa: E402

from sr_domains.medical import load_dicom_series, upscale_dicom_series  # noqa: E402
from sr_domains.medical.dicom_write import write_derived_series  # noqa: E402
from sr_domains.testing.dicom import make_enhanced_dicom  # noqa: E402
from sr_domains.testing.medical import interp_model  # noqa: E402

ROWS, COLS = 8, 6


def _series(
    folder: Path, pairs: list[tuple[float, float]], phys: np.ndarray, pet: bool = False
) -> Any:
    """The series of :func:`rescaled_series` (12-bit MR, or ``pet``: signed 16-bit PT)."""
    rescaled_series(folder, pairs, phys, pet=pet)
    return load_dicom_series(folder)


def _halfway(series: Any, volume: np.ndarray, folder: Path) -> list[Any]:
    """Write ``volume`` (twice the slices of ``series``) as its derived series; the files."""
    aff = series.affine.copy()
    aff[:3, 0] /= 2
    folder.mkdir()
    files = write_derived_series(series, volume, aff, folder, scale=1, derivation="test")
    return [pydicom.dcmread(f) for f in files]


def _physical(ds: Any) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _doubled(phys: np.ndarray) -> np.ndarray:
    """Linear interpolation to twice the slices (centre rule, edges repeated)."""
    n = phys.shape[0]
    t = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (t - i0)[:, None, None]
    return phys[i0] * (1 - w) + phys[i1] * w


def test_slices_next_to_another_rescale_keep_their_values(tmp_path):
    """Slice 2 has slope 0.5 / intercept 300 (modality values >= 300), its neighbours 1/0
    with a background of 0: the output slices nearest slice 2 hold the interpolated values
    below 300 (they were floored at 300), the others keep their source's rescale."""
    pairs = [(1.0, 0.0), (1.0, 0.0), (0.5, 300.0), (1.0, 0.0)]
    phys = np.zeros((4, ROWS, COLS))
    phys[:, 2:6, 2:5] = 800.0
    phys[2] = np.where(phys[2] > 0, 700.0, 300.0)
    series = _series(tmp_path / "in", pairs, phys)
    want = _doubled(phys)
    out = _halfway(series, want, tmp_path / "out")
    for k, ds in enumerate(out):
        slope = float(ds.RescaleSlope)
        np.testing.assert_allclose(_physical(ds), want[k], atol=slope / 2 + 1e-9)
    assert _physical(out[4]).min() < 300 and _physical(out[5]).min() < 300
    kept = [0, 1, 2, 3, 6, 7]  # nearest slice's grid holds them: its pair, as before
    assert all(
        float(out[k].RescaleSlope) == 1 and float(out[k].RescaleIntercept) == 0 for k in kept
    )
    assert all(int(ds.BitsStored) == 12 for ds in out)


def test_a_hotter_neighbour_is_not_clipped_pet(tmp_path):
    """PET: signed 16 bits, intercept 0 and each slice's slope sized to its own maximum
    (stored 32767): output slices between a cold and a hot slice hold values the cold
    slice's grid cannot (over ten times its maximum); each gets a rescale that holds them,
    intercept 0."""
    peaks = [400.0, 4000.0, 40000.0, 800.0]
    pairs = [(p / 32767, 0.0) for p in peaks]
    ramp = np.linspace(0, 1, ROWS * COLS).reshape(ROWS, COLS)
    phys = np.stack([np.rint(ramp * 32767) * s for s, _ in pairs])
    series = _series(tmp_path / "in", pairs, phys, pet=True)
    want = _doubled(phys)
    out = _halfway(series, want, tmp_path / "out")
    for k, ds in enumerate(out):
        slope = float(ds.RescaleSlope)
        assert float(ds.RescaleIntercept) == 0
        np.testing.assert_allclose(_physical(ds), want[k], atol=slope / 2 + 1e-6 * want[k].max())
    assert _physical(out[6]).max() > 10000  # nearest the 800 slice, a quarter of 40000


def test_values_below_the_nearest_floor_keep_its_value_grid(tmp_path):
    """Slice 2 (slope 0.5, intercept 300) between slices of slope 0.1 (up to 409.5 in 12
    bits): an output slice nearest it reaching 250..1500 fits neither grid; it keeps slice
    2's values (300 + 0.5 n) with the intercept moved down by whole steps, in 12 bits."""
    pairs = [(0.1, 0.0), (0.1, 0.0), (0.5, 300.0), (0.1, 0.0)]
    series = _series(tmp_path / "in", pairs, np.full((4, ROWS, COLS), 300.0))
    want = np.full((8, ROWS, COLS), 300.0)
    want[5] = np.linspace(250, 1500, ROWS * COLS).reshape(ROWS, COLS)  # t = 2.25
    out = _halfway(series, want, tmp_path / "out")
    slope, icpt = float(out[5].RescaleSlope), float(out[5].RescaleIntercept)
    assert slope == 0.5 and 249.5 < icpt <= 250 and (icpt - 300) % 0.5 == 0
    np.testing.assert_allclose(_physical(out[5]), want[5], atol=0.25 + 1e-9)
    assert int(out[5].BitsStored) == 12


def test_values_no_source_grid_nearby_holds_get_a_fitted_slope(tmp_path):
    """Between slices of slopes 1 and 0.1 (12-bit: up to 4095 and 409.5; 6553.5 in 16 bits)
    an output slice reaching 9000 (a value slice 0, slope 10, can hold): neither neighbour's
    grid holds it, so it gets a new slope that does, within the 12 bits stored."""
    pairs = [(10.0, 0.0), (1.0, 0.0), (0.1, 0.0), (0.1, 0.0)]
    phys = np.zeros((4, ROWS, COLS))
    phys[0, 3, 3] = 30000.0
    series = _series(tmp_path / "in", pairs, phys)
    want = np.zeros((8, ROWS, COLS))
    want[4] = np.linspace(0, 9000, ROWS * COLS).reshape(ROWS, COLS)  # between slices 1 and 2
    out = _halfway(series, want, tmp_path / "out")
    slope = float(out[4].RescaleSlope)
    assert 9000 / 4095 <= slope < 9000 / 4095 * 1.001
    assert float(out[4].RescaleIntercept) == 0
    np.testing.assert_allclose(_physical(out[4]), want[4], atol=slope / 2 + 1e-9)
    assert int(out[4].BitsStored) == 12


def test_through_plane_run_keeps_the_values_between_slices(tmp_path):
    """The public through-plane path on a series with one slice of slope 0.5 / intercept 300:
    the output slices nearest it read below 300 where their neighbours' background is 0."""
    pairs = [(1.0, 0.0), (1.0, 0.0), (0.5, 300.0), (1.0, 0.0), (1.0, 0.0)]
    phys = np.zeros((5, ROWS, COLS))
    phys[:, 2:6, 2:5] = 900.0
    phys[2] = np.where(phys[2] > 0, 700.0, 300.0)
    _series(tmp_path / "in", pairs, phys)
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", model=interp_model(2, "bilinear"), through_plane=True
    )
    got = sorted(
        (float(ds.ImagePositionPatient[2]), _physical(ds))
        for ds in (pydicom.dcmread(f) for f in out)
    )
    assert len(got) == 10
    assert got[4][1].min() < 300 and got[5][1].min() < 300


def test_enhanced_frames_get_their_own_pixel_value_transformation(tmp_path):
    """Enhanced multi-frame with per-frame PixelValueTransformation (frame 2: slope 0.5,
    intercept 300): frames between it and its neighbours hold their values, each with its
    own per-frame rescale; a linear real world value mapping of the regridded frames is
    re-expressed so it still gives the same real world values."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    path = make_enhanced_dicom(
        tmp_path / "in" / "e.dcm", n_frames=4, rows=ROWS, cols=COLS, iop=(1, 0, 0, 0, 1, 0)
    )
    ds = pydicom.dcmread(path)
    del ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    z = [
        float(it.PlanePositionSequence[0].ImagePositionPatient[2])
        for it in ds.PerFrameFunctionalGroupsSequence
    ]
    rank = np.argsort(np.argsort(z))  # spatial index of each stored frame
    px = ds.pixel_array.copy()
    for f, it in enumerate(ds.PerFrameFunctionalGroupsSequence):
        odd = rank[f] == 2
        pvt = Dataset()
        pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = (
            (0.5, 300.0, "US") if odd else (1.0, 0.0, "US")
        )
        it.PixelValueTransformationSequence = Sequence([pvt])
        rw = Dataset()
        rw.RealWorldValueSlope, rw.RealWorldValueIntercept = 2.0, 5.0
        rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped = 0, 4095
        rw.LUTLabel, rw.LUTExplanation = "rw", "test"
        it.RealWorldValueMappingSequence = Sequence([rw])
        px[f] = 0  # (frame 2: 300, the others 0)
        px[f, 2:6, 2:5] = 800
    ds.PixelData = px.astype("<u2").tobytes()
    ds.save_as(path)
    series = load_dicom_series(tmp_path / "in")
    phys = series.read_volume()
    assert phys[2].min() == 300 and phys[1].min() == 0
    want = _doubled(phys)
    out = _halfway(series, want, tmp_path / "out")[0]
    got = out.pixel_array
    for k, it in enumerate(out.PerFrameFunctionalGroupsSequence):
        pvt = it.PixelValueTransformationSequence[0]
        s, c = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
        np.testing.assert_allclose(got[k] * s + c, want[k], atol=s / 2 + 1e-9)
        if k in (4, 5):  # nearest frame 2, a quarter of the way to a background of 0
            assert (got[k] * s + c).min() < 300
        rw = it.RealWorldValueMappingSequence[0]
        src = series.slices[min(max(round((k + 0.5) / 2 - 0.5), 0), 3)]  # its source frame
        real_old = 2.0 * (got[k] * s + c - src.intercept) / src.slope + 5.0
        real_new = got[k] * float(rw.RealWorldValueSlope) + float(rw.RealWorldValueIntercept)
        np.testing.assert_allclose(real_new, real_old, rtol=1e-9, atol=1e-6)
    shared = out.SharedFunctionalGroupsSequence[0]
    assert "PixelValueTransformationSequence" not in shared
