"""Seeding torch for a run without touching the caller's random state.

``torch.manual_seed`` seeds the CPU and *every* CUDA device (and MPS), while
``torch.random.fork_rng(devices=[])`` restores only the CPU: a seeded step inside such a
fork moved the caller's GPU generators. These helpers seed and restore the same generators:
the CPU's and the one device a run uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _accelerator(device: torch.device | str | None) -> tuple[str | None, list[int]]:
    """``(device type, device indices)`` of the accelerator generator a run on ``device``
    uses; ``(None, [])`` on the CPU."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        return "cuda", [dev.index if dev.index is not None else torch.cuda.current_device()]
    if dev.type == "mps":
        return "mps", [0]  # (one MPS generator)
    return None, []


def seed_for(seed: int, device: torch.device | str | None = None) -> None:
    """Seed the CPU generator and ``device``'s (a CUDA or MPS device), no other."""
    torch.default_generator.manual_seed(int(seed))
    kind, index = _accelerator(device)
    if kind == "cuda":
        with torch.cuda.device(index[0]):
            torch.cuda.manual_seed(int(seed))
    elif kind == "mps":
        torch.mps.manual_seed(int(seed))


@contextlib.contextmanager
def rng_kept(device: torch.device | str | None = None) -> Iterator[None]:
    """Restore the CPU generator and ``device``'s after the block."""
    kind, index = _accelerator(device)
    with torch.random.fork_rng(devices=index, device_type=kind or "cuda"):
        yield


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """The block runs seeded with ``seed`` (CPU and ``device``); the caller's states after."""
    with rng_kept(device):
        seed_for(seed, device)
        yield


__all__ = ["rng_kept", "seed_for", "seeded"]
