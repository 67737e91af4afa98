"""Alpha bands in any layout: alpha 0 marks invalid input pixels whatever the band count (GDAL
reads alpha as the mask only in 2- and 4-band files), and the output keeps a mask that GDAL
readers see, with alpha in the output type's scale."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402
from rasterio.enums import ColorInterp, MaskFlags  # noqa: E402

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.split import upscale_geotiff_split  # noqa: E402
from sr_domains.geo.writer import alpha_as  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled  # noqa: E402

H = W = 40


def _data(count: int, dtype: str, under: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth bands with ``under`` written where alpha is 0 (a bottom-left block)."""
    y, x = np.mgrid[0:H, 0:W]
    hi = 200 if dtype == "uint8" else 9000
    d = np.array(
        [np.round(hi / 2 + hi / 3 * np.sin(x / 5 + k) * np.cos(y / 7)) for k in range(count)]
    ).astype(dtype)
    hole = np.zeros((H, W), bool)
    hole[25:, :12] = True
    d[:, hole] = under
    return d, hole


def _write(path, data: np.ndarray, hole: np.ndarray, ci: list[ColorInterp]):
    opaque = np.iinfo(data.dtype).max
    alpha = np.where(hole, 0, opaque).astype(data.dtype)[None]
    profile = dict(
        driver="GTiff",
        width=W,
        height=H,
        count=data.shape[0] + 1,
        dtype=data.dtype.name,
        crs="EPSG:32633",
        transform=Affine(10, 0, 500000, 0, -10, 4000000),
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.concatenate([data, alpha]))
        ds.colorinterp = [*ci, ColorInterp.alpha]
    return path


FIVE = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]


def test_alpha_in_a_five_band_file_marks_invalid_pixels(tmp_path):
    """R,G,B,NIR,alpha (an ODM/Pix4D orthophoto): GDAL derives no mask from this alpha, the
    run still must: the valid output does not depend on what lies under alpha 0, the pixels
    there are written as 0, and the output has a mask GDAL reads."""
    model = tiny_model(4, 2)
    outs = []
    for name, under in (("g", 60000), ("h", 1234)):
        data, hole = _data(4, "uint16", under)
        src = _write(tmp_path / f"{name}.tif", data, hole, FIVE)
        with rasterio.open(src) as a:
            assert a.mask_flag_enums[0] == [MaskFlags.all_valid]  # GDAL ignores this alpha
        outs.append(upscale_geotiff(src, tmp_path / f"{name}_x2.tif", model=model))
    check_upscaled(tmp_path / "g.tif", outs[0], 2)
    hole_up = hole.repeat(2, 0).repeat(2, 1)
    with rasterio.open(outs[0]) as g, rasterio.open(outs[1]) as h:
        assert g.count == 5 and g.colorinterp[4] == ColorInterp.alpha
        a, b = g.read(), h.read()
        assert np.array_equal(a, b)  # nothing under alpha 0 leaks into valid pixels
        assert (a[:4, hole_up] == 0).all()
        np.testing.assert_array_equal(g.dataset_mask() == 0, hole_up)


def test_selected_bands_of_rgba_keep_a_mask_gdal_reads(tmp_path):
    """``bands=[1, 2]`` of RGBA gives R,G,alpha: GDAL would not read that alpha as a mask,
    so the output also holds an internal mask of the invalid pixels."""
    data, hole = _data(3, "uint8", 0)
    src = _write(tmp_path / "rgba.tif", data, hole, FIVE[:3])
    out = upscale_geotiff(src, tmp_path / "sel.tif", bands=[1, 2], model=tiny_model(2, 2))
    check_upscaled(src, out, 2, bands=[1, 2])
    with rasterio.open(out) as d:
        assert d.count == 3 and d.colorinterp[2] == ColorInterp.alpha
        want = hole.repeat(2, 0).repeat(2, 1)
        for b in (1, 2):
            np.testing.assert_array_equal(d.read_masks(b) == 0, want)


def test_rgba_output_keeps_alpha_as_its_only_mask(tmp_path):
    """A 4-band RGBA output: GDAL reads the alpha as the mask; no extra mask is added."""
    data, hole = _data(3, "uint8", 0)
    src = _write(tmp_path / "rgba.tif", data, hole, FIVE[:3])
    out = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(3, 2))
    with rasterio.open(out) as d:
        assert MaskFlags.alpha in d.mask_flag_enums[0]
        np.testing.assert_array_equal(d.dataset_mask() == 0, hole.repeat(2, 0).repeat(2, 1))


def test_alpha_is_rescaled_to_the_output_type(tmp_path):
    """uint8 RGBA written as uint16: opaque becomes 65535 (GDAL would read a copied 255 as
    0.4 % opacity) and the mask GDAL derives equals the input's."""
    data, hole = _data(3, "uint8", 0)
    src = _write(tmp_path / "rgba.tif", data, hole, FIVE[:3])
    out = upscale_geotiff(src, tmp_path / "u16.tif", model=tiny_model(3, 2), dtype="uint16")
    with rasterio.open(out) as d:
        want = hole.repeat(2, 0).repeat(2, 1)
        np.testing.assert_array_equal(d.read(4), np.where(want, 0, 65535))
        np.testing.assert_array_equal(d.dataset_mask() == 0, want)


@pytest.mark.parametrize(
    ("src", "dst", "want"),
    [("uint8", "uint16", [0, 32896, 65535]), ("uint16", "uint8", [0, 128, 255])],
)
def test_alpha_as_maps_transparent_and_opaque(src, dst, want):
    top = np.iinfo(src).max
    a = np.array([0, (top + 1) // 2, top], src)
    assert alpha_as(a, np.dtype(dst)).tolist() == want


def test_split_run_writes_the_same_alpha_mask(tmp_path, dask_client):
    """The split run (row bands across Dask workers) assembles the same mask."""
    data, hole = _data(4, "uint16", 777)
    src = _write(tmp_path / "five.tif", data, hole, FIVE)
    model = tiny_model(4, 2)
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=model)
    out = upscale_geotiff_split(
        src, tmp_path / "split.tif", client=dask_client, options=UpscaleOptions(), model=model
    )
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        assert np.array_equal(a.read(), b.read())
        assert np.array_equal(a.read_masks(), b.read_masks())
