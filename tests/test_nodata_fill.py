"""The fill of invalid pixels before the network (sr_domains.nodata_fill)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sr_domains import metrics
from sr_domains.degrade import imresize
from sr_domains.inference import Upscaler
from sr_domains.intensity import IntensityProfile
from sr_domains.nodata_fill import FAR_WEIGHT, MARGIN, SIGMAS, WEIGHTS, fill_invalid
from sr_domains.pretrained import load_pretrained

IDENTITY = IntensityProfile("identity", (1.0,), (0.0,))


def _scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth band in [0, 1] (sum of random sinusoids)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    acc = np.zeros((h, w))
    for _ in range(6):
        f, a, ph = rng.uniform(0.02, 0.25, 2), rng.uniform(0.3, 1.0), rng.uniform(0, 6.3)
        acc += a * np.sin(f[0] * yy + f[1] * xx + ph)
    return ((acc - acc.min()) / (acc.max() - acc.min())).astype(np.float32)[None]


def _holes(h: int, w: int) -> np.ndarray:
    bad = np.zeros((h, w), bool)
    bad[:, w // 2 + 3 :] = True  # a nodata half-plane
    bad[10:22, 5:19] = True  # and a hole
    return bad


def test_fill_is_the_documented_normalized_convolution():
    """Against scipy's Gaussian filter (an independent implementation of the same formula)."""
    x = _scene(60, 70)
    bad = _holes(60, 70)
    far = 0.25
    got = fill_invalid(np.where(bad, np.nan, x), bad, far)  # NaN where invalid is fine
    num = den = 0.0
    for sigma, a in zip(SIGMAS, WEIGHTS):
        kw = {"sigma": sigma, "mode": "constant", "truncate": 3.0}
        num = num + a * ndimage.gaussian_filter(np.where(bad, 0.0, x[0]).astype(np.float64), **kw)
        den = den + a * ndimage.gaussian_filter((~bad).astype(np.float64), **kw)
    ref = (num + FAR_WEIGHT * far) / (den + FAR_WEIGHT)
    assert np.array_equal(got[0][~bad], x[0][~bad])  # valid pixels untouched
    np.testing.assert_allclose(got[0][bad], ref[bad], atol=1e-6)
    assert np.isfinite(got).all()


def test_fill_continues_the_data_at_its_edge_and_fades_to_far():
    ramp = np.tile(np.linspace(0.0, 1.0, 200, dtype=np.float32), (1, 40, 1))
    bad = np.zeros((40, 200), bool)
    bad[:, 100:] = True
    got = fill_invalid(ramp, bad, far=-5.0)[0]
    edge = ramp[0, 0, 99]
    # next to the edge: a value of the data's last few pixels (a weighted mean), no step
    assert np.all(got[:, 100] <= edge + 1e-6) and np.all(got[:, 100] >= ramp[0, 0, 92])
    # far from any data (> MARGIN): the far value
    assert np.allclose(got[:, 100 + MARGIN + 1 :], -5.0)
    # a band without valid pixels is all far; valid pixels are never changed
    two = np.concatenate([ramp, ramp])
    both = np.stack([bad, np.ones_like(bad)])
    out = fill_invalid(two, both, far=np.array([0.0, 0.7], np.float32))
    assert np.all(out[1] == np.float32(0.7)) and np.array_equal(out[0][~bad], ramp[0][~bad])


@pytest.mark.parametrize("window", [(0, 0, 30, 40), (17, 33, 25, 31), (45, 50, 15, 20)])
def test_a_window_read_with_the_margin_gets_the_whole_image_fill_bit_for_bit(window):
    x = np.concatenate([_scene(60, 70, 1), _scene(60, 70, 2)])
    bad = _holes(60, 70)
    whole = fill_invalid(x, bad, np.array([0.3, 0.6]))
    y0, x0, h, w = window
    ey0, ex0 = max(y0 - MARGIN, 0), max(x0 - MARGIN, 0)
    ey1, ex1 = min(y0 + h + MARGIN, 60), min(x0 + w + MARGIN, 70)
    part = fill_invalid(x[:, ey0:ey1, ex0:ex1], bad[ey0:ey1, ex0:ex1], np.array([0.3, 0.6]))
    got = part[:, y0 - ey0 : y0 - ey0 + h, x0 - ex0 : x0 - ex0 + w]
    assert np.array_equal(got, whole[:, y0 : y0 + h, x0 : x0 + w])


def _edge_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-image's camera (a real photo, centre 192 x 192), x2 bicubic LR whose right half
    is nodata."""
    data = pytest.importorskip("skimage.data")
    img = data.camera().astype(np.float32) / 255
    h, w = img.shape
    hr = np.ascontiguousarray(img[None, h // 2 - 96 : h // 2 + 96, w // 2 - 96 : w // 2 + 96])
    lr = imresize(hr, 0.5)
    ok = np.ones(lr.shape[-2:], bool)
    ok[:, 48:] = False
    return hr, lr, ok


@pytest.mark.parametrize("tile", [64, 72])
def test_tiled_runs_equal_the_whole_image_next_to_nodata(tile):
    """The fill depends on the pixels within MARGIN only: windows of any size agree (to float
    rounding, as tiling does everywhere); a window-local fill is off by ~1e-5 here."""
    net = load_pretrained("sr-lite-gray-x2")
    _, lr, _ = _edge_case()
    ok = np.ones(lr.shape[-2:], bool)
    ok[20:70, 30:70] = False
    ok[:, 90:] = False
    ok[80:, :] = False
    lr_bad = np.where(ok, lr, np.float32(-9999.0))
    whole = Upscaler(net, tile=512).upscale(lr_bad, profile=IDENTITY, valid_mask=ok)
    tiled = Upscaler(net, tile=tile).upscale(lr_bad, profile=IDENTITY, valid_mask=ok)
    m = ok.repeat(2, 0).repeat(2, 1)
    np.testing.assert_allclose(tiled[0][m], whole[0][m], rtol=0, atol=1e-6)


def test_valid_pixels_next_to_nodata_are_as_good_as_inside():
    """A constant fill puts a step at the data's edge that the network sharpens into the valid
    pixels beside it; the local fill does not (shipped default model, a smooth scene)."""
    net = load_pretrained("sr-lite-gray-x2")
    hr, lr, ok = _edge_case()
    up = Upscaler(net, tile=512)
    sr = up.upscale(np.where(ok, lr, np.float32(np.nan)), profile=IDENTITY, valid_mask=ok)
    mean_filled = np.where(ok, lr, lr[:, ok].mean()).astype(np.float32)
    old = up.upscale(mean_filled, profile=IDENTITY)
    bic = imresize(lr, 2.0)
    edge = np.zeros(hr.shape, bool)
    edge[:, 8:-8, 88:96] = True  # the 4 LR columns of valid data next to nodata
    inner = np.zeros(hr.shape, bool)
    inner[:, 8:-8, 8:80] = True  # away from it

    def psnr(a: np.ndarray, m: np.ndarray) -> float:
        return metrics.psnr(a, hr, data_range=1.0, mask=m)

    assert psnr(sr, edge) > psnr(old, edge) + 1.0  # the step fill loses at the edge
    assert psnr(sr, edge) > psnr(bic, edge)  # bicubic here even saw the real data beyond
    assert psnr(sr, inner) > psnr(bic, inner)


def test_dask_chunks_agree_with_the_whole_array_next_to_nodata(tmp_path):
    """A lazy xarray run whose chunk borders cross nodata gives the whole-array values."""
    rioxarray = pytest.importorskip("rioxarray")
    pytest.importorskip("dask.array")
    from sr_domains.testing.geo import make_geotiff
    from sr_domains.xarray import upscale

    src = make_geotiff(tmp_path / "n.tif", width=96, height=80, dtype="float32", nodata=-1.0)
    net = load_pretrained("sr-lite-gray-x2")
    whole = upscale(rioxarray.open_rasterio(src), 2, model=net)
    lazy = upscale(rioxarray.open_rasterio(src, chunks={"x": 40, "y": 36}), 2, model=net)
    a, b = whole.values, lazy.values
    ok = a != -1.0
    assert 0.5 < ok.mean() < 0.95 and np.array_equal(ok, b != -1.0)
    np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=1e-6)


def test_the_default_far_value_is_each_bands_valid_mean():
    x = np.concatenate([_scene(60, 70, 4), _scene(60, 70, 5)])
    bad = _holes(60, 70)
    means = [x[b][~bad].mean() for b in range(2)]
    assert np.array_equal(fill_invalid(x, bad), fill_invalid(x, bad, np.array(means)))
