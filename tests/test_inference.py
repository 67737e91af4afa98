"""upscale_array: dtypes, profiles, nodata, band modes, devices, AMP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_domains.array_api import upscale_array
from sr_domains.errors import ConfigError
from sr_domains.inference import Upscaler, resolve_amp, resolve_device
from sr_domains.nodata_fill import fill_invalid
from sr_domains.testing import tiny_model
from sr_domains.value_domain import ValueOptions


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_dtype_is_kept_and_values_stay_in_range(dtype):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        x = rng.random((3, 20, 30)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (3, 20, 30), endpoint=True).astype(dtype)
    y = upscale_array(x, tiny_model(3, 2), tile=16)
    assert y.dtype == np.dtype(dtype) and y.shape == (3, 40, 60)
    assert np.all(np.isfinite(y))


def test_profile_is_inverted_so_identity_like_model_keeps_units():
    """A model returning nearest upsampling must give back the input values in stored units."""
    model = tiny_model(1, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = np.random.default_rng(1).integers(100, 9000, (1, 12, 12)).astype(np.uint16)
    for recipe in ("dtype", "reflectance", "percentile:1,99", "range:0,10000"):
        y = upscale_array(x, model, profile=recipe)
        np.testing.assert_array_equal(y, x.repeat(2, 1).repeat(2, 2), err_msg=recipe)


def test_two_dimensional_input_gives_two_dimensional_output():
    y = upscale_array(np.zeros((5, 7), np.float32), tiny_model(1, 3))
    assert y.shape == (15, 21)


def test_single_channel_model_runs_band_by_band():
    model = tiny_model(1, 2)
    x = np.random.default_rng(2).random((5, 16, 16), dtype=np.float32)
    own = ValueOptions(spectral="model")  # by default the bands get bicubic's ratios
    y = upscale_array(x, model, profile="identity", values=own)
    for b in range(5):
        yb = upscale_array(x[b : b + 1], model, profile="identity")
        np.testing.assert_allclose(y[b : b + 1], yb, atol=1e-6)
    assert not np.allclose(upscale_array(x, model, profile="identity"), y, atol=1e-4)


def test_band_count_mismatch_is_a_clear_error():
    with pytest.raises(ConfigError, match="takes 3 bands but the data has 5"):
        upscale_array(np.zeros((5, 8, 8), np.float32), tiny_model(3, 2))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((8, 8), bool), "boolean"),
        (np.ones((1, 8, 8), np.complex64), "complex"),
        (np.array([["a"] * 8] * 8), "dtype <U1"),
        (np.zeros((1, 0, 8), np.float32), "empty"),
        (np.float32(3.0), "got shape"),
        (np.zeros((1, 1, 8, 8), np.float32), "got shape"),
    ],
    ids=["bool", "complex", "strings", "empty", "0-d", "4-d"],
)
def test_what_is_not_intensities_is_refused_by_name(array, message):
    """A mask, complex values (the imaginary part would be dropped) or an empty array is a
    clear error, not a numpy traceback or a silent cast."""
    with pytest.raises(ConfigError, match=message):
        upscale_array(array, tiny_model(1, 2))


def test_big_endian_read_only_fortran_and_memmap_arrays_equal_native(tmp_path):
    """Arrays as files give them (FITS/NIfTI big endian, read-only views, Fortran order, a
    memmap) give the native array's output, in the input's dtype."""
    rng = np.random.default_rng(3)
    native = (rng.random((2, 20, 22)) * 4000).astype(np.uint16)
    model = tiny_model(2, 2)
    ref = upscale_array(native, model)
    mm = np.memmap(tmp_path / "a.raw", dtype=">u2", mode="w+", shape=native.shape)
    mm[:] = native
    ro = native.copy()
    ro.setflags(write=False)
    for arr in (native.astype(">u2"), ro, np.asfortranarray(native), mm):
        out = upscale_array(arr, model)
        assert out.dtype == arr.dtype
        np.testing.assert_array_equal(out, ref)


def test_nodata_is_filled_before_the_network_and_kept_in_the_output():
    model = tiny_model(1, 2)
    x = np.random.default_rng(3).random((1, 32, 32)).astype(np.float32)
    mask = np.ones((32, 32), bool)
    mask[8:16, 8:16] = False
    x_bad = x.copy()
    x_bad[0, ~mask] = 1e6  # huge nodata value must not leak into neighbours
    y1, m_up = upscale_array(
        x_bad, model, profile="identity", valid_mask=mask, nodata=-9, return_mask=True
    )
    # the network sees the documented local fill (continuing the valid data, far = valid mean)
    x_fill = fill_invalid(x, ~mask, x[0, mask].mean())
    assert np.abs(x_fill[0, ~mask]).max() < 1.0 and np.array_equal(x_fill[0, mask], x[0, mask])
    y2 = upscale_array(x_fill, model, profile="identity")
    np.testing.assert_allclose(y1[m_up], y2[m_up], atol=1e-5)
    assert np.all(y1[~m_up] == -9)
    assert m_up.shape == (1, 64, 64) and (~m_up).sum() == 4 * (~mask).sum()


def test_nan_is_invalid_and_stays_nan_in_float_output():
    x = np.random.default_rng(4).random((2, 16, 16)).astype(np.float32)
    x[1, 3, 4] = np.nan
    y = upscale_array(x, tiny_model(2, 2), profile="identity")
    # nodata is per band: band 1 is NaN under the invalid pixel, band 0 stays valid
    assert np.isnan(y[1, 6:8, 8:10]).all()
    assert np.isnan(y).sum() == 4
    assert np.isfinite(y[0]).all()


def test_all_invalid_windows_are_skipped():
    calls = []
    model = tiny_model(1, 2)
    original = model.forward

    def counting(x):
        calls.append(x.shape[0])
        return original(x)

    model.forward = counting
    x = np.zeros((1, 64, 64), np.float32)
    mask = np.zeros((64, 64), bool)
    mask[:16, :16] = True
    upscale_array(x, model, profile="identity", valid_mask=mask, tile=24, overlap=4)
    plan_windows = Upscaler(model, tile=24, overlap=4).plan((64, 64)).n_windows
    assert 0 < len(calls) < plan_windows


def test_device_and_amp_resolution():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError):
        resolve_device("nonsense")
    # a device this machine lacks is one clear line, not a torch traceback at model.to()
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(ConfigError, match="'mps' requested but it is not available"):
            resolve_device("mps")
    with pytest.raises(ConfigError, match="'meta' requested"):
        resolve_device("meta")
    with pytest.raises(ConfigError, match="cuda:99"):
        resolve_device("cuda:99")
    model = tiny_model()
    assert resolve_amp("auto", torch.device("cpu"), model) is None
    assert resolve_amp("bf16", torch.device("cpu"), model) is torch.bfloat16
    with pytest.raises(ConfigError):
        resolve_amp("fp16", torch.device("cpu"), model)
    with pytest.raises(ConfigError):
        resolve_amp("fp8", torch.device("cpu"), model)


def test_bf16_autocast_on_cpu_runs_and_is_close():
    model = tiny_model(1, 2)
    x = np.random.default_rng(5).random((1, 20, 20)).astype(np.float32)
    a = upscale_array(x, model, profile="identity", amp="off", device="cpu")
    b = upscale_array(x, model, profile="identity", amp="bf16", device="cpu")
    assert np.abs(a - b).max() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = tiny_model(3, 2)
    x = np.random.default_rng(6).random((3, 64, 64)).astype(np.float32)
    a = upscale_array(x, model, profile="identity", device="cpu")
    b = upscale_array(x, tiny_model(3, 2), profile="identity", device="cuda", amp="off")
    assert np.abs(a - b).max() < 1e-4


def test_tiles_smaller_than_the_exact_overlap_fall_back_to_blending():
    from sr_domains.inference import resolve_tiling
    from sr_domains.models import create_model

    model = create_model("edsr-lite-ca", in_channels=1, n_feats=8)
    exact = resolve_tiling(model, tile=128)
    assert exact.exact and exact.overlap == 2 * model.receptive_radius()
    small = resolve_tiling(model, tile=40)  # 2 x radius would not fit in the tile
    assert not small.exact and small.overlap < 40
    x = np.random.default_rng(0).random((1, 90, 70)).astype(np.float32)
    out = upscale_array(x, model, tile=40, profile="identity", device="cpu")
    assert out.shape == (1, 180, 140) and np.isfinite(out).all()


def test_a_tile_the_user_cuts_below_the_receptive_radius_is_warned_once(caplog):
    """``--tile 8`` makes tiled output differ from the whole-image output: that was said at
    INFO level only (invisible by default). It is a WARNING now when the user chose the tiling
    of a finite-radius model, said once also when the noise gate swaps in a blended model."""
    import logging

    from sr_domains.inference import Upscaler
    from sr_domains.pretrained import load_pretrained

    model = load_pretrained("sr-lite-gray-x2")
    with caplog.at_level(logging.INFO, logger="sr_domains.inference"):
        up = Upscaler(model, tile=8, device="cpu")
        up.with_model(load_pretrained("sr-lite-gray-x2-robust"))
    notes = [r for r in caplog.records if "approximates" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.WARNING]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sr_domains.inference"):
        Upscaler(model, device="cpu")  # the budget's tile: no warning
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_upscaler_takes_a_profile_recipe_name_as_upscale_array_does():
    """``Upscaler.upscale(profile="identity")`` failed with an AttributeError deep inside
    (the array API takes recipe names); the recipe is fitted to the array, same result."""
    from sr_domains.intensity import profile_from_any

    arr = np.random.default_rng(0).random((1, 12, 10)).astype(np.float32) * 100
    up = Upscaler(tiny_model(1, 2))
    fitted = profile_from_any("identity", arr, dtype=arr.dtype)
    np.testing.assert_array_equal(
        up.upscale(arr, profile="identity"), up.upscale(arr, profile=fitted)
    )
