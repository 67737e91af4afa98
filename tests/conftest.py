"""Shared fixtures: real sample data beside the repo (skipped when absent), seeds, a private
disk cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

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


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _dask_scheduler_kept():
    """A test leaves dask's ``scheduler`` setting as it found it: a leaked one made the lazy
    xarray tests that happened to follow on the same worker fail, far from the cause."""
    import sys

    def scheduler() -> object:
        config = sys.modules.get("dask.config")
        return None if config is None else config.get("scheduler", None)

    before = scheduler()
    yield
    assert scheduler() == before, "this test left dask's scheduler setting changed"


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
