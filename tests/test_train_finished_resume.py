"""``--resume`` of a finished run is a no-op (it rewrote ``weights.safetensors`` with an empty
``metrics`` and a "steps 41-40" segment); a ``--stop-at`` before the checkpoint, or a
``steps`` lowered below it, is refused before any file is touched, and one at it is a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_domains.checkpoint import load_checkpoint
from sr_domains.cli import main
from sr_domains.errors import ConfigError
from sr_domains.train.config import load_train_config
from sr_domains.train.trainer import train

pytest.importorskip("PIL.Image")

from _train_configs import tiny_config_file


def _files(run: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the run folder: its bytes and modification time."""
    return {
        str(p.relative_to(run)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def test_resuming_a_finished_run_changes_no_file(tmp_path, capsys):
    path = tiny_config_file(tmp_path, steps=2, checkpoint_every=1)
    cfg = load_train_config(path)
    assert train(cfg, progress=False).weights is not None
    run = cfg.run_dir
    _, card = load_checkpoint(run / "weights.safetensors")
    assert card.metrics  # the held-out scores of the finished run
    before = _files(run)
    capsys.readouterr()

    assert main(["train", "--config", str(path), "--no-progress", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "nothing to resume: finished at step 2" in out, out
    assert _files(run) == before
    result = train(cfg, resume=True, progress=False)  # the Python API too
    assert result.already_finished and result.steps == 2
    assert _files(run) == before

    # a pause at or before the checkpoint's step, or steps lowered below it: refused
    code = main(["train", "--config", str(path), "--no-progress", "--resume", "--stop-at", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "at step 2; --stop-at 1" in err and "Traceback" not in err, err
    assert _files(run) == before
    args = ["train", "--config", str(path), "--no-progress", "--resume", "--set", "steps=1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "at step 2, past steps=1" in err, err
    assert _files(run) == before  # config.yaml too


def test_a_stop_at_before_a_paused_checkpoint_is_refused_at_it_a_no_op(tmp_path, capsys):
    path = tiny_config_file(tmp_path, steps=4, checkpoint_every=1)
    cfg = load_train_config(path)
    assert train(cfg, progress=False, stop_at=2).steps == 2
    before = _files(cfg.run_dir)
    with pytest.raises(ConfigError, match="at step 2; --stop-at 1"):
        train(cfg, resume=True, progress=False, stop_at=1)
    assert _files(cfg.run_dir) == before
    # the same `--resume --stop-at 2` again (a retried scheduler command): paused there already
    again = train(cfg, resume=True, progress=False, stop_at=2)
    assert again.steps == 2 and again.weights is None and not again.already_finished
    assert _files(cfg.run_dir) == before
    capsys.readouterr()
    args = ["train", "--config", str(path), "--no-progress", "--resume", "--stop-at", "2"]
    assert main(args) == 0
    assert "paused at step 2" in capsys.readouterr().out
    assert _files(cfg.run_dir) == before
    assert train(cfg, resume=True, progress=False, stop_at=3).steps == 3


def test_a_retried_stop_at_steps_with_the_weights_missing_writes_them(tmp_path):
    """`--resume --stop-at STEPS` on a run at STEPS whose weights are missing (a crash while
    they were written) writes them: it must not take the 'paused there already' no-op."""
    cfg = load_train_config(tiny_config_file(tmp_path, steps=2, checkpoint_every=1))
    assert train(cfg, progress=False).weights is not None
    (cfg.run_dir / "weights.safetensors").unlink()
    result = train(cfg, resume=True, progress=False, stop_at=2)
    assert result.weights is not None and result.weights.exists()
