"""Value fidelity (issue: physically plausible outputs): real files from ../shared/data and the
files nibabel and pydicom ship, plus generated ones. Models that ring on purpose (bicubic
interpolation, a sharpening kernel) stand in for a network that overshoots."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains.adapters import find_adapter  # noqa: E402
from sr_domains.array_api import upscale_array  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.medical import (  # noqa: E402
    load_dicom_series,
    read_dicom_volume,
    upscale_dicom_series,
    upscale_nifti,
)
from sr_domains.medical.dicom_write import SERIES_NUMBER_OFFSET  # noqa: E402
from sr_domains.models.base import BaseSRConfig, SRModel  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series  # noqa: E402
from sr_domains.value_domain import ValueOptions, infer_domain  # noqa: E402

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"
RAW = ValueOptions(clamp=False)


class Sharpen(SRModel):
    """Nearest upsampling followed by a strong unsharp mask: rings (negative lobes, overshoot)
    at every edge, like an overconfident network."""

    arch = "sharpen"

    def __init__(self, channels: int = 1, scale: int = 2, gain: float = 1.5) -> None:
        super().__init__(BaseSRConfig(in_channels=channels, scale=scale))
        self.gain = gain

    def body(self, x: torch.Tensor) -> torch.Tensor:
        up = torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic")
        blur = torch.nn.functional.avg_pool2d(up, 5, stride=1, padding=2, count_include_pad=False)
        return up + self.gain * (up - blur)

    def receptive_radius(self) -> int:
        return 4


class Darken(SRModel):
    """Nearest upsampling scaled by 0.9: a model that darkens bright pixels."""

    arch = "darken"

    def __init__(self, channels: int = 1, scale: int = 2) -> None:
        super().__init__(BaseSRConfig(in_channels=channels, scale=scale))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return 0.9 * x.repeat_interleave(self.scale, -2).repeat_interleave(self.scale, -1)

    def receptive_radius(self) -> int:
        return 1


class Mixer(SRModel):
    """A joint 3-band model that is not symmetric in its bands (output k = input k + 0.5 *
    input 0), nearest upsampling: band order matters."""

    arch = "mixer"

    def __init__(self, scale: int = 2) -> None:
        super().__init__(BaseSRConfig(in_channels=3, scale=scale))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        y = x + 0.5 * x[:, :1]
        return y.repeat_interleave(self.scale, -2).repeat_interleave(self.scale, -1)

    def receptive_radius(self) -> int:
        return 0


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


# -- physical domain and ringing ----------------------------------------------------------------
def test_nonnegative_float_raster_stays_nonnegative(tmp_path):
    """Sentinel-1-like backscatter: small positive values with bright targets."""
    rng = np.random.default_rng(0)
    sigma0 = rng.gamma(1.0, 0.02, (1, 40, 40)).astype(np.float32) + 0.0014
    sigma0[0, 10:12, 10:12] = 2.5  # point targets (ships)
    src = make_geotiff(tmp_path / "s1.tif", width=40, height=40, dtype="float32")
    with rasterio.open(src, "r+") as ds:
        ds.write(sigma0)
    raw = _read(upscale_geotiff(src, tmp_path / "raw.tif", model=Sharpen(), values=RAW))
    assert raw.min() < 0  # the sharpening model does ring below zero...
    out_path = upscale_geotiff(src, tmp_path / "o.tif", model=Sharpen())
    out = _read(out_path)
    assert out.min() >= 0  # ... and the default rules keep the physical domain
    assert out.max() <= sigma0.max()
    with rasterio.open(out_path) as ds:
        record = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
    assert record["domain"]["lo"] == [0.0]
    assert record["clamped"]["envelope"] > 0


def test_real_float_raster_with_nodata(shared_data, tmp_path):
    src = shared_data / "geotiff" / "float_raster_with_nodata.tif"
    if not src.exists():
        pytest.skip("float_raster_with_nodata.tif is absent")
    with rasterio.open(src) as ds:
        a = ds.read(1, masked=True)
    out_path = upscale_geotiff(src, tmp_path / "o.tif", model=Sharpen())
    with rasterio.open(out_path) as ds:
        b = ds.read(1, masked=True)
    assert b.count() == a.count() * 4  # nodata footprint unchanged
    assert b.min() >= min(a.min(), 0) and b.max() <= a.max()  # no value outside the input's


def test_envelope_removes_the_halo_beside_a_point_target():
    img = np.full((1, 48, 48), 248, np.uint16)  # dark Sentinel-2-like background
    img[0, 20:22, 20:22] = 4000
    raw = upscale_array(img, Sharpen(), profile="range:0,4000", values=RAW)
    out = upscale_array(img, Sharpen(), profile="range:0,4000")
    assert raw.min() < 200  # a dark halo (clipped at 0 by the uint16 cast)
    assert out.min() == 248  # no pixel darker than the darkest input pixel around it
    assert out.max() <= 4000


def test_no_negative_lobe_next_to_a_nan_hole(tmp_path):
    x = np.full((1, 32, 32), 50.0, np.float32)
    x[0, :, 16:] = 300.0
    x[0, 8:14, 12:20] = np.nan
    out = upscale_array(x, Sharpen(), profile="range:0,300")
    ok = np.isfinite(out)
    assert out[ok].min() >= 50.0 and out[ok].max() <= 300.0
    assert np.isnan(out[0, 16:28, 24:40]).all()


# -- integers, background, padding, saturation ---------------------------------------------------
def test_real_uint8_nifti_background_and_grid(tmp_path):
    """nibabel's standard.nii.gz: uint8, 79% exact-zero background (an MNI-like template)."""
    src = NIB_DATA / "standard.nii.gz"
    img = nib.load(src)
    a = np.asarray(img.dataobj)
    dst = upscale_nifti(src, tmp_path / "o.nii.gz", model=Sharpen(), axes=(0, 1))
    out = nib.load(dst)
    b = np.asarray(out.dataobj)
    assert out.get_data_dtype() == np.uint8
    assert (out.dataobj.slope, out.dataobj.inter) == (1.0, 0.0)
    zero = (a == 0).repeat(2, 0).repeat(2, 1)
    assert (b[zero] == 0).all()  # background exactly zero: `data != 0` masks survive
    sat = (a == 255).repeat(2, 0).repeat(2, 1)
    assert (b[sat] == 255).all()  # saturated stays saturated
    prov = json.loads(next(e for e in out.header.extensions if e.get_code() == 6).get_content())
    assert prov["values"]["pinned"] == [0.0, 255.0]
    assert prov["values"]["clamped"]["pixels"] > 0


def test_real_scaled_int16_nifti_keeps_its_scaling(tmp_path):
    src = NIB_DATA / "functional.nii"  # int16 with scl_slope 0.0754, scl_inter 3100.8
    img = nib.load(src)
    dst = upscale_nifti(src, tmp_path / "f.nii", model=interp_model(2, "bicubic"))
    out = nib.load(dst)
    assert out.get_data_dtype() == img.get_data_dtype()
    assert out.dataobj.slope == pytest.approx(img.dataobj.slope)
    assert out.dataobj.inter == pytest.approx(img.dataobj.inter)
    a, b = img.get_fdata(), out.get_fdata()
    assert b.min() >= a.min() - 1e-3 and b.max() <= a.max() + 1e-3


def test_float_nifti_infinities_come_back(tmp_path):
    data = np.full((8, 8, 3), 10.0, np.float32)
    data[1, 1, 0], data[5, 6, 1], data[3, 3, 2] = np.inf, -np.inf, np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "i.nii")
    out = nib.load(
        upscale_nifti(tmp_path / "i.nii", tmp_path / "o.nii", model=Sharpen())
    ).get_fdata()
    assert (out[2:4, 2:4, 0] == np.inf).all()
    assert (out[10:12, 12:14, 1] == -np.inf).all()
    assert np.isnan(out[6:8, 6:8, 2]).all()
    assert np.isfinite(out).sum() == out.size - 12


def _ct_with_padding(folder: Path) -> list[Path]:
    """A CT series whose corners lie outside the scan: stored -2000 (-3024 HU)."""

    def body(w):
        return np.where(np.abs(w[..., 0]) < 8.0, 40.0, -1000.0)  # soft tissue in air

    files = make_dicom_series(
        folder, n_slices=3, rows=24, cols=24, modality="CT", values=body, iop=(1, 0, 0, 0, 1, 0)
    )
    for f in files:
        ds = pydicom.dcmread(f)
        px = ds.pixel_array.copy()
        yy, xx = np.mgrid[:24, :24]
        outside = (yy - 11.5) ** 2 + (xx - 11.5) ** 2 > 11.5**2
        px[outside] = -2000
        ds.add_new(0x00280120, "SS", -2000)  # PixelPaddingValue, stored units
        ds.PixelData = px.astype("<i2").tobytes()
        ds.save_as(f)
    return files


def test_ct_padding_is_kept_exactly_and_tagged(tmp_path):
    files = _ct_with_padding(tmp_path / "ct")
    src = load_dicom_series(tmp_path / "ct")
    assert src.padding == (-2000, -2000)
    assert src.first.RescaleIntercept == -1024
    out = upscale_dicom_series(tmp_path / "ct", tmp_path / "o", model=Sharpen())
    ds = [pydicom.dcmread(f) for f in out]
    assert all(d.PixelPaddingValue == -2000 for d in ds)  # tag kept
    stored_in = pydicom.dcmread(files[0]).pixel_array
    pad = (stored_in == -2000).repeat(2, 0).repeat(2, 1)
    pos = {int(pydicom.dcmread(f).InstanceNumber): f for f in files}
    assert pad.any()
    for d in ds:
        px = d.pixel_array
        assert (px[pad] == -2000).all()  # the padding region is exactly the padding value
        hu = px[~pad] * float(d.RescaleSlope) + float(d.RescaleIntercept)
        assert hu.min() >= -1024  # no anatomy below air: padding never leaked into it
    assert len(pos) == 3


def test_mr_dicom_stays_nonnegative_and_gets_its_own_series_number(tmp_path):
    src = Path(pydicom.data.get_testdata_file("MR_small.dcm", download=False))
    work = tmp_path / "mr"
    work.mkdir()
    shutil.copy(src, work / "MR_small.dcm")
    out = upscale_dicom_series(work, tmp_path / "o", model=Sharpen())
    d = pydicom.dcmread(out[0])
    vol, _, _ = read_dicom_volume(tmp_path / "o")
    a, _, _ = read_dicom_volume(work)
    assert vol.min() >= 0 and vol.min() >= a.min() - 1e-3
    assert vol.max() <= a.max() + 1e-3
    s = pydicom.dcmread(src)
    assert int(d.SeriesNumber) == int(s.SeriesNumber) + SERIES_NUMBER_OFFSET + 2_000_000  # x2
    assert d.PixelRepresentation == s.PixelRepresentation
    assert "values:" in d.DerivationDescription


def test_saturated_uint8_stays_saturated(tmp_path):
    src = make_geotiff(tmp_path / "sat.tif", width=32, height=32, count=1, dtype="uint8")
    with rasterio.open(src, "r+") as ds:
        a = ds.read()
        a[0, 8:20, 8:20] = 255
        ds.write(a)
    out = _read(upscale_geotiff(src, tmp_path / "o.tif", model=Darken()))
    sat = (a == 255).repeat(2, 1).repeat(2, 2)
    assert (out[sat] == 255).all()
    raw = _read(upscale_geotiff(src, tmp_path / "r.tif", model=Darken(), values=RAW))
    assert (raw[sat] < 240).all()  # the model alone darkens them


# -- band semantics --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("first", "reverse", "card", "said"),
    [
        (  # colour interpretation
            {"colorinterp": ["red", "green", "blue"]},
            {"colorinterp": ["blue", "green", "red"]},
            ["red", "green", "blue"],
            "red, green, blue",
        ),
        (  # sensor codes (the shipped satellite configs' B04, B03, B02): by description
            {"descriptions": ["B04", "B03", "B02"]},
            {"descriptions": ["B2", "B03", "b04"]},
            ["B04", "B03", "B02"],
            "b4, b3, b2",
        ),
    ],
)
def test_bgr_file_is_reordered_for_an_rgb_model(tmp_path, caplog, first, reverse, card, said):
    """A blue-first file is fed red first; a card naming Sentinel-2 codes (B04...) was not
    matched at all (only colour names were)."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 200, (3, 24, 24)).astype(np.uint8)
    rgb = make_geotiff(tmp_path / "rgb.tif", width=24, height=24, count=3, **first)
    bgr = make_geotiff(tmp_path / "bgr.tif", width=24, height=24, count=3, **reverse)
    with rasterio.open(rgb, "r+") as ds:
        ds.write(data)
    with rasterio.open(bgr, "r+") as ds:
        ds.write(data[::-1])
    model = Mixer()
    model.card = {"bands": card}
    kw = {"model": model, "profile": "range:0,255", "values": RAW}
    a = _read(upscale_geotiff(rgb, tmp_path / "a.tif", **kw))
    with caplog.at_level("INFO", logger="sr_domains"):
        b = _read(upscale_geotiff(bgr, tmp_path / "b.tif", **kw))
    assert f"fed to the model as {said}" in caplog.text
    np.testing.assert_array_equal(b, a[::-1])  # same result, in the file's own band order
    if "colorinterp" in reverse:
        with rasterio.open(tmp_path / "b.tif") as ds:
            assert [c.name for c in ds.colorinterp] == ["blue", "green", "red"]


def test_contradicting_bands_are_warned(tmp_path, caplog):
    src = make_geotiff(
        tmp_path / "nrg.tif", width=16, height=16, count=3, descriptions=["NIR", "red", "green"]
    )
    model = Mixer()
    model.card = {"bands": ["red", "green", "blue"]}
    with caplog.at_level("WARNING", logger="sr_domains"):
        upscale_geotiff(src, tmp_path / "o.tif", model=model)
    assert "the model expects red, green, blue" in caplog.text
    other = make_geotiff(
        tmp_path / "codes.tif", width=16, height=16, count=3, descriptions=["B08", "B03", "B02"]
    )
    model.card = {"bands": ["B04", "B03", "B02"]}
    caplog.clear()
    with caplog.at_level("WARNING", logger="sr_domains"):
        upscale_geotiff(other, tmp_path / "o2.tif", model=model)
    assert "the model expects b4, b3, b2" in caplog.text
    plain = make_geotiff(  # descriptions that are no band codes: nothing said
        tmp_path / "plain.tif", width=16, height=16, count=3, descriptions=["Band 1", "x", ""]
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="sr_domains"):
        upscale_geotiff(plain, tmp_path / "o3.tif", model=model)
    assert "the model expects" not in caplog.text


# -- routing, sidecars, stale tags, resume -------------------------------------------------------
def test_dicom_with_a_tiff_preamble_is_routed_to_dicom(tmp_path):
    src = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm", download=False))
    src.preamble = b"II*\x00" + b"\x00" * 124  # legal: the preamble is free-form
    path = tmp_path / "ct.dcm"
    src.save_as(path, enforce_file_format=True)
    assert path.read_bytes()[:4] == b"II*\x00"
    assert find_adapter(path).name == "dicom"
    assert main(["upscale", str(path), str(tmp_path / "out"), "--no-progress"]) == 0


def test_no_sidecar_left_and_imd_kept(tmp_path):
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / "x.tif")
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(ns="IMD", SATID="LS7", CLOUDCOVER="0.1")
    out = tmp_path / "out"
    plain = upscale_geotiff(src, out / "p.tif", model=Sharpen())
    cog = upscale_geotiff(src, out / "c.tif", model=Sharpen(), cog=True)
    names = sorted(os.listdir(out))
    assert names == ["c.IMD", "c.tif", "p.tif"]  # no hidden or orphan sidecar
    for p in (plain, cog):
        with rasterio.open(p) as ds:
            assert ds.tags(ns="IMD")["SATID"] == "LS7"


def test_stale_layout_tags_are_dropped(tmp_path):
    src = make_geotiff(
        tmp_path / "t.tif",
        tags={
            "TIFFTAG_IMAGEDESCRIPTION": '{"shape": [1, 48, 64]}',
            "TIFFTAG_XRESOLUTION": "300",
            "TIFFTAG_YRESOLUTION": "300",
            "TIFFTAG_RESOLUTIONUNIT": "2 (pixels/inch)",
            "MISSION": "kept",
        },
    )
    with rasterio.open(upscale_geotiff(src, tmp_path / "o.tif", model=Sharpen())) as ds:
        tags = ds.tags()
    assert tags["MISSION"] == "kept"
    assert not {"TIFFTAG_IMAGEDESCRIPTION", "TIFFTAG_XRESOLUTION", "TIFFTAG_YRESOLUTION"} & set(
        tags
    )


def test_truncated_output_is_redone_on_resume(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    make_geotiff(scenes / "a.tif", width=64, height=64, count=3, compress=None)
    out = tmp_path / "out"
    (first,) = upscale_many(scenes, out, model=Sharpen(3))
    good = first.read_bytes()
    assert upscale_many(scenes, out, model=Sharpen(3)) == []  # complete: skipped
    broken = bytearray(good)
    broken[len(good) // 4 : len(good) // 2] = bytes(len(good) // 2 - len(good) // 4)
    first.write_bytes(bytes(broken))  # tile data lost, header and tags intact
    with rasterio.open(first) as ds:
        assert ds.tags()["SR_DOMAINS_SYNTHETIC"] == "super-resolved"
    redone = upscale_many(scenes, out, model=Sharpen(3))
    assert redone == [first] and first.read_bytes() == good


# -- options ---------------------------------------------------------------------------------------
def test_cli_value_options(tmp_path):
    src = make_geotiff(tmp_path / "i.tif", width=24, height=24, dtype="uint16")
    assert main(["upscale", str(src), str(tmp_path / "a.tif"), "--value-range", "100,200"]) == 0
    a = _read(tmp_path / "a.tif")
    assert a.min() >= 100 and a.max() <= 200
    assert main(["upscale", str(src), str(tmp_path / "b.tif"), "--no-clamp"]) == 0
    with rasterio.open(tmp_path / "b.tif") as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_VALUES"]) == {"clamp": False}
    with pytest.raises(SystemExit):  # argparse: a usage error, before anything runs
        main(["upscale", str(src), str(tmp_path / "c.tif"), "--envelope", "nope"])


def test_cli_envelope_radius_keeps_a_point_targets_ghosts_to_its_neighbours(tmp_path, capsys):
    """SAR linear power: a bright point target (a ship) sets the local maximum of the 5 x 5
    envelope, so the network's positive ringing 2-3 pixels away survives it (mean 16 where
    the background is 0.07). ``--envelope-radius 1`` (Python only before) clips it there."""
    rng = np.random.default_rng(0)
    x = (0.07 * rng.gamma(1.0, 1.0, (40, 48))).astype(np.float32)
    x[20, 24] = 1000.0
    src = make_geotiff(tmp_path / "sar.tif", width=48, height=40, dtype="float32")
    with rasterio.open(src, "r+") as ds:
        ds.write(x[None])
    rings = {}
    for name, extra in (("r2", []), ("r1", ["--envelope-radius", "1"])):
        out = tmp_path / f"{name}.tif"
        argv = ["upscale", str(src), str(out), "--model", "sr-lite-gray-x2", *extra]
        assert main(argv) == 0
        y = _read(out)[0]
        yy, xx = np.mgrid[0:80, 0:96]
        d = np.maximum(abs((yy + 0.5) / 2 - 20.5), abs((xx + 0.5) / 2 - 24.5))
        rings[name] = float(y[(d >= 2) & (d < 3)].mean())
    background = float(x[x < 100].mean())
    assert rings["r1"] < 3 * background < rings["r2"], rings
    with pytest.raises(SystemExit):  # argparse: an integer
        main(["upscale", str(src), str(tmp_path / "c.tif"), "--envelope-radius", "one"])
    capsys.readouterr()
    assert main(["upscale", str(src), str(tmp_path / "c.tif"), "--envelope-radius", "0"]) == 2
    assert "envelope radius must be 1..8" in capsys.readouterr().err


def test_infer_domain_rules():
    d = infer_domain([0.5, -3.0], dtype="float32")
    assert d.lo == (0.0, -np.inf) and d.hi == (np.inf, np.inf)
    d = infer_domain([-1100.0], dtype="int16", slope=1.0, inter=-1024.0, ct=True)
    assert d.lo == (-1100.0,) and d.hi == (32767 - 1024.0,)
    d = infer_domain([-10.0], ct=True)
    assert d.lo == (-1024.0,)
    assert infer_domain([3.0], user=(None, 5.0)).hi == (5.0,)


def _dciodvfy_errors(path: Path) -> set[str]:
    import subprocess

    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return {line.strip() for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")}


def test_real_enhanced_mr_output_adds_no_dciodvfy_error(tmp_path):
    """nibabel's Philips enhanced MR (ORIGINAL, 176 frames) cut to 6 frames; the DERIVED output
    must not add errors (MR pulse-sequence attributes are not allowed on DERIVED images, no
    empty functional-group items)."""
    import gzip

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    raw = gzip.decompress(
        (Path(nib.__file__).parent / "nicom/tests/data/philips_mprage.dcm.gz").read_bytes()
    )
    ds = pydicom.dcmread(__import__("io").BytesIO(raw))
    n = 6
    ds.PixelData = ds.pixel_array[:n].astype(ds.pixel_array.dtype.newbyteorder("<")).tobytes()
    ds.NumberOfFrames = n
    ds.PerFrameFunctionalGroupsSequence = ds.PerFrameFunctionalGroupsSequence[:n]
    src = tmp_path / "in" / "mprage.dcm"
    src.parent.mkdir()
    ds.save_as(src)
    (out,) = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    d = pydicom.dcmread(out)
    assert d.ImageType[0] == "DERIVED" and "MRAcquisitionType" not in d
    assert all(len(item) for item in d.get("SharedFunctionalGroupsSequence", []))
    assert _dciodvfy_errors(out) <= _dciodvfy_errors(src)


def test_ct_padding_range_is_written_as_the_padding_value(tmp_path):
    """PixelPaddingValue -2000 with PixelPaddingRangeLimit -2010 (padding pixels -2000..-2009):
    padding is written as PixelPaddingValue itself, not the range's low end (-2010, a value the
    source never held, which a tool testing ``== PixelPaddingValue`` misses)."""
    files = _ct_with_padding(tmp_path / "ct")
    for f in files:
        ds = pydicom.dcmread(f)
        px = ds.pixel_array.copy()
        px[px == -2000] = -2000 - (np.arange(int((px == -2000).sum())) % 10)
        ds.PixelData = px.astype("<i2").tobytes()
        ds.add_new(0x00280121, "SS", -2010)  # PixelPaddingRangeLimit
        ds.save_as(f)
    assert load_dicom_series(tmp_path / "ct").padding == (-2010, -2000)
    out = upscale_dicom_series(tmp_path / "ct", tmp_path / "o", model=Sharpen())
    stored_in = pydicom.dcmread(files[0]).pixel_array
    pad = (stored_in <= -2000).repeat(2, 0).repeat(2, 1)
    for f in out:
        d = pydicom.dcmread(f)
        assert (d.PixelPaddingValue, d.PixelPaddingRangeLimit) == (-2000, -2010)
        assert (d.pixel_array[pad] == -2000).all()  # before: -2010
