"""A VRT input of a batch with one source missing now still has its other sources' files
checked, a nested VRT's included: ``vin/c.vrt`` reading a missing tile and ``sub/inner.vrt``,
which reads ``../ov/a.tif`` (a user's raster), while ``vin/a.tif`` is written to ``ov/a.tif``.
Only the files ``c.vrt`` named itself were checked then, and the user's raster was replaced
with ``--overwrite``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rasterio")

from sr_domains.errors import UnsafeOutputError
from sr_domains.geo import upscale_many as geo_many
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff


def _vrt(path: Path, *sources: str) -> None:
    """A one-band 24 x 20 VRT reading ``sources`` (relative to its folder), side by side."""
    simple = "".join(
        "<SimpleSource>"
        f'<SourceFilename relativeToVRT="1">{s}</SourceFilename><SourceBand>1</SourceBand>'
        f'<DstRect xOff="{12 * i}" yOff="0" xSize="12" ySize="20"/></SimpleSource>'
        for i, s in enumerate(sources)
    )
    path.write_text(
        '<VRTDataset rasterXSize="24" rasterYSize="20">'
        "<GeoTransform>500000, 10, 0, 4000000, 0, -10</GeoTransform>"
        f'<VRTRasterBand dataType="Byte" band="1">{simple}</VRTRasterBand></VRTDataset>'
    )


def test_a_nested_vrts_source_is_checked_when_another_source_is_missing(tmp_path):
    vin, out, sub = tmp_path / "vin", tmp_path / "ov", tmp_path / "sub"
    for d in (vin, out, sub):
        d.mkdir()
    make_geotiff(vin / "a.tif", width=24, height=20, seed=1)  # task: vin/a.tif -> ov/a.tif
    make_geotiff(out / "a.tif", width=24, height=20, seed=2)  # the user's raster
    _vrt(sub / "inner.vrt", "../ov/a.tif")  # (not an input of the batch)
    _vrt(vin / "c.vrt", "missing.tif", "../sub/inner.vrt")
    mine = (out / "a.tif").read_bytes()
    with pytest.raises(UnsafeOutputError, match="would replace") as err:
        geo_many(vin, out, model=tiny_model(1, 2), overwrite=True)
    assert str(vin / "c.vrt") in str(err.value)
    assert (out / "a.tif").read_bytes() == mine
