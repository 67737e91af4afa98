"""Stored-value tags written with the other VR than the pixel data's signedness (US in a signed
image, as some scanners write ``PixelPaddingValue``): they are read as the pixel decoder reads
stored values (the low ``BitsStored`` bits, two's complement where signed), so padding is
recognised and written back exactly, with no halo of invented values beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_files import edit_files  # noqa: E402

from sr_domains.medical import upscale_dicom_series  # noqa: E402
from sr_domains.medical.dicom_values import int_tag, padding_range  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402

ROWS, COLS = 12, 10


def _ct_with_us_padding(folder: Path, bits: int = 16) -> list[Path]:
    """Signed CT, -1000..1000 HU (rescale 1/0), columns 0..3 padding stored as -2000 and
    declared as ``PixelPaddingValue`` US (-2000 as an unsigned 16-bit word: 63536)."""
    files = make_dicom_series(
        folder,
        n_slices=3,
        rows=ROWS,
        cols=COLS,
        modality="CT",
        iop=(1, 0, 0, 0, 1, 0),
        shuffle_filenames=False,
        shuffle_instance_numbers=False,
    )
    hu = np.linspace(-1000, 1000, ROWS * COLS).reshape(ROWS, COLS)
    px = np.rint(hu).astype(np.int64)
    px[:, :4] = -2000

    def edit(ds: Any, i: int) -> None:
        ds.PixelRepresentation, ds.BitsAllocated = 1, 16
        ds.BitsStored, ds.HighBit = bits, bits - 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelPaddingValue = 63536
        ds["PixelPaddingValue"].VR = "US"
        ds.PixelData = px.astype("<i2").tobytes()

    edit_files(files, edit)
    return files


@pytest.mark.parametrize("bits", [16, 12])
def test_us_padding_in_a_signed_image_is_padding(tmp_path, bits):
    """US 63536 in a signed image is -2000, the value its padding pixels decode to (12 bits
    stored too: the low 12 bits, two's complement): the x2 output has exactly four times the
    padding pixels at -2000 and no value between -2000 and -1000 HU (the probe found 54 per
    slice: the network had been fed -2000 as tissue); the tag is written as SS -2000."""
    files = _ct_with_us_padding(tmp_path / "in", bits)
    src = pydicom.dcmread(files[0])
    assert int((src.pixel_array == -2000).sum()) == ROWS * 4
    assert int_tag(src, "PixelPaddingValue") == -2000
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2))
    for f in out:
        ds = pydicom.dcmread(f)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert int((hu == -2000).sum()) == 4 * ROWS * 4
        assert not ((hu > -2000) & (hu < -1000)).any()
        assert ds["PixelPaddingValue"].VR == "SS" and ds.PixelPaddingValue == -2000


def test_stored_value_tags_read_as_the_decoder_reads_pixels():
    """Each stored-value tag reads as pydicom decodes a pixel word with the same bits: a US
    value in a signed image, an SS value in an unsigned one, a 16-bit word in a 12-bit image;
    a range limit likewise; an item without ``PixelRepresentation`` takes its image's."""
    from pydicom.dataset import Dataset

    cases = [  # (signed, bits stored, VR, tag value, pixel word)
        (True, 16, "US", 63536, 63536),
        (True, 12, "US", 63536, 63536),
        (True, 12, "SS", -2000, 0x0830),
        (False, 16, "SS", -1, 0xFFFF),
        (False, 12, "US", 0xFFFF, 0xFFFF),
        (True, 16, "SS", -2000, 63536),
    ]
    for signed, bits, vr, value, word in cases:
        ds = Dataset()
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds.Rows, ds.Columns, ds.SamplesPerPixel = 1, 1, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
        ds.PixelRepresentation = int(signed)
        ds.PixelData = np.array([word], "<u2").tobytes()
        decoded = int(ds.pixel_array.ravel()[0])
        for key in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
            ds.add_new(pydicom.datadict.tag_for_keyword(key), vr, value)
        assert int_tag(ds, "PixelPaddingValue") == decoded, (signed, bits, vr, value)
        assert padding_range(ds) == (decoded, decoded)
        item = Dataset()
        item.RealWorldValueLastValueMapped = value
        item["RealWorldValueLastValueMapped"].VR = vr
        assert int_tag(item, "RealWorldValueLastValueMapped", ds) == decoded
