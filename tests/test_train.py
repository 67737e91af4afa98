"""The trainer: loss goes down, checkpoints round-trip, resume is exact, GAN stage, torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sr_domains.checkpoint import load_checkpoint
from sr_domains.cli import main
from sr_domains.config import to_dict
from sr_domains.degrade import describe_degradation
from sr_domains.errors import ConfigError, InputFileError, OutputExistsError, UnsafeOutputError
from sr_domains.train.config import TrainConfig, apply_overrides, load_train_config
from sr_domains.train.trainer import Trainer, build_generator, train

PIL = pytest.importorskip("PIL.Image")
REPO = Path(__file__).resolve().parents[1]


def _images(folder: Path, n: int = 3, size: int = 80) -> Path:
    """Smooth textured grayscale PNGs (sums of random sinusoids)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    for i in range(n):
        img = np.zeros((size, size), np.float32)
        for _ in range(6):
            fy, fx = rng.uniform(0.05, 0.6, 2)
            img += np.sin(fy * yy + fx * xx + rng.uniform(0, 6))
        img = (img - img.min()) / (img.max() - img.min()) * 255
        PIL.fromarray(img.astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def _config(tmp_path: Path, **over) -> TrainConfig:
    data = _images(tmp_path / "data")
    raw = {
        "name": "tiny",
        "scale": 2,
        "steps": 30,
        "batch_size": 4,
        "model": {"arch": "edsr", "in_channels": 1, "options": {"n_blocks": 1, "n_feats": 8}},
        "data": {"paths": [str(data)], "channels": 1, "patch_size": 32, "patches_per_epoch": 64},
        "optim": {"lr": 0.002, "ema_decay": 0.9},
        "val": {"data": {"paths": [str(data)], "channels": 1}, "every": 30, "max_images": 2},
        "out_dir": str(tmp_path / "runs"),
        "log_every": 5,
        "checkpoint_every": 10,
        "threads": 1,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = load_train_config(path)
    return apply_overrides(cfg, over) if over else cfg


def test_every_shipped_config_loads_strictly_and_builds_its_model():
    paths = sorted((REPO / "configs").rglob("*.yaml"))
    assert len(paths) >= 20
    for path in paths:
        cfg = load_train_config(path)
        assert cfg.data.patch_size % cfg.scale == 0, path
        if cfg.model.init_from is None:
            model = build_generator(cfg)
            assert (model.scale, model.in_channels) == (cfg.scale, cfg.model.in_channels), path


def test_unknown_and_mistyped_keys_are_rejected(tmp_path):
    cfg = _config(tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        apply_overrides(cfg, {"stpes": 3})
    with pytest.raises(ConfigError, match="optim.lr"):
        apply_overrides(cfg, {"optim.lr": "fast"})
    with pytest.raises(ConfigError, match="card.spectral"):  # at load, not after training
        apply_overrides(cfg, {"card.spectral": "bicubik"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {arch: edsr}\ndata: {paths: [a]}\noptimiser: {lr: 1}\n")
    # YAML 1.1 reads 1e-4 (no dot) as a string; a float field takes it as the number it is
    assert apply_overrides(cfg, {"optim.lr": "1e-4"}).optim.lr == pytest.approx(1e-4)
    ok = tmp_path / "ok.yaml"
    ok.write_text("name: x\nmodel: {arch: edsr}\ndata: {paths: [a]}\noptim: {lr: 2e-4}\n")
    assert load_train_config(ok).optim.lr == pytest.approx(2e-4)
    with pytest.raises(ConfigError, match="optimiser"):
        load_train_config(bad)


def test_30_steps_decrease_the_loss_and_the_weights_round_trip(tmp_path):
    cfg = apply_overrides(_config(tmp_path, tensorboard=True), {"card.spectral": "bicubic"})
    result = train(cfg, progress=False)
    assert result.steps == 30 and len(result.losses) == 6
    assert np.mean(result.losses[-2:]) < 0.7 * np.mean(result.losses[:2])
    model, card = load_checkpoint(result.weights)
    assert card.arch == "edsr" and card.scale == 2 and card.profile["recipe"] == cfg.data.profile
    assert card.spectral == "bicubic"  # the config's card fields reach the weights
    assert "img0.png" in card.training_data or "3 " in card.training_data
    # the degradation said in words (it was the whole DegradationConfig as YAML, every field)
    assert f"Degradation: {describe_degradation(cfg.degradation)}." in card.training_data
    assert "mtf_nyquist" not in card.training_data and "random_kinds" not in card.training_data
    assert set(result.validation) >= {"psnr", "psnr_bicubic", "ssim"}
    assert card.metrics["psnr"] == pytest.approx(result.validation["psnr"], abs=1e-3)
    state = torch.load(result.run_dir / "last.pt", weights_only=False)
    ema = build_generator(cfg)
    ema.load_state_dict(state["ema"]["model"])
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(x), ema.eval()(x))  # saved weights are the EMA weights, exactly
    log = (result.run_dir / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and log[-1].startswith("30,")
    assert (result.run_dir / "val.csv").read_text().count("\n") == 2  # header + step 30
    assert list((result.run_dir / "tb").glob("events.out.tfevents.*"))


def test_resume_continues_exactly(tmp_path):
    straight = train(_config(tmp_path / "a", steps=20), progress=False)
    cfg = _config(tmp_path / "b", steps=20)
    paused = train(cfg, progress=False, stop_at=10)
    assert paused.steps == 10 and paused.weights is None
    assert (cfg.run_dir / "last.pt").exists() and not (cfg.run_dir / "weights.safetensors").exists()
    resumed = train(cfg, resume=True, progress=False)
    assert resumed.steps == 20
    a, _ = load_checkpoint(straight.weights)
    b, _ = load_checkpoint(resumed.weights)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_an_existing_run_is_not_overwritten_unless_asked(tmp_path):
    cfg = _config(tmp_path, steps=2, **{"val.every": 100})
    first = train(cfg, progress=False)
    before = first.weights.read_bytes()
    with pytest.raises(OutputExistsError):
        train(cfg, progress=False)
    assert first.weights.read_bytes() == before
    again = train(cfg, overwrite=True, progress=False)
    assert again.weights.exists()


def test_overwrite_clears_only_a_run_folder_and_never_the_users_files(tmp_path, capsys):
    """Starting over removes a run's own outputs (old TensorBoard events and a killed run's
    temporaries too) but never a folder holding anything else, nor the --config it read."""
    cfg = _config(tmp_path, steps=2, **{"val.every": 100})
    run = cfg.run_dir
    train(cfg, progress=False)
    old_events = run / "tb" / "events.out.tfevents.1700000000.host.123.0"
    old_events.parent.mkdir()
    old_events.write_text("old run")
    (run / ".last.pt.123.abcd1234.tmp").write_bytes(b"killed")
    train(cfg, overwrite=True, progress=False)
    assert not old_events.exists()
    assert not (run / ".last.pt.123.abcd1234.tmp").exists()
    notes = run / "notes.txt"
    notes.write_text("mine")
    weights = (run / "weights.safetensors").read_bytes()
    with pytest.raises(UnsafeOutputError, match=r"not a run's outputs \(notes.txt\)"):
        train(cfg, overwrite=True, progress=False)
    assert notes.read_text() == "mine"
    assert (run / "weights.safetensors").read_bytes() == weights  # nothing removed
    # a config kept as RUN_DIR/config.yaml is the CLI's input: never replaced by the run's
    notes.unlink()
    user_cfg = run / "config.yaml"
    user_cfg.write_text(yaml.safe_dump(to_dict(cfg)) + "# my notes\n")
    assert main(["train", "--config", str(user_cfg), "--overwrite", "--no-progress"]) != 0
    assert "would replace the input" in capsys.readouterr().err
    assert user_cfg.read_text().endswith("# my notes\n")


def test_overwrite_with_a_bad_setting_keeps_the_previous_run(tmp_path):
    """``--overwrite`` removed the previous run's weights, then the run failed on a setting
    found wrong while it was set up (a missing data path, an unknown model option): a typo
    lost the previous weights. It is now refused before anything is removed; a per-band MTF
    of the wrong length is refused with the config, not at the first step."""
    cfg = _config(tmp_path, steps=2, **{"val.every": 100})
    run = cfg.run_dir
    train(cfg, progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    bad = [
        (apply_overrides(cfg, {"data.paths": [str(tmp_path / "nope.tif")]}), "nope.tif"),
        (apply_overrides(cfg, {"model.options": {"n_feats_typo": 7}}), "n_feats_typo"),
    ]
    for wrong, match in bad:
        with pytest.raises((ConfigError, InputFileError), match=match):
            train(wrong, overwrite=True, progress=False)
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    three = {"degradation.mtf_nyquist": [0.3, 0.2, 0.1]}
    with pytest.raises(ConfigError, match=r"degradation.mtf_nyquist: 3 values for 1 band"):
        apply_overrides(cfg, {**three, "degradation.kind": "wald"})
    apply_overrides(cfg, {**three, "degradation.kind": "bicubic"})  # (not read: no error)


def test_gan_stage_trains_generator_and_discriminator(tmp_path):
    cfg = _config(
        tmp_path,
        steps=3,
        **{
            "loss.perceptual_weight": 1.0,
            "loss.gan_weight": 0.1,
            "loss.discriminator": {"kind": "unet", "n_feats": 8},
            "val.every": 100,
        },
    )
    from sr_domains.train.dist import DistInfo

    trainer = Trainer(cfg, DistInfo(0, 1, 0, torch.device("cpu")), progress=False)
    before = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    from sr_domains.train.run_parts import Batches

    batches = Batches(trainer.dataset, cfg, trainer.info).from_step(0)
    stats = [trainer.train_step(next(batches)) for _ in range(3)]
    for s in stats:
        assert {"loss_gan", "loss_d", "loss_perceptual"} <= set(s)
        assert all(np.isfinite(v) for v in s.values())
    after = trainer.disc.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow  # two fresh interpreters under torchrun; CI runs it in the slow step
def test_torchrun_two_cpu_processes_run_two_steps(tmp_path):
    cfg = _config(tmp_path, steps=2, batch_size=2, **{"val.every": 100})
    path = tmp_path / "ddp.yaml"
    from sr_domains.config import dump_yaml

    path.write_text(dump_yaml(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "sr_domains", "train", "--config", str(path), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = cfg.run_dir
    assert (run / "weights.safetensors").exists()
    assert (run / "log.csv").read_text().splitlines()[-1].startswith("2,")
    _, card = load_checkpoint(run / "weights.safetensors")
    assert "2 process(es)" in card.training_data


def test_resume_with_another_model_is_one_clear_error(tmp_path, capsys):
    """A changed ``model`` section on --resume ended in a state-dict traceback; a failed start
    left an empty run folder; a negative --stop-at paused "at step 0"."""
    cfg = _config(tmp_path, steps=4, **{"val.every": 100})
    train(cfg, progress=False, stop_at=2)
    other = apply_overrides(cfg, {"model.options.n_blocks": 2})
    with pytest.raises(ConfigError, match="started with model .* resume with the same model"):
        train(other, resume=True, progress=False)
    changed = apply_overrides(cfg, {"steps": 5})  # other settings: resumed, and recorded
    assert train(changed, resume=True, progress=False).steps == 5
    assert "steps: 5" in (cfg.run_dir / "config.yaml").read_text()
    bad = apply_overrides(_config(tmp_path / "b", steps=2), {"model.options.n_feats": -1})
    with pytest.raises(Exception):  # noqa: B017 - whatever the model says: no folder is left
        train(bad, progress=False)
    assert not bad.run_dir.exists()
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    with pytest.raises(SystemExit):
        main(["train", "--config", str(path), "--stop-at", "-3"])
    assert "step number >= 1" in capsys.readouterr().err


def test_init_from_another_model_names_both_models_in_a_short_error(tmp_path):
    """A config initialised from weights of another model listed every key in torch's words
    over dozens of lines; it now names both models and the first few keys."""
    cfg = apply_overrides(
        _config(tmp_path),
        {"model.init_from": str(REPO / "sr_domains" / "weights" / "sr-lite-rgb-x2.safetensors")},
    )
    with pytest.raises(ConfigError) as err:
        build_generator(cfg)
    msg = str(err.value)
    assert "3 band(s), does not fit this config's edsr x2, 1 band(s)" in msg
    assert "init_partial" in msg and "(+" in msg and "\n" not in msg and len(msg) < 1500
    partial = apply_overrides(cfg, {"model.in_channels": 3, "model.init_partial": True})
    assert build_generator(partial).in_channels == 3  # the tensors that fit are loaded


def test_each_log_row_averages_every_loss_over_the_same_steps(tmp_path):
    """log.csv's `loss` was the interval mean but `loss_pixel` the last step's: in a pure L1
    run the two columns differed (0.4316 vs 0.3775)."""
    import csv

    cfg = _config(tmp_path, steps=6, log_every=3, **{"val.every": 100})
    train(cfg, progress=False)
    with open(cfg.run_dir / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["3", "6"]
    for r in rows:
        assert float(r["loss"]) == pytest.approx(float(r["loss_pixel"]), rel=1e-6), r


def test_validation_data_of_another_band_count_is_refused_before_step_one(tmp_path):
    """3-band validation images for a 1-band model trained first, then failed at the first
    validation with an error naming neither val.data nor the file, leaving a run folder."""
    from sr_domains.testing.images import make_pngs

    rgb = make_pngs(tmp_path / "rgb", 1, 40, True)
    cfg = apply_overrides(
        _config(tmp_path),
        {"val.data.paths": [str(rgb)], "val.data.channels": None, "val.every": 2},
    )
    with pytest.raises(ConfigError, match=r"val\.data: im0\.png has 3 channel\(s\)"):
        train(cfg, progress=False)
    assert not cfg.run_dir.exists()


def test_a_missing_path_says_which_section_gave_it(tmp_path):
    """A wrong validation path said "nothere: no such file or folder", like a training one."""
    cfg = _config(tmp_path)
    for key in ("data.paths", "val.data.paths"):
        bad = apply_overrides(cfg, {key: [str(tmp_path / "nothere")]})
        with pytest.raises(InputFileError, match=rf"nothere: no such file or folder \({key}\)"):
            train(bad, progress=False)


def test_init_from_a_narrower_model_of_the_same_family_names_the_option(tmp_path):
    """Both models were described alike ("edsr x2, 1 band(s)") when only a width differed."""
    cfg = _config(tmp_path, steps=2, **{"val.every": 100})
    weights = train(cfg, progress=False).weights
    wider = apply_overrides(
        cfg, {"model.options.n_feats": 16, "model.init_from": str(weights), "name": "w"}
    )
    with pytest.raises(ConfigError, match=r"1 band\(s\) \(n_feats 8 vs 16\) \(set model"):
        build_generator(wider)


def test_empty_validation_paths_say_how_to_switch_validation_off(tmp_path):
    bad = apply_overrides(_config(tmp_path), {"val.data.paths": []})
    with pytest.raises(ConfigError, match=r"val\.data: give paths .*val\.data: null"):
        train(bad, progress=False)
    off = apply_overrides(_config(tmp_path / "b", steps=2), {"val.data": None})
    assert train(off, progress=False).validation == {}


def test_the_card_says_which_weights_a_fine_tune_started_from(tmp_path):
    from sr_domains.train.dist import DistInfo
    from sr_domains.train.run_files import final_card

    start = REPO / "sr_domains" / "weights" / "sr-lite-gray-x2.safetensors"
    cfg = apply_overrides(_config(tmp_path), {"model.init_from": str(start)})
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    card = final_card(cfg, build_generator(_config(tmp_path)), "3 images.", info, {})
    assert "Started from sr-lite-gray-x2.safetensors." in card.training_data
    plain = final_card(_config(tmp_path), build_generator(_config(tmp_path)), "3.", info, {})
    assert "Started from" not in plain.training_data
