"""Real sample GeoTIFFs from ../shared/data/geotiff (skipped when absent)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled  # noqa: E402

REAL = [
    # (file, scale, model input channels: 1 = applied band by band)
    ("RGB.byte.tif", 2, 3),
    ("rotated.tif", 4, 1),
    ("float_raster_with_nodata.tif", 3, 1),
    ("615.tif", 2, 5),
    ("rgb.tif", 2, 1),
]


@pytest.mark.parametrize(("name", "scale", "channels"), REAL)
def test_real_file(shared_data, tmp_path, name, scale, channels):
    src = shared_data / "geotiff" / name
    if not src.exists():
        pytest.skip(f"{src} is absent")
    dst = upscale_geotiff(
        src, tmp_path / f"x{scale}_{name}", scale=scale, model=tiny_model(channels, scale)
    )
    check_upscaled(src, dst, scale)
    with rasterio.open(src) as a, rasterio.open(dst) as d:
        assert d.colorinterp == a.colorinterp
        assert d.res == pytest.approx((a.res[0] / scale, a.res[1] / scale), rel=1e-12)
        if a.nodata is not None:  # the valid pixels are the upscaled valid pixels, no more
            n_valid_in = (a.read_masks() > 0).sum()
            n_valid_out = (d.read_masks() > 0).sum()
            assert n_valid_out == n_valid_in * scale * scale


def test_rotated_without_crs_warns(shared_data, tmp_path, caplog, capsys):
    src = shared_data / "geotiff" / "rotated.tif"
    if not src.exists():
        pytest.skip("rotated.tif is absent")
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        dst = upscale_geotiff(src, tmp_path / "r.tif", model=tiny_model(1, 2))
    assert "no CRS" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_domains"):  # info shows it, no warning
        assert main(["info", str(src)]) == 0
    assert "crs         none" in capsys.readouterr().out and caplog.text == ""
    with rasterio.open(src) as a, rasterio.open(dst) as d:
        assert d.crs is None
        assert d.transform.b == pytest.approx(a.transform.b / 2)  # rotation term scaled
        # the far corner of the last pixel is the same point in both rasters
        xy = rasterio.transform.xy
        far_a = xy(a.transform, a.height, a.width, offset="ul")
        far_d = xy(d.transform, d.height, d.width, offset="ul")
        assert far_d == pytest.approx(far_a, abs=1e-9)


def test_real_band_subset_reversed(shared_data, tmp_path):
    src = shared_data / "geotiff" / "RGB.byte.tif"
    if not src.exists():
        pytest.skip("RGB.byte.tif is absent")
    dst = upscale_geotiff(src, tmp_path / "bgr.tif", bands=[3, 2, 1], model=tiny_model(1, 2))
    check_upscaled(src, dst, 2, bands=[3, 2, 1])
    with rasterio.open(src) as a, rasterio.open(dst) as d:
        # nearest-equivalent check: the mean of each output band follows its source band
        means_in = [a.read(i, masked=True).mean() for i in (3, 2, 1)]
        means_out = [d.read(k, masked=True).mean() for k in (1, 2, 3)]
        assert np.allclose(means_in, means_out, rtol=0.25)
