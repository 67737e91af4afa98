"""GeoTIFF inputs: GDAL types numpy has no name for are refused in one line, and the alpha
band keeps its description, unit and tags."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.transform import Affine  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.models import tiny_model  # noqa: E402


def _complex(path, dtype: str):
    profile = {"driver": "GTiff", "width": 32, "height": 32, "count": 1, "dtype": dtype}
    profile.update(crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4000000))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 32, 32), np.complex64))
    return path


@pytest.mark.parametrize("dtype", ["complex_int16", "complex64"])
def test_complex_rasters_are_refused_in_one_line(tmp_path, capsys, dtype):
    """CInt16 ended in ``TypeError: data type 'complex_int16' not understood`` (numpy has no
    such type), in upscale and in --dry-run."""
    src = _complex(tmp_path / f"{dtype}.tif", dtype)
    with pytest.raises(InputFileError, match=f"data type {dtype} is not supported"):
        upscale_geotiff(src, tmp_path / "out.tif", model=tiny_model())
    for extra in ([], ["--dry-run"]):
        assert main(["upscale", str(src), str(tmp_path / "o.tif"), "-q", *extra]) == 1
        err = capsys.readouterr()
        text = err.out + err.err
        assert f"data type {dtype} is not supported" in text and "Traceback" not in text
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("cog", [False, True])
def test_alpha_band_keeps_its_description_unit_and_tags(tmp_path, cog):
    src = make_geotiff(
        tmp_path / "rgba.tif",
        width=64,
        height=48,
        count=3,
        mask="alpha",
        colorinterp=["red", "green", "blue"],
        descriptions=["r", "g", "b"],
    )
    with rasterio.open(src, "r+") as ds:
        ds.set_band_description(4, "alpha")
        ds.set_band_unit(4, "opacity")
        ds.update_tags(4, ROLE="opacity", STATISTICS_MEAN="200")
        ds.update_tags(4, ns="EXTRA", SOURCE="scanner")
    out = upscale_geotiff(src, tmp_path / "x2.tif", model=tiny_model(in_channels=3), cog=cog)
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("r", "g", "b", "alpha")
        assert ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha
        assert ds.units[3] == "opacity"
        assert ds.tags(4) == {"ROLE": "opacity"}  # (stale statistics dropped, as elsewhere)
        if not cog:  # (GDAL's COG copy keeps band tags or other domains: sr_domains.geo.cog)
            assert ds.tags(4, ns="EXTRA") == {"SOURCE": "scanner"}
        assert ds.read(4).max() == 255 and ds.read(4).min() == 0  # still the alpha


def test_gray_alpha_band_keeps_its_metadata(tmp_path):
    src = make_geotiff(tmp_path / "ga.tif", width=48, height=48, count=1, mask="alpha")
    with rasterio.open(src, "r+") as ds:
        ds.set_band_description(1, "gray")
        ds.set_band_description(2, "coverage")
        ds.update_tags(2, ROLE="opacity")
    out = upscale_geotiff(src, tmp_path / "x2.tif", model=tiny_model(in_channels=1))
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("gray", "coverage") and ds.tags(2) == {"ROLE": "opacity"}
