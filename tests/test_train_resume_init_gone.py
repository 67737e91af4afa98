"""``train --resume`` of a run that started from ``model.init_from`` needs that file no more:
the run's ``last.pt`` holds the weights (it failed, "checkpoint file not found", once the file
had been moved or deleted). The resumed run equals an uninterrupted one."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from _train_configs import tiny_config_file

from sr_domains.checkpoint import load_checkpoint
from sr_domains.cli import main
from sr_domains.train.config import apply_overrides, load_train_config
from sr_domains.train.trainer import train

pytest.importorskip("PIL.Image")


def test_resume_without_the_init_from_file(tmp_path, caplog):
    first = load_train_config(tiny_config_file(tmp_path, "first", steps=2, val={"data": None}))
    init = tmp_path / "init.safetensors"
    shutil.copy(train(first, progress=False).weights, init)

    def config(out: str):
        path = tiny_config_file(tmp_path, out, steps=4, val={"data": None})
        return apply_overrides(load_train_config(path), {"model.init_from": str(init)})

    straight = train(config("straight"), progress=False)
    cfg = config("paused")
    train(cfg, stop_at=2, progress=False)
    init.rename(tmp_path / "moved.safetensors")
    with caplog.at_level(logging.INFO, logger="sr_domains.train"):
        resumed = train(cfg, resume=True, progress=False)
    assert "no longer there" in caplog.text and "last.pt holds the weights" in caplog.text
    a, _ = load_checkpoint(straight.weights)
    b, _ = load_checkpoint(resumed.weights)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_the_cli_resumes_without_the_init_from_file(tmp_path, capsys):
    first = load_train_config(tiny_config_file(tmp_path, "first", steps=2, val={"data": None}))
    init = tmp_path / "init.safetensors"
    shutil.copy(train(first, progress=False).weights, init)
    path = tiny_config_file(
        tmp_path, "paused", steps=4, val={"data": None}, model={
            "arch": "edsr", "in_channels": 1, "options": {"n_blocks": 1, "n_feats": 8},
            "init_from": str(init),
        },
    )  # fmt: skip
    argv = ["train", "--config", str(path), "--no-progress"]
    assert main([*argv, "--stop-at", "2"]) == 0
    init.unlink()
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
