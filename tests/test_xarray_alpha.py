"""The xarray API and an alpha band: rioxarray reads an RGBA raster's alpha as a band of data;
a DataArray holding it is refused (naming the file and the band) instead of coming back with
invented opacities, and the data bands masked with it are upscaled with their footprint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask")
rioxarray = pytest.importorskip("rioxarray")
rasterio = pytest.importorskip("rasterio")

import sr_domains  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.xarray import upscale  # noqa: E402


@pytest.fixture(scope="module")
def gray() -> sr_domains.SRModel:
    return sr_domains.load_pretrained("sr-lite-gray-x2")


def _raster(path, alpha: bool) -> None:
    """A 4-band uint8 UTM raster: RGB + alpha (top 10 rows transparent), or RGB + NIR."""
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    a = rng.integers(20, 200, (4, 40, 48), dtype=np.uint8)
    a[3] = 255
    a[3, :10] = 0
    extra = {"photometric": "RGB", "alpha": "YES"} if alpha else {"photometric": "MINISBLACK"}
    with rasterio.open(
        path, "w", driver="GTiff", width=48, height=40, count=4, dtype="uint8",
        crs="EPSG:32633", transform=from_origin(500_000, 4_000_000, 10, 10), **extra,
    ) as dst:  # fmt: skip
        dst.write(a)


@pytest.mark.parametrize(
    "pick",
    [
        lambda da: da,
        lambda da: da.sel(band=4),
        lambda da: da.isel(band=[3, 0]),
        lambda da: da.transpose("y", "x", "band"),
    ],
    ids=["all", "alpha-alone", "alpha-first", "bands-last"],
)
def test_a_dataarray_holding_the_alpha_band_is_refused(tmp_path, gray, pick):
    _raster(tmp_path / "rgba.tif", alpha=True)
    for chunks in (None, {"x": 24}):
        da = rioxarray.open_rasterio(tmp_path / "rgba.tif", chunks=chunks)
        with pytest.raises(InputFileError, match=r"rgba\.tif: band 4 is its alpha band") as exc:
            upscale(pick(da), scale=2, model=gray)
        assert "where(" in str(exc.value)  # says how to mask with it


def test_the_data_bands_masked_with_the_alpha_band_are_upscaled(tmp_path, gray):
    _raster(tmp_path / "rgba.tif", alpha=True)
    da = rioxarray.open_rasterio(tmp_path / "rgba.tif")
    out = upscale(da.sel(band=[1, 2, 3]).where(da.sel(band=4) > 0), scale=2, model=gray)
    assert out.shape == (3, 80, 96)
    assert np.isnan(out.values[:, :20]).all()  # the transparent rows' footprint
    assert np.isfinite(out.values[:, 20:]).all()
    # a data band alone, where the alpha hides nothing (the whole band holds the transparent
    # rows as data: refused, tests/test_xarray_stride.py)
    assert upscale(da.sel(band=1).isel(y=slice(10, None)), scale=2, model=gray).shape == (60, 96)


def test_a_fourth_band_of_data_and_an_array_not_read_from_a_file_are_not_refused(tmp_path, gray):
    _raster(tmp_path / "rgbn.tif", alpha=False)
    da = rioxarray.open_rasterio(tmp_path / "rgbn.tif")
    assert upscale(da, scale=2, model=gray).shape == (4, 80, 96)
    _raster(tmp_path / "rgba.tif", alpha=True)
    held = rioxarray.open_rasterio(tmp_path / "rgba.tif").load()
    held.encoding = {}  # (built in memory: no file to ask)
    assert upscale(held, scale=2, model=gray).shape == (4, 80, 96)
