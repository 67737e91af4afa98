"""The engine's speed features keep results and obey their options (issue 12).

Memory budget -> tile, channels-last defaults, threads, engine settings, the one-window path
and the block-wise value rules. No timing asserts: benchmarks/speed.py measures speed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_domains.array_api import upscale_array
from sr_domains.engine_config import EngineSettings, current_settings, engine_settings
from sr_domains.errors import ConfigError
from sr_domains.inference import Upscaler
from sr_domains.intensity import cast_to_dtype, profile_from_any
from sr_domains.memory import (
    _dispatch_mode,
    _LiveStorages,
    forward_bytes_per_pixel,
    resolve_budget,
    tile_for_budget,
)
from sr_domains.models import create_model
from sr_domains.options import UpscaleOptions, parse_bytes
from sr_domains.testing import tiny_model
from sr_domains.value_domain import ValueDomain, ValueRules, array_reader

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_parse_bytes_and_its_errors():
    assert parse_bytes("4G") == 4 * 2**30
    assert parse_bytes("512M") == parse_bytes("512MiB") == parse_bytes("512mb") == 512 * 2**20
    assert parse_bytes("1.5g") == int(1.5 * 2**30)
    assert parse_bytes(2**30) == 2**30
    for bad in ("lots", "4X", "1M", "-2G"):
        with pytest.raises(ConfigError, match="max memory"):
            parse_bytes(bad)
    assert resolve_budget("auto", CPU) == resolve_budget(None, CPU) >= 2**30


@pytest.mark.parametrize(
    ("arch", "side"),
    [("edsr-lite-ca", 280), ("edsr-lite-ca", 64), ("srcnn", 64), ("rrdb-small", 48)],
)
def test_shape_only_probe_matches_a_real_forward(arch, side):
    """The meta-device probe counts the same live tensor bytes as a real forward (280 rows:
    EDSR's banded tail)."""
    model = create_model(
        arch, in_channels=3, scale=2, **({"n_blocks": 1} if "edsr" in arch else {})
    )
    meta = forward_bytes_per_pixel(model.eval(), 3, CPU, side=side)
    probe = _LiveStorages()
    with torch.inference_mode(), _dispatch_mode(probe):
        model(torch.rand(1, 3, side, side))
    assert meta > 0
    assert abs(meta - probe.peak / side**2) <= 0.05 * meta + 64


def test_default_tile_follows_the_memory_budget():
    model = create_model("edsr-lite-ca", in_channels=3, scale=2)
    small = Upscaler(model, device="cpu", max_memory="256M")
    large = Upscaler(model, device="cpu", max_memory="4G")
    assert small.tiling.tile < large.tiling.tile
    assert small.memory_budget == 256 * 2**20
    # 4 GiB: a 1024^2 image is one window, a 4096^2 one is computed with < 10% extra work
    assert large.plan((1024, 1024)).n_windows == 1
    plan = large.plan((4096, 4096))
    work = len(plan.ys) * len(plan.xs) * plan.tile[0] * plan.tile[1] / 4096**2
    assert work <= 1.10
    assert Upscaler(model, device="cpu", tile=96).tiling.tile == 96  # explicit tile wins


def test_tile_for_budget_is_bounded_and_aligned():
    assert tile_for_budget(2**40, 1.0) == 8192
    assert tile_for_budget(2**20, 10_000.0, floor=200) == 200
    tile = tile_for_budget(2**30, 1000.0, multiple=3)
    assert tile % 3 == 0 and tile % 8 == 0
    assert tile_for_budget(2**30, 1000.0, batch=4) < tile_for_budget(2**30, 1000.0)


def test_channels_last_defaults_per_architecture():
    assert Upscaler(create_model("edsr-lite-ca"), device="cpu", tile=64).channels_last
    assert not Upscaler(tiny_model(1, 2), device="cpu", tile=64).channels_last  # foreign nets
    assert not Upscaler(
        create_model("srcnn"), device="cpu", tile=64, channels_last=False
    ).channels_last


def test_channels_last_and_nchw_give_the_same_output():
    model = create_model("edsr-lite-ca", in_channels=2, scale=2, n_blocks=2)
    x = np.random.default_rng(0).random((2, 40, 30), dtype=np.float32)
    prof = profile_from_any("identity")
    a = Upscaler(model, device="cpu", tile=24, channels_last=True).upscale(x, profile=prof)
    b = Upscaler(model, device="cpu", tile=24, channels_last=False).upscale(x, profile=prof)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_threads_apply_while_streaming_and_are_restored():
    seen = []

    class Spy(type(tiny_model())):
        def body(self, x):
            seen.append(torch.get_num_threads())
            return super().body(x)

    from sr_domains.models.base import BaseSRConfig

    model = Spy(BaseSRConfig(in_channels=1, scale=2)).eval()
    before = torch.get_num_threads()
    up = Upscaler(model, device="cpu", tile=16, threads=before + 1)
    up.upscale(np.zeros((1, 40, 40), np.float32), profile=profile_from_any("identity"))
    assert seen and set(seen) == {before + 1}
    assert torch.get_num_threads() == before


def test_engine_settings_reach_engines_built_inside():
    model = tiny_model(1, 2)
    assert current_settings() == EngineSettings()
    with engine_settings(EngineSettings(threads=3, max_memory="64M")):
        up = Upscaler(model, device="cpu")
        assert up.threads == 3 and up.memory_budget == 64 * 2**20
        assert Upscaler(model, device="cpu", threads=2).threads == 2  # explicit wins
    assert Upscaler(model, device="cpu", tile=32).threads is None
    with pytest.raises(ConfigError, match="backend"):
        EngineSettings(backend="tensorrt")


def test_upscale_options_validate_engine_fields():
    opts = UpscaleOptions(backend="onnxruntime", threads=2, max_memory="2G")
    assert (opts.backend, opts.threads, opts.max_memory) == ("onnxruntime", 2, "2G")
    with pytest.raises(ConfigError, match="backend"):
        UpscaleOptions(backend="tvm")
    with pytest.raises(ConfigError, match="threads"):
        UpscaleOptions(threads=0)
    with pytest.raises(ConfigError, match="max memory"):
        UpscaleOptions(max_memory="a lot")


def test_one_window_equals_many_windows():
    """The one-window fast path (no weights, no accumulator) gives the tiled result."""
    model = create_model("edsr-lite-ca", in_channels=1, scale=2, n_blocks=1)
    x = np.random.default_rng(1).integers(0, 4000, (1, 90, 70)).astype(np.uint16)
    one = upscale_array(x, model, tile=4096)
    many = upscale_array(x, model, tile=48)
    assert np.abs(one.astype(int) - many.astype(int)).max() <= 1


def _gather_reference(rules: ValueRules, out, values, valid, shape, row0, s):
    h, w = shape
    a = max(0, row0 // s - rules.radius)
    b = min(h, (row0 + out.shape[1] - 1) // s + 1 + rules.radius)
    v, m = array_reader(values, valid)(a, 0, b - a, w)
    ok = np.isfinite(v)
    if m is not None:
        ok &= np.broadcast_to(m, v.shape)
    rules.stats.add(rules._apply_gather(out, v, ok, row0, a, s))


def test_block_value_rules_equal_the_gather_rules():
    """The broadcast (block) implementation changes no value and no count."""
    rng = np.random.default_rng(0)
    for trial in range(160):
        c, h, w, s = int(rng.integers(1, 4)), *rng.integers(3, 16, 2), int(rng.integers(2, 5))
        values = rng.integers(0, 6, (c, h, w)).astype(np.float32)
        if trial % 3 == 0:
            values[0, 0, 0] = np.nan
        valid = rng.random((h, w)) > 0.2 if trial % 2 else None
        out = rng.random((c, h * s, w * s)).astype(np.float32) * 9 - 2
        if trial % 4 >= 2:  # close to the input with a few spikes: the sparse (gather) path
            out = np.nan_to_num(values).repeat(s, 1).repeat(s, 2).astype(np.float32)
            spikes = rng.random(out.shape) < 0.01
            out[spikes] += rng.normal(0, 3, int(spikes.sum())).astype(np.float32)
        kw = {
            "envelope": [None, 0.0, 0.3][trial % 3],
            "domain": ValueDomain((0.0,) * c, (4.5,) * c) if trial % 4 else None,
            "pinned": ((5.0, 0.0),) if trial % 2 else (),
            "radius": int(rng.integers(1, 3)),
        }
        fast, ref = ValueRules(**kw), ValueRules(**kw)
        row0 = int(rng.integers(0, h)) * s
        rows = int(rng.integers(1, h - row0 // s + 1)) * s
        o1 = out[:, row0 : row0 + rows].copy()
        o2 = o1.copy()
        fast.apply(o1, array_reader(values, valid), (h, w), row0, s)
        _gather_reference(ref, o2, values, valid, (h, w), row0, s)
        np.testing.assert_array_equal(o1, o2, err_msg=str(trial))
        assert fast.stats == ref.stats, trial


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "uint32"])
def test_integer_casts_equal_the_float64_rounding(dtype):
    info = np.iinfo(dtype)
    v = np.random.default_rng(0).normal(0, 1, 5000).astype(np.float32) * float(info.max) * 1.3
    v[:4] = [np.nan, np.inf, -np.inf, 0.5]
    ref = np.nan_to_num(np.clip(np.rint(v.astype(np.float64)), info.min, info.max), nan=0)
    np.testing.assert_array_equal(cast_to_dtype(v, dtype), ref.astype(dtype))


def test_keep_freed_memory_reports_whether_it_applied():
    import ctypes.util
    import sys

    from sr_domains.memory import keep_freed_memory

    applied = keep_freed_memory()
    assert isinstance(applied, bool)
    glibc = sys.platform.startswith("linux") and "libc.so.6" in str(ctypes.util.find_library("c"))
    if glibc:
        assert applied
