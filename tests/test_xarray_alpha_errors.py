"""The xarray mask and alpha checks accept an array unchecked only when its source file cannot
be read (gone, moved, unreadable), logged at DEBUG; any other failure inside a check is raised,
never taken for an accepted array (a swallowed error once let an R,G,B,NIR,alpha array through
in a full-suite run). Real GeoTIFFs read with ``rioxarray.open_rasterio``."""

from __future__ import annotations

import logging

import numpy as np
import pytest

rioxarray = pytest.importorskip("rioxarray")

from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.xarray_alpha import check_mask_read, check_no_alpha  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def _rgbna(tmp_path):
    """R,G,B,NIR + alpha (GDAL does not read it as the mask), read with ``masked=True``: the
    data bands."""
    path = make_geotiff(tmp_path / "rgbna.tif", count=4, mask="alpha", width=32, height=24)
    return path, rioxarray.open_rasterio(path, masked=True).sel(band=[1, 2, 3, 4])


def test_the_alpha_check_refuses_the_array(tmp_path):
    _, da = _rgbna(tmp_path)
    with pytest.raises(InputFileError, match=r"rgbna\.tif: band 5 is its alpha band"):
        check_mask_read(da, "y", "x", da.values, np.isnan)


def test_a_failure_inside_the_check_is_raised_not_an_acceptance(tmp_path):
    _, da = _rgbna(tmp_path)

    def broken(v: np.ndarray) -> np.ndarray:
        raise ValueError("broken nodata test")

    with pytest.raises(ValueError, match="broken nodata test"):
        check_mask_read(da, "y", "x", da.values, broken)


def test_a_source_gone_meanwhile_is_not_checked_and_logged_at_debug(tmp_path, caplog):
    path, da = _rgbna(tmp_path)
    da = da.load()
    path.unlink()
    with caplog.at_level(logging.DEBUG, logger="sr_domains.xarray_alpha"):
        check_no_alpha(da, "band", 4)
        check_mask_read(da, "y", "x", da.values, np.isnan)
    assert "mask and alpha of" in caplog.text and "rgbna.tif" in caplog.text
