"""Removing one temporary removes its own sidecars only. A folder temporary
``.ct.sr-tmp-PID-XXXXXXXX`` has no extension, so its ``Path.stem`` was ``.ct``: finishing a
DICOM output ``out/ct`` removed another run's in-flight ``.ct.nii.gz.sr-tmp-*`` file,
``.ct_2.sr-tmp-*`` folder and a user's ``.ct_notes.sr-tmp-keep.txt``."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_domains import engine_build
from sr_domains.cli import main
from sr_domains.io_temps import remove_temp


def _others(out: Path) -> dict[str, str]:
    """What a concurrent run (other outputs) and the user have beside ``out/ct`` right now."""
    (out / ".ct.nii.gz.sr-tmp-4242-deadbeef.nii.gz").write_text("partial")
    (out / ".ct_2.sr-tmp-4242-cafecafe").mkdir()
    (out / ".ct_2.sr-tmp-4242-cafecafe" / "0001.dcm").write_text("slice")
    (out / ".ct_notes.sr-tmp-keep.txt").write_text("user")
    (out / ".ct.sr-tmp-4242-0badf00d").mkdir()  # (another run's, of this very output)
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_a_temporary_removes_its_own_sidecars_only(tmp_path):
    others = _others(tmp_path)
    mine = tmp_path / ".ct.sr-tmp-1-abcdef01"
    mine.mkdir()
    (mine / "IM1.dcm").write_text("x")
    tif = tmp_path / ".a.tif.sr-tmp-1-abcdef02.tif"
    own = [tif, tmp_path / f"{tif.name}.aux.xml", tmp_path / ".a.tif.sr-tmp-1-abcdef02_RPC.TXT"]
    for p in own:
        p.write_text("x")
    remove_temp(mine)
    remove_temp(tif)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    from sr_domains.io_temps import temp_stem

    assert temp_stem(mine.name) == mine.name and temp_stem("a.tif") is None
    assert temp_stem(tif.name) == ".a.tif.sr-tmp-1-abcdef02"


def test_a_dicom_output_leaves_other_outputs_temporaries(tmp_path, monkeypatch):
    pytest.importorskip("pydicom")
    from sr_domains.testing.medical import interp_model, make_dicom_series

    monkeypatch.setattr(engine_build, "resolve_model", lambda m, w, **kw: interp_model(2))
    make_dicom_series(tmp_path / "ct", n_slices=3, rows=16, cols=16)
    out = tmp_path / "out"
    out.mkdir()
    others = _others(out)
    assert main(["upscale", str(tmp_path / "ct"), str(out / "ct"), "--scale", "2"]) == 0
    left = {p.name for p in out.iterdir()}
    assert left - {"ct"} == set(others) - {".ct.sr-tmp-4242-0badf00d"}  # (its stale one: gone)
