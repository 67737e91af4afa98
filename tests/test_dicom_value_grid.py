"""The stored value grid of derived DICOM series: every slice's values fit the written type
(files that differ in signedness or bits), valid pixels never read as padding, and errors
name the file once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_files import edit_files  # noqa: E402

from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series, upscale_dicom_series  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402


def _series(folder: Path, modality: str = "MR", n: int = 3) -> list[Path]:
    """A small axial series, files and instance numbers in spatial order."""
    return make_dicom_series(
        folder,
        n_slices=n,
        rows=12,
        cols=10,
        modality=modality,
        iop=(1, 0, 0, 0, 1, 0),
        shuffle_filenames=False,
        shuffle_instance_numbers=False,
    )


def _set_pixels(ds: Any, px: np.ndarray, signed: bool, bits: int = 16) -> None:
    ds.PixelRepresentation = int(signed)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelData = px.astype(f"<{'i' if signed else 'u'}{bits // 8}").tobytes()


@pytest.mark.parametrize("bits", [16, 32])
def test_slices_of_other_signedness_or_bits_are_not_clipped(tmp_path, bits):
    """Slice 0 signed 16-bit (127..2145), the others unsigned (16 or 32 bits) holding values
    beyond int16: every slice comes back with its own values (nearest x2)."""
    files = _series(tmp_path / "in")
    ramp = np.arange(12 * 10).reshape(12, 10)
    hi = np.iinfo(np.int16).max + 10_000 if bits == 16 else np.iinfo(np.uint16).max + 50_000

    def edit(ds: Any, i: int) -> None:
        if i == 0:
            _set_pixels(ds, 127 + ramp * 17, signed=True)
        else:
            _set_pixels(ds, hi - ramp * (i + 3), signed=False, bits=bits)

    edit_files(files, edit)
    want = [pydicom.dcmread(f).pixel_array.astype(np.int64) for f in files]
    assert max(int(w.max()) for w in want) > np.iinfo(np.int16).max
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2, "nearest"))
    got = [pydicom.dcmread(f).pixel_array.astype(np.int64) for f in out]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w.repeat(2, 0).repeat(2, 1))


def test_stored_type_holds_every_slice(tmp_path):
    files = _series(tmp_path / "in")

    def edit(ds: Any, i: int) -> None:
        _set_pixels(ds, ds.pixel_array.astype(np.int64), signed=i == 0)

    edit_files(files, edit)
    series = load_dicom_series(tmp_path / "in")
    info = np.iinfo(series.stored_dtype)
    for f in files:
        ds = pydicom.dcmread(f)
        kind = "i" if ds.PixelRepresentation else "u"
        src = np.iinfo(f"{kind}{ds.BitsAllocated // 8}")
        assert info.min <= src.min and src.max <= info.max


def _ct_padded(folder: Path, limit: int | None) -> np.ndarray:
    """Unsigned CT (intercept -1024) whose first 3 columns are padding (stored 0, and
    PixelPaddingRangeLimit ``limit``); air at stored 4 next to a bright block: ringing of a
    sharpening model undershoots into the padding values."""
    files = _series(folder, modality="CT")
    px = np.full((12, 10), 4, np.int64)
    px[3:9, 4:8] = 2500
    px[:, :3] = 0

    def edit(ds: Any, i: int) -> None:
        _set_pixels(ds, px, signed=False)
        ds.RescaleIntercept = -1024
        ds.add_new(0x00280120, "US", 0)  # PixelPaddingValue
        if limit is not None:
            ds.add_new(0x00280121, "US", limit)  # PixelPaddingRangeLimit

    edit_files(files, edit)
    return px == 0  # the padding mask


@pytest.mark.parametrize("limit", [None, 3])
def test_valid_pixels_never_read_as_padding(tmp_path, limit):
    pad = _ct_padded(tmp_path / "in", limit)
    out = upscale_dicom_series(
        tmp_path / "in",
        tmp_path / "out",
        model=interp_model(2, "bicubic"),
        values=ValueOptions(envelope=None),
    )
    pad_out = pad.repeat(2, 0).repeat(2, 1)
    for f in out:
        d = pydicom.dcmread(f)
        ppv = int(d.PixelPaddingValue)
        top = int(d.get("PixelPaddingRangeLimit", ppv))
        px = d.pixel_array
        assert (px[pad_out] == ppv).all()  # padding stays exactly the padding value
        valid = px[~pad_out]
        assert not ((valid >= min(ppv, top)) & (valid <= max(ppv, top))).any()


def test_each_file_keeps_its_own_padding_value(tmp_path):
    """Files of one series with different PixelPaddingValue (0 in the first, 7 in the
    others): each file's padding is read as padding and written back as that file's value,
    so no output slice has padding pixels its own tag does not name."""
    files = _series(tmp_path / "in", modality="CT")
    px = np.full((12, 10), 300, np.int64)
    px[3:9, 4:8] = 900
    pads = [0, 7, 7]

    def edit(ds: Any, i: int) -> None:
        img = px.copy()
        img[:, :3] = pads[i]
        if i == 0:
            img[:, 8:] = 7  # a valid pixel value in the first file that is padding elsewhere
        _set_pixels(ds, img, signed=False)
        ds.add_new(0x00280120, "US", pads[i])  # PixelPaddingValue

    edit_files(files, edit)
    series = load_dicom_series(tmp_path / "in")
    vol = series.read_volume(padding_as_nan=True)
    assert np.isnan(vol[:, :, :3]).all() and not np.isnan(vol[:, :, 3:]).any()
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2, "nearest"))
    for f, want in zip(out, pads):
        d = pydicom.dcmread(f)
        assert int(d.PixelPaddingValue) == want
        got = d.pixel_array
        assert (got[:, :6] == want).all()  # the padding columns, x2
        assert not (got[:, 6:] == want).any()


def test_missing_pixel_spacing_names_the_file_once(tmp_path):
    files = _series(tmp_path / "in")

    def edit(ds: Any, i: int) -> None:
        if i == 0:
            del ds.PixelSpacing

    edit_files(files, edit)
    with pytest.raises(InputFileError, match="PixelSpacing") as err:
        load_dicom_series(tmp_path / "in")
    assert str(err.value).count(files[0].name) == 1


def test_decimal_strings_are_short_and_exact_enough():
    """DS values: at most 16 characters, no padding zeros from rounding to fit (the probe saw
    '5.8906' beside '7.39060000000000'), and the value kept to the digits that fit."""
    from sr_domains.medical.dicom_derive import ds_number

    assert str(ds_number(7.390600000000001)) == "7.3906"
    assert str(ds_number(2.0)) == "2"
    rng = np.random.default_rng(0)
    for v in np.concatenate([rng.uniform(-500, 500, 200), 10.0 ** rng.uniform(-8, 8, 200)]):
        text = str(ds_number(float(v)))
        assert len(text) <= 16
        assert not ("." in text and "e" not in text and text.endswith("0")), text
        assert abs(float(text) - v) <= 1e-9 * max(1.0, abs(v)) + 1e-12, (v, text)


@pytest.mark.parametrize(("tag", "kept"), [("5.000000", True), ("2.5", False), (None, None)])
def test_in_plane_output_keeps_the_sources_spacing_between_slices(tmp_path, tag, kept):
    """An in-plane run kept geometry but rewrote SpacingBetweenSlices from the fitted step
    ('2.5' -> '2.49999996313995', '5.000000' -> '5'); the source's text stays when it agrees
    with the slice positions, and a wrong one (2.5 for a 5 mm step) is corrected."""
    files = make_dicom_series(tmp_path / "in", n_slices=3, rows=12, cols=10, slice_spacing=5.0)

    def edit(ds: Any, i: int) -> None:
        if tag is not None:
            ds.SpacingBetweenSlices = tag

    edit_files(files, edit)
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2, "nearest"))
    for f in out:
        d = pydicom.dcmread(f)
        if tag is None:
            assert "SpacingBetweenSlices" not in d
        elif kept:
            assert d["SpacingBetweenSlices"].value == tag or str(d.SpacingBetweenSlices) == tag
        else:
            assert abs(float(d.SpacingBetweenSlices) - 5.0) < 1e-4


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_a_12_bit_series_keeps_its_stored_range_and_saturation(tmp_path, modality):
    """BitsStored 12 in 16-bit words: the saturation pin and the domain came from the 16-bit
    type, so a metal block at stored 4095 (3071 HU under intercept -1024) came back 2875..3071
    HU, and with the envelope off values above 4095 were written, which no 12-bit source
    holds."""
    files = _series(tmp_path / "in", modality=modality, n=2)
    block = np.zeros((12, 10), np.int64) + 900
    block[3:8, 2:7] = 4095  # saturated

    def edit(ds: Any, i: int) -> None:
        _set_pixels(ds, block, signed=False)
        ds.BitsStored, ds.HighBit = 12, 11
        if modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024

    edit_files(files, edit)
    for envelope in (0.0, None):
        out = upscale_dicom_series(
            tmp_path / "in",
            tmp_path / f"out{envelope}",
            model=interp_model(2, "bicubic"),
            values=ValueOptions(envelope=envelope),
        )
        for f in out:
            got = pydicom.dcmread(f).pixel_array.astype(np.int64)
            assert (got[6:16, 4:14] == 4095).all(), envelope  # the block's whole footprint
            assert got.max() == 4095 and got.min() >= 0, envelope
            d = pydicom.dcmread(f, stop_before_pixels=True)
            assert (d.BitsStored, d.HighBit) == (12, 11), envelope  # (it was 16: kept now)
