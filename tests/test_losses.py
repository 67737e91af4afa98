"""Training losses: pixel losses, masks, perceptual loss (VGG19 file / fallback), RaGAN."""

from __future__ import annotations

import logging
import math
import socket

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from skimage import data as skdata

from sr_domains.errors import CheckpointError, ConfigError
from sr_domains.train.losses import (
    CharbonnierLoss,
    GradientPyramidLoss,
    PerceptualLoss,
    RelativisticAverageGANLoss,
    pixel_loss,
)
from sr_domains.train.vgg import VGG19_LAYER_NAMES, vgg19_features

# ----------------------------------------------------------------------------- helpers


def camera(size: int = 32, channels: int = 1) -> torch.Tensor:
    """A (1, C, size, size) crop of skimage's camera image in [0, 1], bands shifted apart."""
    img = torch.from_numpy(skdata.camera()[200 : 200 + size, 200 : 200 + size].copy()) / 255.0
    bands = [torch.roll(img, shifts=3 * c, dims=1) for c in range(channels)]
    return torch.stack(bands)[None].float()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(x.shape[1], 1, -1, -1)
    return F.conv2d(F.pad(x, [radius] * 4, mode="reflect"), k, groups=x.shape[1])


def random_mask(shape: tuple[int, ...], p: float = 0.7) -> torch.Tensor:
    return torch.rand(shape) < p


def scramble(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` with the invalid elements replaced by garbage (large values and NaN)."""
    valid = mask.expand_as(x)
    junk = torch.randn_like(x) * 100
    junk.view(-1)[::7] = float("nan")
    return torch.where(valid, x, junk)


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    """Random VGG19 weights in torchvision's state dict layout (features.* + classifier.*)."""
    torch.manual_seed(1)
    features = vgg19_features()
    for module in features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.uniform_(module.bias, -0.1, 0.1)
    state = {f"features.{k}": v.clone() for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(8, 4)  # ignored; real files have 4096 x 25088
    state["classifier.0.bias"] = torch.zeros(8)
    return state


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory, vgg_state) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("vgg")
    pth, st = folder / "vgg19.pth", folder / "vgg19.safetensors"
    torch.save(vgg_state, pth)
    save_file({k: v.contiguous() for k, v in vgg_state.items()}, str(st))
    return {"pth": pth, "safetensors": st}


# ----------------------------------------------------------------------------- pixel losses


def test_charbonnier_matches_the_formula():
    pred, target = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    for eps in (1e-3, 0.5):
        expected = torch.sqrt((pred - target) ** 2 + eps**2)
        assert torch.allclose(CharbonnierLoss(eps)(pred, target), expected.mean())
        assert torch.allclose(CharbonnierLoss(eps, reduction="sum")(pred, target), expected.sum())
        assert torch.allclose(CharbonnierLoss(eps, reduction="none")(pred, target), expected)
    # A perfect prediction costs eps, and the loss is ~|d| far from zero.
    assert CharbonnierLoss(0.01)(pred, pred).item() == pytest.approx(0.01)
    big = torch.full((1, 1, 2, 2), 10.0)
    assert CharbonnierLoss(1e-3)(big, -big).item() == pytest.approx(20.0, rel=1e-6)


def test_pixel_loss_factory():
    pred, target = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    assert torch.allclose(pixel_loss("l1")(pred, target), (pred - target).abs().mean())
    assert torch.allclose(pixel_loss("L2")(pred, target), ((pred - target) ** 2).mean())
    assert torch.allclose(
        pixel_loss("mse", reduction="sum")(pred, target), ((pred - target) ** 2).sum()
    )
    charb = pixel_loss("charbonnier", eps=0.1)
    assert isinstance(charb, CharbonnierLoss)
    assert charb.eps == 0.1
    with pytest.raises(ConfigError, match="unknown pixel loss 'l3'"):
        pixel_loss("l3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="reduction"):
        pixel_loss("l1", reduction="max")
    with pytest.raises(ConfigError, match="eps"):
        CharbonnierLoss(eps=0)
    with pytest.raises(ConfigError, match="differ"):
        pixel_loss("l1")(pred, target[:, :1])


@pytest.mark.parametrize("name", ["l1", "l2", "charbonnier"])
@pytest.mark.parametrize("mask_channels", [1, 3])
def test_masked_pixel_loss_is_the_mean_over_valid_pixels(name, mask_channels):
    loss = pixel_loss(name)
    pred, target = torch.rand(2, 3, 6, 5), torch.rand(2, 3, 6, 5)
    mask = random_mask((2, mask_channels, 6, 5))
    valid = mask.expand_as(pred)
    expected = loss.elementwise(pred[valid] - target[valid]).mean()
    assert torch.allclose(loss(pred, target, mask), expected)
    # Garbage (even NaN) in masked pixels of either input changes neither loss nor gradient.
    p1 = pred.clone().requires_grad_(True)
    p2 = scramble(pred, mask).requires_grad_(True)
    l1, l2 = loss(p1, target, mask), loss(p2, scramble(target, mask), mask)
    assert torch.equal(l1, l2)
    l1.backward()
    l2.backward()
    assert torch.isfinite(p2.grad).all()
    assert torch.equal(p1.grad, p2.grad)
    assert (p2.grad[~valid] == 0).all()


def test_float_mask_is_a_weighted_mean():
    pred, target = torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4)
    weights = torch.rand(1, 1, 4, 4)
    w = weights.expand_as(pred)
    expected = ((pred - target).abs() * w).sum() / w.sum()
    assert torch.allclose(pixel_loss("l1")(pred, target, weights), expected)
    assert pixel_loss("l1")(pred, target, torch.zeros(1, 1, 4, 4)).item() == 0.0


def test_bad_mask_shape_is_rejected():
    pred = torch.rand(2, 3, 4, 4)
    for shape in [(2, 2, 4, 4), (2, 1, 4, 5), (2, 4, 4), (3, 1, 4, 4)]:
        with pytest.raises(ConfigError, match="mask of shape"):
            pixel_loss("l1")(pred, pred, torch.ones(shape, dtype=torch.bool))


# ----------------------------------------------------------------------------- RaGAN


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_ragan_known_values():
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x).
    # real = [1, 3] (mean 2), fake = [0, -2] (mean -1):
    # real - mean(fake) = [2, 4], fake - mean(real) = [-2, -4].
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [-2.0]])
    gan = RelativisticAverageGANLoss()
    d_expected = 0.5 * (
        (softplus(-2) + softplus(-4)) / 2  # real judged real
        + (softplus(-2) + softplus(-4)) / 2  # fake judged fake
    )
    g_expected = 0.5 * ((softplus(2) + softplus(4)) / 2 + (softplus(2) + softplus(4)) / 2)
    assert gan.discriminator_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-6)
    assert gan.generator_loss(real, fake).item() == pytest.approx(g_expected, rel=1e-6)
    # Indistinguishable logits: both players at log(2).
    same = torch.full((4, 1, 2, 2), 0.7)
    assert gan.discriminator_loss(same, same).item() == pytest.approx(math.log(2))
    assert gan.generator_loss(same, same).item() == pytest.approx(math.log(2))


def test_ragan_gradients_point_the_right_way():
    gan = RelativisticAverageGANLoss()
    real = torch.randn(4, 1, 8, 8).requires_grad_(True)
    fake = torch.randn(4, 1, 8, 8).requires_grad_(True)
    gan.discriminator_loss(real, fake).backward()
    assert (real.grad < 0).all()  # D gains by scoring real higher ...
    assert (fake.grad > 0).all()  # ... and fake lower
    real.grad = fake.grad = None
    gan.generator_loss(real, fake).backward()
    assert real.grad is None  # real logits are detached in the generator loss
    assert (fake.grad < 0).all()  # G gains by making fakes look more real
    # One small step along the gradient lowers the loss.
    before = gan.generator_loss(real, fake).item()
    after = gan.generator_loss(real, fake - 0.1 * fake.grad).item()
    assert after < before


# ----------------------------------------------------------------------------- perceptual (VGG)


def test_vgg19_features_use_torchvision_indices():
    # torchvision vgg19 (config "E"): convolutions at these indices of `features`.
    convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    expected = {f"{i}.{p}" for i in convs for p in ("weight", "bias")}
    state = vgg19_features(device="meta").state_dict()
    assert set(state) == expected
    assert state["0.weight"].shape == (64, 3, 3, 3)
    assert state["34.weight"].shape == (512, 512, 3, 3)
    assert VGG19_LAYER_NAMES[34] == "conv5_4" and VGG19_LAYER_NAMES[35] == "relu5_4"


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_perceptual_loss_with_a_local_vgg19_file(vgg_files, vgg_state, kind, caplog):
    with caplog.at_level(logging.INFO, logger="sr_domains.train.losses"):
        loss = PerceptualLoss(vgg_files[kind])
    assert loss.uses_vgg and loss.enabled
    assert "VGG19" in caplog.text
    # The file's weights were loaded and frozen.
    first = loss.extractor.net[0]
    assert torch.equal(first.weight, vgg_state["features.0.weight"])
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training
    x = camera(32, 3)
    y = blur(x, 1.5)
    assert loss(x, x).item() == 0.0
    pred = y.clone().requires_grad_(True)
    value = loss(pred, x)
    assert value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_perceptual_loss_bare_features_dict_and_layers(tmp_path, vgg_state):
    bare = {k.removeprefix("features."): v for k, v in vgg_state.items() if "features." in k}
    path = tmp_path / "features.pth"
    torch.save({"state_dict": bare}, path)
    loss = PerceptualLoss(path, {"relu1_2": 0.5, "relu2_2": 1.0})
    assert len(loss.extractor.net) == 9  # cut after relu2_2
    x = camera(16, 3)
    assert loss(x, x).item() == 0.0
    assert loss(x, blur(x, 1.0)).item() > 0
    with pytest.raises(ConfigError, match="unknown VGG19 layer"):
        PerceptualLoss(path, {"conv6_1": 1.0})


def test_perceptual_loss_channels(vgg_files):
    loss = PerceptualLoss(vgg_files["pth"], {"relu2_2": 1.0})
    x = camera(16, 4)
    y = blur(x, 1.0)
    # Bands other than 3 are compared one by one as grey images; the loss is their mean.
    per_band = [loss(y[:, c : c + 1], x[:, c : c + 1]) for c in range(4)]
    assert torch.allclose(loss(y, x), torch.stack(per_band).mean(), rtol=1e-5)
    # One channel is the same as an RGB image with three identical channels.
    grey = x[:, :1]
    assert torch.allclose(
        loss(blur(grey, 1.0), grey),
        loss(blur(grey, 1.0).expand(-1, 3, -1, -1), grey.expand(-1, 3, -1, -1)),
    )
    # per_band on RGB differs from treating it as colour.
    rgb = camera(16, 3)
    band_loss = PerceptualLoss(vgg_files["pth"], {"relu2_2": 1.0}, channel_mode="per_band")
    colour, banded = loss(blur(rgb, 1.0), rgb), band_loss(blur(rgb, 1.0), rgb)
    assert banded > 0 and not torch.allclose(colour, banded)


def test_perceptual_loss_input_range(vgg_files):
    unit = PerceptualLoss(vgg_files["pth"], {"relu2_2": 1.0})
    byte = PerceptualLoss(vgg_files["pth"], {"relu2_2": 1.0}, input_range="0-255")
    sym = PerceptualLoss(vgg_files["pth"], {"relu2_2": 1.0}, input_range="-1-1")
    x = camera(16, 3)
    y = blur(x, 1.0)
    ref = unit(y, x)
    assert torch.allclose(byte(y * 255, x * 255), ref, rtol=1e-4)
    assert torch.allclose(sym(y * 2 - 1, x * 2 - 1), ref, rtol=1e-4)


@pytest.mark.parametrize("mask_channels", [1, 4])
def test_masked_perceptual_loss_ignores_masked_pixels(vgg_files, mask_channels):
    loss = PerceptualLoss(vgg_files["pth"], {"relu2_2": 1.0, "conv3_1": 0.5})
    x = camera(32, 4)
    y = blur(x, 1.0)
    mask = torch.ones(1, mask_channels, 32, 32, dtype=torch.bool)
    mask[..., :10, :] = False
    ref = loss(y, x, mask)
    assert ref.item() > 0
    assert torch.equal(loss(scramble(y, mask), scramble(x, mask), mask), ref)
    assert not torch.allclose(loss(y, x), ref)


def test_vgg_file_with_a_missing_key_names_file_and_key(tmp_path, vgg_state):
    broken = {k: v for k, v in vgg_state.items() if k != "features.34.weight"}
    broken["features.99.weight"] = torch.zeros(1)
    path = tmp_path / "my_vgg.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as info:
        PerceptualLoss(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "missing keys: features.34.weight" in msg
    assert "unexpected keys: features.99.weight" in msg
    st = tmp_path / "short.safetensors"
    save_file({k: v.contiguous() for k, v in broken.items() if k != "features.99.weight"}, str(st))
    with pytest.raises(CheckpointError, match=r"short\.safetensors.*features\.34\.weight"):
        PerceptualLoss(st)


def test_vgg_file_errors(tmp_path, vgg_state):
    with pytest.raises(CheckpointError, match="not found"):
        PerceptualLoss(tmp_path / "absent.pth")  # a given path never falls back silently
    wrong = dict(vgg_state)
    wrong["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match=r"shape mismatches.*features\.0\.weight"):
        PerceptualLoss(tmp_path / "wrong.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        PerceptualLoss(tmp_path / "junk.pth")


# ----------------------------------------------------------------------------- fallback


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_fallback_rewards_sharp_edges(no_network, caplog):
    with caplog.at_level(logging.INFO, logger="sr_domains.train.losses"):
        loss = PerceptualLoss(None)
    assert not loss.uses_vgg and loss.enabled
    assert "fallback" in caplog.text and "GradientPyramidLoss" in caplog.text
    x = camera(32, 3)
    assert loss(x, x).item() == 0.0
    light, heavy = loss(x, blur(x, 0.8)), loss(x, blur(x, 2.0))
    assert 0 < light < heavy
    # A flat offset is no edge difference (the pixel loss takes care of it).
    assert loss(x, x + 0.2).item() == pytest.approx(0.0, abs=1e-6)
    pred = blur(x, 1.5).requires_grad_(True)
    loss(pred, x).backward()
    assert pred.grad.abs().sum() > 0
    # Sharpening the prediction along the gradient brings it closer to the sharp target.
    assert loss(pred - 0.005 * pred.grad / pred.grad.abs().max(), x) < loss(pred, x)


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_fallback_ignores_masked_pixels(mask_channels):
    loss = GradientPyramidLoss()
    x = camera(32, 3)
    y = blur(x, 1.5)
    mask = random_mask((1, mask_channels, 32, 32), p=0.8)
    ref = loss(y, x, mask)
    assert ref.item() > 0
    p = scramble(y, mask).requires_grad_(True)
    value = loss(p, scramble(x, mask), mask)
    assert torch.equal(value, ref)
    value.backward()
    assert torch.isfinite(p.grad).all()
    assert (p.grad[~mask.expand_as(p)] == 0).all()


def test_fallback_none_is_a_disabled_zero_loss(no_network):
    loss = PerceptualLoss(None, fallback="none")
    assert not loss.enabled and not loss.uses_vgg
    x = camera(16, 1)
    assert loss(x, blur(x, 2.0)).item() == 0.0
    with pytest.raises(ConfigError, match="fallback"):
        PerceptualLoss(None, fallback="vgg")  # type: ignore[arg-type]
