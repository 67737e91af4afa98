"""Under ``torchrun`` every loss column of log.csv is the mean over the ranks (``loss`` was,
``loss_pixel`` was rank 0's: 0.3535 vs 0.4230 in a pixel-only run), and rank 0 alone says
"paused at step N" and warns of changed settings on resume."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL.Image")

from _train_configs import tiny_config_file

REPO = Path(__file__).resolve().parents[1]


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "sr_domains", "train", "--no-progress", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow  # fresh interpreters under torchrun; CI runs it in the slow step
def test_torchrun_logs_every_loss_as_the_mean_over_ranks_and_rank_0_speaks(tmp_path):
    path = tiny_config_file(tmp_path, steps=2, val={"data": None})  # the pixel loss only
    proc = _torchrun("--config", str(path), "--stop-at", "1")
    assert proc.stdout.count("paused at step 1") == 1, proc.stdout
    proc = _torchrun("--config", str(path), "--resume", "--set", "log_every=2")
    assert proc.stderr.count("resuming with changed settings") == 1, proc.stderr[-3000:]
    with (tmp_path / "runs" / "run" / "log.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["1", "2"]
    for r in rows:
        assert float(r["loss"]) == pytest.approx(float(r["loss_pixel"]), rel=1e-5), r
