"""Fast operators give the outputs of the generic ones they replace (issue 12).

The box filter of the channel attention, the polyphase bicubic skip, the in-place inference
path, EDSR's banded upsampling tail and the polyphase MATLAB ``imresize`` are checked against
the straightforward PyTorch formulas, and the shipped weights against the published EDSR /
channel-attention / bicubic-skip formulas.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _model_cases import small

import sr_domains._resample as rs
from sr_domains.degrade import bicubic_downsample, imresize
from sr_domains.models import create_model, model_registry
from sr_domains.models.blocks import ChannelAttention
from sr_domains.models.ops import MATLAB_CUBIC_A, BicubicUpsample, box_mean
from sr_domains.pretrained import list_pretrained, load_pretrained


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("k", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (9, 4), (31, 17)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_box_mean_equals_avg_pool_without_padding(k, shape, channels_last):
    x = torch.randn(2, 3, *shape, generator=torch.Generator().manual_seed(k))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ref = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
    torch.testing.assert_close(box_mean(x, k), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("pool", [3, 5, "global"])
@pytest.mark.parametrize("grad", [False, True])
def test_channel_attention_equals_the_rcan_formula(pool, grad):
    """Pooling after the 1x1 ``down`` conv (and in place when no gradient is needed)."""
    ca = ChannelAttention(32, 8, pool).eval()
    x = torch.randn(2, 32, 23, 19, generator=torch.Generator().manual_seed(1))
    if pool == "global":
        pooled = x.mean(dim=(2, 3), keepdim=True)
    else:
        pooled = F.avg_pool2d(x, pool, 1, pool // 2, count_include_pad=False)
    ref = x * torch.sigmoid(ca.up(F.relu(ca.down(pooled))))
    with torch.set_grad_enabled(grad):
        out = ca(x.clone())
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (17, 12), (64, 40)])
def test_polyphase_bicubic_equals_torch_interpolate(scale, shape):
    x = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(scale)) * 4 - 2
    up = BicubicUpsample(scale, 3)
    got = up(x)
    # float64 PyTorch is the exact reference (float32 PyTorch computes the x3 source coordinate
    # as (o + 0.5) * float32(1/3), which drifts by ~1e-5 at large coordinates)
    ref64 = F.interpolate(x.double(), scale_factor=scale, mode="bicubic", align_corners=False)
    torch.testing.assert_close(got.double(), ref64, atol=1e-6, rtol=0)
    if scale != 3:
        ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
        torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    assert not any(k.endswith("weight") for k in up.state_dict())  # no checkpoint keys


def _old_imresize(t: torch.Tensor, out: tuple[int, int], f: tuple[float, float]) -> torch.Tensor:
    for axis, n_out, fa in ((-2, out[0], f[0]), (-1, out[1], f[1])):
        n_in = t.shape[axis]
        if n_in == n_out and fa == 1.0:
            continue
        idx, w = rs.cubic_taps(n_in, n_out, fa, True, t.device)
        t = rs.apply_taps(t, axis, idx, w)
    return t


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0, 0.5, 1 / 3, 0.25, 0.75, 1.5, 0.7])
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (13, 8), (48, 33)])
def test_fast_imresize_equals_the_tap_gather(factor, shape):
    x = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(7)) * 100
    out = tuple(int(np.ceil(n * factor - 1e-9)) for n in shape)
    got = imresize(x, factor)
    ref = _old_imresize(x, out, (factor, factor))  # type: ignore[arg-type]
    assert got.shape == ref.shape
    torch.testing.assert_close(got / 100, ref / 100, atol=1e-6, rtol=0)


def test_matlab_polyphase_module_and_bicubic_downsample():
    x = torch.rand(1, 2, 20, 28, generator=torch.Generator().manual_seed(3))
    up = BicubicUpsample(2, 2, MATLAB_CUBIC_A, padding="symmetric")
    torch.testing.assert_close(up(x), _old_imresize(x, (40, 56), (2.0, 2.0)), atol=1e-6, rtol=0)
    ref = _old_imresize(x, (5, 7), (0.25, 0.25))
    torch.testing.assert_close(bicubic_downsample(x, 4), ref, atol=1e-6, rtol=0)
    assert rs.cubic_polyphase(100, 97, 0.97, True) is None  # 97 phases: the tap path
    y = torch.rand(1, 1, 100, 30, generator=torch.Generator().manual_seed(4))
    got = imresize(y, size=(97, 30))
    torch.testing.assert_close(got, _old_imresize(y, (97, 30), (0.97, 1.0)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", model_registry().names())
def test_inference_path_equals_training_path(arch):
    """In-place inference ops (no autograd) give the training-mode values."""
    model = create_model(arch, in_channels=3, scale=2, **small(arch))
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        fast = model(x)
    with torch.enable_grad():
        ref = model(x)
    torch.testing.assert_close(fast, ref.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_banded_tail_equals_one_pass(scale):
    model = create_model("edsr-lite-ca", in_channels=2, scale=scale, n_blocks=1)
    x = torch.rand(1, 2, 300, 11, generator=torch.Generator().manual_seed(scale))  # > 2 bands
    with torch.no_grad():
        banded = model(x)
    with torch.enable_grad():
        ref = model(x)
    torch.testing.assert_close(banded, ref.detach(), atol=1e-6, rtol=0)


def _published_edsr(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """EDSR with RCAN channel attention (``avg_pool2d`` then ``down``) and a bicubic skip made
    by ``F.interpolate``: the formulas the shipped weights were trained with."""
    c = model.config
    feat = model.conv_first(x)
    h = feat
    for blk in model.body:
        res = blk.conv2(F.relu(blk.conv1(h)))
        if blk.ca is not None:
            k = c.ca_pool
            y = F.avg_pool2d(res, k, 1, k // 2, count_include_pad=False)
            res = res * torch.sigmoid(blk.ca.up(F.relu(blk.ca.down(y))))
        h = h + res * c.res_scale
    feat = feat + model.conv_after_body(h)
    out = model.conv_last(model.upsample(feat))
    if c.shared_detail:  # one detail layer for every band (the RGB models)
        out = out.mean(dim=1, keepdim=True)
    return out + F.interpolate(x, scale_factor=c.scale, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("name", [e.name for e in list_pretrained()])
def test_shipped_weights_give_the_published_formulas(name):
    model = load_pretrained(name)
    x = torch.rand(1, model.in_channels, 40, 33, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = _published_edsr(model, x)
        got = model(x)
        model.to(memory_format=torch.channels_last)
        got_cl = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, ref, atol=2e-6, rtol=0)
    torch.testing.assert_close(got_cl, ref, atol=2e-6, rtol=0)
