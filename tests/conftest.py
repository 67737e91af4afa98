"""Shared fixtures: real sample data beside the repo (skipped when absent), seeds, a private
disk cache."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

# A test run started in the background of a non-interactive shell (`bash -c '... &'`, a CI
# runner's job) inherits SIGINT ignored, and Python then keeps it ignored, in this process
# and in every process the tests start: the tests of Ctrl-C handling would test nothing.
# They run as under a terminal: Python's own Ctrl-C handler (KeyboardInterrupt).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real sample files); tests using it skip on a bare clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="module")
def dask_client():
    """A local Dask cluster of two one-thread worker processes (per test module)."""
    distributed = pytest.importorskip("distributed")
    env = dict(os.environ)  # (distributed's nanny puts OMP_NUM_THREADS=1, ... there for good)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # (not port 8787)
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c
    os.environ.clear()
    os.environ.update(env)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small tensors, many small passes: faster on busy
    shared cores). Not autouse: a module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    torch.manual_seed(0)


# Third-party settings made once, on import (rasterio's GDAL_CURL_CA_BUNDLE and
# PROJ_CURL_CA_BUNDLE, Dask's logger level, MONAI's CUBLAS_WORKSPACE_CONFIG): made before the
# first test, not inside one.
for _name in ("rasterio", "distributed", "monai"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)

#: Environment variables that change between tests by design (pytest's, torch's own cache).
_ENV_IGNORED = ("PYTEST_", "TORCHINDUCTOR_")
#: Loggers whose levels a library call must leave as it found them.
_LOGGERS = ("", "sr_domains", "distributed", "distributed.nanny")


def _gdal_cache() -> int | None:
    """GDAL's block cache cap (bytes; one per process), None without rasterio. Left at 64 bytes
    by two threads' jobs, it made later tests' files lose an alpha band set after the pixels."""
    try:
        from rasterio._env import get_gdal_config
    except ImportError:
        return None
    return int(get_gdal_config("GDAL_CACHEMAX"))


def _process_state() -> dict[str, object]:
    """What a library call (and so a test) must leave as it found it: with a leak, the tests
    that happened to follow on the same xdist worker failed far from the cause (a dask
    ``scheduler`` setting left on a client that did not exist failed five lazy xarray tests)."""
    import logging
    import signal
    import sys

    config = sys.modules.get("dask.config")
    root = logging.getLogger()
    return {
        "dask scheduler setting": None if config is None else config.get("scheduler", None),
        "torch threads": torch.get_num_threads(),
        "GDAL block cache": _gdal_cache(),
        "SIGTERM handler": signal.getsignal(signal.SIGTERM),
        "environment": {k: v for k, v in os.environ.items() if not k.startswith(_ENV_IGNORED)},
        "logger levels": {name: logging.getLogger(name).level for name in _LOGGERS},
        "root handlers": [  # (pytest's own capture handlers come and go with each phase)
            h for h in root.handlers if not type(h).__module__.startswith("_pytest")
        ],
    }


@pytest.fixture(autouse=True)
def _process_state_kept():
    """A test leaves the process as it found it (:func:`_process_state`)."""
    before = _process_state()
    yield
    after = _process_state()
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, "this test left the process changed: " + "; ".join(
        f"{k}: {before[k]!r} -> {after[k]!r}" for k in changed
    )


@pytest.fixture(scope="session", autouse=True)
def _private_disk_cache(tmp_path_factory) -> None:
    """Tests (and the commands they start) use their own disk cache, never the user's."""
    os.environ["SR_DOMAINS_CACHE_DIR"] = str(tmp_path_factory.mktemp("sr_domains_cache"))


#: Tests of 10 s or more (``--durations``), started first: with ``-n 2`` the two workers then
#: finish together instead of one running a long page test alone at the end.
LONG_FIRST = (
    "tests/test_doc_snippets.py::test_page_blocks_run",
    "tests/test_monai_bundle.py::test_train_then_evaluate_bundles",
    "tests/test_input_adapt.py::test_adaptation_lowers_its_loss",
    "tests/test_train.py::test_torchrun_two_cpu_processes",
    "tests/test_monai_example.py",
    "tests/test_monai_bundle.py::test_inference_bundle_cli",
    "tests/test_monai_bundle.py::test_inference_bundle_skips_its_own_outputs",
    "tests/test_isotropic_docs.py",
    "tests/test_typing.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_FIRST))  # stable
