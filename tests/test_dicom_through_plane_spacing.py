"""A through-plane DICOM output's SpacingBetweenSlices is the source's stated value divided by
the scale (``3.0`` at x2: ``1.5``), not the step between positions written to 6 decimals
(``1.49999992343076``); a stated value the positions contradict is not used."""

from __future__ import annotations

from typing import Any

import pytest

pydicom = pytest.importorskip("pydicom")

from sr_domains.medical import upscale_dicom_series  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402


def _through_plane(tmp_path, stated: str | None) -> Any:
    files = make_dicom_series(tmp_path / "in", n_slices=5, rows=12, cols=10)  # oblique
    for f in files:
        ds = pydicom.dcmread(f)
        if stated is not None:
            ds.SpacingBetweenSlices = stated
        ds.save_as(f)
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", model=interp_model(2), through_plane=True
    )
    return pydicom.dcmread(out[0])


def test_a_stated_spacing_is_divided_exactly(tmp_path):
    ds = _through_plane(tmp_path / "stated", "3.0")
    assert ds["SpacingBetweenSlices"].value.original_string == "1.5"
    # without one, or with one the positions contradict: the positions give it
    for stated in (None, "3.2"):
        ds = _through_plane(tmp_path / str(stated), stated)
        assert float(ds.SpacingBetweenSlices) == pytest.approx(1.5, abs=1e-6)
