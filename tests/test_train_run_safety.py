"""A run never deletes or replaces what its config reads: an input that is one of the run's
own files (``model.init_from: RUN_DIR/weights.safetensors``, "fine-tune the last result"),
reached by any path (a symlink, ``..``, a hard link), is refused before anything is removed;
``--overwrite`` removes a killed run's temporaries only by their exact name."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from _train_configs import tiny_config_file

from sr_domains.cli import main
from sr_domains.errors import UnsafeOutputError
from sr_domains.testing.images import make_pngs
from sr_domains.train.config import TrainConfig, apply_overrides, load_train_config
from sr_domains.train.trainer import train

pytest.importorskip("PIL.Image")


def _finished_run(tmp_path: Path) -> TrainConfig:
    cfg = load_train_config(tiny_config_file(tmp_path, steps=2, val={"data": None}))
    train(cfg, progress=False)
    return cfg


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_overwrite_refuses_an_input_that_is_one_of_the_runs_files(tmp_path):
    """``--overwrite`` cleared the run folder, the config's init weights with it: after a
    pause the run could not be resumed and the weights were gone. Every way to name a run's
    file is refused, naming the setting, and nothing is removed."""
    cfg = _finished_run(tmp_path)
    run = cfg.run_dir
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "link.safetensors").symlink_to(run / "weights.safetensors")
    outside = elsewhere / "mine.safetensors"  # the run's weights as a symlink to a user's file
    outside.write_bytes((run / "weights.safetensors").read_bytes())
    cases = [
        ("model.init_from", str(run / "weights.safetensors")),
        ("model.init_from", str(run / ".." / run.name / "weights.safetensors")),
        ("model.init_from", str(elsewhere / "link.safetensors")),
        ("loss.vgg_weights", str(run / "last.pt")),
        ("data.paths", [str(run / "tb" / "events.out.tfevents.1.host.1.0")]),
        ("val.data", {"paths": [str(run / "config.yaml")]}),
    ]
    before = _files(run)
    for setting, value in cases:
        with pytest.raises(UnsafeOutputError, match=re.escape(setting)) as exc:
            train(apply_overrides(cfg, {setting: value}), overwrite=True, progress=False)
        assert "copy it out of the run folder" in str(exc.value), (setting, value)
        assert _files(run) == before, (setting, value)
    (run / "weights.safetensors").unlink()
    (run / "weights.safetensors").symlink_to(outside)
    init = apply_overrides(cfg, {"model.init_from": str(run / "weights.safetensors")})
    with pytest.raises(UnsafeOutputError, match="the run's own weights.safetensors"):
        train(init, overwrite=True, progress=False)
    assert (run / "weights.safetensors").is_symlink()  # (its unlinking lost the input's name)


def test_inputs_that_a_run_never_loses_are_not_refused(tmp_path):
    """Review: a data glob reaching the run folder (``imgs/**`` with the run under ``imgs/``)
    refused the resume of a paused run, though the loader reads images only; a hard link to
    the run's weights was refused, though the run replaces its files (the link keeps its
    contents)."""
    imgs = tmp_path / "imgs"
    make_pngs(imgs, 4, 48)
    path = tiny_config_file(tmp_path, str(imgs / "runs"), steps=4, val={"data": None})
    cfg = apply_overrides(load_train_config(path), {"data.paths": [str(imgs / "**")]})
    train(cfg, stop_at=2, progress=False)
    train(cfg, resume=True, progress=False)  # (was: "data.paths is the run folder")
    keep = tmp_path / "keep.safetensors"
    os.link(cfg.run_dir / "weights.safetensors", keep)
    kept = keep.read_bytes()
    train(apply_overrides(cfg, {"model.init_from": str(keep)}), overwrite=True, progress=False)
    assert keep.read_bytes() == kept
    assert (cfg.run_dir / "weights.safetensors").read_bytes() != kept


def test_the_cli_refuses_a_config_that_overwrite_would_delete(tmp_path, capsys):
    """``--config RUN_DIR/tb/my.yaml --overwrite`` read the config, then deleted it with the
    old TensorBoard events."""
    cfg = _finished_run(tmp_path)
    mine = cfg.run_dir / "tb" / "my.yaml"
    mine.parent.mkdir()
    mine.write_text(tiny_config_file(tmp_path, steps=2, val={"data": None}).read_text())
    assert main(["train", "--config", str(mine), "--overwrite", "--no-progress"]) != 0
    assert "--config lies in the run's tb/ folder" in capsys.readouterr().err
    assert mine.exists()


def test_overwrite_keeps_a_hidden_file_named_like_a_run_file(tmp_path):
    """``.weights.safetensors.good-v1`` (a user's backup) was taken for a killed run's
    temporary and deleted: only ``.NAME.PID.XXXXXXXX.tmp`` is a temporary; a folder holding
    anything else is refused, the backup kept."""
    cfg = _finished_run(tmp_path)
    run = cfg.run_dir
    for name in (
        ".weights.safetensors.good-v1",
        ".last.pt.123.abcd1234.tmp.keep",
        ".log.csv.old.abcd1234.tmp",
    ):
        backup = run / name
        backup.write_bytes(b"mine")
        with pytest.raises(UnsafeOutputError, match=f"not a run's outputs \\({name}\\)"):
            train(cfg, overwrite=True, progress=False)
        assert backup.read_bytes() == b"mine"
        backup.unlink()
    (run / ".weights.safetensors.4242.0123abcd.tmp").write_bytes(b"killed")
    train(cfg, overwrite=True, progress=False)
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_a_users_file_under_tb_is_not_deleted_by_overwrite(tmp_path):
    """Only the run folder's top level was checked for a user's files: notes kept beside the
    TensorBoard events went with ``tb/`` on ``--overwrite``."""
    cfg = load_train_config(tiny_config_file(tmp_path, "runs", steps=2))
    train(cfg, progress=False)
    notes = cfg.run_dir / "tb" / "sub" / "notes.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    with pytest.raises(UnsafeOutputError, match=r"tb/sub/notes\.txt"):
        train(cfg, overwrite=True, progress=False)
    assert notes.read_text() == "mine"


def test_config_yaml_is_replaced_not_written_through_a_link(tmp_path):
    """The run wrote ``config.yaml`` in place: on resume, through a link there, into the file
    it points to."""
    cfg = load_train_config(tiny_config_file(tmp_path, "runs", steps=4))
    train(cfg, stop_at=2, progress=False)
    mine = tmp_path / "mine.yaml"
    mine.write_text("my notes")
    (cfg.run_dir / "config.yaml").unlink()
    (cfg.run_dir / "config.yaml").symlink_to(mine)
    train(cfg, resume=True, progress=False)
    assert mine.read_text() == "my notes"
    assert not (cfg.run_dir / "config.yaml").is_symlink()
