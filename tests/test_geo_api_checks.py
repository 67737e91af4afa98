"""Keyword checks of ``upscale_geotiff`` (``bands``, ``dtype``) and the band meanings a joint
model is matched on (``match_bands``: red edge is not red; the hint names every band)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.enums import ColorInterp  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.band_checks import band_meaning  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


@pytest.mark.parametrize(
    ("bands", "said"),
    [
        ([], "bands must name at least one band"),
        ((), "bands must name at least one band"),
        ("4,3,2", "bands must be a sequence of 1-based band indexes, e.g. [4, 3, 2]"),
        ("432", "bands must be a sequence of 1-based band indexes"),
        (3, "bands must be a sequence of 1-based band indexes"),
        ([1.5], "bands must be a sequence of 1-based band indexes"),
    ],
)
def test_bands_keyword_is_checked(tmp_path, bands, said):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=30, count=4, dtype="uint16")
    with pytest.raises(ConfigError) as exc:
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2), bands=bands)
    assert said in str(exc.value)
    assert not (tmp_path / "o.tif").exists()


def test_bands_keyword_takes_any_sequence_of_whole_numbers(tmp_path):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=30, count=4, dtype="uint16")
    out = upscale_geotiff(
        src, tmp_path / "o.tif", model=tiny_model(1, 2), bands=np.array([4, 2]), tile=16
    )
    with rasterio.open(out) as ds:
        assert ds.count == 2 and ds.tags()["SR_DOMAINS_SOURCE_BANDS"] == "4,2"


def _int8_geotiff(path):
    """An int8 GeoTIFF (EPSG:32633) with a nodata (-128) collar and values -100..100."""
    from affine import Affine

    h, w = 30, 40
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.round(-100 + 200 * (xx + yy) / (h + w - 2)).astype(np.int8)
    data[yy + xx < 10] = -128
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "int8"}
    transform = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
    with rasterio.open(path, "w", crs="EPSG:32633", transform=transform, nodata=-128, **profile):
        pass
    with rasterio.open(path, "r+") as ds:
        ds.write(data, 1)
    return path, data


def test_int8_output_dtype(tmp_path):
    """``dtype='int8'`` (a documented input type) writes Int8 with the nodata kept exactly."""
    src, data = _int8_geotiff(tmp_path / "i8.tif")
    model = tiny_model(1, 2)
    for name, dtype in (("same.tif", "int8"), ("default.tif", None)):
        out = upscale_geotiff(src, tmp_path / name, model=model, dtype=dtype, tile=16)
        with rasterio.open(out) as ds:
            got = ds.read(1)
            assert ds.dtypes == ("int8",) and ds.nodata == -128
            assert (got == -128).sum() == 4 * (data == -128).sum()
            assert got[got != -128].min() >= -100 and got.max() <= 100
    f32 = upscale_geotiff(src, tmp_path / "f.tif", model=model, dtype="float32", tile=16)
    back = upscale_geotiff(f32, tmp_path / "back.tif", model=model, dtype="int8", tile=16)
    with rasterio.open(back) as ds:
        assert ds.dtypes == ("int8",) and ds.nodata == -128
    with pytest.raises(ConfigError, match=r"^dtype must be one of uint8, int8, .*got 'int7'"):
        upscale_geotiff(src, tmp_path / "x.tif", model=model, dtype="int7")


def test_band_meaning_tells_red_edge_from_red(tmp_path):
    descriptions = ["Red Edge", "B5 red-edge", "RE1", "RedEdge 2", "B4 Red", "near infrared"]
    # (colour interpretation RedEdge: GDAL 3.10 / rasterio 1.4.2 and later)
    last = "rededge" if "rededge" in ColorInterp.__members__ else "gray"
    src = make_geotiff(
        tmp_path / "ms.tif", width=20, height=20, count=7, dtype="uint16",
        descriptions=[*descriptions, None], colorinterp=["gray"] * 6 + [last],
    )  # fmt: skip
    with rasterio.open(src) as ds:
        meanings = [band_meaning(ds, i) for i in ds.indexes]
    assert meanings == ["rededge"] * 4 + ["red", "nir", None if last == "gray" else "rededge"]


def _run(argv):
    return main(["upscale", *map(str, argv), "--no-progress"])


def test_band_hint_names_every_band_of_each_colour(tmp_path, caplog):
    """``--bands 4,3,2`` of a blue, green, red, NIR file with the RGB model: the hint names
    blue (band 1, not selected) too."""
    src = make_geotiff(
        tmp_path / "in.tif", width=40, height=30, count=4, dtype="uint16",
        colorinterp=["blue", "green", "red", "undefined"],
        descriptions=["B2 blue", "B3 green", "B4 red", "B8 nir"],
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert _run([src, tmp_path / "o.tif", "--bands", "4,3,2"]) == 0
    assert "the selected bands are 4=nir, 3=red, 2=green" in caplog.text
    assert "(the file's red: 3, green: 2, blue: 1, e.g. --bands 3,2,1)" in caplog.text


def test_red_edge_band_is_not_fed_as_red(tmp_path, caplog):
    src = make_geotiff(
        tmp_path / "in.tif", width=40, height=30, count=5, dtype="uint16",
        descriptions=["Red Edge", "Green", "Blue", "Red", "Red"],
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert _run([src, tmp_path / "o.tif", "--bands", "1,2,3"]) == 0
    assert "the selected bands are 1=rededge, 2=green, 3=blue" in caplog.text
    assert "(the file's red: 4 or 5, green: 2, blue: 3, e.g. --bands 4,2,3)" in caplog.text


def test_the_cli_offers_every_output_dtype():
    from sr_domains.cli_upscale import DTYPES
    from sr_domains.geo.output_spec import OUTPUT_DTYPES

    assert set(DTYPES) == set(OUTPUT_DTYPES)
