"""upscale_array: nodata values, tiny tiles, channels-last and masked input, bad arguments."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import sr_domains
from sr_domains.array_api import upscale_array
from sr_domains.errors import ConfigError
from sr_domains.inference import Upscaler


@pytest.fixture(scope="module")
def model():
    return sr_domains.load_pretrained("sr-lite-gray-x2")


def _grey(shape=(12, 12), seed=0):
    """uint8 values in 40..60, none equal to 50."""
    u = np.random.default_rng(seed).integers(40, 61, shape).astype(np.uint8)
    u[u == 50] = 51
    return u


def test_valid_output_pixels_never_equal_nodata(model):
    u = _grey()
    vm = np.ones(u.shape, bool)
    vm[:3, :3] = False
    out, valid = upscale_array(u, model, valid_mask=vm, nodata=50, device="cpu", return_mask=True)
    assert (out[~valid] == 50).all()
    assert not (out[valid] == 50).any()
    raw = upscale_array(u, model, valid_mask=vm, device="cpu")  # no nodata: nothing moves
    moved = valid & (raw == 50)
    assert moved.any() and (out[moved] == 51).all()
    assert (out[valid & ~moved] == raw[valid & ~moved]).all()


def test_valid_input_pixels_equal_to_nodata_are_warned(model, caplog):
    """``nodata=`` sets the output fill only (unlike a GeoTIFF's): a DEM's -32768 voids passed
    without a ``valid_mask`` were upscaled as data, silently."""
    dem = (_grey().astype(np.int16) * 10) - 100
    dem[:3, :3] = -32768
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_array(dem, model, nodata=-32768, device="cpu")
    assert "9 valid input pixel(s) equal nodata=-32768" in caplog.text
    assert "valid_mask=(array != -32768)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_array(dem, model, nodata=-32768, valid_mask=dem != -32768, device="cpu")
    assert "equal nodata" not in caplog.text


def test_all_valid_integer_output_is_kept_off_nodata(model):
    out = upscale_array(_grey(), model, nodata=50, device="cpu")
    assert not (out == 50).any()


@pytest.mark.parametrize(
    ("nodata", "dtype", "match"),
    [
        (300, np.uint8, "not a uint8 value"),
        (-1, np.uint8, "not a uint8 value"),
        (1.5, np.uint16, "not a uint16 value"),
        (float("nan"), np.uint8, "NaN is not a uint8"),
        (1e300, np.float32, "out of the float32 range"),
        ("zero", np.uint8, "must be a number"),
    ],
)
def test_nodata_the_output_dtype_cannot_hold_is_refused(model, nodata, dtype, match):
    a = np.zeros((8, 8), dtype)
    with pytest.raises(ConfigError, match=match):
        upscale_array(a, model, valid_mask=np.ones((8, 8), bool), nodata=nodata, device="cpu")


def test_nodata_is_checked_against_out_dtype(model):
    a = np.full((8, 8), 0.5, np.float32)
    with pytest.raises(ConfigError, match="not a uint8 value"):
        upscale_array(a, model, nodata=-9999, out_dtype=np.uint8, device="cpu")
    out = upscale_array(a, model, nodata=-9999, out_dtype=np.int16, device="cpu")
    assert out.dtype == np.int16


@pytest.mark.parametrize("tile", [1, 7])
def test_tile_below_8_is_refused(model, tile):
    a = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    with pytest.raises(ConfigError, match="tile must be >= 8"):
        upscale_array(a, model, tile=tile, device="cpu")


def test_channels_last_shape_warns(model, caplog):
    rgb = np.zeros((20, 6, 3), np.uint8)
    with caplog.at_level(logging.WARNING, logger="sr_domains.array_api"):
        out = upscale_array(rgb, model, device="cpu")
    assert out.shape == (20, 12, 6)  # still read as bands first
    assert "np.moveaxis(a, -1, 0)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_domains.array_api"):
        upscale_array(np.zeros((3, 20, 6), np.uint8), model, device="cpu")
        upscale_array(np.zeros((4, 8, 3), np.uint8), model, device="cpu")
    assert "moveaxis" not in caplog.text


def test_a_small_channels_last_image_warns_too(model, caplog):
    """Only images of more than 16 rows warned: (12, 12, 3) was read as 12 bands of 12 x 3
    pixels without a word."""
    with caplog.at_level(logging.WARNING, logger="sr_domains.array_api"):
        out = upscale_array(np.zeros((12, 12, 3), np.uint8), model, device="cpu")
    assert out.shape == (12, 24, 6) and "np.moveaxis(a, -1, 0)" in caplog.text


def test_masked_array_mask_counts_as_invalid(model):
    a = np.random.default_rng(1).random((2, 10, 10)).astype(np.float32)
    hole = np.zeros(a.shape, bool)
    hole[:, 2:4, 2:4] = True
    vm = np.ones((10, 10), bool)
    vm[8:, 8:] = False
    masked = np.ma.masked_array(a, mask=hole)
    out, valid = upscale_array(masked, model, valid_mask=vm, device="cpu", return_mask=True)
    assert not valid[:, 4:8, 4:8].any() and not valid[:, 16:, 16:].any()
    assert np.isnan(out[:, 4:8, 4:8]).all() and np.isnan(out[:, 16:, 16:]).all()
    assert valid.sum() == 2 * 4 * (100 - 4 - 4)
    ref = upscale_array(a, model, valid_mask=~hole & vm, device="cpu")
    np.testing.assert_array_equal(out, ref)


def test_model_given_by_name_or_as_upscaler(model):
    a = np.random.default_rng(2).random((10, 10), dtype=np.float32)
    ref = upscale_array(a, model, device="cpu")
    np.testing.assert_array_equal(upscale_array(a, "sr-lite-gray-x2", device="cpu"), ref)
    np.testing.assert_array_equal(upscale_array(a, Upscaler(model, device="cpu")), ref)
    with pytest.raises(ConfigError, match="tile given with an Upscaler"):
        upscale_array(a, Upscaler(model, device="cpu"), tile=16)


@pytest.mark.parametrize("bad", [None, 2, object()])
def test_model_of_another_type_is_refused(bad):
    with pytest.raises(ConfigError, match="SRModel, an Upscaler or a shipped weights name"):
        upscale_array(np.zeros((8, 8), np.float32), bad)


def test_unknown_model_name_is_refused():
    with pytest.raises(ConfigError, match="no-such-weights"):
        upscale_array(np.zeros((8, 8), np.float32), "no-such-weights")


@pytest.mark.parametrize("mask_shape", [(8, 9), (2, 8, 8), (1, 3, 8, 8), (3, 8)])
def test_valid_mask_of_wrong_shape_is_refused(model, mask_shape):
    with pytest.raises(ConfigError, match=r"valid_mask has shape .* but the array \(3, 8, 8\)"):
        upscale_array(np.zeros((3, 8, 8), np.float32), model, valid_mask=np.ones(mask_shape))


@pytest.mark.parametrize("dtype", [bool, np.complex64, "U4", object])
def test_non_numeric_out_dtype_is_refused(model, dtype):
    with pytest.raises(ConfigError, match="out_dtype must be an integer or float"):
        upscale_array(np.zeros((8, 8), np.float32), model, out_dtype=dtype, device="cpu")


def test_one_band_mask_applies_to_every_band(model):
    a = np.random.default_rng(3).random((2, 8, 8)).astype(np.float32)
    vm = np.ones((8, 8), bool)
    vm[:2] = False
    ref = upscale_array(a, model, valid_mask=vm, profile="percentile", device="cpu")
    out = upscale_array(a, model, valid_mask=vm[None], profile="percentile", device="cpu")
    np.testing.assert_array_equal(out, ref)
    assert np.isnan(out[:, :4]).all() and not np.isnan(out[:, 4:]).any()


def test_a_tensor_with_grad_runs_and_the_callers_model_comes_back_as_it_came():
    """A torch tensor that requires grad failed inside torch (.numpy()); the engine left the
    caller's model in eval mode (a validation call inside a training loop turned dropout and
    batch-norm updates off for the rest of training)."""
    import torch

    from sr_domains import load_pretrained

    net = load_pretrained("sr-lite-gray-x2").train()
    x = torch.rand(12, 12, requires_grad=True)
    out = upscale_array(x, net)
    assert isinstance(out, np.ndarray) and out.shape == (24, 24)
    np.testing.assert_array_equal(out, upscale_array(x.detach().numpy(), net))
    assert net.training
    assert all(p.is_contiguous() for p in net.parameters())


@pytest.mark.parametrize("low", ["float16", "bfloat16"])
def test_a_half_precision_model_runs_and_comes_back_in_its_precision(low):
    """``upscale_array(x, model.half())`` failed inside torch (float input, half bias)."""
    import torch

    from sr_domains import load_pretrained

    net = load_pretrained("sr-lite-gray-x2")
    x = _grey((16, 16)).astype(np.float32)
    ref = upscale_array(x, net)
    dtype = getattr(torch, low)
    net = net.to(dtype)
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    seen = []  # the caller's dtype while the engine runs: never cast in place (other threads
    # may be using it), the engine runs a float32 copy
    net.register_forward_pre_hook(lambda *_: seen.append(next(net.parameters()).dtype))
    out = upscale_array(x, net)
    assert seen and set(seen) == {dtype}
    assert out.dtype == np.float32 and np.abs(out - ref).max() < 0.05 * np.ptp(ref)
    for k, v in net.state_dict().items():  # the caller's weights, bit for bit, in their dtype
        assert v.dtype == kept[k].dtype and torch.equal(v, kept[k]), k


def test_a_model_without_weights_is_refused_in_one_line():
    import torch

    from sr_domains import create_model

    with torch.device("meta"):
        net = create_model("edsr-lite-ca", in_channels=1, scale=2)
    with pytest.raises(ConfigError, match="meta device.*load_checkpoint"):
        upscale_array(_grey(), net)


def test_a_weights_path_given_as_the_model_says_how_to_load_it():
    with pytest.raises(ConfigError, match=r"looks like a weights file.*load_checkpoint\(path\)"):
        upscale_array(_grey(), "/data/mine.safetensors")
    from sr_domains.pretrained import resolve_model

    with pytest.raises(ConfigError, match="--weights PATH"):
        resolve_model("runs/x/weights.safetensors", scale=None, n_bands=1)
    from sr_domains import create_model

    with pytest.raises(ConfigError, match="got '2'"):  # a string, shown as one
        create_model("edsr", scale="2")
