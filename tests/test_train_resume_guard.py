"""``--resume`` never starts a fresh run when there is nothing to resume, and a run that is
interrupted then resumed logs every step once (log.csv, val.csv, TensorBoard), like a straight
run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sr_domains.cli import main
from sr_domains.errors import ConfigError
from sr_domains.train.config import load_train_config
from sr_domains.train.trainer import Trainer, train

PIL = pytest.importorskip("PIL.Image")

from _train_configs import tiny_config_file  # noqa: E402


def _config_file(tmp_path: Path, out: str = "runs", **over: object) -> Path:
    return tiny_config_file(tmp_path, out, **over)


def _steps(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return [row[0] for row in list(csv.reader(fh))[1:]]


def test_resume_without_a_run_folder_is_refused_and_creates_nothing(tmp_path, capsys):
    path = _config_file(tmp_path, out="typo/runs", steps=2)
    run = tmp_path / "typo" / "runs" / "run"
    code = main(["train", "--config", str(path), "--no-progress", "--resume"])
    err = capsys.readouterr().err
    assert code == 2, err  # as the refusal of a folder without last.pt
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(run) in lines[0] and "nothing to resume" in lines[0]
    assert not (tmp_path / "typo").exists()  # no fresh run, no folder left behind
    cfg = load_train_config(path)
    with pytest.raises(ConfigError, match="does not exist.*nothing to resume"):
        train(cfg, resume=True, progress=False)  # the Python API too
    assert not (tmp_path / "typo").exists()
    run.mkdir(parents=True)  # an empty run folder: nothing to resume either
    with pytest.raises(ConfigError, match="no last.pt"):
        train(cfg, resume=True, progress=False)
    assert not any(run.iterdir())


def test_an_interrupted_then_resumed_run_logs_each_step_once(tmp_path, monkeypatch):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    straight = load_train_config(_config_file(tmp_path, out="a", tensorboard=True))
    assert train(straight, progress=False).steps == 16
    cfg = load_train_config(_config_file(tmp_path, out="b", tensorboard=True))

    step = Trainer.train_step

    def interrupted(self, batch):  # Ctrl-C after step 12 was logged, checkpoint at step 10
        if self.step == 12:
            raise KeyboardInterrupt
        return step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.undo()
    run = cfg.run_dir
    assert _steps(run / "log.csv")[-1] == "12" and _steps(run / "val.csv")[-1] == "12"
    assert train(cfg, resume=True, progress=False).steps == 16

    for name in ("log.csv", "val.csv"):
        assert _steps(run / name) == _steps(straight.run_dir / name), name
    assert _steps(run / "log.csv") == [str(i) for i in range(1, 17)]
    with (run / "log.csv").open(newline="") as fh:
        secs = [float(row["sec"]) for row in csv.DictReader(fh)]
    assert secs == sorted(secs)  # training time goes on from the checkpoint's row
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]

    events = event_accumulator.EventAccumulator(str(run / "tb"))
    events.Reload()
    for tag in ("train/loss", "val/psnr"):
        got = [e.step for e in events.Scalars(tag)]
        assert got == sorted(set(got)), (tag, got)
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 17))


def test_resume_with_another_learning_rate_trains_at_that_rate(tmp_path):
    """`--resume --set optim.lr=...` warned "changed settings: optim", then trained on at the
    restored optimizer's rate while config.yaml recorded the new one."""
    sched = {"lr": 2e-4, "schedule": "constant", "grad_clip": 0.0}
    path = _config_file(tmp_path, steps=4, optim=sched)
    argv = ["train", "--config", str(path), "--no-progress"]
    assert main([*argv, "--stop-at", "2"]) == 0
    run = tmp_path / "runs" / "run"
    assert main([*argv, "--resume", "--set", "optim.lr=0.001", "--set", "optim.grad_clip=1"]) == 0
    with (run / "log.csv").open(newline="") as fh:
        lrs = {r["step"]: float(r["lr"]) for r in csv.DictReader(fh)}
    assert lrs == {"1": 2e-4, "2": 2e-4, "3": 1e-3, "4": 1e-3}
    assert "lr: 0.001" in (run / "config.yaml").read_text()  # what ran, as it says


def test_a_pause_logs_the_steps_since_the_last_row_once(tmp_path):
    """--stop-at 3 with log_every 2 dropped step 3's loss (no row for it, before or after
    the resume)."""
    path = _config_file(tmp_path, steps=6, log_every=2)
    argv = ["train", "--config", str(path), "--no-progress"]
    assert main([*argv, "--stop-at", "3"]) == 0
    run = tmp_path / "runs" / "run"
    assert _steps(run / "log.csv") == ["2", "3"]
    assert main([*argv, "--resume"]) == 0
    assert _steps(run / "log.csv") == ["2", "3", "4", "6"]


def test_refusals_name_the_cli_flag_and_the_python_argument(tmp_path):
    """They said "pass overwrite" / "even with overwrite": the Python argument only."""
    from sr_domains.errors import UnsafeOutputError

    cfg = load_train_config(_config_file(tmp_path, steps=2))
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "log.csv").write_text("step\n")  # a run's file, no last.pt
    with pytest.raises(ConfigError) as exc:
        train(cfg, resume=True, progress=False)
    assert "pass --overwrite (Python: overwrite=True) to start over" in str(exc.value)
    (cfg.run_dir / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeOutputError) as unsafe:
        train(cfg, overwrite=True, progress=False)
    assert "even with --overwrite (Python: overwrite=True)" in str(unsafe.value)
    assert (cfg.run_dir / "notes.txt").exists()
