"""Metrics: PSNR/SSIM parity with scikit-image, masks, Y channel, 3-D SSIM, SAM, ERGAS, ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sr_domains import metrics as mt
from sr_domains.errors import ConfigError
from sr_domains.intensity import resolve_recipe

WANG = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


@pytest.fixture(scope="module")
def gray_pair() -> tuple[np.ndarray, np.ndarray]:
    a = data.camera()[120:200, 200:290].astype(np.float64)
    rng = np.random.default_rng(0)
    return a, np.clip(a + rng.normal(0, 12, a.shape), 0, 255)


@pytest.fixture(scope="module")
def rgb_pair() -> tuple[np.ndarray, np.ndarray]:
    a = data.astronaut()[100:160, 150:230].astype(np.float64).transpose(2, 0, 1)
    rng = np.random.default_rng(1)
    return a, np.clip(a + rng.normal(0, 10, a.shape), 0, 255)


def test_psnr_equals_skimage(gray_pair, rgb_pair):
    for a, b in (gray_pair, rgb_pair):
        assert mt.psnr(b, a, data_range=255) == pytest.approx(
            peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10
        )
    u16 = (gray_pair[0] * 200).astype(np.uint16)
    v16 = (gray_pair[1] * 200).astype(np.uint16)
    rng = mt.data_range_for(u16.dtype)
    assert mt.psnr(v16, u16, data_range=rng) == pytest.approx(
        peak_signal_noise_ratio(u16, v16, data_range=rng), abs=1e-10
    )
    assert mt.psnr(gray_pair[0], gray_pair[0], data_range=255) == math.inf
    t = mt.psnr(torch.from_numpy(gray_pair[1]), torch.from_numpy(gray_pair[0]), data_range=255)
    assert t == pytest.approx(mt.psnr(gray_pair[1], gray_pair[0], data_range=255))


def test_psnr_mask_and_crop(rgb_pair):
    a, b = rgb_pair
    mask = np.zeros(a.shape[1:], bool)
    mask[10:40, 5:60] = True
    got = mt.psnr(b, a, data_range=255, mask=mask)  # (H, W) mask for all channels
    want = peak_signal_noise_ratio(a[:, mask], b[:, mask], data_range=255)
    assert got == pytest.approx(want, abs=1e-10)
    b2 = b.copy()
    b2[:, ~mask] = 0.0  # garbage outside the mask does not count
    assert mt.psnr(b2, a, data_range=255, mask=mask) == pytest.approx(got, abs=1e-12)
    crop = mt.psnr(b, a, data_range=255, crop_border=4)
    assert crop == pytest.approx(
        peak_signal_noise_ratio(a[:, 4:-4, 4:-4], b[:, 4:-4, 4:-4], data_range=255), abs=1e-10
    )
    vol_a = np.concatenate([a, a[::-1], a])[:, :20, :20]  # (9, 20, 20) volume
    vol_b = np.concatenate([b, b[::-1], b])[:, :20, :20]
    assert mt.psnr(vol_b, vol_a, data_range=255, crop_border=2, volumetric=True) == pytest.approx(
        peak_signal_noise_ratio(vol_a[2:-2, 2:-2, 2:-2], vol_b[2:-2, 2:-2, 2:-2], data_range=255)
    )
    with pytest.raises(ConfigError, match="no valid"):
        mt.psnr(b, a, data_range=255, mask=np.zeros(a.shape[1:], bool))
    with pytest.raises(ConfigError, match="broadcast"):
        mt.psnr(b, a, data_range=255, mask=np.ones((3, 3), bool))


def test_psnr_bad_inputs():
    a = np.zeros((8, 8))
    with pytest.raises(ConfigError, match="shapes"):
        mt.psnr(a, np.zeros((8, 9)), data_range=1.0)
    with pytest.raises(ConfigError, match="data_range"):
        mt.psnr(a, a + 1, data_range=0.0)
    with pytest.raises(ConfigError, match="crop_border"):
        mt.psnr(a, a + 1, data_range=1.0, crop_border=4)


def test_rgb_to_y_matches_matlab_rgb2ycbcr():
    px = np.array([[0, 255, 255, 0, 0], [0, 255, 0, 255, 0], [0, 255, 0, 0, 255]], float)
    y = mt.rgb_to_y(px[:, None, :], 255.0)[0]
    # MATLAB rgb2ycbcr: Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1]
    np.testing.assert_allclose(y, [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    np.testing.assert_allclose(mt.rgb_to_y(px[:, None, :] / 255.0, 1.0)[0], y / 255.0)
    hwc = np.moveaxis(px[:, None, :], 0, -1)
    np.testing.assert_allclose(mt.rgb_to_y(hwc, 255.0, channel_axis=-1)[0], y)
    with pytest.raises(ConfigError, match="3 RGB"):
        mt.rgb_to_y(np.zeros((4, 2, 2)), 1.0)


def test_y_channel_psnr_and_ssim(rgb_pair):
    a, b = rgb_pair
    ya, yb = mt.rgb_to_y(a, 255), mt.rgb_to_y(b, 255)
    assert mt.psnr(b, a, data_range=255, y_channel=True, crop_border=3) == pytest.approx(
        peak_signal_noise_ratio(ya[3:-3, 3:-3], yb[3:-3, 3:-3], data_range=255), abs=1e-10
    )
    assert mt.ssim(b, a, data_range=255, y_channel=True) == pytest.approx(
        structural_similarity(ya, yb, data_range=255, **WANG), abs=1e-9
    )


def test_ssim_equals_skimage_gray(gray_pair):
    a, b = gray_pair
    assert mt.ssim(b, a, data_range=255) == pytest.approx(
        structural_similarity(a, b, data_range=255, **WANG), abs=1e-9
    )
    assert mt.ssim(b, a, data_range=255, gaussian=False) == pytest.approx(
        structural_similarity(a, b, data_range=255), abs=1e-9
    )
    assert mt.ssim(b, a, data_range=255, gaussian=False, win_size=11) == pytest.approx(
        structural_similarity(a, b, data_range=255, win_size=11), abs=1e-9
    )
    assert mt.ssim(b, a, data_range=255, sigma=1.0) == pytest.approx(
        structural_similarity(a, b, data_range=255, **{**WANG, "sigma": 1.0}), abs=1e-9
    )
    f32a, f32b = a.astype(np.float32) / 255, b.astype(np.float32) / 255
    assert mt.ssim(f32b, f32a, data_range=1.0) == pytest.approx(
        structural_similarity(f32a, f32b, data_range=1.0, **WANG), abs=1e-5
    )
    assert mt.ssim(a, a, data_range=255) == pytest.approx(1.0, abs=1e-12)


def test_ssim_equals_skimage_multichannel_and_3d(rgb_pair):
    a, b = rgb_pair
    assert mt.ssim(b, a, data_range=255) == pytest.approx(
        structural_similarity(a, b, data_range=255, channel_axis=0, **WANG), abs=1e-9
    )
    hwc_a, hwc_b = np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1)
    assert mt.ssim(hwc_b, hwc_a, data_range=255, channel_axis=-1) == pytest.approx(
        structural_similarity(hwc_a, hwc_b, data_range=255, channel_axis=-1, **WANG), abs=1e-9
    )
    crop = mt.ssim(hwc_b, hwc_a, data_range=255, channel_axis=-1, crop_border=4)
    assert crop == pytest.approx(mt.ssim(b[:, 4:-4, 4:-4], a[:, 4:-4, 4:-4], data_range=255))
    y_hwc = mt.ssim(hwc_b, hwc_a, data_range=255, channel_axis=-1, y_channel=True)
    assert y_hwc == pytest.approx(mt.ssim(b, a, data_range=255, y_channel=True), abs=1e-12)
    rng = np.random.default_rng(2)
    z = np.linspace(0, 1, 18)[:, None, None]
    vol = np.sin(6 * z) + np.cos(np.linspace(0, 5, 20))[None, :, None] * np.linspace(0, 1, 22)
    noisy = vol + rng.normal(0, 0.1, vol.shape)
    want = structural_similarity(vol, noisy, data_range=2.0, channel_axis=None, **WANG)
    assert mt.ssim(noisy, vol, data_range=2.0, volumetric=True) == pytest.approx(want, abs=1e-9)
    # 3-D windows differ from averaging 2-D slices
    per_slice = np.mean([mt.ssim(noisy[i], vol[i], data_range=2.0) for i in range(0, 18)])
    assert abs(per_slice - want) > 1e-4
    two = np.stack([vol, vol * 0.5])
    two_noisy = np.stack([noisy, noisy * 0.5])
    want2 = structural_similarity(two, two_noisy, data_range=2.0, channel_axis=0, **WANG)
    assert mt.ssim(two_noisy, two, data_range=2.0, volumetric=True) == pytest.approx(want2)


def test_ssim_mask_is_mean_over_fully_valid_windows(gray_pair):
    a, b = gray_pair
    mask = np.ones(a.shape, bool)
    mask[30:50, 40:70] = False
    _, s_map = structural_similarity(a, b, data_range=255, full=True, **WANG)
    valid = ndimage.minimum_filter(mask.astype(np.uint8), size=11, mode="constant", cval=0) == 1
    got = mt.ssim(b, a, data_range=255, mask=mask)
    assert got == pytest.approx(s_map[valid].mean(), abs=1e-9)
    b2 = b.copy()
    b2[~mask] = 0.0  # invalid pixels do not enter any counted window
    assert mt.ssim(b2, a, data_range=255, mask=mask) == pytest.approx(got, abs=1e-12)
    full = mt.ssim(b, a, data_range=255, mask=np.ones(a.shape, bool))
    assert full == pytest.approx(mt.ssim(b, a, data_range=255), abs=1e-15)
    sparse = np.zeros(a.shape, bool)
    sparse[::2] = True
    with pytest.raises(ConfigError, match="fully valid window"):
        mt.ssim(b, a, data_range=255, mask=sparse)


def test_ssim_bad_inputs(gray_pair):
    a, b = gray_pair
    with pytest.raises(ConfigError, match="odd"):
        mt.ssim(b, a, data_range=255, gaussian=False, win_size=8)
    with pytest.raises(ConfigError, match="exceeds"):
        mt.ssim(b[:6, :6], a[:6, :6], data_range=255)
    with pytest.raises(ConfigError, match="volumetric"):
        mt.ssim(np.zeros((3, 16, 16)), np.zeros((3, 16, 16)), data_range=1, channel_axis=None)
    with pytest.raises(ConfigError, match="data_range"):
        mt.ssim(b, a, data_range=-1.0)


def test_data_range_for():
    assert mt.data_range_for(np.uint8) == 255
    assert mt.data_range_for("uint16") == 65535
    assert mt.data_range_for(np.dtype("int16")) == 65535
    assert mt.data_range_for(np.zeros(3, np.uint8)) == 255
    assert mt.data_range_for(torch.uint8) == 255
    assert mt.data_range_for(np.float32, default=1.0) == 1.0
    for bad in (np.float32, "float64", torch.float32, None):
        with pytest.raises(ConfigError, match="data_range"):
            mt.data_range_for(bad)
    assert mt.data_range_for(resolve_recipe("dtype").fit(dtype=np.uint16)) == pytest.approx(65535)
    assert mt.data_range_for(resolve_recipe("range:-1000,3000").fit()) == pytest.approx(4000)
    assert mt.data_range_for(resolve_recipe("reflectance").fit()) == pytest.approx(10000)
    bands = np.stack([np.linspace(0, 100, 50), np.linspace(0, 400, 50)])
    prof = resolve_recipe("percentile:0,100").fit(bands)
    with pytest.raises(ConfigError, match="band"):
        mt.data_range_for(prof)
    assert mt.data_range_for(prof, band=1) == pytest.approx(400)
    with pytest.raises(ConfigError, match="out of range"):
        mt.data_range_for(prof, band=5)


def test_sam_known_angles():
    angles = np.deg2rad(np.array([[0.0, 10.0], [30.0, 60.0]]))
    target = np.zeros((3, 2, 2))
    target[0] = 2.0  # along x, any length
    pred = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)]) * 5.0
    assert mt.sam(pred, target) == pytest.approx(25.0, abs=1e-9)
    assert mt.sam(target, target) == pytest.approx(0.0, abs=1e-6)
    mask = np.array([[False, True], [True, False]])
    assert mt.sam(pred, target, mask=mask) == pytest.approx(20.0, abs=1e-9)
    full_mask = np.broadcast_to(mask, pred.shape).copy()
    full_mask[1, 0, 1] = False  # one band invalid -> the pixel is excluded
    assert mt.sam(pred, target, mask=full_mask) == pytest.approx(30.0, abs=1e-9)
    opposite = mt.sam(-target, target)
    assert opposite == pytest.approx(180.0, abs=1e-6)


def test_sam_of_identical_spectra_is_exactly_zero_and_small_angles_are_accurate():
    """arccos of a cosine rounded just below 1 gave identical spectra 2.3e-7 degrees."""
    rng = np.random.default_rng(0)
    t = rng.uniform(0.1, 1.0, (4, 16, 16)).astype(np.float32)
    assert mt.sam(t, t) == 0.0 and mt.sam(t * 3.0, t) == pytest.approx(0.0, abs=1e-5)
    small = np.deg2rad(1e-4)  # an angle arccos cannot resolve in float64
    target = np.stack([np.ones((2, 2)), np.zeros((2, 2))])
    pred = np.stack([np.full((2, 2), np.cos(small)), np.full((2, 2), np.sin(small))])
    assert mt.sam(pred, target) == pytest.approx(1e-4, rel=1e-6)
    zero = np.zeros((3, 2, 2))
    assert mt.sam(zero, t[:3, :2, :2]) == pytest.approx(90.0)  # (documented)


def test_ergas_hand_case():
    target = np.stack([np.full((4, 4), 10.0), np.full((4, 4), 20.0)])
    pred = target.copy()
    pred[0] += 1.0  # RMSE 1 on mean 10
    pred[1] -= 4.0  # RMSE 4 on mean 20
    # 100/4 * sqrt(((1/10)^2 + (4/20)^2) / 2) = 25 * sqrt(0.025)
    assert mt.ergas(pred, target, scale=4) == pytest.approx(25 * math.sqrt(0.025), rel=1e-12)
    assert mt.ergas(target, target, scale=2) == 0.0
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    pred[:, 2:] = 1e6  # outside the mask
    assert mt.ergas(pred, target, scale=4, mask=mask) == pytest.approx(25 * math.sqrt(0.025))
    with pytest.raises(ConfigError, match="zero mean"):
        mt.ergas(pred, np.zeros_like(target), scale=4)
    with pytest.raises(ConfigError, match="scale"):
        mt.ergas(pred, target, scale=0)


def test_a_missing_data_range_and_a_spatial_mask_with_channels_last():
    """data_range=None failed inside the arithmetic (TypeError); an (H, W) mask on an
    (H, W, C) image with channel_axis=-1 was refused though it applies to every channel."""
    a = np.zeros((16, 16))
    for fn in (mt.psnr, mt.ssim):
        with pytest.raises(ConfigError, match="data_range is needed"):
            fn(a, a + 0.1, data_range=None)
    rng = np.random.default_rng(0)
    x = rng.random((24, 24, 3))
    y = x + 0.05 * rng.random((24, 24, 3))
    mask = np.ones((24, 24), bool)
    mask[:8] = False
    got = mt.ssim(y, x, data_range=1.0, channel_axis=-1, mask=mask)
    full = mt.ssim(y, x, data_range=1.0, channel_axis=-1, mask=np.repeat(mask[..., None], 3, -1))
    assert got == pytest.approx(full)
    assert got != pytest.approx(mt.ssim(y, x, data_range=1.0, channel_axis=-1))
