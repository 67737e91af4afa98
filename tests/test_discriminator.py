"""GAN discriminators: shapes, gradients, spectral norm, BasicSR key layout."""

from __future__ import annotations

import pytest
import torch

from sr_domains.errors import ConfigError
from sr_domains.models import list_models
from sr_domains.models.discriminator import (
    DiscriminatorConfig,
    UNetDiscriminatorSN,
    VGGStyleDiscriminator,
    build_discriminator,
)
from sr_domains.train.losses import RelativisticAverageGANLoss

SN = ("weight_orig", "weight_u", "weight_v")


def basicsr_unet_keys() -> set[str]:
    """BasicSR/Real-ESRGAN ``UNetDiscriminatorSN`` state dict keys (``net_d`` files).

    conv0 and conv9 are plain convolutions with bias; conv1..conv8 are bias-free and wrapped
    in ``torch.nn.utils.spectral_norm``.
    """
    keys = {"conv0.weight", "conv0.bias", "conv9.weight", "conv9.bias"}
    keys |= {f"conv{i}.{s}" for i in range(1, 9) for s in SN}
    return keys


def basicsr_vgg_keys(input_size: int) -> set[str]:
    """BasicSR ``VGGStyleDiscriminator`` keys: conv0_0 (bias), conv0_1 + bn0_1, then
    conv{i}_{0,1} + bn{i}_{0,1} for i = 1..4 (and 5 at 256), linear1, linear2."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv0_0.weight", "conv0_0.bias", "conv0_1.weight"}
    keys |= {f"bn0_1.{b}" for b in bn}
    for i in range(1, 5 if input_size == 128 else 6):
        for j in (0, 1):
            keys.add(f"conv{i}_{j}.weight")
            keys |= {f"bn{i}_{j}.{b}" for b in bn}
    keys |= {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"}
    return keys


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_unet_discriminator_gives_per_pixel_logits(in_channels):
    net = build_discriminator(DiscriminatorConfig(in_channels=in_channels, n_feats=8))
    assert isinstance(net, UNetDiscriminatorSN)
    x = torch.rand(2, in_channels, 32, 24)
    out = net(x)
    assert out.shape == (2, 1, 32, 24)
    out.mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_vgg_discriminator_gives_one_logit_per_image(in_channels):
    config = DiscriminatorConfig(kind="vgg", in_channels=in_channels, n_feats=8, input_size=32)
    net = build_discriminator(config)
    assert isinstance(net, VGGStyleDiscriminator)
    out = net(torch.rand(3, in_channels, 32, 32))
    assert out.shape == (3, 1)
    out.sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_spectral_norm_present_only_when_asked():
    on = UNetDiscriminatorSN(DiscriminatorConfig(in_channels=3, n_feats=8))
    off = UNetDiscriminatorSN(DiscriminatorConfig(in_channels=3, n_feats=8, spectral_norm=False))
    assert all(hasattr(getattr(on, f"conv{i}"), "weight_orig") for i in range(1, 9))
    assert not any(hasattr(getattr(off, f"conv{i}"), "weight_orig") for i in range(10))
    assert not hasattr(on.conv0, "weight_orig") and not hasattr(on.conv9, "weight_orig")
    # Spectral norm does its job: after some power iterations the effective weight has
    # largest singular value 1, while the raw parameter does not.
    torch.nn.init.normal_(on.conv3.weight_orig, std=1.0)
    on.train()
    with torch.no_grad():
        for _ in range(30):
            on(torch.rand(1, 3, 16, 16))
    sigma = torch.linalg.matrix_norm(on.conv3.weight.flatten(1), ord=2)
    raw = torch.linalg.matrix_norm(on.conv3.weight_orig.flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, rel=0.02)
    assert raw.item() > 2
    vgg_sn = VGGStyleDiscriminator(DiscriminatorConfig(kind="vgg", n_feats=8, input_size=16))
    assert hasattr(vgg_sn.conv0_0, "weight_orig") and hasattr(vgg_sn.linear2, "weight_orig")


def test_unet_state_dict_matches_basicsr_layout():
    net = UNetDiscriminatorSN(DiscriminatorConfig(in_channels=3, n_feats=64))
    state = net.state_dict()
    assert set(state) == basicsr_unet_keys()
    # Shapes of Real-ESRGAN's net_d (num_in_ch=3, num_feat=64).
    assert state["conv0.weight"].shape == (64, 3, 3, 3)
    assert state["conv1.weight_orig"].shape == (128, 64, 4, 4)
    assert state["conv3.weight_orig"].shape == (512, 256, 4, 4)
    assert state["conv4.weight_orig"].shape == (256, 512, 3, 3)
    assert state["conv6.weight_orig"].shape == (64, 128, 3, 3)
    assert state["conv1.weight_u"].shape == (128,)
    assert state["conv1.weight_v"].shape == (64 * 4 * 4,)
    assert state["conv9.weight"].shape == (1, 64, 3, 3)
    # A BasicSR-layout state dict (here: another instance's) loads strictly.
    UNetDiscriminatorSN(DiscriminatorConfig(in_channels=3)).load_state_dict(state, strict=True)


@pytest.mark.parametrize("input_size", [128, 256])
def test_vgg_state_dict_matches_basicsr_layout(input_size):
    config = DiscriminatorConfig(kind="vgg", spectral_norm=False, input_size=input_size)
    net = VGGStyleDiscriminator(config)
    state = net.state_dict()
    assert set(state) == basicsr_vgg_keys(input_size)
    assert state["conv0_0.weight"].shape == (64, 3, 3, 3)
    assert state["conv1_0.weight"].shape == (128, 64, 3, 3)
    assert state["conv4_1.weight"].shape == (512, 512, 4, 4)
    assert state["linear1.weight"].shape == (100, 512 * 4 * 4)
    assert state["linear2.weight"].shape == (1, 100)


def test_discriminator_input_checks():
    with pytest.raises(ConfigError, match="kind"):
        DiscriminatorConfig(kind="patch")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="power of two"):
        DiscriminatorConfig(kind="vgg", input_size=100)
    with pytest.raises(ConfigError, match="in_channels"):
        DiscriminatorConfig(in_channels=0)
    DiscriminatorConfig(kind="unet", input_size=100)  # input_size only matters for vgg
    vgg = build_discriminator(DiscriminatorConfig(kind="vgg", n_feats=4, input_size=16))
    with pytest.raises(ConfigError, match="16, 16"):
        vgg(torch.rand(1, 3, 32, 32))
    unet = build_discriminator(DiscriminatorConfig(n_feats=4))
    with pytest.raises(ConfigError, match="divisible by 8"):
        unet(torch.rand(1, 3, 20, 16))
    with pytest.raises(ConfigError, match="N, 3, H, W"):
        unet(torch.rand(1, 4, 16, 16))


def test_discriminators_are_not_sr_models():
    assert not any("discriminator" in name or "unet" in name for name in list_models())


def test_one_ragan_step_improves_the_unet_discriminator():
    torch.manual_seed(0)
    net = build_discriminator(DiscriminatorConfig(in_channels=1, n_feats=8))
    real = torch.rand(4, 1, 16, 16)
    fake = torch.nn.functional.avg_pool2d(real, 3, 1, 1)  # blurred "generator output"
    gan = RelativisticAverageGANLoss()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    with torch.no_grad():  # let spectral norm's power iteration settle (train mode) ...
        for _ in range(10):
            net(real)
    net.eval()  # ... then freeze it so both evaluations below use the same normalisation
    before = gan.discriminator_loss(net(real), net(fake))
    opt.zero_grad()
    before.backward()
    opt.step()
    after = gan.discriminator_loss(net(real), net(fake))
    assert after < before
