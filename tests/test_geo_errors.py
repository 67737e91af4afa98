"""Errors that name the file, atomic writes, overwrite rules and unusual georeferencing."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.control import GroundControlPoint  # noqa: E402

from sr_domains.errors import (  # noqa: E402
    ConfigError,
    InputFileError,
    OutputExistsError,
    UnsafeOutputError,
)
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.testing import ToySR, tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402


class ExplodingToy(ToySR):
    """Fails on its third forward pass (mid-write)."""

    calls = 0

    def forward(self, x):
        ExplodingToy.calls += 1
        if ExplodingToy.calls == 3:
            raise RuntimeError("boom")
        return super().forward(x)


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_existing_output_is_refused_then_overwritten(tmp_path):
    src = make_geotiff(tmp_path / "in.tif")
    dst = tmp_path / "out.tif"
    dst.write_bytes(b"old")
    stale = tmp_path / "out.tif.aux.xml"
    stale.write_text("<PAMDataset/>")
    with pytest.raises(OutputExistsError, match=r"out\.tif"):
        upscale_geotiff(src, dst, model=tiny_model(1, 2))
    assert dst.read_bytes() == b"old"
    with pytest.raises(UnsafeOutputError, match="not a GeoTIFF"):  # not an image: not even so
        upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert dst.read_bytes() == b"old"
    make_geotiff(dst, width=5, height=4)  # an earlier GeoTIFF under that name: replaced
    old = dst.read_bytes()
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert dst.read_bytes() != old
    check_upscaled(src, dst, 2)
    assert not stale.exists()  # a stale sidecar would override the new metadata


def test_output_replacing_input_is_refused(tmp_path):
    src = make_geotiff(tmp_path / "in.tif")
    with pytest.raises(UnsafeOutputError, match="replace the input"):
        upscale_geotiff(src, src, model=tiny_model(1, 2), overwrite=True)


@pytest.mark.parametrize("name", ["out.png", "out.nii.gz", "out.jpg", "out"])
def test_output_named_like_another_format_is_refused(tmp_path, name):
    from sr_domains.geo.split import upscale_geotiff_split

    src = make_geotiff(tmp_path / "in.tif")
    with pytest.raises(ConfigError, match=r"must end in \.tif or \.tiff"):
        upscale_geotiff(src, tmp_path / name, model=tiny_model(1, 2))
    with pytest.raises(ConfigError, match=r"must end in \.tif or \.tiff"):  # before any worker
        upscale_geotiff_split(src, tmp_path / name, client=None, model=tiny_model(1, 2))
    assert _leftovers(tmp_path, {"in.tif"}) == []


def test_tiff_names_and_the_inputs_own_suffix_are_accepted(tmp_path):
    src = make_geotiff(tmp_path / "in.tif")
    check_upscaled(src, upscale_geotiff(src, tmp_path / "OUT.TIFF", model=tiny_model(1, 2)), 2)
    dat = tmp_path / "scene.dat"  # a TIFF known by its content, not its name
    shutil.copy(src, dat)
    check_upscaled(dat, upscale_geotiff(dat, tmp_path / "scene_x2.dat", model=tiny_model(1, 2)), 2)
    nii = tmp_path / "img.nii"  # a TIFF misnamed as another format: its output is not named so
    shutil.copy(src, nii)
    with pytest.raises(ConfigError, match=r"must end in \.tif or \.tiff \(not \.nii\)"):
        upscale_geotiff(nii, tmp_path / "o.nii", model=tiny_model(1, 2))
    assert not (tmp_path / "o.nii").exists()


@pytest.mark.parametrize("cog", [False, True])
def test_failure_mid_write_leaves_nothing(tmp_path, cog):
    src = make_geotiff(tmp_path / "in.tif", width=80, height=80)
    out = tmp_path / "out"
    ExplodingToy.calls = 0
    model = ExplodingToy(tiny_model(1, 2).config)
    with pytest.raises(RuntimeError, match="boom"):
        upscale_geotiff(src, out / "o.tif", model=model, tile=16, cog=cog)
    assert ExplodingToy.calls == 3
    assert not out.exists()  # the folder this run created is removed with its temp files


def test_failure_in_cog_conversion_leaves_nothing(tmp_path, monkeypatch):
    src = make_geotiff(tmp_path / "in.tif")

    def broken(stage, dst, spec, name=None):
        dst.write_bytes(b"half a COG")
        raise OSError("disk full")

    monkeypatch.setattr("sr_domains.geo.upscale.to_cog", broken)
    with pytest.raises(OSError, match="disk full"):
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2), cog=True)
    assert _leftovers(tmp_path, {"in.tif"}) == []


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"nope\.tif: file not found"):
        upscale_geotiff(tmp_path / "nope.tif", tmp_path / "o.tif", model=tiny_model(1, 2))


def test_gdal_virtual_paths_are_refused_clearly(tmp_path):
    """/vsizip inputs were "file not found"; a /vsimem output failed naming its temp file."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=20)
    with pytest.raises(InputFileError, match=r"/vsizip/.*GDAL virtual file systems .*not read"):
        upscale_geotiff(f"/vsizip/{tmp_path}/a.zip/a.tif", tmp_path / "o.tif")
    with pytest.raises(UnsafeOutputError, match=r"^/vsimem/o\.tif: GDAL virtual") as info:
        upscale_geotiff(src, "/vsimem/o.tif", model=tiny_model(1, 2))
    assert "sr-tmp" not in str(info.value)
    assert _leftovers(tmp_path, {"a.tif"}) == []


def test_not_a_raster(tmp_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("this is not a GeoTIFF")
    with pytest.raises(InputFileError, match=r"notes\.tif: not a readable raster"):
        upscale_geotiff(bad, tmp_path / "o.tif", model=tiny_model(1, 2))
    assert not (tmp_path / "o.tif").exists()


def test_truncated_file(shared_data, tmp_path):
    real = shared_data / "geotiff" / "RGB.byte.tif"
    if not real.exists():
        pytest.skip("RGB.byte.tif is absent")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    with pytest.raises(InputFileError, match=r"cut\.tif") as info:
        upscale_geotiff(cut, tmp_path / "o.tif", model=tiny_model(3, 2))
    assert "corrupt" in str(info.value) or "not a readable raster" in str(info.value)
    assert _leftovers(tmp_path, {"cut.tif"}) == []


def test_corrupt_tile_names_gdal_reason(tmp_path):
    """A damaged compressed tile: the error names the block and the codec's reason, not
    rasterio's bare "Read failed. See previous exception"."""
    src = make_geotiff(tmp_path / "c.tif", width=256, height=256, block=128)
    with rasterio.open(src) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    raw = bytearray(src.read_bytes())
    for i in range(offset + 10, offset + 200):
        raw[i] ^= 0x5A
    src.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match=r"c\.tif") as info:
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    msg = str(info.value)
    assert "previous exception" not in msg
    assert "IReadBlock failed" in msg and "Decod" in msg
    assert _leftovers(tmp_path, {"c.tif"}) == []


@pytest.mark.parametrize("text", ["1,,2", "1,2,", ",1"])
def test_cli_bands_with_an_empty_item_is_refused(tmp_path, capsys, text):
    from sr_domains.cli import main

    src = make_geotiff(tmp_path / "in.tif", count=3)
    with pytest.raises(SystemExit) as info:
        main(["upscale", str(src), str(tmp_path / "o.tif"), "--bands", text])
    assert info.value.code == 2
    assert "expected comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize(
    ("bands", "match"),
    [([0], r"band\(s\) \[0\] do not exist.*1\.\.3"), ([2, 5], r"\[5\]"), ([1, 1], "repeats")],
)
def test_invalid_band_selection(tmp_path, bands, match):
    src = make_geotiff(tmp_path / "in.tif", count=3)
    with pytest.raises(ConfigError, match=match):
        upscale_geotiff(src, tmp_path / "o.tif", bands=bands, model=tiny_model(1, 2))


def test_model_band_count_mismatch(tmp_path):
    src = make_geotiff(tmp_path / "in.tif", count=4)
    with pytest.raises(ConfigError, match="takes 3 band"):
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(3, 2))


def test_model_scale_mismatch(tmp_path):
    src = make_geotiff(tmp_path / "in.tif")
    with pytest.raises(ConfigError, match="x2 but x4"):
        upscale_geotiff(src, tmp_path / "o.tif", scale=4, model=tiny_model(1, 2))


def test_no_model_without_shipped_weights_is_a_clear_error(tmp_path, monkeypatch):
    from sr_domains import pretrained

    x4_only = tuple(e for e in pretrained.list_pretrained() if e.scale == 4)
    if not x4_only:
        pytest.skip("no shipped x4 weights")
    monkeypatch.setattr(pretrained, "_entries", lambda: x4_only)  # as if no x2 weights shipped
    src = make_geotiff(tmp_path / "in.tif")
    for scale in (2, 3):  # (x3 is served by the x2 default: none here either)
        with pytest.raises(ConfigError, match=f"no shipped weights for x{scale}") as err:
            upscale_geotiff(src, tmp_path / "o.tif", scale=scale)
        assert "--weights" in str(err.value) and "sr-lite-gray-x4" in str(err.value)
    assert not (tmp_path / "o.tif").exists()


def test_x3_without_a_model_is_the_x2_default_resampled(tmp_path, caplog):
    """No x3 weights ship: ``--scale 3`` without a model runs the x2 default and resamples its
    output to x3 (it was an error); geometry, values and provenance as for any model."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.pretrained import list_pretrained, resolve_model

    names = {e.name for e in list_pretrained()}
    if any(e.scale == 3 for e in list_pretrained()) or "sr-lite-gray-x2" not in names:
        pytest.skip("x3 weights are shipped, or no x2 default")
    net = resolve_model(None, None, scale=3, n_bands=1)
    assert (net.arch, net.scale, net.base.scale, net.card.name) == (
        "resampled", 3, 2, "sr-lite-gray-x2"
    )  # fmt: skip
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / "a.tif", width=40, height=36, dtype="uint16")
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="sr_domains"):
        assert upscale_many(src.parent, out, scale=3) == [out / "a.tif"]
    assert "no shipped x3 weights: sr-lite-gray-x2, resampled to x3" in caplog.text
    check_upscaled(src, out / "a.tif", 3)
    with rasterio.open(out / "a.tif") as ds, rasterio.open(src) as s:
        tags, data, lr = ds.tags(), ds.read(), s.read()
    assert tags["SR_DOMAINS_MODEL"] == "sr-lite-gray-x2" and tags["SR_DOMAINS_SCALE"] == "3"
    assert tags["SR_DOMAINS_MODEL_ARCH"] == "resampled"
    assert data.dtype == lr.dtype and lr.min() <= data.min() and data.max() <= lr.max()
    assert upscale_many(src.parent, out, scale=3) == []  # a rerun resumes: same weights, x3
    with pytest.raises(ConfigError, match="without --model/--weights, --scale 3 runs the x2"):
        upscale_geotiff(src, tmp_path / "named.tif", scale=3, model="sr-lite-gray-x2")


def test_default_model_is_the_shipped_weights_for_the_band_count(tmp_path):
    from sr_domains.pretrained import default_pretrained, list_pretrained

    if not list_pretrained():
        pytest.skip("no shipped weights")
    assert default_pretrained(2, 3).in_channels == 3  # RGB weights for 3 bands
    assert default_pretrained(2, 1).in_channels == 1
    assert default_pretrained(4, 5).in_channels == 1  # other counts: 1-band, band by band
    src = make_geotiff(tmp_path / "in.tif", count=3, width=40, height=36)
    out = upscale_geotiff(src, tmp_path / "o.tif")
    with rasterio.open(out) as ds:
        assert ds.tags()["SR_DOMAINS_MODEL"] == default_pretrained(2, 3).name


def test_palette_is_refused(tmp_path):
    src = make_geotiff(tmp_path / "pal.tif", dtype="uint8")
    with rasterio.open(src, "r+") as ds:
        ds.write_colormap(1, {0: (0, 0, 0, 255), 255: (255, 255, 255, 255)})
    with pytest.raises(InputFileError, match="colour table"):
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))


def _one_band_profile(size: int, **extra: object) -> dict:
    """A square one-band uint8 GeoTIFF profile with a UTM CRS."""
    return dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=rasterio.Affine(10, 0, 0, 0, -10, 0),
        **extra,
    )


def test_one_bit_band_gets_bilevel_advice(tmp_path):
    """GDAL gives a 1-bit band a black/white colour table: the advice is for a mask or a
    page (nearest resampling, or 8-bit gray), not "-expand rgb" (three 0/255 bands)."""
    src = tmp_path / "b1.tif"
    data = (np.indices((32, 32)).sum(axis=0) % 5 == 0).astype(np.uint8)[None]
    with rasterio.open(src, "w", **_one_band_profile(32, nbits=1)) as ds:
        ds.write(data)
    with pytest.raises(InputFileError, match=r"b1\.tif: band 1 is 1-bit") as info:
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    assert "-expand rgb" not in str(info.value) and "gdalwarp -r near" in str(info.value)


def test_a_class_map_without_colour_table_is_warned_about(tmp_path, caplog):
    """Scene classification / land cover often has no colour table: SR invents codes between
    the classes. It is named with a warning (a refusal would also stop few-level images)."""
    codes = np.array([1, 5, 9], np.uint8)[(np.indices((40, 40)).sum(axis=0) // 7) % 3][None]
    src = tmp_path / "scl.tif"
    with rasterio.open(src, "w", **_one_band_profile(40)) as ds:
        ds.write(codes)
    with caplog.at_level("WARNING", logger="sr_domains"):
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("scl.tif holds only 3 distinct values (1, 5, 9)" in m for m in said), said
    caplog.clear()
    photo = make_geotiff(tmp_path / "photo.tif", width=40, height=40)
    with caplog.at_level("WARNING", logger="sr_domains"):
        upscale_geotiff(photo, tmp_path / "p.tif", model=tiny_model(1, 2))
    assert not [r for r in caplog.records if "distinct values" in r.getMessage()]


NOT_GEOREF = "ignore::rasterio.errors.NotGeoreferencedWarning"


@pytest.mark.filterwarnings(NOT_GEOREF)
def test_gcp_only_raster(tmp_path):
    src = tmp_path / "gcp.tif"
    gcps = [
        GroundControlPoint(row=0, col=0, x=10.0, y=50.0, z=0.0, id="1"),
        GroundControlPoint(row=0, col=30, x=10.3, y=50.02, z=0.0, id="2"),
        GroundControlPoint(row=20, col=0, x=9.98, y=49.8, z=0.0, id="3"),
        GroundControlPoint(row=20.5, col=30.25, x=10.28, y=49.82, z=0.0, id="4"),
    ]
    data = np.arange(600, dtype=np.uint8).reshape(1, 20, 30)
    with rasterio.open(src, "w", driver="GTiff", width=30, height=20, count=1, dtype="uint8") as ds:
        ds.write(data)
        ds.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))
    dst = upscale_geotiff(src, tmp_path / "o.tif", scale=3, model=tiny_model(1, 3))
    check_upscaled(src, dst, 3)  # GCP rows/cols x 3, same ground points and CRS
    with rasterio.open(dst) as d:
        assert d.transform.is_identity
        out, crs = d.gcps
        assert crs.to_epsg() == 4326
        assert (out[3].row, out[3].col) == (61.5, 90.75)


@pytest.mark.filterwarnings(NOT_GEOREF)
def test_rpc_raster(tmp_path):
    from rasterio.rpc import RPC
    from rasterio.transform import RPCTransformer

    z = [0.0] * 20
    line, samp, den = list(z), list(z), list(z)
    line[2], samp[1], den[0] = -1.0, 1.0, 1.0
    rpc = RPC(
        height_off=0, height_scale=100, lat_off=45, lat_scale=0.1, line_den_coeff=den,
        line_num_coeff=line, line_off=20, line_scale=20, long_off=10, long_scale=0.1,
        samp_den_coeff=den, samp_num_coeff=samp, samp_off=15, samp_scale=15,
    )  # fmt: skip
    src = tmp_path / "rpc.tif"
    with rasterio.open(
        src, "w", driver="GTiff", width=30, height=40, count=1, dtype="uint16"
    ) as ds:
        ds.write(np.full((1, 40, 30), 7, np.uint16))
        ds.rpcs = rpc
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    with rasterio.open(src) as a, rasterio.open(dst) as d:
        assert d.rpcs is not None
        with RPCTransformer(a.rpcs) as ta, RPCTransformer(d.rpcs) as td:
            for r, c in [(0, 0), (40, 30), (13, 7)]:  # corners of pixels map to the same place
                pa = ta.xy(r, c, offset="ul", zs=0)
                pd = td.xy(2 * r, 2 * c, offset="ul", zs=0)
                np.testing.assert_allclose(pa, pd, rtol=0, atol=1e-9)


@pytest.mark.filterwarnings(NOT_GEOREF)
def test_not_georeferenced_warns(tmp_path, caplog):
    src = tmp_path / "plain.tif"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            src, "w", driver="GTiff", width=16, height=12, count=1, dtype="uint8"
        ) as ds:
            ds.write(np.full((1, 12, 16), 9, np.uint8))
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        dst = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    assert "not georeferenced" in caplog.text
    check_upscaled(src, dst, 2)
    with rasterio.open(dst) as d:
        assert d.crs is None
        assert d.transform.is_identity
        assert d.gcps[0] == []


def test_tags_copied_and_stale_ones_dropped(tmp_path):
    src = make_geotiff(
        tmp_path / "t.tif",
        count=2,
        tags={"MISSION": "S2B", "SR_DOMAINS_SCALE": "4"},
        band_tags=[{"STATISTICS_MEAN": "12", "BANDNAME": "B04"}, {}],
        descriptions=["red", "nir"],
    )
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(ns="CUSTOM", product="L2A")
        ds.scales = (0.0001, 0.0001)
        ds.offsets = (-0.1, -0.1)
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    with rasterio.open(dst) as d:
        assert d.tags()["MISSION"] == "S2B"
        assert d.tags()["SR_DOMAINS_SCALE"] == "2"
        assert d.tags(ns="CUSTOM") == {"product": "L2A"}
        assert d.tags(1) == {"BANDNAME": "B04"}  # stale statistics dropped
        assert d.descriptions == ("red", "nir")
        assert d.scales == (0.0001, 0.0001)
        assert d.offsets == (-0.1, -0.1)
    assert not (tmp_path / "o.tif.aux.xml").exists()  # everything lives inside the GeoTIFF
    shutil.rmtree(tmp_path)


@pytest.mark.filterwarnings(NOT_GEOREF)
def test_bands_with_different_nodata_need_an_override(tmp_path):
    src = make_geotiff(tmp_path / "in.tif", width=20, height=16, count=2, dtype="uint8")
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><NoDataValue>{nd}</NoDataValue>'
        f"<SimpleSource><SourceFilename>{src}</SourceFilename><SourceBand>{b}</SourceBand>"
        "</SimpleSource></VRTRasterBand>"
        for b, nd in ((1, 0), (2, 255))
    )
    vrt = tmp_path / "mixed.vrt"
    vrt.write_text(f'<VRTDataset rasterXSize="20" rasterYSize="16">{bands}</VRTDataset>')
    with pytest.raises(InputFileError, match=r"mixed\.vrt: .*different nodata.*--nodata"):
        upscale_geotiff(vrt, tmp_path / "o.tif", model=tiny_model(1, 2))
    upscale_geotiff(vrt, tmp_path / "o.tif", model=tiny_model(1, 2), bands=[2])
    with rasterio.open(tmp_path / "o.tif") as d:
        assert d.nodata == 255
