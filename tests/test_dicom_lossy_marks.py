"""LossyImageCompression on derived DICOM: once lossy, always marked (PS3.3 C.7.6.1.1.5).

JPEG 2000 (``.91``, ``.93``) and HTJ2K (``.203``) "may be lossy": lossy when the source says
"01" or its codestream uses an irreversible wavelet (COD marker); a reversible codestream keeps
a source "00". Series written in tmp_path and compressed by pydicom (pylibjpeg-openjpeg),
real pydicom test files."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from _dicom_files import shipped  # noqa: E402

pytest.importorskip("openjpeg")  # pylibjpeg-openjpeg: JPEG 2000 encoding and decoding

from pydicom.encaps import generate_fragments, parse_basic_offsets  # noqa: E402
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless  # noqa: E402

from sr_domains import inference  # noqa: E402
from sr_domains.medical import load_dicom_series, upscale_dicom_series  # noqa: E402
from sr_domains.medical.dicom_derive import j2k_irreversible, lossy_history  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402

J2K, J2K_PART2, HTJ2K = (
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.203",
)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def series(folder: Path, kinds: list[str], ts: str = J2K, flag: str | None = None) -> list[Path]:
    """A series of 64x64 slices (spatial order), slice ``k`` JPEG 2000 compressed
    ``kinds[k]`` ("lossy": irreversible 9/7, "lossless": reversible 5/3), labelled with the
    transfer syntax ``ts`` and LossyImageCompression ``flag`` (None: absent)."""
    files = make_dicom_series(folder, n_slices=len(kinds), rows=64, cols=64)
    for path, kind in zip(files, kinds):
        ds = pydicom.dcmread(path)
        if kind == "lossy":
            ds.compress(JPEG2000, ds.pixel_array, j2k_cr=[10], generate_instance_uid=False)
        else:
            ds.compress(JPEG2000Lossless, ds.pixel_array, generate_instance_uid=False)
        ds.file_meta.TransferSyntaxUID = UID(ts)
        for key in ("LossyImageCompression", "LossyImageCompressionMethod"):
            if key in ds:
                delattr(ds, key)
        if flag is not None:
            ds.LossyImageCompression = flag
        ds.save_as(path)
    return files


def upscaled(src: Path, dst: Path) -> list:
    return [pydicom.dcmread(p) for p in upscale_dicom_series(src, dst, model=interp_model(2))]


def first_fragment(path: Path) -> bytes:
    buf = BytesIO(pydicom.dcmread(path).PixelData)
    parse_basic_offsets(buf)
    return next(generate_fragments(buf))


def test_codestream_wavelet_of_real_files():
    assert j2k_irreversible(first_fragment(shipped("JPEG2000.dcm"))) is True  # 9/7
    assert j2k_irreversible(first_fragment(shipped("MR_small_jp2klossless.dcm"))) is False
    assert j2k_irreversible(b"\x00" * 64) is None


@pytest.mark.parametrize(("ts", "method"), [(J2K, "ISO_15444_1"), (HTJ2K, "ISO_15444_15")])
def test_irreversible_codestream_marks_the_output_lossy(tmp_path, ts, method):
    """Before: JPEG 2000 / HTJ2K sources without their own "01" gave unmarked outputs."""
    series(tmp_path / "in", ["lossy", "lossy"], ts=ts)
    for d in upscaled(tmp_path / "in", tmp_path / "out"):
        assert d.LossyImageCompression == "01"
        assert d.LossyImageCompressionMethod == method


def test_part2_syntax_decided_from_the_headers(tmp_path):
    """JPEG 2000 Part 2 (no decoder installed here): the decision needs only the codestream."""
    series(tmp_path / "a", ["lossy"], ts=J2K_PART2)
    series(tmp_path / "b", ["lossless"], ts=J2K_PART2, flag="00")
    assert lossy_history(load_dicom_series(tmp_path / "a")) == "ISO_15444_1"
    assert lossy_history(load_dicom_series(tmp_path / "b")) is None


def test_reversible_codestream_keeps_00(tmp_path):
    series(tmp_path / "in", ["lossless", "lossless"], ts=J2K, flag="00")
    for d in upscaled(tmp_path / "in", tmp_path / "out"):
        assert d.LossyImageCompression == "00"
        assert "LossyImageCompressionMethod" not in d


def test_one_lossy_file_marks_every_output_slice(tmp_path):
    """The first file is reversible and says "00"; the last is irreversible: every derived
    slice is marked (before: only the first file of the series was looked at)."""
    series(tmp_path / "in", ["lossless", "lossless", "lossy"], ts=J2K, flag="00")
    out = upscaled(tmp_path / "in", tmp_path / "out")
    assert len(out) == 3
    assert {d.LossyImageCompression for d in out} == {"01"}


def test_source_ratio_and_method_kept(tmp_path):
    files = series(tmp_path / "in", ["lossy", "lossy"], ts=J2K, flag="01")
    for path in files:  # an earlier JPEG step recorded by the source
        ds = pydicom.dcmread(path)
        ds.LossyImageCompressionRatio = "12.5"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.save_as(path)
    for d in upscaled(tmp_path / "in", tmp_path / "out"):
        assert d.LossyImageCompression == "01"
        assert float(d.LossyImageCompressionRatio) == 12.5
        assert d.LossyImageCompressionMethod == "ISO_10918_1"


def test_real_lossy_file_without_its_flag(tmp_path):
    """pydicom's JPEG2000.dcm (irreversible) with its LossyImageCompression removed."""
    ds = pydicom.dcmread(shipped("JPEG2000.dcm"))
    del ds.LossyImageCompression
    src = tmp_path / "in" / "j.dcm"
    src.parent.mkdir()
    ds.save_as(src)
    assert lossy_history(load_dicom_series(src)) == "ISO_15444_1"
