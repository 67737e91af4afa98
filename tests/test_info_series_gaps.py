"""``sr-domains info`` of a DICOM series that ``upscale`` refuses (missing slices, non-uniform
spacing) names the problem in that series' summary, in the words ``upscale`` uses, and exits 1
after the summary (it exited 0: "fine", then the run failed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pydicom")

from sr_domains.cli import main
from sr_domains.testing.dicom import make_dicom_series


def _study(tmp_path):
    """A study folder with an intact series and one missing its third slice."""
    study = tmp_path / "study"
    make_dicom_series(study / "ok", n_slices=5, rows=16, cols=16, description="intact")
    gapped = make_dicom_series(
        study / "gap", n_slices=6, rows=16, cols=16, description="gapped", seed=1
    )
    gapped[2].unlink()
    return study


def _upscale_error(src, out, capsys) -> str:
    assert main(["upscale", str(src), str(out), "-q", "--no-progress"]) == 1
    return capsys.readouterr().err.strip().removeprefix("sr-domains: error: ")


def test_info_reports_missing_slices_as_upscale_does_and_exits_1(tmp_path, capsys):
    study = _study(tmp_path)
    refused = _upscale_error(study / "gap", tmp_path / "out", capsys)
    assert "1 missing slice(s)" in refused
    assert main(["info", str(study)]) == 1
    cap = capsys.readouterr()
    assert "intact" in cap.out and "SR x2" in cap.out  # the intact series still summarised
    assert "1 missing slice(s)" in cap.out and "1 missing slice(s)" in cap.err
    # the same words as upscale, but naming the study folder info was given
    assert refused.removeprefix(str(study / "gap")) in cap.out
    assert main(["info", "--json", str(study)]) == 1
    report = json.loads(capsys.readouterr().out)
    problems = {s["description"]: s.get("problem") for s in report["series"]}
    assert problems["intact"] is None
    assert "1 missing slice(s)" in problems["gapped"]
    # the intact series alone: fine
    assert main(["info", str(study / "ok")]) == 0


def test_info_reports_non_uniform_spacing(tmp_path, capsys):
    src = tmp_path / "s"
    files = make_dicom_series(src, n_slices=6, rows=16, cols=16, slice_spacing=3.0)
    import pydicom

    ds = pydicom.dcmread(files[3])  # moved by 1 mm along the slice normal: uneven gaps
    iop = [float(v) for v in ds.ImageOrientationPatient]
    normal = np.cross(iop[:3], iop[3:])
    ds.ImagePositionPatient = [float(p) + n for p, n in zip(ds.ImagePositionPatient, normal)]
    ds.save_as(files[3])
    refused = _upscale_error(src, tmp_path / "out", capsys)
    assert "non-uniform slice spacing" in refused
    assert main(["info", str(src)]) == 1
    cap = capsys.readouterr()
    assert f"problem    {refused}" in cap.out
    assert refused in cap.err
