"""Ctrl-C / SIGTERM during training pause the run after the current step (``last.pt``
written as ``--stop-at`` writes it, so ``--resume`` continues exactly), then stop with 130 /
143; a second signal stops at once. Under ``torchrun`` every rank stops at the same step.
Also: the ``lr`` column is the rate each step trained at."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from sr_domains.checkpoint import load_checkpoint
from sr_domains.cli import main
from sr_domains.train.config import TrainConfig, load_train_config
from sr_domains.train.run_parts import lr_lambda
from sr_domains.train.trainer import Trainer, train

PIL = pytest.importorskip("PIL.Image")

from _torchrun import kill_all, rank_pid  # noqa: E402
from _train_configs import tiny_config_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _config_file(tmp_path: Path, out: str = "runs", **over: object) -> Path:
    fields = {
        "steps": 8,
        "optim": {"lr": 1e-3, "warmup_steps": 2, "ema_decay": 0.9},
        "log_every": 2,
        "checkpoint_every": 100,  # no periodic checkpoint: only the pause writes one
    }
    return tiny_config_file(tmp_path, out, **{**fields, **over})


def _config(tmp_path: Path, out: str = "runs", **over: object) -> TrainConfig:
    return load_train_config(_config_file(tmp_path, out, **over))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return [{k: v for k, v in row.items() if k != "sec"} for row in csv.DictReader(fh)]


def _signal_in_step(monkeypatch, at: int, *signums: int) -> None:
    """Send ``signums`` to this process in the middle of step ``at``."""
    step = Trainer.train_step

    def signalled(self, batch):
        if self.step == at - 1:
            for signum in signums:
                os.kill(os.getpid(), signum)
        return step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", signalled)


def _same_weights(a: Path, b: Path) -> None:
    ma, _ = load_checkpoint(a)
    mb, _ = load_checkpoint(b)
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_ctrl_c_pauses_after_the_step_as_stop_at_and_resume_is_exact(tmp_path, monkeypatch, caplog):
    """Ctrl-C wrote no checkpoint: up to checkpoint_every - 1 steps lost, and neither --resume
    ("no last.pt") nor a rerun ("output exists") went on."""
    straight = train(_config(tmp_path, "a", log_every=1), progress=False)
    paused = _config(tmp_path, "b", log_every=1)
    train(paused, progress=False, stop_at=3)
    cfg = _config(tmp_path, "c", log_every=1)
    handler = signal.getsignal(signal.SIGINT)
    _signal_in_step(monkeypatch, 3, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back
    run = cfg.run_dir
    assert "SIGINT at step 3: paused" in caplog.text and "--resume" in caplog.text
    # last.pt, log.csv and val.csv as --stop-at 3 writes them
    got = torch.load(run / "last.pt", weights_only=True)
    want = torch.load(paused.run_dir / "last.pt", weights_only=True)
    assert got["step"] == want["step"] == 3
    for k, v in want["model"].items():
        assert torch.equal(got["model"][k], v), k
    assert got["opt"]["state"].keys() == want["opt"]["state"].keys()
    for name in ("log.csv", "val.csv"):
        assert _rows(run / name) == _rows(paused.run_dir / name), name
    assert not (run / "weights.safetensors").exists()

    assert train(cfg, resume=True, progress=False).steps == 8
    _same_weights(straight.weights, run / "weights.safetensors")
    for name in ("log.csv", "val.csv"):  # every row, the lr column included
        assert _rows(run / name) == _rows(straight.run_dir / name), name


def test_sigterm_under_the_cli_pauses_then_exits_143(tmp_path, monkeypatch, caplog):
    path = _config_file(tmp_path)
    argv = ["train", "--config", str(path), "--no-progress"]
    _signal_in_step(monkeypatch, 2, signal.SIGTERM)
    with pytest.raises(SystemExit) as exc:  # sr-domains' own SIGTERM handler, after the pause
        main(argv)
    monkeypatch.undo()
    assert exc.value.code == 143
    run = tmp_path / "runs" / "run"
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 2
    assert "SIGTERM at step 2: paused" in caplog.text
    assert main([*argv, "--resume"]) == 0
    assert (run / "weights.safetensors").exists()


def test_a_second_signal_stops_at_once_without_a_checkpoint(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    _signal_in_step(monkeypatch, 3, signal.SIGINT, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.undo()
    assert not (cfg.run_dir / "last.pt").exists()  # (checkpoint_every 100)
    assert [r["step"] for r in _rows(cfg.run_dir / "log.csv")] == ["2"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_validation_pauses_right_after_it(tmp_path, monkeypatch, signum):
    """It paused after the next step (validation every 4: last.pt at step 5): the step trained
    after the signal was lost to the pause, and a validation can take long. The pause writes
    what --stop-at 4 writes (the log row of step 4 too, log_every 3) and resumes exactly."""
    straight = train(_config(tmp_path, "a", log_every=3), progress=False)
    paused = _config(tmp_path, "b", log_every=3)
    train(paused, progress=False, stop_at=4)
    cfg = _config(tmp_path, "c", log_every=3)
    validate = Trainer.validate

    def signalled(self):
        if self.step == 4:
            os.kill(os.getpid(), signum)
        return validate(self)

    monkeypatch.setattr(Trainer, "validate", signalled)
    stopped = KeyboardInterrupt if signum == signal.SIGINT else SystemExit
    with pytest.raises(stopped), _sigterm_raises():
        train(cfg, progress=False)
    monkeypatch.undo()
    run = cfg.run_dir
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 4
    for name in ("log.csv", "val.csv"):
        assert _rows(run / name) == _rows(paused.run_dir / name), name
    assert not (run / "weights.safetensors").exists()
    assert train(cfg, resume=True, progress=False).steps == 8
    _same_weights(straight.weights, run / "weights.safetensors")
    train(paused, resume=True, progress=False)  # (its log has the pause's row too)
    for name in ("log.csv", "val.csv"):
        assert _rows(run / name) == _rows(paused.run_dir / name), name


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_checkpoint_write_pauses_right_after_it(
    tmp_path, monkeypatch, caplog, signum
):
    """It paused after the next step (checkpoint every 5: last.pt at step 6), a step trained
    for nothing. Sent from inside the periodic write of step 5 (after the real torch.save,
    before the rename), the pause writes what --stop-at 5 writes, bit for bit (the log row of
    step 5 too, log_every 3), so --resume goes on exactly as from --stop-at 5."""
    fields = {"log_every": 3, "checkpoint_every": 5}
    paused = _config(tmp_path, "b", **fields)
    train(paused, progress=False, stop_at=5)
    cfg = _config(tmp_path, "c", **fields)
    save, saves = torch.save, []

    def signalled(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        saves.append(obj["step"])
        if obj["step"] == 5:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(torch, "save", signalled)
    stopped = KeyboardInterrupt if signum == signal.SIGINT else SystemExit
    with pytest.raises(stopped), _sigterm_raises():
        train(cfg, progress=False)
    monkeypatch.undo()
    assert saves == [5]  # (the pause wrote no other)
    assert f"{signal.Signals(signum).name} at step 5: paused" in caplog.text
    run = cfg.run_dir
    got = torch.load(run / "last.pt", weights_only=True)
    want = torch.load(paused.run_dir / "last.pt", weights_only=True)
    assert got["step"] == want["step"] == 5
    got.pop("config"), want.pop("config")  # (their out_dir differs)
    _same_state(got, want, "last.pt")
    for name in ("log.csv", "val.csv"):
        assert _rows(run / name) == _rows(paused.run_dir / name), name
    assert not (run / "weights.safetensors").exists()
    assert train(cfg, resume=True, progress=False).steps == 8


def _same_state(a: object, b: object, where: str) -> None:
    """``a`` and ``b`` (two last.pt states) hold equal values and tensors, bit for bit."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises SystemExit(143) in the block, as under ``sr-domains`` (the default
    action would end the test process)."""

    def terminated(signum, frame):
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def test_training_in_another_thread_installs_no_handler(tmp_path):
    cfg = _config(tmp_path, steps=2)
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["steps"] = train(cfg, progress=False).steps
        except BaseException as exc:  # (signal.signal outside the main thread: ValueError)
            box["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(120)
    assert box == {"steps": 2}


def test_the_lr_column_is_the_rate_each_step_trained_at(tmp_path):
    """It was the next step's (get_last_lr() after sched.step()): step 1 of a 2-step warm-up
    trained at lr/2 but logged lr; the last row logged min_lr, which no step used."""
    path = _config_file(tmp_path, log_every=1)
    cfg = load_train_config(path)
    train(cfg, progress=False)
    factor = lr_lambda(cfg)
    got = [float(r["lr"]) for r in _rows(cfg.run_dir / "log.csv")]
    assert got == pytest.approx([1e-3 * factor(i) for i in range(8)], rel=1e-5)
    assert got[0] == pytest.approx(5e-4)
    b = _config(tmp_path, "b", log_every=1)  # paused and resumed: the same rows
    train(b, progress=False, stop_at=3)
    train(b, resume=True, progress=False)
    assert _rows(b.run_dir / "log.csv") == _rows(cfg.run_dir / "log.csv")


def test_a_resume_with_another_number_of_processes_is_warned_and_carded(tmp_path, caplog):
    """Started with 2 processes, resumed with 1: silent, and the card said "6 steps x 2
    patches x 1 process(es)"."""
    cfg = _config(tmp_path, steps=6)
    train(cfg, progress=False, stop_at=3)
    last = cfg.run_dir / "last.pt"
    state = torch.load(last, weights_only=True)
    assert state["world_sizes"] == [[0, 1]]
    state["world_sizes"] = [[0, 2]]  # as torchrun --nproc_per_node=2 writes it
    torch.save(state, last)
    train(cfg, resume=True, progress=False)
    assert "had 2 process(es), it resumes with 1" in caplog.text
    assert "global batch changes from 4 to 2 patches" in caplog.text
    _, card = load_checkpoint(cfg.run_dir / "weights.safetensors")
    assert (
        "6 steps x 2 patches per process, 2 process(es) for steps 1-3 then 1 process(es) for "
        "steps 4-6." in card.training_data
    ), card.training_data
    plain = _config(tmp_path, "b", steps=2)  # one segment: as before
    _, card = load_checkpoint(train(plain, progress=False).weights)
    assert "2 steps x 2 patches x 1 process(es)." in card.training_data


def _wait_for_row(log: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) > 1:
            return
        time.sleep(0.1)
    raise AssertionError("no step was logged")


@pytest.mark.parametrize(
    "signum",
    [  # (a fresh interpreter each; SIGTERM is the one a killed worker failed)
        pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, id="SIGTERM"),
    ],
)
def test_a_signal_to_the_process_group_with_dataloader_workers(tmp_path, signum):
    """A terminal's Ctrl-C (a scheduler's SIGTERM) reaches the whole process group, the
    DataLoader workers too: one it killed failed the step the trainer finishes before it
    writes last.pt ("DataLoader worker ... exited unexpectedly")."""
    data = {"patch_size": 16, "patches_per_epoch": 4000}  # one epoch: workers forked once
    path = _config_file(tmp_path, steps=100000, log_every=1, num_workers=2)
    raw = yaml.safe_load(path.read_text())
    raw["data"].update(data)
    path.write_text(yaml.safe_dump(raw))
    run = tmp_path / "runs" / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "sr_domains", "train", "--config", str(path), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_row(run / "log.csv", proc)
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signum, err[-3000:]
    step = torch.load(run / "last.pt", weights_only=True)["step"]
    assert _rows(run / "log.csv")[-1]["step"] == str(step)
    name = signal.Signals(signum).name
    assert f"{name} at step {step}: paused" in err and "--resume" in err, err[-3000:]
    assert "Traceback" not in err


_WINDOW = """
import os, signal, sys
import torch
from sr_domains.train.interrupts import held_stop_signals, ignore_stop_signals

got = []
signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))


class Pgids(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return os.getpgrp()


def hit_in_the_window(worker_id):
    # a group SIGTERM between the worker's start and its leaving the group
    os.killpg(os.getpgrp(), signal.SIGTERM)
    ignore_stop_signals(worker_id)


loader = torch.utils.data.DataLoader(
    Pgids(), batch_size=1, num_workers=2, worker_init_fn=hit_in_the_window
)
with held_stop_signals():
    batches = iter(loader)
pgids = {int(b) for b in batches}
signal.pthread_sigmask(signal.SIG_BLOCK, [])  # (a point where the handler has run)
print(len(got) >= 1, os.getpgrp() not in pgids)
"""


def test_a_group_signal_as_a_dataloader_worker_starts_does_not_kill_it():
    """Workers leave the process group in ``worker_init_fn``; one a group SIGTERM reached
    before that died ("DataLoader worker ... exited unexpectedly", the step failed). Now
    they start with the signals blocked and drop what reached them; the trainer gets it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _WINDOW],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # (the group signalled is the child's own)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "True"], proc.stderr[-3000:]


_TRAIN_HIT = """
import os, signal, sys
import sr_domains.train.run_parts as run_parts
from sr_domains.cli import main

plain = run_parts.ignore_stop_signals


def hit_in_the_window(worker_id):
    try:  # (once: the first worker to start)
        os.close(os.open(sys.argv[2], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        pass
    else:
        os.killpg(os.getpgrp(), signal.SIGTERM)
    plain(worker_id)


run_parts.ignore_stop_signals = hit_in_the_window
sys.exit(main(["train", "--config", sys.argv[1], "--no-progress"]))
"""


def test_training_pauses_for_a_group_signal_that_hits_a_starting_worker(tmp_path):
    """The trainer starts its DataLoader workers with the signals held: one hit by a group
    SIGTERM as it started no longer fails the step; the run pauses and writes last.pt."""
    path = _config_file(tmp_path, steps=100000, log_every=1, num_workers=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", _TRAIN_HIT, str(path), str(tmp_path / "hit")]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=300, start_new_session=True
    )
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert (tmp_path / "hit").exists() and "exited unexpectedly" not in proc.stderr
    step = torch.load(tmp_path / "runs" / "run" / "last.pt", weights_only=True)["step"]
    assert f"SIGTERM at step {step}: paused" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow  # fresh interpreters under torchrun; CI runs it in the slow step
@pytest.mark.parametrize("sent_to", ["torchrun", "rank 1"])
def test_torchrun_ranks_stop_at_one_step_then_resume_with_one_process(tmp_path, caplog, sent_to):
    """Ctrl-C at torchrun (which passes it on to each rank), or a signal to one rank only:
    every rank stops after the same step (none hangs), rank 0 writes last.pt."""
    if sent_to == "rank 1" and not Path(f"/proc/{os.getpid()}/task").exists():
        pytest.skip("needs /proc to find the ranks")
    path = _config_file(tmp_path, steps=100000, log_every=1)
    run = tmp_path / "runs" / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "sr_domains", "train", "--config", str(path), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_row(run / "log.csv", proc, timeout=240)
        if sent_to == "torchrun":
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C
        else:
            os.kill(rank_pid(proc.pid, 1), signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # (a rank that hangs: SIGKILL after 30 s)
    finally:
        kill_all(proc)
    # both ranks stopped for it (torchrun adds a traceback of its own); none had to be killed
    assert err.count("sr-domains: interrupted") == 2 and "SIGKILL" not in err, err[-3000:]
    state = torch.load(run / "last.pt", weights_only=True)
    step = state["step"]
    assert state["world_sizes"] == [[0, 2]]
    assert _rows(run / "log.csv")[-1]["step"] == str(step)
    assert err.count(f"SIGINT at step {step}: paused") == 1, err[-3000:]  # rank 0 says it
    # resumed with one process: warned (the global batch halves), and the card says so
    resume = ["train", "--config", str(path), "--no-progress", "--resume"]
    assert main([*resume, "--set", f"steps={step + 2}"]) == 0
    assert "had 2 process(es), it resumes with 1" in caplog.text
    _, card = load_checkpoint(run / "weights.safetensors")
    assert (
        f"2 process(es) for steps 1-{step} then 1 process(es) for steps {step + 1}-{step + 2}."
        in card.training_data
    ), card.training_data
