"""``--adapt`` with a PSF estimate that is no finding (``rings`` 0): it is never read as
"sharp", and the estimator does not trust a fit that only sees its window's leakage."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from _scenes import fractal

from sr_domains.adapt import AdaptOptions, adapt_model, estimate_degradation
from sr_domains.adapt.input_adapt import CLEAN_NOISE, SHARP_SIGMA
from sr_domains.models import create_model
from sr_domains.psf import gaussian_area_downsample

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def blurred(sigma: float, noise: float, n: int = 64, seed: int = 0) -> np.ndarray:
    """The scene blurred by a Gaussian of ``sigma`` px (FFT, periodic), plus white noise."""
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    otf = np.exp(-2.0 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    img = np.real(np.fft.ifft2(np.fft.fft2(fractal(n, seed)) * otf))
    img += noise * np.random.default_rng(seed + 1).standard_normal((n, n))
    return img[None].astype(np.float32)


def _untrusted_clean() -> np.ndarray:
    """A strongly blurred (8 px), nearly clean input whose PSF fit is untrusted with a
    fallback of 0 px: before the fix, "as sharp and clean as the training data"."""
    x = blurred(8.0, 0.001)
    est = estimate_degradation(x)
    assert est.rings == 0 and est.psf_sigma < SHARP_SIGMA and est.noise < CLEAN_NOISE, est
    return x


def test_an_untrusted_estimate_is_not_taken_for_sharp(caplog):
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    with caplog.at_level(logging.WARNING, logger="sr_domains.adapt"):
        net, report = adapt_model(model, [_untrusted_clean()], AdaptOptions(steps=2))
    assert net is model and report.kept == "original" and report.fit == {}
    assert "sharp" not in report.reason
    assert "could not be estimated" in report.reason and "--adapt-psf" in report.reason
    assert report.degradation.startswith("bicubic (assumed")
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["estimate"]["rings"] == 0 and d["reason"] == report.reason
    assert any("could not be estimated" in r.getMessage() for r in caplog.records)


def test_an_untrusted_estimate_adapts_with_the_assumed_degradation(caplog):
    """A given noise level (or a noisy input) is something to adapt to: the pairs are then
    made with MATLAB bicubic, not with the untrusted fit's 0 px, and the report says so."""
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    opts = AdaptOptions(steps=2, noise=0.002, batch_size=4, patch=32)
    with caplog.at_level(logging.WARNING, logger="sr_domains.adapt"):
        _, report = adapt_model(model, [_untrusted_clean()], opts, device="cpu")
    assert report.fit["steps"] == 2 and not report.reason
    assert report.degradation == "bicubic (assumed: the PSF estimate is untrusted, rings 0)"
    assert "assumed" in report.describe()
    assert any("untrusted" in r.getMessage() for r in caplog.records)
    # a trusted estimate still drives the pairs
    _, trusted = adapt_model(model, [blurred(0.9, 0.002, n=128)], opts, device="cpu")
    assert trusted.estimate is not None and trusted.estimate.rings > 0
    assert trusted.degradation.startswith("gaussian sigma=")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_blur_too_wide_for_the_fit_band_is_not_read_as_sharp(seed):
    """Blurred by 3 px, noise-free: the rings at the top of the band hold only the Hann
    window's leakage (a power law steeper than any scene's); the fit read 0.46-0.54 px,
    trusted."""
    lr = gaussian_area_downsample(fractal(512, seed)[None].astype(np.float32), 2, 3.0)
    est = estimate_degradation(lr)
    assert est.rings == 0 or abs(est.psf_sigma - 3.0) < 0.5, est
    # the widths the fit does see are still trusted and right
    est = estimate_degradation(gaussian_area_downsample(fractal(512, seed)[None], 2, 1.0))
    assert est.rings > 0 and abs(est.psf_sigma - 1.0) < 0.2, est


def test_a_blurred_photo_is_not_read_as_sharp():
    data = pytest.importorskip("skimage.data")
    ndimage = pytest.importorskip("scipy.ndimage")
    photo = data.camera().astype(np.float64) / 255.0
    est = estimate_degradation(ndimage.gaussian_filter(photo, 3.0).astype(np.float32))
    assert est.rings == 0 or abs(est.psf_sigma - 3.0) < 0.5, est  # was 0.32 px, trusted


rasterio = pytest.importorskip("rasterio")


def test_geotiff_provenance_of_an_untrusted_estimate(tmp_path):
    from rasterio.transform import Affine

    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.models import tiny_model

    src = tmp_path / "blurred.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 1, "dtype": "float32"}
    profile.update(crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4000000))
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(_untrusted_clean())
    out = upscale_geotiff(src, tmp_path / "x2.tif", model=tiny_model(), adapt=AdaptOptions(steps=5))
    with rasterio.open(out) as ds:
        report = json.loads(ds.tags()["SR_DOMAINS_ADAPT"])
    assert report["estimate"]["rings"] == 0 and report["kept"] == "original"
    assert "sharp" not in report["reason"] and "could not be estimated" in report["reason"]
