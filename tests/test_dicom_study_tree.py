"""A study tree with one unreadable file: a series named with ``--series`` in other folders
still runs (the broken file named in a warning), ``info`` lists the intact series and the
broken file's problem, then exits 1 naming it; a broken file beside the named series' files
still stops it (it may be a lost slice of it), and without ``--series`` any broken file does."""

from __future__ import annotations

import logging

import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from sr_domains import inference  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series  # noqa: E402
from sr_domains.testing.medical import make_dicom_series  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _tree(root):
    good = make_dicom_series(root / "mr", n_slices=4, rows=12, cols=10, shuffle_filenames=False)
    other = make_dicom_series(root / "ct", n_slices=3, rows=8, cols=8, modality="CT")
    broken = root / "ct" / "cut.dcm"
    broken.write_bytes(other[0].read_bytes()[:300])  # a header cut short
    return str(pydicom.dcmread(good[0]).SeriesInstanceUID), broken


def test_a_named_series_runs_beside_a_broken_file_elsewhere(tmp_path, caplog):
    uid, broken = _tree(tmp_path / "study")
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        series = load_dicom_series(tmp_path / "study", uid)
    assert series.n_slices == 4 and str(broken) in caplog.text
    with pytest.raises(InputFileError, match="cut.dcm"):  # no series named: strict
        load_dicom_series(tmp_path / "study")
    out = tmp_path / "out"
    argv = ["upscale", str(tmp_path / "study"), str(out), "--series", uid, "--no-progress"]
    assert main([*argv, "--scale", "2"]) == 0
    assert load_dicom_series(out).shape == (4, 24, 20)


def test_a_broken_file_beside_the_named_series_stops_it(tmp_path):
    uid, broken = _tree(tmp_path / "study")
    (tmp_path / "study" / "mr" / "lost.dcm").write_bytes(broken.read_bytes())
    with pytest.raises(InputFileError, match="lost.dcm"):
        load_dicom_series(tmp_path / "study", uid)


def test_info_lists_the_intact_series_and_the_broken_file(tmp_path, capsys):
    uid, broken = _tree(tmp_path / "study")
    assert main(["info", str(tmp_path / "study")]) == 1  # (it said 0: a broken file is an error)
    out, err = capsys.readouterr()
    assert uid in out and "1 unreadable file(s)" in out and str(broken) in out
    assert err.startswith(f"sr-domains: error: {broken}: ")
    assert main(["info", str(broken)]) != 0  # the broken file alone: its error


def test_two_series_made_in_one_folder_are_both_kept(tmp_path):
    """The docs build a study folder with two make_dicom_series calls; the second overwrote
    the first one's files (same names), leaving one series where the docs list two."""
    from sr_domains.medical.dicom_read import scan_series

    uids = ("1.2.826.0.1.3680043.8.498.11", "1.2.826.0.1.3680043.8.498.12")
    made = [make_dicom_series(tmp_path, n_slices=3, series_uid=u) for u in uids]
    assert len({p.name for paths in made for p in paths}) == 6
    assert {u: len(files) for u, files in scan_series(tmp_path).items()} == dict.fromkeys(uids, 3)
