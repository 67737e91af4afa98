"""The shared internal-learning piece: patch sampler, pairs, budgeted deterministic trainer,
and the AxisSR network (any real factor, cubic when untrained, warm start, save/load)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_domains.adapt import (
    AxisSR,
    Budget,
    InternalPairs,
    PatchSampler,
    RowDegradation,
    axis_sr,
    fit,
    warm_start_from,
)
from sr_domains.adapt.axis_sr import Block, load_axis_sr
from sr_domains.adapt.trainer import lr_at
from sr_domains.checkpoint import ModelCard, save_checkpoint
from sr_domains.degrade import bicubic_downsample
from sr_domains.errors import CheckpointError, ConfigError
from sr_domains.image import resampled_size
from sr_domains.models import create_model
from sr_domains.models.blocks import ResBlock


def _image(n: int = 64, seed: int = 0) -> np.ndarray:
    """Flat background with a textured square in one corner."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, n), np.float32)
    img[: n // 2, : n // 2] = rng.random((n // 2, n // 2))
    return img


def test_sampler_draws_where_there_is_structure_and_is_deterministic():
    stack = np.stack([_image(), _image(seed=1)])
    sampler = PatchSampler([stack], (8, 8), uniform=0.0, flips=(False, False))
    a = sampler.sample(64, torch.Generator().manual_seed(3))
    b = sampler.sample(64, torch.Generator().manual_seed(3))
    c = sampler.sample(64, torch.Generator().manual_seed(4))
    assert a.shape == (64, 1, 8, 8)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert bool((a.flatten(1).std(1) > 0).all())  # never a flat background patch


def test_sampler_flips_and_needs_large_enough_images():
    img = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16)
    s = PatchSampler([img], (16, 16), flips=(True, True))
    seen = {
        tuple(s.sample(1, torch.Generator().manual_seed(k))[0, 0, 0, :2].tolist())
        for k in range(20)
    }
    assert len(seen) == 4  # identity, row flip, column flip, both
    with pytest.raises(ConfigError, match="large enough"):
        PatchSampler([img], (17, 16))


def test_row_degradation_and_pairs():
    w = np.zeros((2, 6), np.float32)
    w[0, 1:3] = 0.5
    w[1, 3:5] = 0.5
    deg = RowDegradation(w, (1, 4))
    x = torch.arange(6 * 3, dtype=torch.float32).view(1, 1, 6, 3)
    lr = deg(x)
    torch.testing.assert_close(lr[0, 0], torch.stack([x[0, 0, 1:3].mean(0), x[0, 0, 3:5].mean(0)]))
    torch.testing.assert_close(deg.target(x), x[:, :, 1:5])
    with pytest.raises(ConfigError, match="outside"):
        RowDegradation(w, (4, 4))
    pairs = InternalPairs(PatchSampler([np.stack([_image()])], (6, 8)), deg, deg.target, 4)
    inp, tgt = pairs(torch.Generator().manual_seed(0))
    assert inp.shape == (4, 1, 2, 8) and tgt.shape == (4, 1, 4, 8)


@pytest.mark.parametrize(("n", "factor"), [(7, 4.5), (10, 4.888), (5, 2.0), (9, 6.0)])
def test_axis_sr_any_real_factor_and_untrained_is_cubic(n, factor):
    """Output rows follow resampled_size; with the zero-initialised last layer the network is
    exactly Keys cubic interpolation on the voxel-centre grid (checked on a quadratic, which
    cubic convolution reproduces exactly away from the mirrored ends)."""
    model = axis_sr(factor).eval()
    m = resampled_size(n, factor)
    rows = torch.arange(n, dtype=torch.float32)
    x = (0.01 * rows**2).view(1, 1, n, 1).expand(2, 1, n, 5).contiguous()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, m, 5)
    u = (torch.arange(m, dtype=torch.float64) + 0.5) / factor - 0.5
    interior = (u >= 2) & (u <= n - 3)
    want = 0.01 * u**2
    torch.testing.assert_close(y[0, 0, interior, 0].double(), want[interior], atol=1e-5, rtol=0)


def test_axis_sr_rejects_bad_configs():
    with pytest.raises(ConfigError, match=">= 1"):
        axis_sr(0.5)
    with pytest.raises(ConfigError, match="one channel"):
        axis_sr(2.0, in_channels=3)
    with pytest.raises(ConfigError, match="local"):
        axis_sr(2.0, ca_pool="global")


def test_local_ca_block_equals_the_shared_resblock():
    ref = ResBlock(32, 1.0, True, 16, 5)
    blk = Block(32, 16, 5)
    blk.load_state_dict(ref.state_dict())
    x = torch.randn(2, 32, 11, 13)
    torch.testing.assert_close(blk(x), ref(x), atol=1e-5, rtol=1e-5)


def test_warm_start_from_the_shipped_gray_weights():
    from sr_domains.pretrained import load_pretrained

    src = load_pretrained("sr-lite-gray-x2")
    model = axis_sr(3.0)
    copied = warm_start_from(model, src)
    assert "body.0.conv1.weight" in copied and "conv_first.weight" in copied
    torch.testing.assert_close(
        model.state_dict()["body.7.ca.up.bias"], src.state_dict()["body.7.ca.up.bias"]
    )
    assert warm_start_from(axis_sr(3.0, n_feats=16), src) == []  # layouts differ: nothing


def test_save_and_load_a_fitted_axis_model(tmp_path):
    model = axis_sr(4.4, n_blocks=2)
    with torch.no_grad():
        model.conv_last.weight.normal_()
    path = save_checkpoint(model, tmp_path / "m.safetensors", ModelCard(name="test"))
    back = load_axis_sr(path)
    assert isinstance(back, AxisSR) and back.factor == pytest.approx(4.4)
    x = torch.rand(1, 1, 6, 9)
    torch.testing.assert_close(back(x), model.eval()(x))
    other = save_checkpoint(create_model("edsr-lite-ca", in_channels=1), tmp_path / "e.safetensors")
    with pytest.raises(CheckpointError, match="not a through-plane model"):
        load_axis_sr(other)


def _bicubic_pairs() -> InternalPairs:
    """In-plane adaptation pairs (what a per-image --adapt of a x2 model would use)."""
    stack = np.stack([_image(), _image(seed=2)])
    return InternalPairs(PatchSampler([stack], (24, 24)), lambda x: bicubic_downsample(x, 2))


def test_fit_is_deterministic_for_a_seed_and_steps(one_thread):
    def run(seed: int) -> tuple[dict, object]:
        torch.manual_seed(0)
        model = create_model("edsr-lite-ca", in_channels=1, scale=2)
        report = fit(model, _bicubic_pairs(), Budget(seconds=None, steps=4), seed=seed)
        return model.state_dict(), report

    a, ra = run(1)
    b, rb = run(1)
    c, _ = run(2)
    assert ra.steps == ra.planned_steps == 4 and ra.stopped_by == "steps"
    assert ra.losses == rb.losses
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_fit_reduces_the_loss_of_an_axis_model(one_thread):
    """A short fit on simulated thick slices improves on the cubic start."""
    rng = np.random.default_rng(0)
    stack = np.zeros((4, 64, 64), np.float32)
    for img in stack:  # sharp-edged squares
        for _ in range(6):
            r, c = rng.integers(0, 48, 2)
            img[r : r + rng.integers(6, 16), c : c + rng.integers(6, 16)] += rng.random()
    w = np.zeros((4, 24), np.float32)
    for j in range(4):
        w[j, 4 + 4 * j : 8 + 4 * j] = 0.25
    deg = RowDegradation(w, (4, 16))
    pairs = InternalPairs(PatchSampler([stack], (24, 24)), deg, deg.target, batch_size=8)
    model = axis_sr(4.0, n_blocks=2)
    report = fit(model, pairs, Budget(seconds=None, steps=150), lr=5e-4)
    assert report.loss_end < 0.9 * report.loss_start


def test_time_budget_plans_the_decay_and_replays_exactly(one_thread, capsys):
    """A time budget fixes (D, N) late from the recent step time; Budget(steps=N, decay_from=D)
    with the same seed repeats the run bit for bit."""

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model("edsr-lite-ca", in_channels=1, scale=2, n_blocks=1)

    a = model()
    report = fit(a, _bicubic_pairs(), Budget(seconds=1.0, warmup_steps=2), progress=True, seed=5)
    assert report.steps >= 3
    assert 2 <= report.decay_from <= report.planned_steps
    assert report.seconds < 30
    err = capsys.readouterr().err
    assert "internal learning" in err and "step" in err
    assert not a.training
    if report.stopped_by == "steps":  # a machine that slowed down stops early instead
        b = model()
        again = Budget(None, report.planned_steps, warmup_steps=2, decay_from=report.decay_from)
        rb = fit(b, _bicubic_pairs(), again, seed=5)
        assert rb.losses == report.losses
        for k, v in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[k], v, atol=0, rtol=0)


def test_budget_and_schedule():
    with pytest.raises(ConfigError, match="seconds, steps or both"):
        Budget(seconds=None)
    with pytest.raises(ConfigError, match=">= 0"):
        Budget(seconds=-1)
    assert Budget.minutes(2, 10) == Budget(seconds=120.0, steps=10)
    assert lr_at(0, 100, 1.0, 10, 70) == pytest.approx(1 / 11)
    assert lr_at(10, 100, 1.0, 10, 70) == lr_at(69, 100, 1.0, 10, 70) == 1.0
    assert lr_at(85, 100, 1.0, 10, 70) == pytest.approx(0.505)
    assert lr_at(100, 100, 1.0, 10, 70) == pytest.approx(0.01)
    assert lr_at(500, None, 1.0, 10, 0) == 1.0  # not planned yet: plateau
    zero = fit(create_model("edsr-lite-ca", in_channels=1), _bicubic_pairs(), Budget(None, 0))
    assert zero.steps == 0
