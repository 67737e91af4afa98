"""DICOM files whose numeric tags cannot be read as the standard says are refused with an
error naming the file, the tag and its value, never a Python traceback or a silently wrong
output (a rescale slope of 0 used to write every pixel as 0); both ``upscale`` and ``info``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.data import get_testdata_file  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series  # noqa: E402
from sr_domains.testing.medical import make_dicom_series  # noqa: E402

#: (tag keyword, raw value written into the first file, words the error must hold)
BAD = [
    ("NumberOfFrames", "abc", "NumberOfFrames (0028,0008) is 'abc'"),
    (
        "PixelSpacing",
        "abc\\0.7",
        "PixelSpacing (0028,0030) must be 2 finite numbers, got 'abc\\0.7'",
    ),
    ("PixelSpacing", "0.8", "PixelSpacing (0028,0030) must be 2 finite numbers, got '0.8'"),
    ("PixelSpacing", "0\\0.7", "PixelSpacing (0028,0030) 0\\0.7 is not positive"),
    ("ImagePositionPatient", "1\\2", "ImagePositionPatient (0020,0032) must be 3 finite"),
    ("ImageOrientationPatient", "1\\0\\0\\1\\0\\0", "is not two orthogonal unit vectors"),
    ("ImageOrientationPatient", "0\\0\\0\\0\\0\\0", "is not two orthogonal unit vectors"),
    ("RescaleSlope", "x", "RescaleSlope (0028,1053) must be a finite number, got 'x'"),
    ("RescaleSlope", "0", "RescaleSlope (0028,1053) is 0"),
    ("RescaleIntercept", "nan", "RescaleIntercept (0028,1052) must be a finite number"),
]


def _series_with(folder: Path, keyword: str, raw: str) -> Path:
    """A series whose first file holds ``raw`` (the bytes as a file would) for ``keyword``."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    files = make_dicom_series(folder, n_slices=3, rows=12, cols=10)
    ds = pydicom.dcmread(files[0])
    tag = Tag(tag_for_keyword(keyword))
    value = raw.encode("ascii")
    ds._dict[tag] = RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)
    ds.save_as(files[0])
    return files[0]


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(("keyword", "raw", "words"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_a_bad_numeric_tag_is_named_with_its_file(tmp_path, capsys, keyword, raw, words):
    bad = _series_with(tmp_path / "in", keyword, raw)
    before = _sha(tmp_path / "in")
    with pytest.raises(InputFileError) as err:
        load_dicom_series(tmp_path / "in")
    assert str(bad) in str(err.value) and words in str(err.value)
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "in"), str(out), "-q"]) == 1
    message = capsys.readouterr().err
    assert bad.name in message and words in message and "Traceback" not in message
    assert not out.exists() and _sha(tmp_path / "in") == before


def test_info_names_the_file_whose_frame_count_is_not_a_number(capsys):
    """pydicom's own ``badVR.dcm`` (NumberOfFrames ``1A``): ``info`` used to end in a
    ValueError traceback."""
    path = Path(get_testdata_file("badVR.dcm"))
    assert main(["info", str(path)]) == 1
    message = capsys.readouterr().err
    assert "badVR.dcm" in message and "NumberOfFrames (0028,0008) is '1A'" in message


def test_a_misspelt_character_set_is_warned_once_not_per_element(tmp_path, caplog):
    """``ISO_IR100`` (for ``ISO_IR 100``) made pydicom log "Unknown encoding" 54 times per
    slice; each distinct pydicom warning now passes once and its repeats are counted."""
    import logging

    from sr_domains.medical import upscale_dicom_series
    from sr_domains.testing.medical import interp_model

    files = make_dicom_series(tmp_path / "s", n_slices=3, rows=8, cols=8)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = "ISO_IR100"
        ds.save_as(f)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        out = upscale_dicom_series(tmp_path / "s", tmp_path / "o", model=interp_model(2))
    unknown = [
        r for r in caplog.records if r.name.startswith("pydicom") and "ISO_IR100" in r.getMessage()
    ]
    assert len(unknown) == 1
    assert any("repeated this warning" in r.getMessage() for r in caplog.records)
    assert len(out) == 3 and pydicom.dcmread(out[0]).SpecificCharacterSet == "ISO_IR100"
    caplog.clear()  # the filter is gone after the run: pydicom logs as before
    with caplog.at_level(logging.WARNING):
        for f in files[:2]:
            pydicom.dcmread(f).PatientName  # noqa: B018
    assert len([r for r in caplog.records if r.name.startswith("pydicom")]) >= 2
