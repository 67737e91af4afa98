"""Finding and stopping the ranks of a ``torchrun`` launched by a test (``/proc``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def ranks(launcher: int) -> list[int]:
    """The process ids of torchrun's (``launcher``) ranks (each in a session of its own)."""
    with contextlib.suppress(OSError):
        tasks = Path(f"/proc/{launcher}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]
    return []


def rank_pid(launcher: int, rank: int) -> int:
    """The process id of ``rank`` among the children of torchrun (``launcher``)."""
    for child in ranks(launcher):
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return child
    raise AssertionError(f"no rank {rank} under {launcher}")


def kill_all(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a torchrun still running, and its ranks (not in torchrun's process group)."""
    if proc.poll() is None:
        for pid in [*ranks(proc.pid), proc.pid]:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        proc.wait()
