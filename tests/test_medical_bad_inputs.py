"""Bad DICOM input: a clear InputFileError naming the file(s), and never a (half-)written output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from pydicom.data import get_testdata_file  # noqa: E402

from sr_domains import inference  # noqa: E402
from sr_domains.errors import InputFileError, OutputExistsError, UnsafeOutputError  # noqa: E402
from sr_domains.medical import (  # noqa: E402
    dicom_write,
    load_dicom_series,
    upscale_dicom_series,
)
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def series(tmp_path: Path, n: int = 5, **kw) -> list[Path]:
    return make_dicom_series(tmp_path / "in", n_slices=n, rows=8, cols=6, **kw)


def edit(path: Path, **tags) -> None:
    ds = pydicom.dcmread(path)
    for key, value in tags.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def expect_failure(tmp_path: Path, *names: str, match: str = "") -> InputFileError:
    """Upscaling ``tmp_path/in`` fails naming every file in ``names``; no output is left."""
    dst = tmp_path / "out"
    with pytest.raises(InputFileError, match=match) as info:
        upscale_dicom_series(tmp_path / "in", dst, model=interp_model(2))
    for name in names:
        assert name in str(info.value)
    assert not dst.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    return info.value


def test_mixed_series_lists_them(tmp_path):
    make_dicom_series(tmp_path / "in" / "a", n_slices=3, rows=6, cols=6, description="T1 axial")
    make_dicom_series(
        tmp_path / "in" / "b", n_slices=2, rows=6, cols=6, description="FLAIR", seed=2
    )
    uids = {pydicom.dcmread(next((tmp_path / "in" / d).iterdir())).SeriesInstanceUID for d in "ab"}
    err = expect_failure(tmp_path, *uids, "T1 axial", "FLAIR", match="2 series")
    assert "3 image(s)" in str(err)
    assert "2 image(s)" in str(err)


def test_missing_slice_names_the_neighbours(tmp_path):
    files = series(tmp_path, n=6)
    files[3].unlink()
    expect_failure(tmp_path, files[2].name, files[4].name, match="1 missing slice")


def test_broken_link_in_a_series_folder_is_reported(tmp_path, caplog):
    """The last slice of a series as a broken link: no gap shows it, so it is logged."""
    files = series(tmp_path)
    last = files[-1]  # series() writes them in position order
    target = tmp_path / "archive" / last.name
    last.unlink()
    last.symlink_to(target)
    with caplog.at_level("WARNING", logger="sr_domains"):
        assert load_dicom_series(tmp_path / "in").n_slices == len(files) - 1
    assert f"{last.name}: broken link (to {target})" in caplog.text


def test_non_uniform_spacing(tmp_path):
    files = series(tmp_path)
    ds = pydicom.dcmread(files[2])
    normal = np.cross(np.array(ds.ImageOrientationPatient[:3]), ds.ImageOrientationPatient[3:])
    edit(
        files[2],
        ImagePositionPatient=[float(v) for v in np.add(ds.ImagePositionPatient, 0.9 * normal)],
    )
    expect_failure(tmp_path, files[2].name, match="non-uniform slice spacing")


def test_duplicate_position(tmp_path):
    files = series(tmp_path)
    edit(files[3], ImagePositionPatient=pydicom.dcmread(files[2]).ImagePositionPatient)
    expect_failure(tmp_path, files[2].name, files[3].name, match="share the position")


def test_an_exact_copy_of_a_file_is_skipped_but_a_different_one_is_refused(tmp_path, caplog):
    """``IM1 (1).dcm`` beside ``IM1.dcm`` (a byte-identical copy) no longer stops the series;
    a file with the same SOPInstanceUID but other content is still a duplicate position."""
    files = series(tmp_path)
    copy = files[2].with_name("copy of " + files[2].name)
    shutil.copy(files[2], copy)
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "ok", model=interp_model(2))
    assert len(out) == len(files)
    line = next(x for x in caplog.text.splitlines() if "an exact copy of" in x)
    assert copy.name in line and files[2].name in line and "skipped" in line
    edit(copy, PatientComments="changed")  # same UID, other bytes: not a copy
    expect_failure(tmp_path, copy.name, match="share the position")


def test_inconsistent_orientation(tmp_path):
    files = series(tmp_path)
    edit(files[1], ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    expect_failure(tmp_path, files[1].name, match="inconsistent ImageOrientationPatient")


@pytest.mark.parametrize("odd", range(5))
def test_the_odd_image_out_is_named_wherever_it_sorts(tmp_path, odd):
    """A localizer among axial slices: the error named the first file read when the localizer
    sorted first, as if that axial slice were the odd one."""
    files = series(tmp_path)
    edit(files[odd], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    err = expect_failure(tmp_path, files[odd].name, match="inconsistent ImageOrientationPatient")
    assert str(err).startswith(f"{files[odd]}: ") and "4 other image(s) have" in str(err)


def test_inconsistent_pixel_spacing(tmp_path):
    files = series(tmp_path)
    edit(files[4], PixelSpacing=[0.5, 0.5])
    expect_failure(tmp_path, files[4].name, match="inconsistent PixelSpacing")


def test_inconsistent_size(tmp_path):
    files = series(tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.Rows, ds.Columns = 6, 8
    ds.save_as(files[0])
    expect_failure(tmp_path, files[0].name, match="Rows/Columns")


def test_missing_rows(tmp_path):
    files = series(tmp_path)
    edit(files[2], Rows=None)
    expect_failure(tmp_path, files[2].name, match=re.escape("missing Rows (0028,0010)"))


def test_missing_position(tmp_path):
    files = series(tmp_path)
    edit(files[1], ImagePositionPatient=None)
    expect_failure(tmp_path, files[1].name, match="missing ImagePositionPatient")


def test_truncated_pixel_data_generated(tmp_path):
    files = series(tmp_path)
    data = files[3].read_bytes()
    files[3].write_bytes(data[:-20])
    expect_failure(tmp_path, files[3].name, match="pixel data")


def test_truncated_pixel_data_real_file(tmp_path, shared_data):
    src = shared_data / "dicom" / "MR_truncated.dcm"
    if not src.exists():
        pytest.skip("MR_truncated.dcm absent")
    (tmp_path / "in").mkdir()
    shutil.copy(src, tmp_path / "in" / "MR_truncated.dcm")
    expect_failure(tmp_path, "MR_truncated.dcm", match="less than expected")


def test_undecodable_colour_and_palette_files(tmp_path):
    for name, match in [
        ("JPEG-lossy.dcm", "cannot decode"),
        ("SC_rgb_rle.dcm", "colour"),
        ("examples_palette.dcm", "PALETTE COLOR.*categorical"),  # indices into a colour table
    ]:
        p = get_testdata_file(name, download=False)
        if p is None:
            continue
        dst = tmp_path / name.replace(".", "_")
        with pytest.raises(InputFileError, match=match) as info:
            upscale_dicom_series(p, dst, model=interp_model(2))
        assert name in str(info.value)
        assert not dst.exists()


def test_corrupt_header_and_empty_folder(tmp_path):
    files = series(tmp_path)
    files[0].write_bytes(files[0].read_bytes()[:200])  # DICM preamble, then garbage
    with pytest.raises(InputFileError, match=files[0].name):
        load_dicom_series(tmp_path / "in")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not dicom")
    with pytest.raises(InputFileError, match="no DICOM images"):
        load_dicom_series(tmp_path / "empty")


def test_overwrite_refused_then_allowed(tmp_path):
    series(tmp_path)
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        upscale_dicom_series(tmp_path / "in", dst, model=interp_model(2))
    with pytest.raises(UnsafeOutputError, match="did not write"):  # not ours: never replaced
        upscale_dicom_series(tmp_path / "in", dst, model=interp_model(2), overwrite=True)
    assert (dst / "keep.txt").read_text() == "mine"
    (dst / "keep.txt").unlink()
    first = upscale_dicom_series(tmp_path / "in", dst, model=interp_model(2))
    uid = pydicom.dcmread(first[0]).SOPInstanceUID
    out = upscale_dicom_series(tmp_path / "in", dst, model=interp_model(2), overwrite=True)
    assert sorted(p.name for p in dst.glob("*.dcm")) == sorted(p.name for p in out)
    assert pydicom.dcmread(out[0]).SOPInstanceUID != uid  # our own output was replaced
    empty = tmp_path / "empty_out"
    empty.mkdir()  # an existing empty folder is fine
    assert len(upscale_dicom_series(tmp_path / "in", empty, model=interp_model(2))) == 5


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    series(tmp_path)
    calls = {"n": 0}
    real = dicom_write.save_derived

    def flaky(ds, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(ds, path)

    monkeypatch.setattr(dicom_write, "save_derived", flaky)
    with pytest.raises(OSError, match="disk full"):
        upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
