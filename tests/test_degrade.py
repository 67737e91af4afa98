"""Degradation models: MATLAB bicubic, Wald MTF blur, k-space truncation, slice profiles, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_domains import degrade as dg
from sr_domains.config import from_dict
from sr_domains.errors import ConfigError


def _matlab_imresize_1d_reference(x: np.ndarray, out_len: int, scale: float, aa: bool):
    """Independent MATLAB ``imresize`` along the last axis: 1-based formulas, explicit
    symmetric padding (no index folding), one output pixel at a time."""

    def cubic(t):
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    pad = 64
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="symmetric")
    width = 4 / scale if (scale < 1 and aa) else 4
    out = np.zeros((*x.shape[:-1], out_len))
    for k1 in range(1, out_len + 1):  # MATLAB's 1-based output index
        u = k1 / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        js = [left + p for p in range(math.ceil(width) + 2)]
        if scale < 1 and aa:
            ws = [scale * cubic(scale * (u - j)) for j in js]
        else:
            ws = [cubic(u - j) for j in js]
        tot = sum(ws)
        acc = 0.0
        for j, w in zip(js, ws):
            acc = acc + w / tot * xp[..., j - 1 + pad]
        out[..., k1 - 1] = acc
    return out


def _reference_resize(x, out_hw, scales, aa):
    y = _matlab_imresize_1d_reference(x, out_hw[1], scales[1], aa)
    y = np.swapaxes(
        _matlab_imresize_1d_reference(np.swapaxes(y, -1, -2), out_hw[0], scales[0], aa), -1, -2
    )
    return y


@pytest.mark.parametrize(
    ("scale", "antialias"),
    [(0.5, True), (1 / 3, True), (0.25, True), (0.6, True), (2.0, True), (0.5, False)],
)
def test_imresize_matches_independent_matlab_reference(scale, antialias):
    rng = np.random.default_rng(1)
    x = rng.random((2, 13, 17)).astype(np.float32)
    y = dg.imresize(x, scale, antialias=antialias)
    out = (math.ceil(13 * scale - 1e-9), math.ceil(17 * scale - 1e-9))
    assert y.shape == (2, *out)
    ref = _reference_resize(x.astype(np.float64), out, (scale, scale), antialias)
    np.testing.assert_allclose(y, ref, atol=2e-6)


def test_imresize_size_argument_uses_per_axis_ratio():
    x = np.random.default_rng(2).random((12, 20)).astype(np.float32)
    y = dg.imresize(x, size=(5, 8))
    ref = _reference_resize(x.astype(np.float64), (5, 8), (5 / 12, 8 / 20), True)
    assert y.shape == (5, 8)
    np.testing.assert_allclose(y, ref, atol=2e-6)


def test_bicubic_x2_impulse_gives_hand_derived_weights():
    # antialiased x2 kernel h(d) = cubic(d/2)/2 at d = +-0.5, +-1.5, +-2.5, +-3.5:
    # cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625, cubic(1.25) = -0.0703125,
    # cubic(1.75) = -0.0234375; they sum to 1 per side, so the normalized weights are these / 2.
    x = torch.zeros(8, 32)
    x[:, 10] = 1.0
    y = dg.bicubic_downsample(x, 2)
    expected = {3: -0.0234375 / 2, 4: 0.2265625 / 2, 5: 0.8671875 / 2, 6: -0.0703125 / 2, 7: 0.0}
    for k, v in expected.items():
        assert y[3, k].item() == pytest.approx(v, abs=1e-7)
    assert y[3].sum().item() == pytest.approx(0.5, abs=1e-6)  # each HR pixel feeds 1/s of its mass


@pytest.mark.parametrize("s", [2, 3, 4])
@pytest.mark.parametrize(
    "fn",
    [
        dg.bicubic_downsample,
        dg.wald_downsample,
        lambda x, s: dg.slice_profile_downsample(x, s, -1),
        lambda x, s: dg.slice_profile_downsample(x, s, -1, profile="box"),
    ],
    ids=["bicubic", "wald", "slice-gauss", "slice-box"],
)
def test_downsampling_is_centred_on_lr_pixel_centres(fn, s):
    n = 12 * s
    ramp = torch.arange(n, dtype=torch.float32) * 0.5 + 3.0
    x = ramp.expand(2, 3, n, n).contiguous()
    y = fn(x, s)
    centres = (torch.arange(n // s) * s + (s - 1) / 2) * 0.5 + 3.0
    # symmetric kernels reproduce a linear ramp exactly away from the borders
    torch.testing.assert_close(
        y[..., 4:-4], centres[4:-4].expand_as(y[..., 4:-4]), atol=1e-4, rtol=0
    )
    if fn in (dg.bicubic_downsample, dg.wald_downsample):  # along H as well
        yt = fn(x.transpose(-1, -2).contiguous(), s)
        torch.testing.assert_close(yt.transpose(-1, -2), y, atol=1e-5, rtol=0)


def test_constant_is_preserved_everywhere():
    x = torch.full((1, 2, 24, 36), 0.7)
    for y in (
        dg.bicubic_downsample(x, 3),
        dg.imresize(x, 0.37),
        dg.imresize(x, 1.7),
        dg.wald_downsample(x, 4, (0.2, 0.45)),
        dg.kspace_truncate(x, 2),
        dg.slice_profile_downsample(x, 3, 3, fwhm=5.0),
    ):
        torch.testing.assert_close(y, torch.full_like(y, 0.7), atol=1e-5, rtol=0)


def test_layouts_and_numpy_tensor_parity():
    rng = np.random.default_rng(3)
    x = rng.random((2, 3, 16, 24)).astype(np.float32)
    for fn in (
        lambda a: dg.bicubic_downsample(a, 4),
        lambda a: dg.wald_downsample(a, 2, (0.2, 0.3, 0.4)),
        lambda a: dg.kspace_truncate(a, 4),
    ):
        out_np = fn(x)
        out_t = fn(torch.from_numpy(x))
        assert isinstance(out_np, np.ndarray)
        assert out_np.dtype == np.float32
        assert isinstance(out_t, torch.Tensor)
        np.testing.assert_allclose(out_np, out_t.numpy(), atol=1e-6)
        np.testing.assert_allclose(fn(x[1]), out_np[1], atol=1e-5)  # (C, H, W)
    gray = x[0, 0]
    np.testing.assert_allclose(
        dg.bicubic_downsample(gray, 2), dg.bicubic_downsample(x, 2)[0, 0], atol=1e-6
    )
    np.testing.assert_allclose(
        dg.wald_downsample(gray, 2), dg.wald_downsample(x, 2)[0, 0], atol=1e-6
    )
    u8 = (x[0] * 255).astype(np.uint8)
    assert dg.bicubic_downsample(u8, 2).dtype == np.float32
    x_before = x.copy()
    dg.degrade(torch.from_numpy(x), 2, dg.DegradationConfig(gaussian_noise=0.1))
    np.testing.assert_array_equal(x, x_before)  # input never modified


def test_gaussian_sigma_for_mtf():
    for s, m in [(2, 0.3), (4, 0.3), (3, 0.15)]:
        sigma = dg.gaussian_sigma_for_mtf(s, m)
        f = 1 / (2 * s)
        assert math.exp(-2 * math.pi**2 * sigma**2 * f**2) == pytest.approx(m, rel=1e-12)
    assert dg.gaussian_sigma_for_mtf(4) == pytest.approx(
        4 / math.pi * math.sqrt(-2 * math.log(0.3))
    )
    with pytest.raises(ConfigError):
        dg.gaussian_sigma_for_mtf(2, 1.2)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_wald_response_at_lr_nyquist_equals_mtf_per_band(s):
    # HR cosine at the LR Nyquist frequency, phased so it peaks on the LR centres:
    # the blurred-and-decimated LR is mtf_b * (-1)^k.
    n = 16 * s
    j = np.arange(n)
    f = 1 / (2 * s)
    cosine = np.cos(2 * np.pi * f * (j - (s - 1) / 2))
    x = np.broadcast_to(cosine, (3, n, n)).astype(np.float32)
    mtf = (0.2, 0.3, 0.5)
    y = dg.wald_downsample(x, s, mtf)
    sign = (-1.0) ** np.arange(n // s)
    for b, m in enumerate(mtf):
        np.testing.assert_allclose(y[b, 5, 4:-4], m * sign[4:-4], atol=2e-3)
    # a frequency well below Nyquist follows the Gaussian MTF too
    f2 = 0.6 * f
    x2 = np.broadcast_to(np.cos(2 * np.pi * f2 * j), (1, n, n)).astype(np.float32)
    y2 = dg.wald_downsample(x2, s, 0.3)[0, 5]
    sigma = dg.gaussian_sigma_for_mtf(s, 0.3)
    amp = math.exp(-2 * math.pi**2 * sigma**2 * f2**2)
    lr_c = np.arange(n // s) * s + (s - 1) / 2
    np.testing.assert_allclose(y2[4:-4], amp * np.cos(2 * np.pi * f2 * lr_c)[4:-4], atol=2e-3)


def test_wald_band_count_mismatch_is_an_error():
    with pytest.raises(ConfigError, match="band"):
        dg.wald_downsample(torch.zeros(1, 3, 8, 8), 2, (0.3, 0.2))


@pytest.mark.parametrize(("s", "n"), [(2, 24), (3, 24), (4, 32), (2, 20)])
def test_kspace_truncation_keeps_exact_band_at_lr_centres(s, n):
    m = n // s
    j = np.arange(n)
    f_in = m // 2 - 1  # strictly inside the kept band
    f_out = m // 2 + 1  # strictly outside
    sig = (
        0.5 + np.cos(2 * np.pi * f_in * j / n + 0.3) + 0.7 * np.cos(2 * np.pi * f_out * j / n + 1.1)
    )
    x = np.add.outer(sig, np.cos(2 * np.pi * 1 * j / n))  # separable 2-D image
    y = dg.kspace_truncate(x.astype(np.float32), s)
    c = np.arange(m) * s + (s - 1) / 2
    expected = np.add.outer(0.5 + np.cos(2 * np.pi * f_in * c / n + 0.3), np.cos(2 * np.pi * c / n))
    assert y.shape == (m, m)
    np.testing.assert_allclose(y, expected, atol=2e-5)
    assert y.mean() == pytest.approx(x.mean(), abs=1e-5)


@pytest.mark.parametrize("s", [2, 3])
def test_kspace_lr_spectrum_is_the_hr_spectrum_in_band(s):
    rng = np.random.default_rng(4)
    n = 12 * s
    x = rng.random((n, n))
    y = dg.kspace_truncate(x, s, dims=(-1,))  # 1-D along rows
    m = n // s
    fx = np.fft.fft(x, axis=-1)
    fy = np.fft.fft(y.astype(np.float64), axis=-1)
    f = np.fft.fftfreq(m, 1 / m).astype(int)  # centred LR frequencies
    ramp = np.exp(2j * np.pi * f * ((s - 1) / 2) / n) / s
    want = fx[:, f % n] * ramp
    nyq = f == -m // 2 if m % 2 == 0 else np.zeros(m, bool)
    np.testing.assert_allclose(fy[:, ~nyq], want[:, ~nyq], atol=1e-4)
    if nyq.any():  # the even-size Nyquist bin: real part only (shared by +-M/2)
        np.testing.assert_allclose(fy[:, nyq], want[:, nyq].real, atol=1e-4)
    # complex input keeps every bin, Nyquist included
    yc = dg.kspace_truncate(x.astype(np.complex64), s, dims=(-1,))
    assert np.iscomplexobj(yc)
    np.testing.assert_allclose(np.fft.fft(yc.astype(np.complex128), axis=-1), want, atol=1e-4)


def test_kspace_errors():
    with pytest.raises(ConfigError, match="divisible"):
        dg.kspace_truncate(np.zeros((10, 12)), 4)
    with pytest.raises(ConfigError, match="dims"):
        dg.kspace_truncate(np.zeros((8, 8)), 2, dims=(-1, 1))


def test_slice_profile_box_is_mean_of_slices_and_dims():
    rng = np.random.default_rng(5)
    v = rng.random((2, 12, 5, 6)).astype(np.float32)
    y = dg.slice_profile_downsample(v, 3, 1, profile="box")
    np.testing.assert_allclose(y, v.reshape(2, 4, 3, 5, 6).mean(axis=2), atol=1e-6)
    y_last = dg.slice_profile_downsample(np.moveaxis(v, 1, -1), 3, -1, profile="box")
    np.testing.assert_allclose(np.moveaxis(y_last, -1, 1), y, atol=1e-6)
    assert dg.slice_profile_downsample(v, 4, 1).shape == (2, 3, 5, 6)
    with pytest.raises(ConfigError, match="volume"):
        dg.slice_profile_downsample(v[0, 0], 2, 0)
    with pytest.raises(ConfigError, match="profile"):
        dg.slice_profile_downsample(v, 2, 1, profile="sinc")  # type: ignore[arg-type]


def test_slice_profile_thicker_slices_blur_more():
    n = 48
    z = np.arange(n)
    wave = np.cos(2 * np.pi * z / 12.0)
    vol = np.broadcast_to(wave[:, None, None], (n, 4, 4)).astype(np.float32)
    amp = [
        np.abs(dg.slice_profile_downsample(vol, 2, 0, fwhm=w)[4:-4, 0, 0]).max()
        for w in (2.0, 4.0, 8.0)
    ]
    assert amp[0] > amp[1] > amp[2]
    # a Gaussian slice profile of FWHM w attenuates by exp(-2 pi^2 sigma^2 f^2), centred
    sigma = 4.0 / (2 * math.sqrt(2 * math.log(2)))
    att = math.exp(-2 * math.pi**2 * sigma**2 / 144.0)
    centres = np.arange(n // 2) * 2 + 0.5
    y = dg.slice_profile_downsample(vol, 2, 0, fwhm=4.0)[:, 1, 2]
    np.testing.assert_allclose(y[4:-4], att * np.cos(2 * np.pi * centres / 12.0)[4:-4], atol=2e-3)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_statistics_per_band_and_determinism():
    x = torch.full((2, 3, 64, 64), 0.5)
    y = dg.add_gaussian_noise(x, (0.01, 0.05, 0.1), _gen())
    for b, sg in enumerate((0.01, 0.05, 0.1)):
        noise = y[:, b] - 0.5
        assert noise.std().item() == pytest.approx(sg, rel=0.05)
        assert abs(noise.mean().item()) < 4 * sg / math.sqrt(noise.numel())
    torch.testing.assert_close(dg.add_gaussian_noise(x, (0.01, 0.05, 0.1), _gen()), y)
    assert not torch.equal(dg.add_gaussian_noise(x, (0.01, 0.05, 0.1), _gen(1)), y)
    with pytest.raises(ConfigError):
        dg.add_gaussian_noise(x, -0.1)
    y_np = dg.add_gaussian_noise(x.numpy(), 0.05, _gen())
    assert isinstance(y_np, np.ndarray)
    np.testing.assert_allclose(y_np, dg.add_gaussian_noise(x, 0.05, _gen()).numpy())


def test_poisson_noise_statistics():
    levels = torch.tensor([0.05, 0.2, 0.8]).reshape(3, 1, 1)
    x = levels.expand(3, 128, 128).contiguous()
    peak = 200.0
    y = dg.add_poisson_noise(x, peak, _gen())
    for b in range(3):
        lam = levels[b].item()
        assert y[b].mean().item() == pytest.approx(lam, rel=0.03)
        assert y[b].var().item() == pytest.approx(lam / peak, rel=0.1)
        counts = y[b] * peak
        torch.testing.assert_close(counts, counts.round(), atol=1e-3, rtol=0)  # integer photons
    torch.testing.assert_close(dg.add_poisson_noise(x, peak, _gen()), y)
    with pytest.raises(ConfigError):
        dg.add_poisson_noise(x, 0.0)


def test_rician_noise_statistics():
    sigma = 0.1
    x = torch.zeros(1, 2, 128, 128)
    x[:, 1] = 0.5
    y = dg.add_rician_noise(x, sigma, _gen())
    assert (y >= 0).all()
    # zero signal -> Rayleigh: mean sigma sqrt(pi/2); always E[M^2] = A^2 + 2 sigma^2
    assert y[:, 0].mean().item() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.03)
    assert (y[:, 1] ** 2).mean().item() == pytest.approx(0.25 + 2 * sigma**2, rel=0.03)
    torch.testing.assert_close(dg.add_rician_noise(x, sigma, _gen()), y)


def test_degradation_config_yaml_and_validation():
    cfg = from_dict(
        dg.DegradationConfig, {"kind": "wald", "mtf_nyquist": [0.25, 0.3], "gaussian_noise": 0.01}
    )
    assert cfg.mtf_nyquist == (0.25, 0.3)
    assert cfg.kind == "wald"
    assert dg.DegradationConfig() == from_dict(dg.DegradationConfig, {})
    with pytest.raises(ConfigError, match="unknown"):
        from_dict(dg.DegradationConfig, {"knd": "wald"})
    for bad in (
        {"kind": "nearest"},
        {"mtf_nyquist": [1.5]},
        {"mtf_nyquist": []},
        {"gaussian_noise": -1.0},
        {"poisson_peak": -2.0},
        {"noise_prob": 1.5},
    ):
        with pytest.raises(ConfigError):
            from_dict(dg.DegradationConfig, bad)


@pytest.mark.parametrize("kind", ["bicubic", "wald", "kspace"])
def test_degrade_matches_building_blocks(kind):
    hr = torch.rand(2, 3, 24, 24)
    cfg = dg.DegradationConfig(kind=kind, mtf_nyquist=(0.2, 0.3, 0.4))
    lr = dg.degrade(hr, 3, cfg)
    assert lr.shape == (2, 3, 8, 8)
    assert lr.dtype == torch.float32
    direct = {
        "bicubic": lambda: dg.bicubic_downsample(hr, 3),
        "wald": lambda: dg.wald_downsample(hr, 3, (0.2, 0.3, 0.4)),
        "kspace": lambda: dg.kspace_truncate(hr, 3),
    }[kind]()
    torch.testing.assert_close(lr, direct)


def test_degrade_noise_determinism_and_probability():
    hr = torch.rand(64, 1, 8, 8)
    cfg = dg.DegradationConfig(gaussian_noise=0.05, poisson_peak=100.0, noise_prob=0.5)
    a = dg.degrade(hr, 2, cfg, _gen(7))
    torch.testing.assert_close(dg.degrade(hr, 2, cfg, _gen(7)), a)
    clean = dg.bicubic_downsample(hr, 2)
    untouched = (a == clean).flatten(1).all(1)
    assert 10 < int(untouched.sum()) < 54  # about half the samples stay clean
    none = dg.degrade(hr, 2, dg.DegradationConfig(gaussian_noise=0.05, noise_prob=0.0), _gen())
    torch.testing.assert_close(none, clean)
    rician = dg.degrade(hr, 2, dg.DegradationConfig(kind="kspace", rician_noise=0.05), _gen())
    assert (rician >= 0).all()


def test_degrade_rejects_bad_shapes():
    cfg = dg.DegradationConfig()
    with pytest.raises(ConfigError, match="divisible"):
        dg.degrade(torch.rand(1, 1, 10, 12), 4, cfg)
    with pytest.raises(ConfigError, match="N, C, H, W"):
        dg.degrade(torch.rand(1, 8, 8), 2, cfg)
    with pytest.raises(ConfigError, match="scale"):
        dg.degrade(torch.rand(1, 1, 8, 8), 0, cfg)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    hr = torch.rand(2, 3, 32, 32)
    for kind in ("bicubic", "wald", "kspace"):
        cfg = dg.DegradationConfig(kind=kind)
        torch.testing.assert_close(
            dg.degrade(hr.cuda(), 4, cfg).cpu(), dg.degrade(hr, 4, cfg), atol=1e-5, rtol=1e-5
        )
    g = torch.Generator().manual_seed(0)
    noisy = dg.degrade(hr.cuda(), 2, dg.DegradationConfig(gaussian_noise=0.1, poisson_peak=50.0), g)
    assert noisy.is_cuda


def test_random_mtf_range_is_checked_on_both_ends():
    from sr_domains.degrade import DegradationConfig
    from sr_domains.errors import ConfigError

    for bad in ((0.0, 0.4), (0.1, 1.5)):
        with pytest.raises(ConfigError, match="random_mtf"):
            DegradationConfig(kind="random", random_mtf=bad)
    assert DegradationConfig(kind="random", random_mtf=(0.15, 0.45)).random_mtf == (0.15, 0.45)


@pytest.mark.parametrize(
    "levels", [(-0.01, 0.0), (0.02, -1.0), (float("nan"), 0.0), (float("inf"), 0.0)]
)
def test_a_negative_random_noise_level_is_refused(levels):
    """(-0.01, 0) was accepted and silently meant "no noise"."""
    with pytest.raises(ConfigError, match="random_noise"):
        dg.DegradationConfig(kind="random", random_noise=levels)


@pytest.mark.parametrize("value", [(0.02,), (0.02, 0.0, 0.01), 0.02, "ab", ("x", 0.0)])
@pytest.mark.parametrize("key", ["random_noise", "random_sigma", "random_mtf"])
def test_a_range_of_the_wrong_length_is_a_config_error(key, value):
    """``random_noise: [0.02]`` raised a bare "not enough values to unpack" ValueError."""
    with pytest.raises(ConfigError, match=rf"^{key} must be 2 numbers \("):
        dg.DegradationConfig(kind="random", **{key: value})


@pytest.mark.parametrize("maxima", [(0.02, 0.03), (0.02, 0.0), (0.0, 0.03)])
def test_random_noise_levels_cover_zero_to_max_for_each_type(maxima):
    """Each noise type's sigma is drawn uniformly over [0, max] (the type choice must not also
    decide the level: that gave Rician only below max/2 and Gaussian only above it)."""
    cfg = dg.DegradationConfig(kind="random", random_noise=maxima, noise_prob=1.0)
    g = torch.Generator().manual_seed(0)
    draws = [dg.draw(cfg, g) for _ in range(2000)]
    for kind, top in zip(("gaussian_noise", "rician_noise"), maxima, strict=True):
        levels = np.array([getattr(d, kind) for d in draws])
        if top == 0:
            assert not levels.any()
            continue
        levels = levels[levels > 0]
        share = len(levels) / len(draws)
        assert share == pytest.approx(1.0 if 0 in maxima else 0.5, abs=0.05)
        assert levels.max() <= top
        assert levels.min() < 0.1 * top and levels.max() > 0.9 * top
        assert np.mean(levels < top / 2) == pytest.approx(0.5, abs=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", dg.KINDS)
def test_every_degradation_runs_on_cuda_like_on_the_cpu(kind):
    """Training on a GPU degrades CUDA batches with a CUDA generator: every kind (and each draw
    of ``random``) must keep its kernels, indices and draws on that device, and a noise-free
    degradation must give the CPU's values."""
    motion = {"psf_sigma": 0.8, "psf_sigma_minor": 0.3, "psf_angle": 30.0}
    cfg = dg.DegradationConfig(kind=kind, **(motion if kind == "motion" else {}))
    hr = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    runs = [dg.degrade(hr.cuda(), 2, cfg, torch.Generator("cuda").manual_seed(3)) for _ in range(2)]
    assert runs[0].shape == (4, 3, 16, 16) and runs[0].device.type == "cuda"
    assert torch.equal(runs[0], runs[1])
    if kind != "random":
        assert torch.allclose(runs[0].cpu(), dg.degrade(hr, 2, cfg), atol=1e-5)
    noisy = dg.DegradationConfig(kind="random", random_noise=(0.02, 0.02), noise_prob=0.5)
    assert dg.degrade(hr.cuda(), 2, noisy, torch.Generator("cuda").manual_seed(4)).is_cuda


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_lanczos_runs_on_cuda():
    from sr_domains.psf import lanczos_upsample

    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(lanczos_upsample(x.cuda(), 2).cpu(), lanczos_upsample(x, 2), atol=1e-5)
