"""The per-user disk cache (sr_domains.disk_cache) and what uses it: the memory probe is
measured once per architecture and software version, not once per process, and reading a
file's header loads no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sr_domains import disk_cache, memory
from sr_domains.models import create_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(disk_cache.ENV, str(folder))
    monkeypatch.setattr(memory, "_CACHE", {})
    return folder


def _counting_probe(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = memory.forward_bytes_per_pixel

    def probe(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(memory, "forward_bytes_per_pixel", probe)
    return calls


def _bpp(model) -> float:
    return memory.cached_bytes_per_pixel(model, model.in_channels, torch.device("cpu"))


def test_probe_result_is_reused_by_a_new_process_state(cache, monkeypatch):
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    calls = _counting_probe(monkeypatch)
    first = _bpp(model)
    assert calls == [1] and (cache / "memory_probe.json").is_file()
    monkeypatch.setattr(memory, "_CACHE", {})  # what a new process starts with
    assert _bpp(model) == first and calls == [1]
    # another architecture config is another entry, measured once
    other = create_model("edsr-lite-ca", in_channels=3, scale=4)
    assert _bpp(other) != first and calls == [1, 1]
    entries = json.loads((cache / "memory_probe.json").read_text())["entries"]
    assert sorted(entries.values()) == sorted([first, _bpp(other)])


def test_a_new_torch_version_measures_again(cache, monkeypatch):
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    calls = _counting_probe(monkeypatch)
    _bpp(model)
    monkeypatch.setattr(memory, "_CACHE", {})
    monkeypatch.setattr(torch, "__version__", "99.0.0")
    _bpp(model)
    assert calls == [1, 1]


def test_corrupt_cache_is_ignored_and_replaced(cache, monkeypatch):
    cache.mkdir()
    (cache / "memory_probe.json").write_text("{not json")
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    expected = memory.forward_bytes_per_pixel(model, 1, torch.device("cpu"))
    calls = _counting_probe(monkeypatch)
    value = _bpp(model)
    assert calls == [1] and value == expected
    assert list(json.loads((cache / "memory_probe.json").read_text())["entries"].values()) == [
        value
    ]
    # a non-positive or non-numeric entry is not trusted either
    key = next(iter(json.loads((cache / "memory_probe.json").read_text())["entries"]))
    disk_cache.remember(memory.DISK_TABLE, key, "lots")
    monkeypatch.setattr(memory, "_CACHE", {})
    assert _bpp(model) == value and calls == [1, 1]


def test_cache_off_and_unwritable_cache_still_give_the_value(tmp_path, monkeypatch):
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    monkeypatch.setattr(memory, "_CACHE", {})
    expected = memory.forward_bytes_per_pixel(model, 1, torch.device("cpu"))
    monkeypatch.setenv(disk_cache.ENV, "off")
    assert disk_cache.cache_dir() is None
    assert _bpp(model) == expected
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv(disk_cache.ENV, str(blocker / "cache"))  # cannot be created
    monkeypatch.setattr(memory, "_CACHE", {})
    assert _bpp(model) == expected
    assert blocker.read_text() == "x" and not list(tmp_path.glob("**/*.tmp"))


def test_default_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(disk_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert disk_cache.cache_dir() == tmp_path / "sr_domains"


def test_no_home_directory_turns_the_cache_off(monkeypatch):
    monkeypatch.delenv(disk_cache.ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert disk_cache.cache_dir() is None
    assert disk_cache.lookup("t", "k") is None
    disk_cache.remember("t", "k", 1)  # no error, nothing written


def test_tables_keep_the_newest_entries(cache, monkeypatch):
    monkeypatch.setattr(disk_cache, "MAX_ENTRIES", 3)
    for i in range(5):
        disk_cache.remember("t", f"k{i}", i)
    disk_cache.remember("t", "k2", 22)  # rewritten entries count as new
    entries = json.loads((cache / "t.json").read_text())["entries"]
    assert entries == {"k3": 3, "k4": 4, "k2": 22}
    assert disk_cache.lookup("t", "k0") is None and disk_cache.lookup("t", "k2") == 22


def _run(code: str, env: dict[str, str]) -> str:
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]


@pytest.mark.slow  # fresh interpreters (seconds each); CI runs it in the slow step
def test_second_process_skips_the_probe_and_torch_dynamo(tmp_path):
    """The probe's first run imports torch._dynamo (seconds); with the cache warm a new
    process builds the same engine (same default tile) without it."""
    code = (
        "import sys\n"
        "from sr_domains.inference import Upscaler\n"
        "from sr_domains.pretrained import load_pretrained\n"
        "m = load_pretrained('sr-lite-gray-x2')\n"
        "m = m[0] if isinstance(m, tuple) else m\n"
        "up = Upscaler(m, device='cpu')\n"
        "print(up.tiling.tile, 'torch._dynamo' in sys.modules)\n"
    )
    env = {disk_cache.ENV: str(tmp_path / "cache")}
    tile1, dyn1 = _run(code, env).split()
    tile2, dyn2 = _run(code, env).split()
    assert tile1 == tile2
    assert (dyn1, dyn2) == ("True", "False")


def test_info_on_a_nifti_loads_no_torch(tmp_path):
    from sr_domains.testing.medical import make_nifti

    path = tmp_path / "brain.nii.gz"
    make_nifti(str(path), shape=(12, 10, 4), spacing=(1.0, 1.0, 3.0))
    code = (
        "import sys\n"
        "from sr_domains.cli import main\n"
        f"sys.argv = ['sr-domains', 'info', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('torch' in sys.modules)\n"
    )
    assert _run(code, {}) == "False"


def test_an_edited_model_source_measures_again(tmp_path, monkeypatch):
    """The key covers the model class's source file: an edited checkout (same version
    number) does not reuse a measurement of the old code."""
    (tmp_path / "my_arch.py").write_text(
        "from sr_domains.models.edsr import EDSR\n\nclass MyEDSR(EDSR):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_arch

    from sr_domains.models.edsr import EDSRConfig

    model = my_arch.MyEDSR(EDSRConfig(in_channels=1, scale=2, n_blocks=2, n_feats=8))
    shapes = tuple(tuple(p.shape) for p in model.parameters())
    key = (type(model), repr(model.config), shapes, 1, False, "cpu", 1)
    before = memory._disk_key(key)
    assert memory._disk_key(key) == before  # stable
    st = os.stat(my_arch.__file__)
    os.utime(my_arch.__file__, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert memory._disk_key(key) != before
