"""``sr-domains info`` on a GeoTIFF shows what decodes its values (per-band scale and offset)
and the CRS of GCP-only georeferencing."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.control import GroundControlPoint  # noqa: E402
from rasterio.crs import CRS  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def test_info_shows_band_scales_and_offsets(tmp_path, capsys):
    path = make_geotiff(tmp_path / "l2.tif", width=16, height=12, count=2, dtype="uint16")
    with rasterio.open(path, "r+") as ds:
        ds.scales, ds.offsets = (2.75e-05, 1.0), (-0.2, 0.0)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "value = 2.75e-05 x stored + -0.2" in out and out.count("x stored") == 1
    assert main(["info", str(path), "--json"]) == 0
    bands = json.loads(capsys.readouterr().out)["bands"]
    assert [(b["scale"], b["offset"]) for b in bands] == [(2.75e-05, -0.2), (1.0, 0.0)]


def test_info_names_the_crs_of_gcps(tmp_path, capsys):
    path = tmp_path / "gcp.tif"
    gcps = [
        GroundControlPoint(row=r, col=c, x=10.0 + c / 100, y=45.0 - r / 100)
        for r, c in ((0, 0), (0, 15), (11, 0), (11, 15))
    ]
    with rasterio.open(
        path, "w", driver="GTiff", width=16, height=12, count=1, dtype="uint8"
    ) as ds:
        ds.gcps = (gcps, CRS.from_epsg(4326))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "EPSG:4326" in out and "(of the GCPs)" in out
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gcp_crs"] == "EPSG:4326"


def test_info_json_is_strict_with_a_nan_nodata(tmp_path, capsys):
    """A NaN nodata value is written as "nan" (as gdalinfo -json does), not as NaN, which
    strict JSON readers refuse."""
    path = make_geotiff(tmp_path / "f.tif", width=16, height=12, dtype="float32", nodata=np.nan)
    assert main(["info", str(path), "--json"]) == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    info = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert info["nodata"] == "nan"
