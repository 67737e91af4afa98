"""Architectures: shapes for every registered arch, exact receptive fields, registry errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from _model_cases import small
from torch import nn

from sr_domains.errors import ConfigError, RegistryError
from sr_domains.inference import MAX_AUTO_MARGIN
from sr_domains.models import create_model, get_arch, list_models, model_registry
from sr_domains.models.blocks import field_radius

ARCHS = model_registry().names()
SCALES = (2, 3, 4)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run many times faster with one intra-op thread on small shared machines."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("in_channels", [1, 3, 4, 13])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_upscales_any_band_count(arch, in_channels, scale):
    model = create_model(arch, in_channels=in_channels, scale=scale, **small(arch))
    x = torch.rand(2, in_channels, 6, 5)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, in_channels, 6 * scale, 5 * scale)
    assert torch.isfinite(y).all()
    info = model.info()
    assert (info.arch, info.scale, info.in_channels, info.out_channels) == (
        arch,
        scale,
        in_channels,
        in_channels,
    )
    assert info.n_params == sum(p.numel() for p in model.parameters())


def _distinct_presets() -> list[str]:
    """Every arch and preset, skipping presets identical to their arch's defaults."""
    names = []
    for name in list_models():
        arch, _, preset = name.partition("-")
        spec = get_arch(arch)
        if preset and spec.config_cls(**spec.presets[preset]) == spec.config_cls():
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("name", _distinct_presets())
def test_every_preset_at_full_size_runs_on_a_tiny_input(name):
    model = create_model(name, scale=4)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 8, 8))
    assert y.shape == (1, 3, 32, 32)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_out_channels_can_differ_from_in_channels(arch):
    model = create_model(arch, in_channels=4, out_channels=2, scale=3, **small(arch))
    with torch.no_grad():
        y = model(torch.rand(1, 4, 5, 7))
    assert y.shape == (1, 2, 15, 21)
    assert model.info().out_channels == 2


def test_wrong_input_channels_is_a_clear_error():
    model = create_model("edsr", in_channels=4, **small("edsr"))
    with pytest.raises(ValueError, match=r"expected input \(N, 4, H, W\)"):
        model(torch.rand(1, 3, 8, 8))


def test_edsr_presets_have_the_published_sizes():
    full = create_model("edsr-full", scale=2).config
    assert (full.n_blocks, full.n_feats, full.res_scale) == (32, 256, 0.1)
    base = create_model("edsr", scale=2).config
    assert (base.n_blocks, base.n_feats, base.res_scale) == (16, 64, 1.0)
    lite = create_model("edsr-lite-ca", scale=2)
    c = lite.config
    assert (c.n_blocks, c.n_feats, c.ca_pool, c.global_skip) == (8, 32, 5, "bicubic")
    # 1 + 8 * (2 convs + 2 pool) + 1 LR convs, upsampler conv 1, HR conv_last rounds up to 1;
    # within the engine's automatic margin, so tiling the shipped weights is exact
    assert lite.receptive_radius() == 1 + 8 * 4 + 1 + 1 + 1
    assert lite.receptive_radius() <= MAX_AUTO_MARGIN


def test_bicubic_global_skip_adds_the_bicubic_upsampling():
    plain = create_model("edsr", n_blocks=1, n_feats=4, in_channels=2)
    skip = create_model("edsr", n_blocks=1, n_feats=4, in_channels=2, global_skip="bicubic")
    skip.load_state_dict(plain.state_dict())
    x = torch.rand(1, 2, 9, 7)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic")
    torch.testing.assert_close(skip(x), plain(x) + bicubic)
    with pytest.raises(ValueError, match="out_channels == in_channels"):
        create_model("edsr", in_channels=3, out_channels=1, global_skip="bicubic")


@pytest.mark.parametrize("rows", [9, 300])  # 300 LR rows: the chunked inference tail
def test_shared_detail_adds_one_detail_layer_to_every_band(rows):
    kw = dict(n_blocks=1, n_feats=4, in_channels=4, global_skip="bicubic")
    free = create_model("edsr", **kw)
    shared = create_model("edsr", shared_detail=True, **kw)
    shared.load_state_dict(free.state_dict())  # no new parameters: the same weights load
    x = torch.rand(1, 4, rows, 7)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic")
    with torch.no_grad():
        out, detail = shared(x), free(x) - bicubic
    torch.testing.assert_close(out, bicubic + detail.mean(dim=1, keepdim=True))
    # band differences are exactly bicubic's (what keeps colours and spectral angles)
    torch.testing.assert_close(out[:, 1:] - out[:, :1], bicubic[:, 1:] - bicubic[:, :1])
    assert not torch.allclose(free(x)[:, 1:] - free(x)[:, :1], bicubic[:, 1:] - bicubic[:, :1])
    with pytest.raises(ConfigError, match="shared_detail needs global_skip"):
        create_model("edsr", in_channels=3, shared_detail=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_shared_detail_scripts_like_eager():
    m = create_model(
        "edsr", n_blocks=1, n_feats=4, in_channels=3, global_skip="bicubic", shared_detail=True
    )
    x = torch.rand(1, 3, 8, 6)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(m)(x), m(x))


def test_rrdb_keeps_basicsr_module_names():
    keys = set(create_model("rrdb", scale=4, num_block=2).state_dict())
    for key in [
        "conv_first.weight",
        "body.1.rdb3.conv5.bias",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.weight",
    ]:
        assert key in keys
    assert "conv_up2.weight" not in create_model("rrdb", scale=3, num_block=1).state_dict()


def test_rrdb_pixel_unshuffle_variant():
    model = create_model("rrdb", scale=2, pixel_unshuffle=True, **small("rrdb"))
    assert model.conv_first.in_channels == 12
    assert model.info().size_multiple == 2
    assert create_model("rrdb", scale=2, **small("rrdb")).info().size_multiple == 1
    with torch.no_grad():
        assert model(torch.rand(1, 3, 6, 8)).shape == (1, 3, 12, 16)
    with pytest.raises(ValueError, match="even"):
        model(torch.rand(1, 3, 5, 8))
    with pytest.raises(ConfigError, match="scale=2"):
        create_model("rrdb", scale=4, pixel_unshuffle=True)


def test_half_precision_flags_are_declared():
    assert create_model("rcan-small").info().fp16_safe is False  # as spandrel: overflows in fp16
    assert create_model("rrdb-small").info().fp16_safe is True
    assert create_model("edsr", n_blocks=1).info().bf16_safe is True


# -- receptive field -----------------------------------------------------------------------------
def _radius_cases() -> list[tuple[str, dict, int]]:
    """(arch, config, scale) with a finite receptive field: every arch (local CA pool where it
    has one), plus channel-attention and pixel-unshuffle variants."""
    configs = []
    for arch in ARCHS:
        kw = small(arch)
        if "ca_pool" in {f.name for f in dataclasses.fields(get_arch(arch).config_cls)}:
            kw["ca_pool"] = 3
        configs.append((arch, kw))
    configs.append(("edsr", {**small("edsr"), "channel_attention": True, "ca_pool": 5}))
    configs.append(("rrdb", {**small("rrdb"), "channel_attention": True, "ca_pool": 3}))
    cases = [(arch, kw, s) for arch, kw in configs for s in SCALES]
    cases.append(("rrdb", {**small("rrdb"), "pixel_unshuffle": True}, 2))
    return cases


def _case_id(case: tuple[str, dict, int]) -> str:
    arch, kw, scale = case
    extra = [k if v is True else f"{k}{v}" for k, v in kw.items() if k in _VARIANT_KEYS]
    return "-".join([arch, *extra, f"x{scale}"])


_VARIANT_KEYS = ("channel_attention", "ca_pool", "pixel_unshuffle")
RADIUS_CASES = _radius_cases()
# Convolution-only: no channel attention at all (RCAN always has it).
CONV_ONLY = [c for c in RADIUS_CASES if c[0] != "rcan" and not c[1].get("channel_attention")]


def _changed_distance(diff: torch.Tensor, q: int, scale: int) -> tuple[int, int]:
    """Largest LR distance (rows, cols) from ``q`` of an output pixel that changed."""
    idx = (diff != 0).any(dim=0).nonzero()
    assert len(idx), "the perturbation changed nothing"
    rows = (idx[:, 0] // scale - q).abs().max().item()
    cols = (idx[:, 1] // scale - q).abs().max().item()
    return rows, cols


@pytest.mark.parametrize(("arch", "kw", "scale"), RADIUS_CASES, ids=map(_case_id, RADIUS_CASES))
def test_receptive_radius_confines_every_change(arch, kw, scale):
    torch.manual_seed(0)
    model = create_model(arch, scale=scale, **kw).double()
    r = model.receptive_radius()
    assert r is not None
    assert r > 0
    size, q = 2 * r + 6, r + 2
    x = torch.rand(1, model.in_channels, size, size, dtype=torch.float64).repeat(3, 1, 1, 1)
    x[1, :, q, q] += 1.0  # both parities of q (pixel-unshuffle models care)
    x[2, :, q + 1, q + 1] -= 1.0
    with torch.no_grad():
        y = model(x)
    for i, qq in ((1, q), (2, q + 1)):
        rows, cols = _changed_distance(y[i] - y[0], qq, scale)
        assert max(rows, cols) <= r, f"change at distance {(rows, cols)} > radius {r}"


def _positive_impulse_model(model: nn.Module) -> nn.Module:
    """Positive weights and zero biases: every structural dependency shows up (no cancellation,
    ReLUs stay open), and an all-zero input gives an all-zero output."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()
                m.bias.zero_()
    return model


@pytest.mark.parametrize(("arch", "kw", "scale"), CONV_ONLY, ids=map(_case_id, CONV_ONLY))
def test_receptive_radius_is_reached_by_convolution_only_archs(arch, kw, scale):
    torch.manual_seed(0)
    model = _positive_impulse_model(create_model(arch, scale=scale, **kw).double())
    r = model.receptive_radius()
    size, q = 2 * r + 6, r + 2
    x = torch.zeros(1, model.in_channels, size, size, dtype=torch.float64)
    x[0, :, q, q] = 1.0
    with torch.no_grad():
        y = model(x)[0]
    rows, cols = _changed_distance(y, q, scale)
    assert max(rows, cols) <= r
    assert min(rows, cols) >= r - 1  # not overestimated (1 px slack for zero-weight taps)


@pytest.mark.parametrize(
    ("arch", "kw"),
    [
        ("edsr", {"n_blocks": 2, "n_feats": 8, "channel_attention": True, "ca_pool": 5}),
        ("rcan", {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 8, "reduction": 4, "ca_pool": 3}),
    ],
    ids=["edsr-ca", "rcan"],
)
def test_local_channel_attention_pool_widens_the_field_as_declared(arch, kw):
    # A zero input hides the attention's reach (x * attention(x) is 0 where x is 0), so use a
    # small constant input and look at the gradient of one LR pixel's s x s output block: with
    # positive weights there is no cancellation and the sigmoid does not saturate.
    model = _positive_impulse_model(create_model(arch, scale=2, **kw).double())
    r = model.receptive_radius()
    size, p = 2 * r + 6, r + 2
    x = torch.full((1, 3, size, size), 1e-3, dtype=torch.float64, requires_grad=True)
    model(x)[..., 2 * p : 2 * p + 2, 2 * p : 2 * p + 2].sum().backward()
    idx = (x.grad[0] != 0).any(dim=0).nonzero()
    rows, cols = (idx[:, 0] - p).abs().max().item(), (idx[:, 1] - p).abs().max().item()
    assert max(rows, cols) <= r
    assert min(rows, cols) >= r - 1  # not overestimated (1 px slack for zero-weight taps)


def test_tiled_inference_equals_whole_image_with_a_local_pool():
    torch.manual_seed(0)
    kw = {"n_blocks": 2, "n_feats": 8, "channel_attention": True, "scale": 2}
    x = torch.rand(1, 3, 40, 40, dtype=torch.float64)
    a, b = 15, 25  # LR window whose output we want
    for pool, should_match in ((5, True), ("global", False)):
        torch.manual_seed(1)
        model = create_model("edsr", ca_pool=pool, **kw).double()
        r = model.receptive_radius() if should_match else 11
        with torch.no_grad():
            whole = model(x)[..., 2 * a : 2 * b, 2 * a : 2 * b]
            tile = model(x[..., a - r : b + r, a - r : b + r])[..., 2 * r : -2 * r, 2 * r : -2 * r]
        assert torch.allclose(whole, tile, rtol=0, atol=1e-12) is should_match


def test_global_pooling_means_an_unbounded_receptive_field():
    assert create_model("rcan", **small("rcan")).receptive_radius() is None
    assert create_model("rcan", **{**small("rcan"), "ca_pool": 3}).receptive_radius() is not None
    edsr_ca = create_model("edsr", channel_attention=True, **small("edsr"))
    assert edsr_ca.receptive_radius() is None
    rrdb_ca = create_model("rrdb", channel_attention=True, **small("rrdb"))
    assert rrdb_ca.info().receptive_radius is None
    assert create_model("edsr", **small("edsr")).receptive_radius() is not None


def test_field_radius_arithmetic():
    # EDSR x4 tail: conv, shuffle x2, conv at 2x, shuffle x2, conv at 4x (0.5 + 0.25 -> 1 px)
    assert field_radius([("conv", 10), ("up", 2), ("conv", 1), ("up", 2), ("conv", 1)]) == 11
    # three convs at x4 resolution reach 3/4 px -> rounds up to 1
    assert field_radius([("up", 4), ("conv", 1), ("conv", 1), ("conv", 1)]) == 1
    assert field_radius([("up", 4), ("conv", 5)]) == 2
    assert field_radius([("bicubic", 2)]) == 2
    assert field_radius([("down", 2), ("conv", 1), ("up", 4)]) == 3


# -- create_model errors -------------------------------------------------------------------------
def test_unknown_arch_suggests_a_close_name():
    with pytest.raises(RegistryError, match="did you mean 'edsr'"):
        create_model("edsrr")
    with pytest.raises(KeyError):  # RegistryError is also a KeyError
        create_model("nosuchmodel")


def test_unknown_preset_lists_presets():
    with pytest.raises(RegistryError, match=r"no preset 'fulll'.*edsr-full"):
        create_model("edsr-fulll")


def test_unknown_option_is_rejected_with_the_closest_name():
    with pytest.raises(
        ConfigError, match=r"unknown option\(s\) 'n_blockz' \(did you mean 'n_blocks'"
    ):
        create_model("edsr", n_blockz=4)
    with pytest.raises(ConfigError, match=r"'n_blocks' \(did you mean 'num_block'\?\)"):
        create_model("rrdb", n_blocks=4)  # the options of another architecture's family


@pytest.mark.parametrize("scale", [1, 5, 8])
def test_bad_scale_is_rejected(scale):
    with pytest.raises(ConfigError, match="scale must be one of"):
        create_model("srcnn", scale=scale)


@pytest.mark.parametrize("pool", [4, 0, -3, True, "local"])
def test_bad_ca_pool_is_rejected(pool):
    with pytest.raises(ConfigError, match="ca_pool"):
        create_model("rcan-small", ca_pool=pool)


def test_srcnn_residual_needs_matching_channels():
    with pytest.raises(ConfigError, match="out_channels == in_channels"):
        create_model("srcnn", residual=True, in_channels=3, out_channels=1)
    model = create_model("srcnn-residual", features=(4, 4), scale=2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        x = torch.rand(1, 3, 5, 5)
        # with zero weights the residual model is bicubic interpolation (a polyphase conv)
        ref = torch.nn.functional.interpolate(x, size=(10, 10), mode="bicubic")
        assert torch.allclose(model(x), ref, atol=1e-6, rtol=0)
