"""Tile planning and the seam-free guarantee: tiled output equals whole-image output."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sr_domains.array_api import upscale_array
from sr_domains.errors import ConfigError
from sr_domains.inference import Upscaler, resolve_tiling
from sr_domains.intensity import profile_from_any
from sr_domains.testing import tiny_model
from sr_domains.tiling import axis_weights, make_plan, plan_axis
from sr_domains.value_domain import ValueOptions

RAW = ValueOptions(clamp=False)  # these tests compare raw network outputs


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 400),
    tile=st.integers(1, 200),
    overlap=st.integers(0, 60),
    multiple=st.sampled_from([1, 2, 4]),
    data=st.data(),
)
def test_axis_plan_covers_and_weights_partition_unity(size, tile, overlap, multiple, data):
    size = -(-size // multiple) * multiple
    length = max(multiple, (min(tile, size) // multiple) * multiple)
    if length < size and (length - overlap) // multiple < 1:
        with pytest.raises(ConfigError):
            plan_axis(size, length, overlap, multiple)
        return
    starts = plan_axis(size, length, overlap, multiple)
    assert starts[0] == 0 and starts[-1] + length == size
    assert all(s % multiple == 0 for s in starts)
    assert all(0 < b - a <= length - overlap for a, b in itertools.pairwise(starts))
    margin = data.draw(st.integers(0, overlap // 2))
    weights = axis_weights(starts, length, margin)
    total = np.zeros(size)
    for k, (s, w) in enumerate(zip(starts, weights)):
        total[s : s + length] += w
        if k > 0:
            assert np.all(w[:margin] == 0), "pixels without context must get no weight"
        if k < len(starts) - 1 and margin:
            assert np.all(w[-margin:] == 0)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    h=st.integers(1, 70),
    w=st.integers(1, 70),
    channels=st.sampled_from([1, 3, 4, 13]),
    scale=st.sampled_from([2, 3, 4]),
    tile=st.integers(8, 40),
    extra=st.integers(0, 6),
    batch=st.integers(1, 3),
)
def test_tiled_equals_whole_image(h, w, channels, scale, tile, extra, batch):
    model = tiny_model(channels, scale, seed=channels)
    radius = model.receptive_radius()
    overlap = 2 * radius + extra
    if tile < 2 * overlap:
        tile = 2 * overlap
    x = np.random.default_rng(h * 71 + w).random((channels, h, w), dtype=np.float32)
    whole = upscale_array(x, model, profile="identity", tile=10_000)
    tiled = upscale_array(
        x, model, profile="identity", tile=tile, overlap=overlap, batch_size=batch
    )
    assert tiled.shape == (channels, h * scale, w * scale)
    assert np.abs(tiled - whole).max() < 1e-5


def test_tiled_equals_whole_for_size_multiple_models():
    """Windows start on multiples of the model's size multiple (pixel-unshuffle models)."""

    class Unshuffle(type(tiny_model())):
        size_multiple = 2

        def body(self, x):
            y = torch.nn.functional.pixel_unshuffle(x, 2)
            y = torch.nn.functional.pixel_shuffle(y * 1.5, 2)
            return super().body(y)

        def receptive_radius(self):
            return 4

    from sr_domains.models.base import BaseSRConfig

    model = Unshuffle(BaseSRConfig(in_channels=2, scale=2)).eval()
    x = np.random.default_rng(3).random((2, 37, 29), dtype=np.float32)
    whole = upscale_array(x, model, profile="identity", tile=10_000)
    for tile in (16, 18, 21):
        tiled = upscale_array(x, model, profile="identity", tile=tile, overlap=8)
        assert np.abs(tiled - whole).max() < 1e-5


def test_too_small_overlap_differs_but_blends():
    model = tiny_model(1, 2)
    x = np.random.default_rng(0).random((1, 64, 64), dtype=np.float32)
    whole = upscale_array(x, model, profile="identity", tile=10_000)
    rough = upscale_array(x, model, profile="identity", tile=16, overlap=0)
    assert np.abs(rough - whole).max() > 1e-3  # no context at the seams
    assert resolve_tiling(model, 16, 0).exact is False
    assert resolve_tiling(model, 16, None).exact is True


def test_default_overlap_follows_receptive_field():
    model = tiny_model(1, 2)
    t = resolve_tiling(model)
    assert t.margin == model.receptive_radius() and t.overlap == 2 * t.margin and t.exact


def test_plan_rejects_bad_parameters():
    with pytest.raises(ConfigError):
        make_plan((10, 10), scale=2, tile=8, overlap=4, margin=3)
    with pytest.raises(ConfigError):
        make_plan((100, 100), scale=2, tile=8, overlap=8, margin=2)
    with pytest.raises(ConfigError):
        plan_axis(0, 4, 0)


def test_stream_yields_rows_in_order_aligned_to_flush_rows():
    model = tiny_model(2, 2)
    up = Upscaler(model, tile=24, overlap=8, device="cpu")
    x = np.random.default_rng(0).random((2, 90, 50), dtype=np.float32)
    prof = profile_from_any("identity")

    def read(y0, x0, h, w):
        return x[:, y0 : y0 + h, x0 : x0 + w], None

    rows = []
    for row0, block in up.stream(read, (90, 50), 2, profile=prof, flush_rows=16):
        assert row0 == sum(b.shape[1] for b in rows)
        if row0 + block.shape[1] < 180:
            assert (row0 + block.shape[1]) % 16 == 0
        rows.append(block)
    out = np.concatenate(rows, axis=1)
    whole = upscale_array(x, model, profile="identity", tile=10_000, values=RAW)
    np.testing.assert_allclose(out, whole, atol=1e-5)


def _finite_small(arch: str) -> dict:
    from tests._model_cases import small

    kw = small(arch)
    if arch == "rcan":
        kw["ca_pool"] = 3  # local pooling: finite receptive field
    return kw


@pytest.mark.parametrize("arch", ["srcnn", "edsr", "rcan", "rrdb"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hf=st.floats(0.5, 2.5),
    wf=st.floats(1.2, 2.5),
    channels=st.sampled_from([1, 3, 4, 13]),
    scale=st.sampled_from([2, 3, 4]),
    extra=st.integers(0, 4),
    tile_factor=st.floats(2.0, 3.0),
)
def test_every_registered_arch_tiles_exactly(arch, hf, wf, channels, scale, extra, tile_factor):
    from sr_domains.engine_config import torch_threads

    with torch_threads(1):  # (the worker's own count again after: tests/conftest.py)
        _tiles_exactly(arch, hf, wf, channels, scale, extra, tile_factor)


def _tiles_exactly(arch, hf, wf, channels, scale, extra, tile_factor) -> None:
    from sr_domains.models import create_model, model_registry

    assert arch in model_registry().names()
    model = create_model(arch, in_channels=channels, scale=scale, **_finite_small(arch))
    radius = model.receptive_radius()
    assert radius is not None
    overlap = 2 * radius + extra
    tile = int(tile_factor * overlap)
    h, w = max(1, int(hf * tile)), int(wf * tile)  # width always needs several windows
    assert Upscaler(model, tile=tile, overlap=overlap, device="cpu").plan((h, w)).n_windows > 1
    x = np.random.default_rng(h + 7 * w).random((channels, h, w), dtype=np.float32)
    whole = upscale_array(x, model, profile="identity", tile=10_000, device="cpu")
    tiled = upscale_array(x, model, profile="identity", tile=tile, overlap=overlap, device="cpu")
    assert np.abs(tiled - whole).max() < 1e-5


def test_registry_has_no_arch_missing_from_the_exactness_test():
    from sr_domains.models import model_registry

    assert set(model_registry().names()) == {"srcnn", "edsr", "rcan", "rrdb"}
