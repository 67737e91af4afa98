"""GeoTIFF value and metadata fidelity at the edges a user meets: NaN pixels of float data
written as integers, bands with their own nodata values, a --dtype narrower than the data,
metadata domains in a COG, per-band nodata in ``info``, and a batch output named like a file."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.transform import from_origin  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

GRID = {
    "driver": "GTiff",
    "width": 40,
    "height": 32,
    "crs": "EPSG:32633",
    "transform": from_origin(500000, 5400000, 10, 10),
}


def _wave(i: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:32, 0:40]
    return 1000 + 800 * np.sin(x / 5 + i) * np.cos(y / 7)


def _up(a: np.ndarray, s: int = 2) -> np.ndarray:
    return np.repeat(np.repeat(a, s, axis=-2), s, axis=-1)


def test_nan_pixels_stay_invalid_when_written_as_integers(tmp_path):
    """Float data without a nodata value marks invalid pixels by NaN; an integer --dtype has
    no NaN: they are written as 0 under a per-dataset mask that marks them invalid (they were
    written as valid zeros), with --cog too. A NaN nodata value that the type cannot hold is
    refused naming the file, with the way out."""
    data = _wave().astype("float32")
    data[10:18, 12:20] = np.nan
    src = tmp_path / "nan.tif"
    with rasterio.open(src, "w", count=1, dtype="float32", **GRID) as ds:
        ds.write(data[None])
    for name, cog in (("o.tif", False), ("c.tif", True)):
        out = tmp_path / name
        upscale_geotiff(src, out, model=tiny_model(1, 2), dtype="int16", cog=cog)
        with rasterio.open(out) as ds:
            assert ds.dtypes[0] == "int16" and ds.nodata is None
            mask, values = ds.read_masks(1), ds.read(1)
        assert np.array_equal(mask == 0, _up(np.isnan(data)))
        assert not ((values == 0) & (mask > 0)).any()
    tagged = tmp_path / "tagged.tif"
    with rasterio.open(tagged, "w", count=1, dtype="float32", nodata=np.nan, **GRID) as ds:
        ds.write(data[None])
    with pytest.raises(ConfigError, match=r"tagged.tif: nodata nan cannot be stored as uint8"):
        upscale_geotiff(tagged, tmp_path / "u.tif", model=tiny_model(1, 2), dtype="uint8")
    upscale_geotiff(tagged, tmp_path / "u.tif", model=tiny_model(1, 2), dtype="uint16", nodata=0)
    with rasterio.open(tmp_path / "u.tif") as ds:
        assert ds.nodata == 0 and np.array_equal(ds.read(1) == 0, _up(np.isnan(data)))


def test_nan_pixels_under_a_source_mask_stay_invalid_as_integers(tmp_path):
    """Float data with an internal mask (one corner) and NaN pixels elsewhere, written as
    uint16: the output mask marks both invalid (the NaN pixels were written as valid zeros,
    since only the source's mask was copied)."""
    data = _wave().astype("float32")
    data[20:26, 24:30] = np.nan
    masked = np.zeros(data.shape, bool)
    masked[:8, :8] = True
    src = tmp_path / "fm.tif"
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(src, "w", count=1, dtype="float32", **GRID) as ds,
    ):
        ds.write(data[None])
        ds.write_mask(np.where(masked, 0, 255).astype(np.uint8))
    out = tmp_path / "o.tif"
    upscale_geotiff(src, out, model=tiny_model(1, 2), dtype="uint16")
    with rasterio.open(out) as ds:
        mask = ds.read_masks(1)
    assert np.array_equal(mask == 0, _up(np.isnan(data) | masked))


def _stack(tmp_path):
    """A VRT of three uint16 bands whose nodata values differ (0, 65535, 7)."""
    nodatas = (0, 65535, 7)
    bands = []
    for i, nd in enumerate(nodatas):
        b = _wave(i).astype("uint16")
        if i == 1:
            b[:, :6] = nd
        if i == 2:
            b[-6:] = nd
        bands.append(b)
        with rasterio.open(tmp_path / f"b{i}.tif", "w", count=1, dtype="uint16", nodata=nd,
                           **GRID) as ds:  # fmt: skip
            ds.write(b[None])
    xml = (
        '<VRTDataset rasterXSize="40" rasterYSize="32"><SRS>EPSG:32633</SRS>'
        "<GeoTransform>500000,10,0,5400000,0,-10</GeoTransform>"
    )
    for i, nd in enumerate(nodatas):
        xml += (
            f'<VRTRasterBand dataType="UInt16" band="{i + 1}"><NoDataValue>{nd}</NoDataValue>'
            f'<SimpleSource><SourceFilename relativeToVRT="1">b{i}.tif</SourceFilename>'
            "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        )
    (tmp_path / "stack.vrt").write_text(xml + "</VRTDataset>")
    return tmp_path / "stack.vrt", np.stack(bands), nodatas


def test_bands_with_their_own_nodata_keep_their_footprints(tmp_path, capsys):
    """Each band's own nodata marks its invalid pixels; --nodata V is the output's one value
    (following the old hint, band 2's 65535 collar came out as valid data and band 3's nodata
    rows were upscaled into 7, 8, 9, ...). ``info`` shows each band's value."""
    vrt, bands, nodatas = _stack(tmp_path)
    with pytest.raises(Exception, match="different nodata values") as err:
        upscale_geotiff(vrt, tmp_path / "x.tif", model=tiny_model(3, 2))
    assert "each band's own value still marks" in str(err.value)
    out = tmp_path / "o.tif"
    upscale_geotiff(vrt, out, model=tiny_model(3, 2), nodata=0)
    with rasterio.open(out) as ds:
        assert ds.nodatavals == (0.0, 0.0, 0.0)
        got = ds.read()
    for k, nd in enumerate(nodatas):
        invalid = _up(bands[k] == nd)
        assert np.array_equal(got[k] == 0, invalid), k  # exactly the band's footprint
    assert main(["info", str(vrt)]) == 0
    assert "nodata      band 1 0, band 2 65535, band 3 7" in capsys.readouterr().out


def test_a_narrow_dtype_that_clips_the_data_is_said(tmp_path, caplog):
    src = make_geotiff(tmp_path / "r.tif", width=40, height=32, dtype="uint16")
    with rasterio.open(src, "r+") as ds:  # 0..600: partly above uint8's range
        data = ds.read().astype(np.float64)
        ds.write(np.rint((data - data.min()) / np.ptp(data) * 600).astype("uint16"))
        assert ds.read().max() > 255  # (reflectance-like values)
    with caplog.at_level(logging.WARNING):
        upscale_geotiff(src, tmp_path / "u8.tif", model=tiny_model(1, 2), dtype="uint8")
    assert "of the valid input values lie outside the uint8 range 0..255" in caplog.text
    caplog.clear()
    small = make_geotiff(tmp_path / "s.tif", width=40, height=32, dtype="uint8")
    with caplog.at_level(logging.WARNING):
        upscale_geotiff(small, tmp_path / "s16.tif", model=tiny_model(1, 2), dtype="int16")
    assert "outside" not in caplog.text  # uint8 fits in int16: nothing read, nothing said


def test_cog_output_keeps_the_metadata_domains(tmp_path, caplog):
    """Dataset domains always; band-level ones where GDAL's COG driver copies them (>= 3.10),
    else the run says they are dropped."""
    from sr_domains.geo.cog import gdal_version

    band_domains = gdal_version() >= (3, 10)
    src = tmp_path / "meta.tif"
    with rasterio.open(src, "w", count=1, dtype="uint16", nodata=0, **GRID) as ds:
        ds.write(_wave().astype("uint16")[None])
        ds.update_tags(ns="MYDOMAIN", FOO="bar")
        ds.update_tags(ns="IMAGERY", SATELLITEID="S2B")
        ds.update_tags(1, ns="BANDDOM", K="v")
    for name, cog in (("plain.tif", False), ("cog.tif", True)):
        with caplog.at_level(logging.WARNING):
            upscale_geotiff(src, tmp_path / name, model=tiny_model(1, 2), cog=cog)
        with rasterio.open(tmp_path / name) as ds:
            assert ds.tags(ns="MYDOMAIN") == {"FOO": "bar"}, name
            assert ds.tags(ns="IMAGERY") == {"SATELLITEID": "S2B"}, name
            if band_domains or not cog:
                assert ds.tags(1, ns="BANDDOM") == {"K": "v"}, name
            else:
                assert "drops band-level metadata domains" in caplog.text


def test_cog_output_keeps_the_band_tags(tmp_path, caplog):
    """``--cog`` wrote every band's default-domain tags (wavelength, band name) away: GDAL 3.10
    drops them when asked to copy the metadata domains. Without other domains they are kept;
    with them too, both where GDAL can, else the band tags, saying which domain was dropped."""
    src = tmp_path / "bands.tif"
    with rasterio.open(src, "w", count=2, dtype="uint16", nodata=0, **GRID) as ds:
        ds.write(np.stack([_wave(), _wave()]).astype("uint16"))
        ds.update_tags(1, BANDNAME="B04", WAVELENGTH="665")
        ds.update_tags(2, BANDNAME="B08")
    upscale_geotiff(src, tmp_path / "cog.tif", model=tiny_model(2, 2), cog=True)
    with rasterio.open(tmp_path / "cog.tif") as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.tags(1) == {"BANDNAME": "B04", "WAVELENGTH": "665"}
        assert ds.tags(2) == {"BANDNAME": "B08"}
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(ns="MYDOMAIN", FOO="bar")
    with caplog.at_level(logging.WARNING):
        upscale_geotiff(src, tmp_path / "both.tif", model=tiny_model(2, 2), cog=True)
    with rasterio.open(tmp_path / "both.tif") as ds:
        assert ds.tags(1) == {"BANDNAME": "B04", "WAVELENGTH": "665"}
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        if ds.tags(ns="MYDOMAIN") != {"FOO": "bar"}:
            assert "metadata domain(s) MYDOMAIN" in caplog.text and "dropped" in caplog.text


def test_a_batch_output_named_like_a_file_is_refused(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=20)
    model = tiny_model(1, 2)
    with pytest.raises(ConfigError, match=r"result.tif: the input is a batch"):
        upscale_many(folder, tmp_path / "result.tif", model=model)
    assert main(["upscale", str(folder), str(tmp_path / "r.nii.gz"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ends in .nii.gz like a file" in err
    assert f"give a folder (e.g. {tmp_path / 'r'})" in err  # (it suggested .../out)
    if importlib.util.find_spec("distributed") is not None:  # the batch runner on Dask too
        argv = ["upscale", str(folder), str(tmp_path / "r.tif"), "--workers", "1", "-q"]
        assert main(argv) == 2
    assert not (tmp_path / "result.tif").exists() and not (tmp_path / "r.tif").exists()
    (tmp_path / "mine.tif").mkdir()  # an existing folder of that name: the user's choice
    assert len(upscale_many(folder, tmp_path / "mine.tif", model=model)) == 1


def test_nodata_given_for_the_output_keeps_the_files_own_nodata_invalid(tmp_path):
    """`--nodata V` on a file with its own nodata (the hint when that value does not fit the
    --dtype): the file's nodata pixels stay invalid and are written as V (they were taken for
    data: a -3.4e38 fill upscaled into its neighbours and clipped to -32768)."""
    data = (_wave() / 40).astype("float32")  # 5..45: several int16 levels
    fill = np.float32(-3.4e38)
    data[:, :7] = fill
    src = tmp_path / "f.tif"
    with rasterio.open(src, "w", count=1, dtype="float32", nodata=float(fill), **GRID) as ds:
        ds.write(data[None])
    out = tmp_path / "o.tif"
    upscale_geotiff(src, out, model=tiny_model(1, 2), dtype="int16", nodata=-9999)
    with rasterio.open(out) as ds:
        got = ds.read(1)
        assert ds.nodata == -9999
    assert np.array_equal(got == -9999, _up(data == fill))
    assert got[~_up(data == fill)].min() >= 0  # no fill value leaked into the data
