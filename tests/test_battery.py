"""Battery degradations do what docs/degradations_and_metrics.md says, and the battery runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_domains.degrade import DegradationConfig, degrade, draw
from sr_domains.errors import ConfigError
from sr_domains.psf import gaussian_area_downsample, lanczos_upsample


def _ramp(h: int = 48, w: int = 40, axis: int = 1) -> np.ndarray:
    a = np.arange(w if axis == 1 else h, dtype=np.float32)
    img = np.tile(a, (h, 1)) if axis == 1 else np.tile(a[:, None], (1, w))
    return img[None]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_zero_width_psf_is_area_averaging(scale):
    x = np.random.default_rng(0).random((2, 48, 36)).astype(np.float32)
    box = x.reshape(2, 48 // scale, scale, 36 // scale, scale).mean((2, 4))
    np.testing.assert_allclose(gaussian_area_downsample(x, scale, 0.0), box, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("sigma", "minor", "angle"), [(0.8, None, 0.0), (1.0, 0.25, 30.0)])
def test_psf_is_centred_on_lr_pixel_centres(scale, sigma, minor, angle):
    """A linear ramp is reproduced exactly at LR centres k*s + (s-1)/2 (no half-pixel shift),
    for isotropic and rotated anisotropic PSFs alike (interior, away from the symmetric edge)."""
    for axis in (0, 1):
        lr = gaussian_area_downsample(
            _ramp(axis=axis), scale, sigma, sigma_minor=minor, angle=angle
        )
        k = np.arange(lr.shape[1] if axis == 0 else lr.shape[2]) * scale + (scale - 1) / 2
        line = lr[0, 5, :] if axis == 1 else lr[0, :, 5]
        inner = slice(3, -3)
        np.testing.assert_allclose(line[inner], k[inner], atol=1e-3)


def test_wider_psf_blurs_more_and_keeps_the_mean():
    x = np.zeros((1, 64, 64), np.float32)
    x[0, 30:34, 30:34] = 1.0
    narrow = gaussian_area_downsample(x, 2, 0.4)
    wide = gaussian_area_downsample(x, 2, 0.8)
    assert wide.max() < narrow.max()
    assert narrow.sum() == pytest.approx(x.sum() / 4, rel=1e-4)  # area averaging: flux kept
    assert wide.sum() == pytest.approx(x.sum() / 4, rel=1e-3)


def test_motion_psf_blurs_along_its_major_axis():
    dot = np.zeros((1, 64, 64), np.float32)
    dot[0, 32, 32] = 1.0
    along_x = gaussian_area_downsample(dot, 2, 1.5, sigma_minor=0.2, angle=0.0)[0]
    along_y = gaussian_area_downsample(dot, 2, 1.5, sigma_minor=0.2, angle=90.0)[0]
    var = lambda img, ax: float((img.sum(axis=ax) * (np.arange(32) - 16) ** 2).sum())  # noqa: E731
    assert var(along_x, 0) > 4 * var(along_x, 1)  # spread over columns
    assert var(along_y, 1) > 4 * var(along_y, 0)  # spread over rows
    diag = gaussian_area_downsample(dot, 2, 1.5, sigma_minor=0.2, angle=45.0)[0]
    assert diag[12, 12] > diag[12, 20] and diag[20, 20] > diag[12, 20]


def test_lanczos_keeps_constants_and_interpolates_smooth_ramps():
    assert np.allclose(lanczos_upsample(np.full((1, 8, 8), 3.0, np.float32), 3), 3.0, atol=1e-5)
    lr = _ramp(16, 16)
    up = lanczos_upsample(lr, 2)
    x = (np.arange(32) + 0.5) / 2 - 0.5  # voxel-centre rule
    np.testing.assert_allclose(up[0, 8, 6:-6], x[6:-6], atol=0.03)  # windowed sinc: ~0.02
    pairs = (up[0, 8, 0::2] + up[0, 8, 1::2]) / 2  # centred: each pair averages its LR pixel
    np.testing.assert_allclose(pairs[3:-3], lr[0, 8, 3:-3], atol=1e-4)


def test_random_degradation_is_deterministic_and_varied():
    cfg = DegradationConfig(
        kind="random",
        random_kinds=("bicubic", "gaussian", "wald", "motion", "kspace"),
        random_noise=(0.02, 0.03),
        noise_prob=0.5,
    )
    hr = torch.rand(16, 1, 32, 32)
    a = degrade(hr, 2, cfg, torch.Generator().manual_seed(3))
    b = degrade(hr, 2, cfg, torch.Generator().manual_seed(3))
    assert a.shape == (16, 1, 16, 16) and torch.equal(a, b)
    draws = [draw(cfg, torch.Generator().manual_seed(i)) for i in range(200)]
    assert {d.kind for d in draws} == set(cfg.random_kinds)
    sig = [d.psf_sigma for d in draws]
    assert min(sig) >= 0.2 and max(sig) <= 1.2
    noisy = [d for d in draws if d.gaussian_noise > 0 or d.rician_noise > 0]
    assert 0.3 < len(noisy) / len(draws) < 0.7  # noise_prob 0.5
    motion = [d for d in draws if d.kind == "motion"]
    assert all(d.psf_sigma_minor < d.psf_sigma for d in motion)


def test_battery_configs_and_bad_values():
    from sr_domains.train.battery import CASES

    assert len(CASES) >= 5
    for domain in ("medical", "satellite-rgb"):
        assert sum(domain in c.sets for c in CASES) >= 5
    with pytest.raises(ConfigError, match="random_kinds"):
        DegradationConfig(kind="random", random_kinds=("blur",))
    with pytest.raises(ConfigError, match="kind"):
        DegradationConfig(kind="sharpen")  # type: ignore[arg-type]
    assert math.isclose(DegradationConfig(kind="motion", psf_sigma=1.0).psf_sigma, 1.0)


def test_battery_refuses_evaluate_options_it_would_ignore(tmp_path, capsys):
    """``--battery --data mine/`` scored the fixed battery data, not the user's, without a word."""
    from sr_domains.cli import main

    for extra, flag in ((["--data", str(tmp_path)], "--data"), (["--png", "f.png"], "--png"),
                        (["--degradation", "wald"], "--degradation")):  # fmt: skip
        assert main(["evaluate", "--battery", *extra]) == 2
        assert f"{flag}: not used by --battery" in capsys.readouterr().err


def test_battery_runs_and_scores_a_model(shared_data):
    """The battery on a cheap stand-in model (bilinear): rows for every case of its sets,
    Lanczos and bicubic baselines computed on the same LR."""
    pytest.importorskip("skimage")
    from sr_domains.testing.medical import interp_model
    from sr_domains.train.battery import CASES, run_battery

    rgb_cases = tuple(c for c in CASES if "satellite-rgb" in c.sets)[:2]
    report = run_battery(
        [("bilinear", interp_model(2, "bilinear", in_channels=3))], cases=rgb_cases
    )
    assert [r.case for r in report.rows] == [c.name for c in rgb_cases]
    for r in report.rows:
        assert r.n_images >= 2 and r.sam is not None
        assert abs(r.psnr - r.psnr_bicubic) < 3  # bilinear is close to bicubic
        assert r.psnr_lanczos > 0
    assert "| bilinear | 2 | satellite-rgb |" in report.table()


def test_battery_at_a_scale_scores_the_defaults_upscale_picks(monkeypatch, capsys):
    """``--battery --scale 3`` scores what ``upscale --scale 3`` runs without a model (the x2
    defaults, resampled); ``--scale`` was ignored with ``--battery``."""
    from sr_domains.cli import main
    from sr_domains.pretrained import list_pretrained
    from sr_domains.train import battery
    from sr_domains.train.battery import BatteryReport

    if not {"sr-lite-gray-x2", "sr-lite-rgb-x2"} <= {e.name for e in list_pretrained()}:
        pytest.skip("no x2 defaults shipped")
    seen = []

    def fake(models, **kw):
        seen.extend((name, net.arch, net.scale, net.in_channels) for name, net in models)
        return BatteryReport()

    monkeypatch.setattr(battery, "run_battery", fake)
    assert main(["evaluate", "--battery", "--scale", "3"]) == 0
    assert seen == [
        ("sr-lite-gray-x2 resampled to x3", "resampled", 3, 1),
        ("sr-lite-rgb-x2 resampled to x3", "resampled", 3, 3),
    ]
    seen.clear()
    assert main(["evaluate", "--battery", "--scale", "2"]) == 0
    assert [s[0] for s in seen] == ["sr-lite-gray-x2", "sr-lite-rgb-x2"]
    assert main(["models"]) == 0
    assert "x3: no weights of its own; --scale 3 runs the x2 default" in capsys.readouterr().out


def test_battery_max_images_scores_the_first_images_of_each_set(shared_data, tmp_path):
    """`evaluate --battery --max-images N` was refused though the battery takes it (the
    benchmark script passed it): a quick look at a model on a few images."""
    import json

    from sr_domains.cli import main

    out = tmp_path / "b.json"
    argv = ["evaluate", "--battery", "--model", "sr-lite-gray-x2", "--max-images", "1"]
    assert main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows and all(r["n_images"] == 1 for r in rows)
