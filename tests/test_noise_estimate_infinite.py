"""+-inf pixels are invalid pixels to the blind estimates (sr_domains.adapt.estimate) and the
noise gate, as NaN is: they neither switch the noise estimate off (an inf in the block means
spread over the gradient, whose quantile was NaN: nothing selected, noise 0) nor print numpy
RuntimeWarnings. Readings with inf equal those with NaN at the same pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sr_domains.adapt import estimate as est
from sr_domains.noise_gate import input_noise

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

ESTIMATORS = [
    est.estimate_noise,
    est.estimate_white_noise,
    est.spectral_floor,
    est.estimate_psf_sigma,
    est.estimate_degradation,
]


def _noisy_scene(size: int, sigma: float = 0.02, seed: int = 0) -> np.ndarray:
    """``(1, size, size)`` smooth normalized scene with an edge, plus white noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.4 + 0.3 * np.sin(5 * xx) * np.cos(3 * yy) + 0.2 * (xx > 0.5)
    noise = sigma * np.random.default_rng(seed).standard_normal((size, size))
    return (img + noise)[None].astype(np.float32)


def _with(img: np.ndarray, plus: float, minus: float) -> np.ndarray:
    """``img`` with a +``plus`` run, a ``minus`` row and a ``plus`` pixel (the probe's)."""
    out = img.copy()
    out[:, 5, 5:] = plus
    out[:, 9, :] = minus
    out[:, 20, 20] = plus
    return out


@pytest.mark.parametrize("size", [40, 96])  # cycle spinning under 64 px, one grid above
@pytest.mark.parametrize("fn", ESTIMATORS, ids=lambda f: f.__name__)
def test_estimators_read_inf_as_nan(size, fn):
    img = _noisy_scene(size)
    assert fn(_with(img, np.inf, -np.inf)) == fn(_with(img, np.nan, np.nan))


@pytest.mark.parametrize("size", [40, 96])
def test_inf_does_not_switch_the_noise_estimate_off(size):
    img = _noisy_scene(size)
    clean = est.estimate_white_noise(img)
    assert clean == pytest.approx(0.02, rel=0.2)
    inf = _with(img, np.inf, -np.inf)
    assert est.estimate_noise(inf) == pytest.approx(est.estimate_noise(img), rel=0.1)
    assert est.estimate_white_noise(inf) == pytest.approx(clean, rel=0.1)
    assert input_noise([inf]) == pytest.approx(clean, rel=0.1)
    all_inf = np.full_like(img, np.inf)  # nothing valid: no noise, no warning
    assert est.estimate_white_noise(all_inf) == 0.0 and est.spectral_floor(all_inf) is None
    assert est.estimate_psf_sigma(all_inf) == (0.0, 0)


def test_a_band_of_inf_is_skipped_like_a_band_of_nan():
    img = np.concatenate([_noisy_scene(80), _noisy_scene(80, seed=1)])
    inf, nan = img.copy(), img.copy()
    inf[1] = -np.inf
    nan[1] = np.nan
    for fn in ESTIMATORS:
        assert fn(inf) == fn(nan)


def test_adapt_estimate_reads_inf_as_nan():
    """--adapt fills invalid pixels with the mean before it estimates: a guard (it held
    before the estimators learnt to skip inf)."""
    from sr_domains.adapt import adapt_model
    from sr_domains.options import AdaptOptions
    from sr_domains.testing import tiny_model

    img = _noisy_scene(64)
    opts = AdaptOptions(steps=1, batch_size=2, patch=32)
    reports = [
        adapt_model(tiny_model(), [_with(img, p, m)], opts, device="cpu")[1]
        for p, m in ((np.inf, -np.inf), (np.nan, np.nan))
    ]
    assert reports[0].estimate == reports[1].estimate
    assert reports[0].estimate is not None and reports[0].estimate.noise > 0.01


def _nifti_noise(path, out) -> dict:
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti

    img = nib.load(upscale_nifti(path, out))
    prov = json.loads(next(e for e in img.header.extensions if e.get_code() == 6).get_content())
    return prov["noise"]


@pytest.mark.parametrize("size", [36, 64])
def test_nifti_gate_reads_the_same_noise_with_inf_columns(tmp_path, size):
    """The probe: a noisy float32 volume read noise 0.0177, weight 1; with ``[5, 5, :] = +inf``
    and ``[6, 6, :] = -inf`` it read noise 0.0, weight 0 (the plain weights on a noisy image)."""
    nib = pytest.importorskip("nibabel")
    vol = np.stack(
        [_noisy_scene(size, 0.01, seed=k)[0] * 800 + 100 for k in range(5)], axis=-1
    ).astype(np.float32)
    inf = vol.copy()
    inf[5, 5, :] = np.inf
    inf[6, 6, :] = -np.inf
    for name, v in (("plain", vol), ("inf", inf)):
        nib.save(nib.Nifti1Image(v, np.diag([0.9, 0.9, 3.0, 1.0])), tmp_path / f"{name}.nii")
    plain = _nifti_noise(tmp_path / "plain.nii", tmp_path / "plain_o.nii")
    with_inf = _nifti_noise(tmp_path / "inf.nii", tmp_path / "inf_o.nii")
    assert plain["noise_sigma"] > 0.005
    assert with_inf["noise_sigma"] == pytest.approx(plain["noise_sigma"], rel=0.05)
    assert with_inf["weight"] == pytest.approx(plain["weight"], abs=0.1)


@pytest.mark.parametrize("size", [40, 96])
def test_geotiff_gate_reads_the_same_noise_with_inf_pixels(tmp_path, size):
    """The GeoTIFF gate sample marks non-finite pixels NaN (noise_gate.gate_sample): a guard
    (it held before the estimators learnt to skip inf)."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    base = _noisy_scene(size, 0.01) * 1000.0
    reads = {}
    inf = base.copy()
    inf[:, 5, 5] = inf[:, 20, 30] = np.inf  # the probe's pixels, and one more
    inf[:, 6, 6] = -np.inf
    for name, v in (("plain", base), ("inf", inf)):
        src = make_geotiff(tmp_path / f"{name}.tif", width=size, height=size, dtype="float32")
        with rasterio.open(src, "r+") as ds:
            ds.write(v)
        out = upscale_geotiff(src, tmp_path / f"{name}_o.tif", scale=2)
        with rasterio.open(out) as ds:
            reads[name] = json.loads(ds.tags()["SR_DOMAINS_NOISE"])
    assert reads["plain"]["noise_sigma"] > 0.005
    assert reads["inf"]["noise_sigma"] == pytest.approx(reads["plain"]["noise_sigma"], rel=0.05)
    assert reads["inf"]["weight"] == pytest.approx(reads["plain"]["weight"], abs=0.1)
