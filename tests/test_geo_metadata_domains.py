"""Metadata the output carries over: the ``xml:XMP`` domain (drone XMP) is copied; the TIFF tags
that say which program made the file, when and where describe sr_domains's write, not the
source's."""

from __future__ import annotations

import time

import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains import __version__  # noqa: E402
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.geo.writer import set_tags  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

#: DJI-style XMP: GPS and gimbal in the drone-dji namespace, with non-ASCII text and "=" inside.
XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" drone-dji:GpsLatitude="+46.5123" '
    'drone-dji:GpsLongitude="+6.6321" drone-dji:GimbalPitchDegree="-90.0" '
    'drone-dji:Note="Zürich a=b"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)

SOURCE_TAGS = {
    "TIFFTAG_SOFTWARE": "DJI FC6310 v01.08",
    "TIFFTAG_DATETIME": "2020:06:01 10:11:12",
    "TIFFTAG_HOSTCOMPUTER": "drone-pc",
    "TIFFTAG_ARTIST": "survey team",
    "TIFFTAG_COPYRIGHT": "(c) survey team",
    "TIFFTAG_IMAGEDESCRIPTION": "orthomosaic tile 7",
    "MISSION": "kept",
}


@pytest.fixture
def drone_tif(tmp_path):
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / "drone.tif", count=1, tags=SOURCE_TAGS)
    with rasterio.open(src, "r+") as ds:
        set_tags(ds, {"xml:XMP": XMP}, "xml:XMP")
        set_tags(ds, {"xml:custom": '<notes a="1"/>'}, "xml:custom")
    with rasterio.open(src) as ds:  # (the fixture itself is what a drone file holds)
        assert ds.tags(ns="xml:XMP") == {"xml:XMP": XMP}
        assert ds.tags()["TIFFTAG_SOFTWARE"] == SOURCE_TAGS["TIFFTAG_SOFTWARE"]
    return src


@pytest.mark.parametrize("cog", [False, True])
def test_xmp_is_copied(drone_tif, tmp_path, cog):
    out = upscale_geotiff(drone_tif, tmp_path / "out.tif", model=tiny_model(1, 2), cog=cog)
    with rasterio.open(out) as ds:
        assert ds.tags(ns="xml:XMP") == {"xml:XMP": XMP}
        assert "xml:custom" not in ds.tag_namespaces()  # other XML domains: not copied


def test_xmp_image_size_is_the_outputs(tmp_path, caplog):
    """The XMP image size (attribute and element forms) is the output's; pixel-unit camera
    calibration is kept, with a warning naming it."""
    src = make_geotiff(tmp_path / "d.tif", width=40, height=30)
    xmp = XMP.replace(
        'drone-dji:Note="Zürich a=b"/>',
        'drone-dji:Note="Zürich a=b" tiff:ImageWidth="40" tiff:ImageLength="30" '
        'drone-dji:CalibratedFocalLength="3666.6"><exif:PixelXDimension>40'
        "</exif:PixelXDimension><exif:PixelYDimension>30</exif:PixelYDimension>"
        "</rdf:Description>",
    )
    with rasterio.open(src, "r+") as ds:
        set_tags(ds, {"xml:XMP": xmp}, "xml:XMP")
    with caplog.at_level("WARNING", logger="sr_domains"):
        out = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    with rasterio.open(out) as ds:
        got = ds.tags(ns="xml:XMP")["xml:XMP"]
    want = (
        xmp.replace('ImageWidth="40"', 'ImageWidth="80"')
        .replace('ImageLength="30"', 'ImageLength="60"')
        .replace(">40</exif", ">80</exif")
        .replace(">30</exif", ">60</exif")
    )
    assert got == want and got != xmp
    assert "drone-dji:CalibratedFocalLength" in caplog.text


@pytest.mark.parametrize("cog", [False, True])
def test_software_and_time_are_not_the_sources(drone_tif, tmp_path, cog):
    out = upscale_geotiff(drone_tif, tmp_path / "out.tif", model=tiny_model(1, 2), cog=cog)
    with rasterio.open(out) as ds:
        tags = ds.tags()
    assert tags["TIFFTAG_SOFTWARE"] == f"sr_domains {__version__}"
    assert tags["SR_DOMAINS_VERSION"] == __version__
    assert "TIFFTAG_DATETIME" not in tags and "TIFFTAG_HOSTCOMPUTER" not in tags
    for key in ("TIFFTAG_ARTIST", "TIFFTAG_COPYRIGHT", "TIFFTAG_IMAGEDESCRIPTION", "MISSION"):
        assert tags[key] == SOURCE_TAGS[key], key


def test_a_rerun_writes_the_same_bytes_and_a_batch_resumes(drone_tif, tmp_path):
    """No write time in the file: a rerun (a second later) gives the same bytes, and a resumed
    batch still finds its outputs complete."""
    dst = tmp_path / "o.tif"
    upscale_geotiff(drone_tif, dst, model=tiny_model(1, 2))
    first = dst.read_bytes()
    time.sleep(1.1)
    upscale_geotiff(drone_tif, dst, model=tiny_model(1, 2), overwrite=True)
    assert dst.read_bytes() == first
    out = tmp_path / "batch"
    assert upscale_many(drone_tif.parent, out, model=tiny_model(1, 2)) == [out / "drone.tif"]
    assert upscale_many(drone_tif.parent, out, model=tiny_model(1, 2)) == []  # done: skipped
