"""``ResampledSR``: a network run at another scale (the shipped x3 default is the x2 default,
resampled), as a model like any other: shapes, receptive field, tiling, the noise gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sr_domains.inference import Upscaler
from sr_domains.intensity import IntensityProfile
from sr_domains.models.resampled import RESAMPLE_RADIUS, ResampledSR, resampled
from sr_domains.pretrained import list_pretrained, resolve_model
from sr_domains.testing import tiny_model

IDENTITY = IntensityProfile("identity", (1.0,), (0.0,))


def test_the_output_is_the_networks_resampled_by_bicubic():
    base = tiny_model(2, 2).eval()
    net = ResampledSR(base, 3)
    x = torch.rand(1, 2, 11, 13)
    with torch.no_grad():
        y = net(x)  # (PyTorch's antialiased bicubic is Keys' a = -0.5, as MATLAB's imresize)
        want = F.interpolate(base(x), size=(33, 39), mode="bicubic", antialias=True)
    assert y.shape == (1, 2, 33, 39) and torch.allclose(y, want)
    assert net.receptive_radius() == base.receptive_radius() + RESAMPLE_RADIUS
    assert (net.scale, net.in_channels, net.info().arch) == (3, 2, "resampled")
    assert resampled(base, 2) is base and resampled(base, 3).scale == 3
    with pytest.raises(ValueError, match="another scale"):
        ResampledSR(base, 2)


def test_tiles_agree_with_a_whole_image_pass():
    """The margin covers the resampling: tiles of an exact-margin engine agree with one pass."""
    net = ResampledSR(tiny_model(1, 2).eval(), 3)
    x = np.random.default_rng(1).random((1, 40, 52)).astype(np.float32)
    tiled = Upscaler(net, tile=16, device="cpu", amp="off").upscale(x, profile=IDENTITY)
    whole = Upscaler(net, tile=256, device="cpu", amp="off").upscale(x, profile=IDENTITY)
    assert tiled.shape == (1, 120, 156)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_the_noise_gate_blends_the_resampled_default():
    """The gate blends the network inside (its state has no ``base.`` prefix); it raised on
    the wrapper's keys."""
    from sr_domains.noise_gate import choose_for_noise

    if "sr-lite-gray-x2-robust" not in {e.name for e in list_pretrained()}:
        pytest.skip("no robust x2 variant shipped")
    net = resolve_model(None, None, scale=3, n_bands=1)
    up = Upscaler(net, device="cpu", amp="off")
    before = {k: v.clone() for k, v in net.base.state_dict().items()}
    rng = np.random.default_rng(0)
    noisy = (0.5 + 0.1 * rng.standard_normal((1, 64, 64))).astype(np.float32)
    gated, choice = choose_for_noise(up, [noisy])
    assert choice is not None and choice.weight > 0
    assert gated.model.arch == "resampled" and gated.model.scale == 3
    assert gated.model.card.name.startswith("sr-lite-gray-x2+")
    after = gated.model.base.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(v, net.base.state_dict()[k]) for k, v in before.items())  # a copy


def test_the_onnxruntime_backend_runs_the_network_there_and_resamples_after():
    """ONNX has no antialiased bicubic: exporting the whole model failed with a traceback."""
    pytest.importorskip("onnxruntime")
    net = ResampledSR(tiny_model(1, 2).eval(), 3)
    x = np.random.default_rng(2).random((1, 30, 34)).astype(np.float32)
    ort = Upscaler(net, device="cpu", backend="onnxruntime").upscale(x, profile=IDENTITY)
    ref = Upscaler(net, device="cpu", amp="off").upscale(x, profile=IDENTITY)
    assert ort.shape == (1, 90, 102)
    np.testing.assert_allclose(ort, ref, atol=1e-5)
