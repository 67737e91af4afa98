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


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _private_disk_cache(tmp_path_factory) -> None:
    """Tests (and the commands they start) use their own disk cache, never the user's."""
    os.environ["SR_DOMAINS_CACHE_DIR"] = str(tmp_path_factory.mktemp("sr_domains_cache"))
