"""A 12-bit series whose slices alternate rescale intercepts 0 and -1000 (a real world value
mapping on each): output slices between them are written on a shifted value grid, and stay
within the 12 bits stored (``BitsStored`` kept, as viewers and PACS expect), their real world
value mapping covering the declared stored range, never past it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_files import rescaled_series  # noqa: E402

from sr_domains.medical import load_dicom_series  # noqa: E402
from sr_domains.medical.dicom_write import write_derived_series  # noqa: E402
from sr_domains.testing.dicom import make_enhanced_dicom  # noqa: E402

ROWS, COLS = 8, 6
PAIRS = [(1.0, 0.0), (1.0, -1000.0), (1.0, 0.0), (1.0, -1000.0)]
RAMP = np.linspace(0, 1, ROWS * COLS).reshape(ROWS, COLS)


def _rw(pair: tuple[float, float], first: int = 0, last: int = 4095) -> Any:
    """A linear mapping of stored values to half the modality value (rescale ``pair``)."""
    from pydicom.dataset import Dataset

    rw = Dataset()
    rw.RealWorldValueSlope, rw.RealWorldValueIntercept = 0.5 * pair[0], 0.5 * pair[1]
    rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped = first, last
    rw.LUTLabel, rw.LUTExplanation = "rw", "test"
    return rw


def _phys(pairs: list[tuple[float, float]]) -> np.ndarray:
    """Modality values filling each slice's 12-bit grid (0..4000 above its intercept)."""
    return np.stack([c + np.rint(RAMP * 4000) * s for s, c in pairs])


def _classic(folder: Path, pairs: list[tuple[float, float]], rw: tuple[int, int]) -> Any:
    """A 12-bit series of :func:`_phys` values, each slice with a mapping of stored ``rw``."""

    def mapping(ds: Any, i: int) -> None:
        ds.RealWorldValueMappingSequence = pydicom.sequence.Sequence([_rw(pairs[i], *rw)])

    rescaled_series(folder, pairs, _phys(pairs), edit=mapping)
    return load_dicom_series(folder)


def _write(series: Any, volume: np.ndarray, folder: Path) -> list[Any]:
    """``volume`` (its slice count a multiple of the series') as the derived series."""
    aff = series.affine.copy()
    aff[:3, 0] *= series.n_slices / volume.shape[0]
    folder.mkdir()
    files = write_derived_series(series, volume, aff, folder, scale=1, derivation="test")
    return [pydicom.dcmread(f) for f in files]


def _between(phys: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation to ``factor`` times the slices (centre rule, edges repeated)."""
    n = phys.shape[0]
    t = np.clip((np.arange(factor * n) + 0.5) / factor - 0.5, 0, n - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (t - i0)[:, None, None]
    return phys[i0] * (1 - w) + phys[i1] * w


def _check_frame(got: np.ndarray, s: float, c: float, rw: Any, want: np.ndarray) -> None:
    """Values back within half a step, 12 bits stored, the real world value mapping giving
    the source's real world values (0.5 x modality) over the 12-bit range, never past it."""
    np.testing.assert_allclose(got * s + c, want, atol=s / 2 + 1e-9)
    assert got.min() >= 0 and got.max() <= 4095
    a, b = float(rw.RealWorldValueSlope), float(rw.RealWorldValueIntercept)
    np.testing.assert_allclose(a * got + b, 0.5 * (got * s + c), atol=1e-6)
    first, last = int(rw.RealWorldValueFirstValueMapped), int(rw.RealWorldValueLastValueMapped)
    assert 0 <= first <= last <= 4095
    assert rw["RealWorldValueLastValueMapped"].VR == "US"


def test_shifted_slices_keep_12_bits_and_their_mapping_within_them(tmp_path):
    """Through-plane x2: slices between intercepts 0 and -1000 hold -1000..4000 at most a
    quarter of the way; the nearest source's grid cannot, a shifted one can: written in
    12 bits with a mapping of 0..4095 (it was re-expressed as up to 4378, past 4095)."""
    series = _classic(tmp_path / "in", PAIRS, (0, 4095))
    want = _between(_phys(PAIRS), 2)
    out = _write(series, want, tmp_path / "out")
    moved = 0
    for k, ds in enumerate(out):
        s, c = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        assert int(ds.BitsStored) == 12 and int(ds.HighBit) == 11
        rw = ds.RealWorldValueMappingSequence[0]
        _check_frame(ds.pixel_array, s, c, rw, want[k])
        if c not in (0.0, -1000.0):
            moved += 1
            ends = rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped
            assert ends == (0, 4095)
    assert moved >= 2


def test_a_partial_mapping_is_clipped_to_the_stored_bits(tmp_path):
    """A mapping of stored 1000..4000 only (not the whole range): re-expressed on the shifted
    grid and clipped to 0..4095, never past the 12 bits stored."""
    series = _classic(tmp_path / "in", PAIRS, (1000, 4000))
    want = _between(_phys(PAIRS), 2)
    out = _write(series, want, tmp_path / "out")
    for k, ds in enumerate(out):
        s, c = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        rw = ds.RealWorldValueMappingSequence[0]
        _check_frame(ds.pixel_array, s, c, rw, want[k])
        src = series.slices[min(max(round((k + 0.5) / 2 - 0.5), 0), 3)]
        for key, v in (("First", 1000), ("Last", 4000)):
            n = (src.intercept + v * src.slope - c) / s  # the same modality value
            assert int(rw[f"RealWorldValue{key}ValueMapped"].value) == min(max(n, 0), 4095)


def test_isotropic_like_slices_keep_bits_stored_where_a_shifted_grid_holds_them(tmp_path):
    """x4 between intercepts 0 and -1000: output slice 4 (nearest slice 1, intercept -1000)
    holds -625..3375, stored up to 4375 on that slice's own grid: it used to keep that grid
    and make the whole series BitsStored 16; a shifted intercept holds it in 12 bits. A
    series of one rescale is written as before: its rescale kept, BitsStored widened."""
    series = _classic(tmp_path / "in", PAIRS, (0, 4095))
    want = _between(_phys(PAIRS), 4)
    assert want[4].min() == -625 and want[4].max() == 3375
    out = _write(series, want, tmp_path / "out")
    assert {int(ds.BitsStored) for ds in out} == {12}
    s, c = float(out[4].RescaleSlope), float(out[4].RescaleIntercept)
    assert s == 1 and -1000 < c <= -625 and c == int(c)
    _check_frame(out[4].pixel_array, s, c, out[4].RealWorldValueMappingSequence[0], want[4])

    one = [(1.0, 0.0)] * 4
    uniform = _classic(tmp_path / "in1", one, (0, 4095))
    want = _between(_phys(one), 4)
    want[4] += 300  # up to 4300: past 12 bits on the series' only grid
    out = _write(uniform, want, tmp_path / "out1")
    assert {int(ds.BitsStored) for ds in out} == {16}
    assert all((float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1, 0) for ds in out)
    np.testing.assert_allclose(out[4].pixel_array, want[4], atol=0.5)


def test_enhanced_frames_keep_their_mapping_within_the_stored_bits(tmp_path):
    """The enhanced multi-frame form: per-frame rescales 0 / -1000 and mappings of 0..4095:
    regridded frames' mappings stay within 12 bits (were up to 4378)."""
    from pydicom.sequence import Sequence

    path = make_enhanced_dicom(
        tmp_path / "in" / "e.dcm",
        n_frames=4,
        rows=ROWS,
        cols=COLS,
        iop=(1, 0, 0, 0, 1, 0),
        shuffle_frames=False,
    )
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    pvt0 = shared.PixelValueTransformationSequence[0]
    del shared.PixelValueTransformationSequence
    phys = _phys(PAIRS)
    px = []
    for f, it in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pvt = pydicom.dataset.Dataset()
        pvt.RescaleSlope, pvt.RescaleIntercept = PAIRS[f]
        pvt.RescaleType = pvt0.get("RescaleType", "US")
        it.PixelValueTransformationSequence = Sequence([pvt])
        it.RealWorldValueMappingSequence = Sequence([_rw(PAIRS[f])])
        px.append(np.rint(phys[f] - PAIRS[f][1]))
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.PixelData = np.stack(px).astype("<u2").tobytes()
    ds.save_as(path)
    series = load_dicom_series(tmp_path / "in")
    np.testing.assert_allclose(series.read_volume(), phys)
    want = _between(phys, 2)
    out = _write(series, want, tmp_path / "out")[0]
    assert int(out.BitsStored) == 12
    got = out.pixel_array
    moved = 0
    for k, it in enumerate(out.PerFrameFunctionalGroupsSequence):
        pvt = it.PixelValueTransformationSequence[0]
        s, c = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
        _check_frame(got[k], s, c, it.RealWorldValueMappingSequence[0], want[k])
        moved += c not in (0.0, -1000.0)
    assert moved >= 2
