"""+-inf as a float raster's nodata: accepted (GeoTIFF, CLI, dry run, ``upscale_array``,
xarray) and invalid all along: exactly its ``s x s`` footprint is nodata, nothing is
interpolated into it or from it, the mask says invalid. Under ``--nodata nan`` the file's own
inf stays invalid: NaN there, not +inf kept as data (real rasterio files, real torch)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from sr_domains import upscale_array

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

S = 2
MODEL = "sr-lite-gray-x2"


def _up(mask: np.ndarray) -> np.ndarray:
    return mask.repeat(S, axis=-2).repeat(S, axis=-1)


def _raster(tmp_path: Path, nodata: float) -> Path:
    """A float32 file whose nodata is ``nodata`` (a collar of it, declared as the nodata)."""
    return make_geotiff(
        tmp_path / "in.tif", width=48, height=40, dtype="float32", nodata=nodata, seed=3
    )


def _invalid_exactly(out: np.ndarray, mask: np.ndarray, src: np.ndarray, hole: np.ndarray):
    """``hole`` (the output's nodata test) holds exactly over the input's nodata footprint,
    the mask says invalid there and only there, and every other pixel is finite."""
    bad = _up(~np.isfinite(src))
    assert bad.any() and not bad.all()
    np.testing.assert_array_equal(hole, bad)
    np.testing.assert_array_equal(mask == 0, bad)
    assert np.isfinite(out[~bad]).all()
    fin = src[np.isfinite(src)]
    assert out[~bad].min() >= fin.min() and out[~bad].max() <= fin.max()


@pytest.mark.parametrize("nodata", [np.inf, -np.inf])
def test_an_inf_nodata_geotiff_is_upscaled_with_its_nodata_invalid(tmp_path, nodata):
    src = _raster(tmp_path, nodata)
    dst = upscale_geotiff(src, tmp_path / "out.tif", model=MODEL)
    with rasterio.open(src) as ds:
        a = ds.read(1)
    with rasterio.open(dst) as ds:
        assert ds.nodata == nodata
        out, mask = ds.read(1), ds.read_masks(1)
    _invalid_exactly(out, mask, a, out == nodata)


def test_the_cli_and_dry_run_take_an_inf_nodata(tmp_path, capsys):
    src = _raster(tmp_path, np.inf)
    dst = tmp_path / "o.tif"
    assert main(["upscale", str(src), str(dst), "--dry-run"]) == 0
    assert re.search(r"-> \S+o\.tif \[would write\]", capsys.readouterr().out)
    assert main(["upscale", "-q", str(src), str(dst), "--no-progress"]) == 0
    with rasterio.open(dst) as ds:
        assert ds.nodata == np.inf


def test_nodata_nan_keeps_the_files_own_inf_nodata_invalid(tmp_path, capsys):
    """``--nodata nan``: the file's own inf stays invalid, so its pixels come out NaN and
    masked, as a -9999 nodata's do (they came back as +inf, valid in the mask)."""
    src = _raster(tmp_path, np.inf)
    dst = tmp_path / "o.tif"
    assert main(["upscale", "-q", str(src), str(dst), "--nodata", "nan", "--no-progress"]) == 0
    with rasterio.open(src) as ds:
        a = ds.read(1)
    with rasterio.open(dst) as ds:
        assert np.isnan(ds.nodata)
        out, mask = ds.read(1), ds.read_masks(1)
    assert not np.isinf(out).any()
    _invalid_exactly(out, mask, a, np.isnan(out))


def test_upscale_array_takes_an_inf_nodata(caplog):
    a = (np.random.default_rng(4).random((1, 24, 28)) * 0.6 + 0.2).astype("float32")
    a[0, 3:7, 5:9] = np.inf
    with caplog.at_level(logging.WARNING):
        out, mask = upscale_array(a, MODEL, nodata=np.inf, return_mask=True)
    assert "equal nodata" not in caplog.text  # (inf pixels are never valid data)
    _invalid_exactly(out[0], mask[0].astype(np.uint8), a[0], np.isposinf(out[0]))


@pytest.mark.parametrize("chunked", [False, True])
def test_xarray_override_keeps_its_own_inf_nodata_invalid(chunked):
    pytest.importorskip("rioxarray")
    xr = pytest.importorskip("xarray")
    if chunked:
        pytest.importorskip("dask")
    from affine import Affine

    from sr_domains.xarray import upscale

    a = (np.random.default_rng(5).random((40, 48)) * 0.6 + 0.2).astype("float32")
    a[5:9, 6:12] = np.inf
    da = xr.DataArray(a, dims=("y", "x")).rio.write_crs("EPSG:32633")
    da = da.rio.write_transform(Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0))
    da = da.rio.write_nodata(np.inf)
    if chunked:
        da = da.chunk({"y": 20, "x": 24})
    out = np.asarray(upscale(da, S, model=MODEL).values)
    ok = ~_up(np.isinf(a))
    _invalid_exactly(out, ok.astype(np.uint8) * 255, a, np.isposinf(out))
    out = np.asarray(upscale(da, S, model=MODEL, nodata=np.nan).values)
    assert not np.isinf(out).any()
    _invalid_exactly(out, ok.astype(np.uint8) * 255, a, np.isnan(out))
