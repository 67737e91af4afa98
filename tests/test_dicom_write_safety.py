"""``write_derived_series`` (public) follows the output rules of the CLI's DICOM output: the
source series is never replaced, even with ``overwrite``; an existing folder only with
``overwrite`` and only when sr_domains wrote it; the series appears atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from sr_domains.errors import OutputExistsError, UnsafeOutputError  # noqa: E402
from sr_domains.io_safety import MANIFEST  # noqa: E402
from sr_domains.medical import dicom_write, read_dicom_volume, write_derived_series  # noqa: E402
from sr_domains.testing.medical import make_dicom_series  # noqa: E402


def _source(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A 4-slice series named as PACS exports name them (``IM00001.dcm``: the writer's names)
    and the MD5 of each of its files."""
    src = tmp_path / "series"
    files = make_dicom_series(src, n_slices=4, rows=8, cols=6, shuffle_filenames=False)
    for i, p in enumerate(files):
        p.rename(src / f"IM{i + 1:05d}.dcm")
    return src, _md5s(src)


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _write(src: Path, dst: Path, **kw) -> list[Path]:
    vol, aff, series = read_dicom_volume(src)
    return write_derived_series(series, vol, aff, dst, scale=1, derivation="test", **kw)


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_source_folder_is_never_written_even_with_overwrite(tmp_path, overwrite):
    src, before = _source(tmp_path)
    with pytest.raises(UnsafeOutputError, match="would replace the input"):
        _write(src, src, overwrite=overwrite)
    with pytest.raises(UnsafeOutputError, match="inside the input folder"):
        _write(src, src / "sr", overwrite=overwrite)
    with pytest.raises(UnsafeOutputError, match="holds the input"):
        _write(src, tmp_path, overwrite=overwrite)
    assert _md5s(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]  # no temporaries


def test_an_existing_folder_is_replaced_only_with_overwrite_and_only_ours(tmp_path):
    src, before = _source(tmp_path)
    dst = tmp_path / "out" / "sr"  # missing parents are made
    first = _write(src, dst)
    assert first == [dst / f"IM{k:05d}.dcm" for k in range(1, 5)]
    assert (dst / MANIFEST).is_file()
    uid = pydicom.dcmread(first[0]).SOPInstanceUID
    with pytest.raises(OutputExistsError):
        _write(src, dst)
    assert pydicom.dcmread(first[0]).SOPInstanceUID == uid  # kept
    again = _write(src, dst, overwrite=True)  # our own series: replaced
    assert pydicom.dcmread(again[0]).SOPInstanceUID != uid
    assert sorted(p.name for p in dst.iterdir()) == sorted([MANIFEST, *(p.name for p in again)])
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "IM00001.dcm").write_bytes(b"the user's file")
    with pytest.raises(OutputExistsError):
        _write(src, theirs)
    with pytest.raises(UnsafeOutputError, match="did not write"):
        _write(src, theirs, overwrite=True)
    assert (theirs / "IM00001.dcm").read_bytes() == b"the user's file"
    empty = tmp_path / "empty"
    empty.mkdir()  # an existing empty folder is fine
    assert len(_write(src, empty)) == 4
    assert _md5s(src) == before


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    src, _ = _source(tmp_path)
    real, calls = dicom_write.save_derived, []

    def flaky(ds, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(ds, path)

    monkeypatch.setattr(dicom_write, "save_derived", flaky)
    with pytest.raises(OSError, match="disk full"):
        _write(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]
    assert all(p.parent.name.startswith(".out.sr-tmp-") for p in calls)  # never in place


def test_the_written_series_reads_back(tmp_path):
    src, _ = _source(tmp_path)
    vol, aff, _series = read_dicom_volume(src)
    _write(src, tmp_path / "out")
    back, back_aff, _ = read_dicom_volume(tmp_path / "out")
    np.testing.assert_allclose(back, vol)
    np.testing.assert_allclose(back_aff, aff, atol=1e-6)
