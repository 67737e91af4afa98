"""``--dtype`` and ``--nodata`` together, the cases a user probe found: the ``--nodata V`` the
output type needs must not turn valid pixels equal to V into nodata, a float -> integer cast
that keeps only a few levels is said, and a float or NaN nodata is accepted for a float output
of integer data (it marks no input pixel)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402


def _up(a: np.ndarray, s: int = 2) -> np.ndarray:
    return np.repeat(np.repeat(a, s, axis=-2), s, axis=-1)


def _rewrite(path, data: np.ndarray) -> np.ndarray:
    """Replace the pixels of the single-band GeoTIFF ``path`` (CRS and nodata tag kept)."""
    with rasterio.open(path, "r+") as ds:
        ds.write(data.astype(ds.dtypes[0])[None])
        return ds.read(1)


def _dn_with_nan(tmp_path):
    """float32 DN 0..10000 with fractions, a NaN nodata tag and collar, and exact zeros."""
    src = make_geotiff(tmp_path / "C_f32_nan.tif", width=40, height=32, dtype="float32",
                       nodata=float("nan"))  # fmt: skip
    with rasterio.open(src) as ds:
        data = ds.read(1) * 10000
    data[20:24, 30:36] = 0.0  # e.g. dark water: valid data equal to 0
    return src, _rewrite(src, data)


def test_the_nodata_needed_by_the_dtype_keeps_valid_pixels_equal_to_it(tmp_path, capsys):
    """Following the old hint (`--nodata 0`) made every valid 0.0 pixel nodata; the hint now
    names a value outside the data, and a value that valid pixels hold is refused."""
    src, data = _dn_with_nan(tmp_path)
    zeros = int(np.count_nonzero(data == 0))
    assert zeros >= 24 and np.isnan(data).any()
    out = tmp_path / "o.tif"
    assert main(["upscale", str(src), str(out), "--dtype", "uint16", "-q"]) == 2
    err = capsys.readouterr().err
    assert "C_f32_nan.tif: nodata nan cannot be stored as uint16" in err
    assert "e.g. --nodata 65535" in err
    assert main(["upscale", str(src), str(out), "--dtype", "uint16", "--nodata", "0", "-q"]) == 2
    err = capsys.readouterr().err
    assert f"C_f32_nan.tif: {zeros} valid pixel(s) equal the --nodata value 0" in err
    assert "e.g. --nodata 65535" in err
    assert not out.exists()
    argv = ["upscale", str(src), str(out), "--dtype", "uint16", "--nodata", "65535", "-q"]
    assert main(argv) == 0
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "uint16" and ds.nodata == 65535
        got = ds.read(1)
    assert np.array_equal(got == 65535, _up(np.isnan(data)))  # exactly the NaN footprint
    assert not (got[_up(data == 0)] == 65535).any()  # the zero pixels stayed data


def test_a_nodata_value_valid_pixels_hold_is_refused_for_bands_with_their_own(tmp_path):
    """Bands whose nodata values differ need `--nodata V` for the output, too: a V that
    valid pixels of any band hold is refused (band 2's zeros are data: its nodata is 65535)."""
    base = make_geotiff(tmp_path / "b.tif", width=40, height=32, dtype="uint16")
    with rasterio.open(base) as ds:
        data = ds.read(1)
    data[:, :4] = 0
    data[5:9, 10:14] = 7  # valid in both bands
    _rewrite(base, data)
    xml = (
        '<VRTDataset rasterXSize="40" rasterYSize="32"><SRS>EPSG:32633</SRS>'
        "<GeoTransform>500000,10,0,5000000,0,-10</GeoTransform>"
    )
    for b, nd in ((1, 0), (2, 65535)):
        xml += (
            f'<VRTRasterBand dataType="UInt16" band="{b}"><NoDataValue>{nd}</NoDataValue>'
            f'<SimpleSource><SourceFilename relativeToVRT="1">b.tif</SourceFilename>'
            "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        )
    vrt = tmp_path / "stack.vrt"
    vrt.write_text(xml + "</VRTDataset>")
    model = tiny_model(2, 2)
    sevens, zeros = int(np.count_nonzero(data == 7)), int(np.count_nonzero(data == 0))
    for v, count in ((7, 2 * sevens), (0, zeros)):  # (band 1's own 0 marks its zeros)
        with pytest.raises(ConfigError, match=rf"stack.vrt: {count} valid pixel\(s\) equal") as e:
            upscale_geotiff(vrt, tmp_path / "x.tif", model=model, nodata=v)
        assert "e.g. --nodata 65535" in str(e.value)
    upscale_geotiff(vrt, tmp_path / "o.tif", model=model, nodata=65535)
    with rasterio.open(tmp_path / "o.tif") as ds:
        got = ds.read()
    assert np.array_equal(got[0] == 65535, _up(data == 0))  # band 1's footprint
    assert not (got[1] == 65535).any()  # band 2 has no nodata pixel


def test_float_to_integer_dtype_that_keeps_a_few_levels_is_said(tmp_path, caplog):
    """float64 0..1 as uint8 came out as 0 and 1 without a word; whole-number floats (a DEM
    in metres) and a wide fractional range are cast without a warning."""
    src = make_geotiff(tmp_path / "D_f64.tif", width=40, height=32, dtype="float64")
    with rasterio.open(src) as ds:
        data = ds.read(1)
    data = _rewrite(src, (data + 5) / 10)  # 0..1
    assert data.min() >= 0 and data.max() <= 1
    out = tmp_path / "o.tif"
    with caplog.at_level(logging.WARNING):
        assert main(["upscale", str(src), str(out), "--dtype", "uint8", "--no-progress"]) == 0
    assert "D_f64.tif: --dtype uint8 rounds the valid values" in caplog.text
    assert "at most 2 distinct value(s) remain" in caplog.text
    with rasterio.open(out) as ds:
        assert set(np.unique(ds.read(1))) <= {0, 1}  # (what the warning says)
    for values, dtype in (
        (np.rint(data * 10), "uint8"),  # whole numbers 0..10: a cast loses nothing
        (data * 3000, "int16"),  # fractional, but 3001 levels: rounding is the usual cast
    ):
        _rewrite(src, values)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert main(["upscale", str(src), str(out), "--dtype", dtype, "--overwrite"]) == 0
        assert "rounds the valid values" not in caplog.text, dtype


def test_float_dtype_takes_a_float_nodata_for_integer_data(tmp_path, capsys):
    """`--dtype float32 --nodata nan` of an int16 DEM and `--nodata -9999` of uint16 data were
    refused as values of the *input* type; they are the float output's nodata and mark no
    input pixel (cast to uint16, -9999 would have marked 55537)."""
    dem = make_geotiff(tmp_path / "B_dem_i16.tif", width=40, height=32, dtype="int16",
                       nodata=-32768)  # fmt: skip
    with rasterio.open(dem) as ds:
        heights = ds.read(1)
    assert (heights < 0).any() and (heights == -32768).any()
    out = tmp_path / "b.tif"
    argv = ["upscale", str(dem), str(out), "--dtype", "float32", "--nodata", "nan", "-q"]
    assert main(argv) == 0
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        got = ds.read(1)
    assert np.array_equal(np.isnan(got), _up(heights == -32768))
    assert got[~np.isnan(got)].min() >= heights[heights != -32768].min()

    dn = make_geotiff(tmp_path / "A_u16.tif", width=40, height=32, dtype="uint16")
    with rasterio.open(dn) as ds:
        values = ds.read(1)
    values[:3] = 55537  # what -9999 becomes cast to uint16: data here
    values = _rewrite(dn, values)
    out = tmp_path / "a.tif"
    argv = ["upscale", str(dn), str(out), "--dtype", "float32", "--nodata", "-9999", "-q"]
    assert main(argv) == 0
    with rasterio.open(out) as ds:
        assert ds.nodata == -9999
        got = ds.read(1)
    assert not (got == -9999).any()  # every input pixel is valid
    assert (got[:4] > 50000).all()  # the 55537 rows stayed data
    for argv, message in (
        (["--nodata", "-9999"], "A_u16.tif: nodata -9999 is not a uint16 value"),  # the output's
        (["--dtype", "int16", "--nodata", "0.5"], "A_u16.tif: nodata 0.5 is not a"),
    ):
        assert main(["upscale", str(dn), str(tmp_path / "x.tif"), *argv, "-q"]) == 2
        assert message in capsys.readouterr().err
    # 0.5 fits float32 and marks no uint16 pixel (cast, it would have marked the zeros)
    upscale_geotiff(dn, tmp_path / "h.tif", model=tiny_model(1, 2), dtype="float32", nodata=0.5)
    with rasterio.open(tmp_path / "h.tif") as ds:
        assert ds.nodata == 0.5 and not (ds.read(1) == 0.5).any()


def test_a_dtype_that_leaves_one_value_is_refused_and_writes_nothing(tmp_path, capsys):
    """float 0..0.3 as int16 (or uint16 counts above int8's range as int8) wrote a raster of
    one value with exit 0, and `-q` hid even the warning: all the data was lost."""
    src = make_geotiff(tmp_path / "refl.tif", width=40, height=32, dtype="float32")
    with rasterio.open(src) as ds:
        data = ds.read(1)
    data = _rewrite(src, (data - data.min()) / (data.max() - data.min()) * 0.3)
    out = tmp_path / "o.tif"
    assert main(["upscale", str(src), str(out), "--dtype", "int16", "-q"]) == 1
    err = capsys.readouterr().err
    assert "refl.tif: --dtype int16 would write one value (0) for every valid pixel" in err
    assert not out.exists()
    _rewrite(src, data * 1000 + 200)  # 200..500 as int8: every value clipped to 127
    assert main(["upscale", str(src), str(out), "--dtype", "int8", "-q"]) == 1
    assert "would write one value (127)" in capsys.readouterr().err
    _rewrite(src, data * 10)  # 0..3: four levels, lossy but not all gone: still written
    assert main(["upscale", str(src), str(out), "--dtype", "int16", "-q"]) == 0


def _nbits12(path):
    rng = np.random.default_rng(5)
    data = (rng.random((32, 32)) * 1500 + 500).astype("uint16")
    data[10:20, 10:20] = 4095  # a saturated 12-bit sensor
    data[0:4] = 4095
    profile = {
        "driver": "GTiff", "width": 32, "height": 32, "count": 1, "dtype": "uint16",
        "crs": "EPSG:32618", "transform": rasterio.transform.from_origin(0, 640, 10, 10),
        "nbits": 12,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data[None])
    return path


@pytest.mark.parametrize("extra", [[], ["--cog"], ["--workers", "1"]])
def test_a_12_bit_geotiff_keeps_its_bits_and_saturation(tmp_path, extra):
    """uint16 with NBITS=12: the output lost NBITS, and a block at 4095 was not pinned (the
    saturation pin sat at 65535): it came back 3734..3846 inside."""
    if extra[:1] == ["--workers"]:
        pytest.importorskip("distributed")
    (tmp_path / "in").mkdir()
    src = _nbits12(tmp_path / "in" / "n12.tif")
    dst = tmp_path / "out" / "n12.tif"
    args = (
        [str(src), str(dst)] if extra[:1] != ["--workers"] else [str(src.parent), str(dst.parent)]
    )
    assert main(["upscale", *args, "--no-progress", *extra]) == 0
    with rasterio.open(dst) as ds:
        assert ds.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "12"
        out = ds.read(1)
    assert (out[20:40, 20:40] == 4095).all() and (out[0:8] == 4095).all()
    assert out.max() == 4095


def test_a_12_bit_geotiff_without_value_rules_takes_the_full_width(tmp_path):
    src = _nbits12(tmp_path / "n12.tif")
    dst = tmp_path / "n12_x2.tif"
    upscale_geotiff(src, dst, model=tiny_model(1, 2), values=ValueOptions(clamp=False))
    with rasterio.open(dst) as ds:  # (values beyond 4095 are kept, not cut to 12 bits)
        assert "NBITS" not in ds.tags(1, ns="IMAGE_STRUCTURE") and ds.dtypes[0] == "uint16"
