"""Gantry-tilted DICOM series: the positions step off the slice normal, so the distance between
slice planes (SpacingBetweenSlices) is shorter than the step between positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from sr_domains import inference  # noqa: E402
from sr_domains.medical import (  # noqa: E402
    load_dicom_series,
    make_isotropic,
    upscale_dicom_series,
)
from sr_domains.medical.geometry import corners, slice_normal  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402

TILT = 20.0
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _tilted(folder, **kw):
    kw = {"n_slices": 5, "rows": 12, "cols": 10, "slice_spacing": 3.0, "iop": AXIAL, **kw}
    return make_dicom_series(folder, tilt_deg=TILT, **kw)


def _ipps(paths):
    dss = sorted((pydicom.dcmread(p) for p in paths), key=lambda d: int(d.InstanceNumber))
    return dss, np.array([[float(v) for v in d.ImagePositionPatient] for d in dss])


def test_reader_separates_plane_spacing_from_the_position_step(tmp_path):
    _tilted(tmp_path / "in")
    s = load_dicom_series(tmp_path / "in")
    assert s.slice_spacing == pytest.approx(3.0)  # along the normal, as SpacingBetweenSlices
    assert np.linalg.norm(s.step) == pytest.approx(3.0 / np.cos(np.radians(TILT)))
    np.testing.assert_allclose(s.affine[:3, 0], s.step)  # the affine keeps the sheared step


def test_in_plane_upscale_keeps_spacing_between_slices(tmp_path):
    _tilted(tmp_path / "in")
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2))
    dss, ipp = _ipps(out)
    np.testing.assert_allclose([float(d.SpacingBetweenSlices) for d in dss], 3.0, atol=1e-6)
    steps = np.diff(ipp, axis=0)  # the tilted step between positions, unchanged
    step = load_dicom_series(tmp_path / "in").step
    np.testing.assert_allclose(steps, np.broadcast_to(step, steps.shape), atol=1e-5)


def test_through_plane_halves_plane_spacing_and_keeps_tilt(tmp_path):
    _tilted(tmp_path / "in")
    src = load_dicom_series(tmp_path / "in")
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", model=interp_model(2), through_plane=True
    )
    dss, ipp = _ipps(out)
    assert len(dss) == 10
    np.testing.assert_allclose([float(d.SpacingBetweenSlices) for d in dss], 1.5, atol=1e-6)
    steps = np.diff(ipp, axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(src.step / 2, steps.shape), atol=1e-5)
    dst = load_dicom_series(tmp_path / "out")
    assert dst.slice_spacing == pytest.approx(1.5)
    np.testing.assert_allclose(
        corners(dst.affine, dst.shape), corners(src.affine, src.shape), atol=1e-5
    )


def test_isotropic_spaces_planes_at_the_target(tmp_path):
    _tilted(tmp_path / "in", n_slices=6, rows=16, cols=16, pixel_spacing=(1.0, 1.0))
    out = make_isotropic(tmp_path / "in", tmp_path / "out", steps=1)
    dss, ipp = _ipps(out)
    assert len(dss) == 18  # 6 planes 3 mm apart -> 1 mm apart, not 3 / cos(20) mm
    np.testing.assert_allclose([float(d.SpacingBetweenSlices) for d in dss], 1.0, atol=1e-6)
    np.testing.assert_allclose(np.diff(ipp @ slice_normal(AXIAL)), 1.0, atol=1e-5)
