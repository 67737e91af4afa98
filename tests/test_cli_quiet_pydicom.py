"""pydicom's warnings on the command line: ``-q`` (errors only) prints none; without it each is
printed once (pydicom both logs it and raises it as a Python ``UserWarning``: it was printed
twice, and twice under ``-q``). Run as the ``sr-domains`` script is, in a process of its own:
its logging is then the command's."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("pydicom")

from pydicom.data import get_testdata_file

#: What pydicom says of this file's pixel data (128 bytes of padding after the pixels).
SAID = "excess padding to be removed"


def _run(tmp_path, *flags: str) -> subprocess.CompletedProcess[str]:
    src = get_testdata_file("MR_small_padded.dcm")
    out = tmp_path / f"out{len(flags)}"
    cmd = [sys.executable, "-m", "sr_domains", "upscale", src, str(out), "--no-progress", *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "IM00001.dcm").is_file()
    return done


def test_quiet_prints_no_pydicom_warning(tmp_path):
    assert _run(tmp_path, "-q").stderr == ""


def test_a_pydicom_warning_is_printed_once(tmp_path):
    err = _run(tmp_path).stderr
    assert err.count(SAID) == 1, err
    assert "WARNING pydicom:" in err and "UserWarning" not in err
