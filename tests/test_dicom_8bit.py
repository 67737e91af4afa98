"""An 8-bit DICOM series (BitsAllocated 8, BitsStored 8) stays 8-bit when the written values
fit its 8 stored bits (it was written with 16 bits allocated: twice the size); values beyond
them (``clamp=False``) widen to 16 bits as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from _dicom_files import edit_files  # noqa: E402

from sr_domains.medical import read_dicom_volume, upscale_dicom_series  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402

ROWS, COLS = 13, 11  # odd: 8-bit pixel data needs a padding byte


def _series_8bit(folder: Path, signed: bool = False, pad: int | None = None) -> list[Path]:
    """A MONOCHROME2 series stored in 8 bits, values spanning the whole 8-bit range (0..255,
    or -128..127 signed), optionally with ``PixelPaddingValue`` on column 0."""
    files = make_dicom_series(folder, n_slices=3, rows=ROWS, cols=COLS, modality="US")
    ramp = np.linspace(0, 255, ROWS * COLS).reshape(ROWS, COLS)
    px = np.rint(ramp - (128 if signed else 0)).astype(np.int64)
    if pad is not None:
        px[:, 0] = pad

    def edit(ds: Any, i: int) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelRepresentation = int(signed)
        ds.PhotometricInterpretation = "MONOCHROME2"
        for key in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
            if key in ds:
                delattr(ds, key)
        ds.PixelData = px.astype("i1" if signed else "u1").tobytes() + b"\0"
        ds["PixelData"].VR = "OB"
        if pad is not None:
            ds.PixelPaddingValue = pad
            ds["PixelPaddingValue"].VR = "SS" if signed else "US"

    edit_files(files, edit)
    return files


def _strict_read(path: Path) -> Any:
    from pydicom.config import RAISE, settings

    old = settings.reading_validation_mode
    settings.reading_validation_mode = RAISE
    try:
        ds = pydicom.dcmread(path)
        ds.pixel_array  # noqa: B018 (decoded under RAISE too)
        return ds
    finally:
        settings.reading_validation_mode = old


@pytest.mark.parametrize(("signed", "pad"), [(False, None), (True, None), (False, 0)])
def test_8bit_series_stays_8bit(tmp_path, signed, pad):
    src = _series_8bit(tmp_path / "in", signed, pad)
    before = [f.read_bytes() for f in src]
    out = tmp_path / "out"
    files = upscale_dicom_series(tmp_path / "in", out, model=interp_model(2))
    assert len(files) == 3
    lo, hi = (-128, 127) if signed else (0, 255)
    for f in files:
        ds = _strict_read(f)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (8, 8, 7)
        assert ds.PixelRepresentation == int(signed)
        assert ds["PixelData"].VR == "OB"
        assert len(ds.PixelData) == 2 * ROWS * 2 * COLS  # one byte a pixel (even already)
        px = ds.pixel_array
        assert px.dtype == (np.int8 if signed else np.uint8)
        assert px.shape == (2 * ROWS, 2 * COLS)
        assert lo <= int(px.min()) and int(px.max()) <= hi
        assert int(px.max()) - int(px.min()) > 200  # the values, not a wrapped remnant
        if pad is not None:
            assert ds["PixelPaddingValue"].VR == "US" and ds.PixelPaddingValue == pad
            assert (px[:, :2] == pad).all()
    assert [f.read_bytes() for f in src] == before
    vol, _, _ = read_dicom_volume(out)  # the project's own reader
    assert vol.shape == (3, 2 * ROWS, 2 * COLS)
    assert lo <= float(np.nanmin(vol)) and float(np.nanmax(vol)) <= hi


def test_values_beyond_8_bits_widen_to_16(tmp_path):
    _series_8bit(tmp_path / "in")
    files = upscale_dicom_series(
        tmp_path / "in",
        tmp_path / "out",
        model=interp_model(2, mode="bicubic"),
        values=ValueOptions(clamp=False),  # bicubic overshoot above 255 kept
    )
    ds = _strict_read(files[0])
    assert ds.BitsAllocated == 16 and ds["PixelData"].VR == "OW"
    assert int(ds.pixel_array.max()) > 255


def test_8bit_enhanced_stays_8bit(tmp_path):
    from sr_domains.testing.dicom import make_enhanced_dicom

    src = make_enhanced_dicom(tmp_path / "e.dcm", n_frames=4, rows=12, cols=10)
    ds = pydicom.dcmread(src)
    a = ds.pixel_array.astype(np.float64)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.rint(a / a.max() * 255).astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    ds.save_as(src)
    files = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2))
    out = _strict_read(files[0])
    assert (out.BitsAllocated, out.BitsStored, out["PixelData"].VR) == (8, 8, "OB")
    assert len(out.PixelData) == 4 * 24 * 20
    assert out.pixel_array.shape == (4, 24, 20) and int(out.pixel_array.max()) > 200
