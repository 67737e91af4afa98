"""DICOM pixel values through a Modality LUT (``ModalityLUTSequence``): read in modality units
exactly as pydicom's ``apply_modality_lut`` gives them, written back as modality values with
RescaleSlope 1 / RescaleIntercept 0 in a stored type that holds the LUT's outputs; ``info``
shows the LUT. Also what ``info`` reads from functional groups, and objects with pixel data
that are no images (Segmentation, RT Dose) refused by name. Real pydicom files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from _dicom_files import shipped  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.pixels import apply_modality_lut  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402

from sr_domains import inference  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series, read_dicom_volume, upscale_dicom_series  # noqa: E402
from sr_domains.testing.medical import interp_model, make_enhanced_dicom  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def with_lut(
    dst: Path, gain: int = 2, offset: int = 100, n: int = 4096, *, ow: bool = True
) -> Path:
    """pydicom's MR_small.dcm (signed, stored 127..2145, no rescale) with a Modality LUT
    mapping stored ``x`` to ``gain * x + offset``; ``n`` entries from stored value 0."""
    ds = pydicom.dcmread(shipped("MR_small.dcm"))
    for key in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        if key in ds:
            delattr(ds, key)
    item = Dataset()
    item.LUTDescriptor = [n, 0, 16]
    item.ModalityLUTType = "US"
    table = (gain * np.arange(n) + offset).astype("<u2")
    item.LUTData = table.tobytes() if ow else [int(v) for v in table]
    item["LUTData"].VR = "OW" if ow else "US"
    ds.ModalityLUTSequence = Sequence([item])
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)
    return dst


def pydicom_values(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return np.asarray(apply_modality_lut(ds.pixel_array, ds), np.float64)


@pytest.mark.parametrize("ow", [True, False])
def test_lut_applied_on_read(tmp_path, ow):
    src = with_lut(tmp_path / "in" / "m.dcm", ow=ow)
    want = pydicom_values(src)
    assert (want.min(), want.max()) == (354, 4390)  # 2 * (127..2145) + 100
    vol, _, series = read_dicom_volume(src)
    np.testing.assert_array_equal(vol[0], want)  # before: the stored values 127..2145
    assert series.slices[0].lut is not None


def test_derived_series_in_modality_units(tmp_path):
    src = with_lut(tmp_path / "in" / "m.dcm")
    want = pydicom_values(src)
    out = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    d = pydicom.dcmread(out[0])
    assert "ModalityLUTSequence" not in d
    assert (float(d.RescaleSlope), float(d.RescaleIntercept), d.RescaleType) == (1.0, 0.0, "US")
    assert (d.BitsAllocated, d.BitsStored, d.PixelRepresentation) == (16, 16, 1)
    # read back by pydicom alone: the same modality values, each pixel doubled
    np.testing.assert_array_equal(pydicom_values(out[0]), want.repeat(2, 0).repeat(2, 1))


def test_lut_outputs_beyond_int16_get_32_bits(tmp_path):
    src = with_lut(tmp_path / "in" / "m.dcm", gain=16, offset=0)  # up to 34320 > 32767
    want = pydicom_values(src)
    assert want.max() > np.iinfo(np.int16).max
    series = load_dicom_series(src)
    assert series.stored_dtype == np.dtype("i4")
    out = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    d = pydicom.dcmread(out[0])
    assert (d.BitsAllocated, d.BitsStored, d.PixelRepresentation) == (32, 32, 1)
    np.testing.assert_array_equal(pydicom_values(out[0]), want.repeat(2, 0).repeat(2, 1))


def test_cli_info_shows_the_lut(tmp_path, capsys):
    src = with_lut(tmp_path / "in" / "m.dcm")
    assert main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    assert "Modality LUT (4096 entries from stored value 0, outputs 100..8290 US)" in out
    assert "rescale 1, 0" not in out


def test_malformed_lut_names_the_file(tmp_path, capsys):
    src = with_lut(tmp_path / "in" / "m.dcm")
    ds = pydicom.dcmread(src)
    ds.ModalityLUTSequence[0].LUTData = ds.ModalityLUTSequence[0].LUTData[:100]  # 50 entries
    ds.save_as(src)
    with pytest.raises(InputFileError, match="malformed Modality LUT") as info:
        read_dicom_volume(src)
    assert info.value.path == str(src)
    assert main(["upscale", str(src), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{src}: malformed Modality LUT" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_enhanced_file_with_a_lut_is_refused(tmp_path):
    src = make_enhanced_dicom(tmp_path / "in" / "enh.dcm", n_frames=3)
    ds = pydicom.dcmread(src)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = (2 * np.arange(4096)).astype("<u2").tobytes()
    item["LUTData"].VR = "OW"
    ds.ModalityLUTSequence = Sequence([item])
    ds.save_as(src)
    with pytest.raises(InputFileError, match=r"Modality LUT \(ModalityLUTSequence\) in an enh"):
        load_dicom_series(src)


# -- info reads functional groups; non-image objects with pixel data -------------------------
def test_info_enhanced_slice_thickness_from_functional_groups(tmp_path, capsys):
    src = make_enhanced_dicom(tmp_path / "in" / "enh.dcm", n_frames=3, slice_spacing=2.5)
    assert "SliceThickness" not in pydicom.dcmread(src, stop_before_pixels=True)
    assert main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    assert "(SliceThickness 2.5)" in out  # before: "SliceThickness ?"


def test_segmentation_object_refused_by_name(tmp_path, capsys):
    src = shipped("liver_1frame.dcm")
    with pytest.raises(InputFileError, match="Segmentation objects are not supported"):
        load_dicom_series(src)
    assert main(["info", str(src)]) == 1  # listed, with its problem (upscale refuses it)
    assert "DICOM Segmentation objects are not supported (they are label maps)" in (
        capsys.readouterr().out
    )
    assert main(["upscale", str(src), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{src}: DICOM Segmentation objects are not supported" in err


def test_rt_dose_refused_by_name(tmp_path):
    src = shipped("rtdose.dcm")
    with pytest.raises(InputFileError, match="RT Dose objects are not supported"):
        load_dicom_series(src)


def test_folder_with_a_report_skips_it(tmp_path):
    """An object without pixel data (a structured report) beside a series is skipped."""
    folder = tmp_path / "in"
    src = with_lut(folder / "m.dcm")
    shutil.copy(shipped("test-SR.dcm"), folder / "sr.dcm")
    vol, _, series = read_dicom_volume(folder)
    assert series.files == [src]
    np.testing.assert_array_equal(vol[0], pydicom_values(src))


@pytest.mark.parametrize("pad_meaning", [5000, 3000])
def test_padding_with_a_lut_is_a_value_no_tissue_holds(tmp_path, pad_meaning):
    """The source pads with stored 0 and its LUT sends the tissue's darkest stored value to 0:
    written as stored 0 in modality units, the padding would name that tissue. It becomes the
    LUT's meaning for it (5000, outside the tissue's 0..4036) or, where tissue holds that too
    (3000), the type's minimum; the range limit goes (one value is written)."""
    ds = pydicom.dcmread(shipped("MR_small.dcm"))
    for key in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        if key in ds:
            delattr(ds, key)
    px = ds.pixel_array.copy()
    px[:4, :4] = 0  # padding (stored 0); tissue is 127..2145
    ds.PixelData = px.astype("<i2").tobytes()
    ds.PixelPaddingValue = 0
    ds["PixelPaddingValue"].VR = "SS"
    ds.PixelPaddingRangeLimit = 0
    ds["PixelPaddingRangeLimit"].VR = "SS"
    table = np.clip(2 * np.arange(4096) - 254, 0, None)
    table[0] = pad_meaning
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.ModalityLUTType = "HU"
    item.LUTData = table.astype("<u2").tobytes()
    item["LUTData"].VR = "OW"
    ds.ModalityLUTSequence = Sequence([item])
    src = tmp_path / "in" / "m.dcm"
    src.parent.mkdir()
    ds.save_as(src)
    out = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    d = pydicom.dcmread(out[0])
    stored = d.pixel_array
    pad = int(d.PixelPaddingValue)
    assert "PixelPaddingRangeLimit" not in d
    assert pad == (pad_meaning if pad_meaning == 5000 else np.iinfo(np.int16).min)
    padded = np.zeros(stored.shape, bool)
    padded[:8, :8] = True
    assert (stored[padded] == pad).all()
    tissue = stored[~padded]
    assert tissue.min() == 0 and pad not in tissue  # before: padding written as 0
