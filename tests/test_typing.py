"""The package type-checks: ``python -m mypy sr_domains`` reports no error.

The settings are ``[tool.mypy]`` in pyproject.toml. mypy keeps its incremental cache in
``.mypy_cache`` at the repository root (git-ignored): a cold run takes about a minute, a warm
one a few seconds. Deselect with ``-m "not slow and not typecheck"``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.typecheck

# How the overloads of upscale_array type its result (checked, never run).
OVERLOADS = """
import numpy as np
from typing_extensions import assert_type

from sr_domains.array_api import upscale_array
from sr_domains.models.base import SRModel


def check(x: np.ndarray, m: SRModel, flag: bool) -> None:
    assert_type(upscale_array(x, m), np.ndarray)
    assert_type(upscale_array(x, m, return_mask=False), np.ndarray)
    assert_type(upscale_array(x, m, return_mask=True), tuple[np.ndarray, np.ndarray])
    assert_type(
        upscale_array(x, m, return_mask=flag), np.ndarray | tuple[np.ndarray, np.ndarray]
    )
"""


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_mypy_reports_no_errors() -> None:
    # one test, two runs in turn: the second reuses the first one's cache (and parallel
    # workers never share it)
    r = _mypy("sr_domains")
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, f"mypy sr_domains found errors:\n{out}"
    r = _mypy("-c", textwrap.dedent(OVERLOADS))
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, f"upscale_array overloads are not typed as documented:\n{out}"
