"""``--resume`` of a run whose ``last.pt`` is at ``steps`` but whose ``weights.safetensors`` is
missing (a crash while it was written) runs no step: the validation is taken before the
weights are saved, so their card has the held-out scores (it had an empty ``metrics``)."""

from __future__ import annotations

import pytest

from sr_domains.checkpoint import load_checkpoint
from sr_domains.cli import main
from sr_domains.train.config import load_train_config
from sr_domains.train.trainer import train

pytest.importorskip("PIL.Image")

from _train_configs import tiny_config_file


def test_resume_at_steps_without_weights_validates_for_the_card(tmp_path, capsys):
    path = tiny_config_file(tmp_path, steps=2, checkpoint_every=1)
    cfg = load_train_config(path)
    run = cfg.run_dir
    assert train(cfg, progress=False).weights == run / "weights.safetensors"
    _, card = load_checkpoint(run / "weights.safetensors")
    assert card.metrics
    val_csv = (run / "val.csv").read_bytes()
    assert val_csv.count(b"\n2,") == 1
    (run / "weights.safetensors").unlink()  # lost in a crash while it was written

    assert main(["train", "--config", str(path), "--no-progress", "--resume"]) == 0
    _, again = load_checkpoint(run / "weights.safetensors")
    assert again.metrics == pytest.approx(card.metrics, abs=1e-3)
    assert (run / "val.csv").read_bytes() == val_csv  # (its row at step 2 not repeated)

    (run / "weights.safetensors").unlink()
    result = train(cfg, resume=True, progress=False)  # the Python API too
    assert result.steps == 2 and result.validation == pytest.approx(card.metrics, abs=1e-3)
    assert load_checkpoint(run / "weights.safetensors")[1].metrics == pytest.approx(
        result.validation, abs=1e-3
    )
