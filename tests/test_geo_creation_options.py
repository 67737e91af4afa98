"""GDAL creation options of the GeoTIFF output (``--co``): lossy codecs refused, every option
checked before any work, block sizes per side, GTiff and COG names translated."""

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


def _saturated_rgb(path):
    """A uint8 RGB GeoTIFF with a nodata collar (0) and a saturated (255) patch."""
    src = make_geotiff(path, width=60, height=50, count=3, nodata=0)
    with rasterio.open(src, "r+") as ds:
        data = ds.read()
        data[:, 30:40, 40:50] = 255
        ds.write(data)
    return src


@pytest.fixture
def bad_weights(tmp_path):
    """A weights file that cannot be loaded: a run that reaches the model fails on it, so a
    refusal that names the options was made before the model was loaded."""
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"not weights")
    return ["--scale", "2", "--weights", str(p)]


def _run(src, dst, *args):
    return main(["upscale", str(src), str(dst), *args, "--no-progress", "-q"])


@pytest.mark.parametrize(
    "co",
    [
        ["COMPRESS=JPEG"],
        ["COMPRESS=JPEG", "--cog"],
        ["COMPRESS=WEBP"],
        ["COMPRESS=WEBP", "WEBP_LOSSLESS=NO"],
        ["COMPRESS=WEBP", "QUALITY=90", "--cog"],
        ["COMPRESS=LERC", "MAX_Z_ERROR=0.5"],
        ["COMPRESS=LERC_ZSTD", "MAX_Z_ERROR=1", "--cog"],
        ["COMPRESS=JXL", "JXL_LOSSLESS=NO"],
    ],
)
def test_lossy_compression_is_refused_before_any_work(tmp_path, capsys, bad_weights, co):
    src = _saturated_rgb(tmp_path / "in.tif")
    args = [a if a == "--cog" else f"--co={a}" for a in co]
    assert _run(src, tmp_path / "o.tif", *args, *bad_weights) == 2
    err = capsys.readouterr().err
    assert "is lossy" in err and "saturated pixels would not be kept" in err
    assert "COMPRESS=DEFLATE, ZSTD, LZW or LERC" in err
    assert not (tmp_path / "o.tif").exists()


def test_lossless_webp_keeps_every_value(tmp_path, capsys):
    """WEBP_LOSSLESS=YES (the COG driver: QUALITY=100) writes the values of the DEFLATE output;
    a COG given the GTiff name used to be written lossy (the COG driver ignored it)."""
    src = _saturated_rgb(tmp_path / "in.tif")
    assert _run(src, tmp_path / "ref.tif") == 0
    runs = {
        "gtiff.tif": ["--co", "COMPRESS=WEBP", "--co", "WEBP_LOSSLESS=YES"],
        "cog.tif": ["--cog", "--co", "COMPRESS=WEBP", "--co", "WEBP_LOSSLESS=YES"],
        "cog_q.tif": ["--cog", "--co", "COMPRESS=WEBP", "--co", "QUALITY=100"],
        "gtiff_q.tif": ["--co", "COMPRESS=WEBP", "--co", "QUALITY=100"],
    }
    with rasterio.open(tmp_path / "ref.tif") as ds:
        ref = ds.read()
    assert (ref == 0).sum() > 0 and (ref == 255).sum() > 0
    for name, args in runs.items():
        assert _run(src, tmp_path / name, *args) == 0, capsys.readouterr().err
        with rasterio.open(tmp_path / name) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "WEBP"
            assert (ds.read() == ref).all(), name


@pytest.mark.parametrize("cog", [[], ["--cog"]])
def test_codec_that_cannot_hold_the_data_is_refused_before_any_work(
    tmp_path, capsys, bad_weights, cog
):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=30, count=3, dtype="uint16")
    webp = ["--co", "COMPRESS=WEBP", "--co", "WEBP_LOSSLESS=YES"]
    assert _run(src, tmp_path / "o.tif", *webp, *cog, *bad_weights) == 2
    err = capsys.readouterr().err
    assert "cannot write 3 band(s) of uint16" in err and "8 bit unsigned" in err
    assert _run(src, tmp_path / "o.tif", "--co", "PREDICTOR=3", *cog, *bad_weights) == 2
    assert "PREDICTOR=3 is only supported with Float32 or Float64" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--co", "FOO=1"], "--co FOO: GDAL's GTiff driver has no such option"),
        (["--co", "COMPRESS=FOO"], "--co COMPRESS=FOO: GDAL: 'FOO' is an unexpected value"),
        (["--cog", "--co", "ENDIANNESS=BIG"], "--co ENDIANNESS: GDAL's COG driver has no such"),
        (["--co", "OVERVIEW_COUNT=2"], "applies to a Cloud-Optimized GeoTIFF only (--cog)"),
        (["--co", "TFW=YES"], "writes a sidecar of the temp file"),
        (["--cog", "--co", "TARGET_SRS=EPSG:4326"], "reprojects or resamples the COG"),
        (["--co", "PIXELTYPE=SIGNEDBYTE"], "sets the data type; choose it with --dtype"),
        (["--co", "NBITS=4"], "NBITS=4 stores uint8 values in other than 8 bits"),
        (["--co", "LEVEL=9", "--co", "COMPRESS=LZW"], "sets the DEFLATE, ZSTD or LZMA level"),
        (["--co", "BLOCKXSIZE=496", "--co", "BLOCKYSIZE=512"], "line up only every 15872"),
    ],
)
def test_unknown_or_harmful_options_are_refused_before_any_work(
    tmp_path, capsys, bad_weights, args, said
):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=30)
    assert _run(src, tmp_path / "o.tif", *args, *bad_weights) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("workers", [[], ["--workers", "1"]])
def test_a_batch_refuses_an_unknown_option_once_before_any_work(tmp_path, capsys, workers):
    """A typo in --co for a folder: one usage error (exit 2) before the output folder is
    made, not the same failure once per file."""
    (tmp_path / "in").mkdir()
    for i in range(3):
        make_geotiff(tmp_path / "in" / f"s{i}.tif", width=24, height=20)
    out = tmp_path / "out"
    argv = ["upscale", str(tmp_path / "in"), str(out), "--co", "COMPRES=ZSTD", *workers]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("--co COMPRES: GDAL's GTiff driver has no such option") == 1
    assert not out.exists()


def test_block_width_and_height_are_each_their_own(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", width=150, height=130, dtype="uint16", nodata=0)
    assert _run(src, tmp_path / "ref.tif") == 0
    with rasterio.open(tmp_path / "ref.tif") as ds:
        ref = ds.read()
        assert ds.block_shapes[0] == (256, 256)
    for args, shape in (
        (["--co", "BLOCKXSIZE=256", "--co", "BLOCKYSIZE=128"], (128, 256)),
        (["--co", "BLOCKYSIZE=64"], (64, 256)),
        (["--co", "BLOCKXSIZE=32"], (256, 32)),
        (["--co", "BLOCKSIZE=128"], (128, 128)),
        (["--cog", "--co", "BLOCKSIZE=256"], (256, 256)),
        (["--cog", "--co", "BLOCKXSIZE=128", "--co", "BLOCKYSIZE=128"], (128, 128)),
    ):
        dst = tmp_path / f"b_{'_'.join(args)}.tif"
        assert _run(src, dst, *args) == 0, capsys.readouterr().err
        with rasterio.open(dst) as ds:
            assert ds.block_shapes[0] == shape, args
            assert (ds.read() == ref).all(), args  # (blocks change the layout, not the values)


@pytest.mark.parametrize(
    "args",
    [
        ["--co", "BLOCKXSIZE=256", "--co", "BLOCKYSIZE=128"],
        ["--co", "BLOCKYSIZE=128"],
        ["--co", "BLOCKSIZE=256", "--co", "BLOCKXSIZE=128"],
    ],
)
def test_cog_blocks_must_be_square(tmp_path, capsys, bad_weights, args):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=30)
    cog = [] if "BLOCKSIZE=256" in args else ["--cog"]
    assert _run(src, tmp_path / "o.tif", *cog, *args, *bad_weights) == 2
    err = capsys.readouterr().err
    assert "a COG's blocks are square" in err or "BLOCKXSIZE/BLOCKYSIZE differ" in err


def test_cog_gets_its_own_names_for_gtiff_options(tmp_path, caplog):
    """``ZSTD_LEVEL`` reaches the COG driver as ``LEVEL`` (it used to be dropped with a GDAL
    warning): level 19 makes a smaller file than level 1, and GDAL says nothing."""
    src = make_geotiff(tmp_path / "in.tif", width=150, height=130, dtype="uint16", nodata=0)
    sizes = {}
    with caplog.at_level(logging.WARNING):
        for level in ("1", "19"):
            dst = tmp_path / f"z{level}.tif"
            zstd = ["--co", "COMPRESS=ZSTD", "--co", f"ZSTD_LEVEL={level}"]
            assert _run(src, dst, "--cog", *zstd) == 0
            sizes[level] = dst.stat().st_size
        cog_name = ["--co", "COMPRESS=ZSTD", "--co", "LEVEL=19"]
        assert _run(src, tmp_path / "c.tif", "--cog", *cog_name) == 0
    assert "does not support creation option" not in caplog.text
    assert sizes["1"] - sizes["19"] > 1000
    with rasterio.open(tmp_path / "z19.tif") as a, rasterio.open(tmp_path / "c.tif") as b:
        assert a.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert (a.read() == b.read()).all()


def test_api_names_its_keywords(tmp_path):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=30)
    model = tiny_model(1, 2)
    for co, said in (
        ({"compress": "jpeg"}, "creation_options COMPRESS=JPEG is lossy"),
        ({"foo": 1}, "creation_options FOO: GDAL's GTiff driver has no such option"),
        ({"OVERVIEW_COUNT": 2}, "Cloud-Optimized GeoTIFF only (cog=True)"),
        ({"PIXELTYPE": "SIGNEDBYTE"}, "choose it with dtype="),
        ({"compress": "zstd", "COMPRESS": "lzw"}, "creation_options COMPRESS is given twice"),
        (["COMPRESS=ZSTD"], "creation_options must be a dict of GDAL creation options"),
    ):
        with pytest.raises(ConfigError) as exc:
            upscale_geotiff(src, tmp_path / "o.tif", model=model, creation_options=co)
        assert said in str(exc.value) and "--co" not in str(exc.value)
    out = upscale_geotiff(
        src, tmp_path / "o.tif", model=model, creation_options={"blockysize": 64, "zlevel": 9}
    )
    with rasterio.open(out) as ds:
        assert ds.block_shapes[0] == (64, 256) and np.isfinite(ds.read()).all()


def test_a_batch_refuses_a_lossy_codec_once_before_any_file(tmp_path, capsys):
    from sr_domains.cli import main

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        make_geotiff(src / f"s{i}.tif", width=16, height=12, count=1, dtype="uint8", seed=i)
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "--co", "COMPRESS=JPEG", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert err.count("COMPRESS=JPEG is lossy") == 1 and "failed:" not in err
    assert not out.exists()  # refused before any file: no output, no run manifest
