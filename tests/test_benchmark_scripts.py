"""The benchmark scripts' command lines: usage errors and --help say what they do before any
work (they print tables, so their numbers are not tested here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(BENCH / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_quality_names_an_unknown_case_and_value_fidelity_has_a_usage():
    """`quality.py --cases nope` ended in a traceback (min() of no rows); `value_fidelity.py
    --help` ran the whole benchmark."""
    bad = _run("quality.py", "--cases", "nope")
    assert bad.returncode == 2 and "unknown case(s) nope; the cases are bicubic" in bad.stderr
    assert "Traceback" not in bad.stderr
    helped = _run("value_fidelity.py", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: value_fidelity.py")
    assert "raw" not in helped.stdout.split("options:")[-1]  # no result table
