"""A ``--resume`` that has nothing to do (a finished run; a retried ``--stop-at`` at the
checkpoint's step) or is refused (``--stop-at`` before the checkpoint, ``steps`` lowered below
it) is decided from ``last.pt``'s step before the data and the model are set up: it answers
at once, and the training data need not be there any more (it read every image, built the
network and its optimizers first; without the data it failed on them)."""

from __future__ import annotations

import shutil

import pytest

from sr_domains.cli import main
from sr_domains.errors import ConfigError
from sr_domains.train.config import load_train_config
from sr_domains.train.trainer import train

pytest.importorskip("PIL.Image")

from _train_configs import tiny_config_file


def test_a_finished_runs_resume_answers_without_its_data(tmp_path, capsys):
    path = tiny_config_file(tmp_path, steps=2, checkpoint_every=1)
    cfg = load_train_config(path)
    assert train(cfg, progress=False).weights is not None
    shutil.rmtree(tmp_path / "imgs")  # the training and validation images
    capsys.readouterr()
    argv = ["train", "--config", str(path), "--no-progress", "--resume"]

    assert main(argv) == 0, capsys.readouterr().err
    assert "nothing to resume: finished at step 2" in capsys.readouterr().out
    assert train(cfg, resume=True, progress=False).already_finished  # the Python API too
    assert main([*argv, "--stop-at", "1"]) == 2
    assert "at step 2; --stop-at 1" in capsys.readouterr().err
    assert main([*argv, "--set", "steps=1"]) == 2
    assert "at step 2, past steps=1" in capsys.readouterr().err


def test_a_paused_runs_retried_stop_at_answers_without_its_data(tmp_path, capsys):
    path = tiny_config_file(tmp_path, steps=4, checkpoint_every=1)
    cfg = load_train_config(path)
    assert train(cfg, progress=False, stop_at=2).steps == 2
    shutil.rmtree(tmp_path / "imgs")
    capsys.readouterr()
    argv = ["train", "--config", str(path), "--no-progress", "--resume", "--stop-at"]

    assert main([*argv, "2"]) == 0, capsys.readouterr().err
    assert "paused at step 2" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="at step 2; --stop-at 1"):
        train(cfg, resume=True, progress=False, stop_at=1)
    # a resume with work to do sets the data up, and says it is gone
    assert main([*argv, "3"]) == 1
    assert "imgs" in capsys.readouterr().err
