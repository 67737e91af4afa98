"""Library calls and an in-process ``main()`` leave the caller's process as they found it:
the SIGTERM handler, logging, torch's thread count and random state, the environment and
Dask's log levels (``tests/conftest.py`` checks the same after every test)."""

from __future__ import annotations

import logging
import os
import signal
import sys

import pytest
import torch

from sr_domains.cli import console, main
from sr_domains.engine_config import torch_threads
from sr_domains.testing import tiny_model

WEIGHTS = "sr-lite-gray-x2"


def _handler(signum, frame):  # a program's own SIGTERM handler
    pass


def test_main_puts_back_the_programs_sigterm_handler():
    before = signal.signal(signal.SIGTERM, _handler)
    try:
        assert main(["models"]) == 0
        assert signal.getsignal(signal.SIGTERM) is _handler  # it stayed sr-domains' own
        assert main(["info", "/nonexistent/x.tif"]) != 0  # (and after a failed command)
        assert signal.getsignal(signal.SIGTERM) is _handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_main_leaves_a_host_programs_c_level_sigterm_handler_alone(monkeypatch):
    """A handler installed from C reads as None; putting None back raised TypeError after
    the command had run (a program embedding Python)."""
    real = signal.getsignal
    set_calls: list[object] = []
    monkeypatch.setattr(signal, "getsignal", lambda s: None if s == signal.SIGTERM else real(s))
    monkeypatch.setattr(signal, "signal", lambda s, h: set_calls.append((s, h)))
    assert main(["models"]) == 0
    assert set_calls == []


def test_main_in_a_process_without_logging_leaves_none_behind(monkeypatch, capsys):
    """``logging.basicConfig`` left a root handler and, with ``-v``, the root level at INFO:
    the program's own ``basicConfig`` was then ignored."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    assert main(["-v", "models"]) == 0
    assert root.handlers == [] and root.level == logging.WARNING


def test_main_with_logging_set_up_moves_only_its_own_logger_for_the_command(monkeypatch):
    ours = logging.getLogger("sr_domains")
    seen: list[int] = []
    import sr_domains.cli as cli

    real = cli._cmd_models

    def models(args):
        seen.append(ours.getEffectiveLevel())
        return real(args)

    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["models"].set_defaults(func=models)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert main(["-v", "models"]) == 0
    assert main(["-q", "models"]) == 0
    assert seen == [logging.INFO, logging.ERROR]
    assert ours.level == logging.NOTSET


def test_threads_of_an_in_process_upscale_are_the_callers_again(tmp_path):
    pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "a.tif", width=24, height=20)
    with torch_threads(2):
        argv = ["upscale", str(src), str(tmp_path / "b.tif"), "--threads", "1", "--no-progress"]
        assert main(argv) == 0
        assert torch.get_num_threads() == 2


def test_only_the_script_keeps_freed_memory(tmp_path, monkeypatch):
    """glibc's malloc settings are for the process's lifetime: the script's process, not a
    program calling ``main()``."""
    pytest.importorskip("rasterio")
    import sr_domains.memory as memory
    from sr_domains.testing.geo import make_geotiff

    calls: list[int] = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda *a: calls.append(1) or True)
    src = make_geotiff(tmp_path / "a.tif", width=24, height=20)
    assert main(["upscale", str(src), str(tmp_path / "b.tif"), "--no-progress"]) == 0
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["sr-domains", "upscale", str(src), str(tmp_path / "c.tif")])
    with pytest.raises(SystemExit) as done:
        console()
    assert done.value.code == 0 and calls == [1]


def test_loading_weights_leaves_the_callers_random_state(tmp_path):
    """A network's random init before its weights are loaded drew from the caller's RNG: a
    seeded pipeline that loaded a model got another random stream after it."""
    from sr_domains.checkpoint import load_checkpoint, save_checkpoint
    from sr_domains.models import create_model
    from sr_domains.pretrained import load_pretrained

    net = create_model("edsr", in_channels=1, scale=2, n_blocks=1, n_feats=8)
    path = save_checkpoint(net, tmp_path / "t.safetensors")
    torch.manual_seed(7)
    state = torch.get_rng_state()
    load_pretrained(WEIGHTS)
    load_checkpoint(path)
    assert main(["models"]) == 0  # (it builds every architecture to count its parameters)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_memory_probe_of_a_data_dependent_network_leaves_the_random_state():
    from sr_domains.memory import forward_bytes_per_pixel

    class DataDependent(torch.nn.Module):
        def forward(self, x):  # .item() cannot run on the meta device: probed for real
            return x * 2 if float(x.mean().item()) > -1 else x

    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert forward_bytes_per_pixel(DataDependent(), 1, torch.device("cpu"), side=16) > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_an_embedded_cluster_leaves_the_environment_and_dask_log_levels(tmp_path, monkeypatch):
    """distributed's nanny put OMP_NUM_THREADS=1, PYTHONHASHSEED and more into os.environ for
    good (every later subprocess ran single-threaded), and the run left Dask's logger at
    WARNING."""
    pytest.importorskip("distributed")
    pytest.importorskip("rasterio")
    from sr_domains.distributed import upscale_many
    from sr_domains.testing.geo import make_geotiff

    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "s0.tif", width=24, height=20)
    import sr_domains.distributed as sr_distributed

    dask_log = logging.getLogger("distributed")
    monkeypatch.setenv("SET_BY_THE_CALLER_MEANWHILE", "0")
    env = dict(os.environ)
    level = dask_log.level
    record = sr_distributed.append_run_record

    def caller_sets_a_variable(*args):  # (in this process, while the cluster runs)
        os.environ["SET_BY_THE_CALLER_MEANWHILE"] = "1"
        return record(*args)

    monkeypatch.setattr(sr_distributed, "append_run_record", caller_sets_a_variable)
    report = upscale_many(folder, tmp_path / "out", model=tiny_model(1, 2), workers=1)
    assert report.count("ok") == 1, report.failures()
    assert dict(os.environ) == {**env, "SET_BY_THE_CALLER_MEANWHILE": "1"}  # (theirs kept)
    assert dask_log.level == level


def test_train_leaves_the_callers_threads_and_random_state(tmp_path):
    """``train()`` set ``config.threads`` and seeded torch for good."""
    from test_train import _config

    from sr_domains.train.trainer import train

    cfg = _config(tmp_path, steps=2, checkpoint_every=2, log_every=1, **{"val.every": 2})
    torch.manual_seed(11)
    state = torch.get_rng_state()
    with torch_threads(2):
        train(cfg, progress=False)
        assert torch.get_num_threads() == 2
    assert torch.equal(torch.get_rng_state(), state)
