"""Under ``torchrun``, a Ctrl-C sent to a rank other than rank 0 while rank 0 validates pauses
right after that validation, as one sent to rank 0 does (the other ranks sampled their flag
before rank 0 had validated: the pause came a step later); one sent while rank 0 writes a
periodic checkpoint pauses right after the write (it paused after the next step)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("PIL.Image")

from _torchrun import kill_all, rank_pid
from _train_configs import tiny_config_file

REPO = Path(__file__).resolve().parents[1]

#: Rank 0's validation at step 4 says so (``flag``), then waits for the test's signal to rank 1
#: (``sent``) and a second more, so the signal lands while it validates.
_SLOW_VALIDATION = """
import sys, time
from pathlib import Path
from sr_domains.train.trainer import Trainer
from sr_domains.cli import main

flag, sent = Path(sys.argv[1]), Path(sys.argv[2])
validate = Trainer.validate

def slow(self):
    if self.step == 4 and not flag.exists():
        flag.write_text("validating")
        deadline = time.monotonic() + 120
        while not sent.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    return validate(self)

Trainer.validate = slow
sys.exit(main(sys.argv[3:]))
"""


#: Rank 0's checkpoint write of step 5 says so (``flag``) once the real torch.save is done, then
#: waits for the test's signal to rank 1 (``sent``) and a second more, so the signal lands while
#: it writes (before the rename); rank 1 waits for it meanwhile.
_SLOW_CHECKPOINT = """
import sys, time
from pathlib import Path
import torch
from sr_domains.cli import main

flag, sent = Path(sys.argv[1]), Path(sys.argv[2])
save = torch.save

def slow(obj, f, *args, **kwargs):
    save(obj, f, *args, **kwargs)
    if isinstance(obj, dict) and obj.get("step") == 5 and not flag.exists():
        flag.write_text("writing")
        deadline = time.monotonic() + 120
        while not sent.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)

torch.save = slow
sys.exit(main(sys.argv[3:]))
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return [{k: v for k, v in row.items() if k != "sec"} for row in csv.DictReader(fh)]


def _same(a: object, b: object, where: str) -> None:
    """``a`` and ``b`` (parts of two last.pt) hold equal values and tensors, bit for bit."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def _torchrun(*args: str) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return [*cmd, *args]


def _signal_rank_1_at(tmp_path: Path, step: int, checkpoint_every: int, slow_part: str) -> None:
    """Run torchrun with rank 0 held in the slow part (``slow_part``, a helper script) at
    ``step``, SIGINT rank 1 meanwhile, and check the run paused at ``step``, both ranks
    stopped, and its logs and ``last.pt`` are what ``--stop-at step`` writes."""
    if not Path(f"/proc/{os.getpid()}/task").exists():
        pytest.skip("needs /proc to find the ranks")
    fields = {
        "steps": 8,
        "optim": {"lr": 1e-3, "warmup_steps": 2, "ema_decay": 0.9},
        "log_every": 3,
        "checkpoint_every": checkpoint_every,
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    train = ["train", "--no-progress", "--config"]
    paused = tiny_config_file(tmp_path, "a", **fields)
    cmd = _torchrun("-m", "sr_domains", *train, str(paused), "--stop-at", str(step))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    helper, flag, sent = tmp_path / "slow_part.py", tmp_path / "flag", tmp_path / "sent"
    helper.write_text(slow_part)
    cfg = tiny_config_file(tmp_path, "b", **fields)
    cmd = _torchrun(str(helper), str(flag), str(sent), *train, str(cfg))
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), f"rank 0 did not reach its slow part at step {step}"
        time.sleep(1.0)  # (rank 1 waits for rank 0 by now)
        os.kill(rank_pid(proc.pid, 1), signal.SIGINT)
        sent.write_text("sent")
        _, err = proc.communicate(timeout=120)
    finally:
        kill_all(proc)
    assert err.count(f"SIGINT at step {step}: paused") == 1, err[-3000:]  # was step + 1
    assert err.count("sr-domains: interrupted") == 2, err[-3000:]  # both ranks stopped
    # what --stop-at writes: the same rows and checkpoint, so --resume goes on exactly
    a, b = paused.parent / "a" / "run", cfg.parent / "b" / "run"
    for name in ("log.csv", "val.csv"):
        assert _rows(b / name) == _rows(a / name), name
    sa, sb = (torch.load(p / "last.pt", weights_only=True) for p in (a, b))
    assert sa["step"] == sb["step"] == step and sb["world_sizes"] == [[0, 2]]
    for part in ("model", "ema", "opt", "sched", "scaler"):
        if part in sa or part in sb:
            _same(sa[part], sb[part], part)


@pytest.mark.slow  # fresh interpreters under torchrun; CI runs it in the slow step
def test_a_signal_to_rank_1_while_rank_0_validates_pauses_at_that_step(tmp_path):
    # (only the pause writes last.pt)
    _signal_rank_1_at(tmp_path, 4, checkpoint_every=100, slow_part=_SLOW_VALIDATION)


@pytest.mark.slow  # fresh interpreters under torchrun; CI runs it in the slow step
def test_a_signal_to_rank_1_while_rank_0_writes_a_checkpoint_pauses_at_that_step(tmp_path):
    _signal_rank_1_at(tmp_path, 5, checkpoint_every=5, slow_part=_SLOW_CHECKPOINT)
