"""Memory budget of inference: parse ``--max-memory``, measure a model, choose the tile size.

The engine's default tile is the largest window whose forward pass fits the budget: bigger
windows recompute less overlap (the tiled/whole-image overhead falls towards 1.0), so the only
reason to cut an image into windows is memory. The peak memory of a forward grows linearly with
the window's pixel count, so it is measured once per model on a small probe window:

* CUDA: ``torch.cuda.max_memory_allocated`` around the probe (exact, includes workspaces);
* CPU / MPS: every tensor storage created during the probe is counted while it is alive (a
  ``TorchDispatchMode``); library-internal scratch (oneDNN) is covered by :data:`SAFETY`.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import logging
import math
import os
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from . import disk_cache
from .options import parse_bytes

log = logging.getLogger(__name__)

GiB = 2**30
#: Default CPU budget: this fraction of the physical memory, clamped to the bounds below.
CPU_FRACTION = 0.25
CPU_MIN, CPU_MAX = 1 * GiB, 4 * GiB
#: Default CUDA budget: this fraction of the device memory free when the engine starts.
CUDA_FRACTION = 0.6
#: Measured peaks are multiplied by this (allocator slack, library scratch buffers).
SAFETY = 1.25
#: Probe windows (LR pixels per side: real forward, shape-only forward) and the tile bounds.
#: The shape-only probe is large enough for models that work in row bands (EDSR's tail).
PROBE = 48
META_PROBE = 640
MIN_TILE, MAX_TILE = 64, 8192


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def physical_memory() -> int | None:
    """Total physical memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_budget(device: torch.device) -> int:
    """The budget used when none is given (module constants)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_FRACTION)
    total = physical_memory() or 4 * CPU_MAX
    return int(min(CPU_MAX, max(CPU_MIN, total * CPU_FRACTION)))


def resolve_budget(max_memory: int | float | str | None, device: torch.device) -> int:
    """Bytes for one forward batch: ``max_memory`` parsed, or :func:`default_budget`."""
    if max_memory is None or (isinstance(max_memory, str) and max_memory.lower() == "auto"):
        return default_budget(device)
    return parse_bytes(max_memory)


class _LiveStorages(TorchDispatchMode):
    """Counts the bytes of tensor storages created under it while any tensor using them lives
    (works on the meta device: no data, no compute)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if not self.refs[key]:
            del self.refs[key]
            self.current -= self.sizes.pop(key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key not in self.refs:
                self.refs[key] = 0
                self.sizes[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            self.refs[key] += 1
            weakref.finalize(t, self._release, key)
        return out


def meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no data is
    copied, so this is cheap for any model size)."""
    memo: dict[int, Any] = {}
    for t in [*model.parameters(), *model.buffers()]:
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = (
            torch.nn.Parameter(meta, requires_grad=t.requires_grad)
            if isinstance(t, torch.nn.Parameter)
            else meta
        )
    return copy.deepcopy(model, memo)


@contextlib.contextmanager
def _dispatch_mode(mode: TorchDispatchMode) -> Iterator[None]:
    """Push ``mode`` on the dispatch stack. ``with mode:`` would import ``torch._dynamo``
    (seconds) on first use; the C hooks it wraps are used directly when they exist."""
    push = getattr(torch._C, "_push_on_torch_dispatch_stack", None)
    pop = getattr(torch._C, "_pop_torch_dispatch_stack", None)
    if push is None or pop is None:  # pragma: no cover - other torch versions
        with mode:
            yield
        return
    push(mode)
    try:
        yield
    finally:
        pop(None)


_CACHE: dict[tuple[Any, ...], float] = {}
#: Table of :mod:`sr_domains.disk_cache` holding the probes' results.
DISK_TABLE = "memory_probe"


def cached_bytes_per_pixel(
    model: torch.nn.Module,
    in_channels: int,
    device: torch.device,
    *,
    multiple: int = 1,
    channels_last: bool = False,
) -> float:
    """:func:`forward_bytes_per_pixel`, remembered per architecture config (a model with a
    ``config`` attribute) and memory format, so engines built for the same architecture do not
    probe again: in the process, and off CUDA across processes too (:mod:`sr_domains.disk_cache`;
    the shape-only probe costs little, but the first one imports ``torch._dynamo``, about 2 s
    of every command-line run)."""
    config = getattr(model, "config", None)
    key = disk_key = None
    if config is not None:
        shapes = tuple(tuple(p.shape) for p in model.parameters())  # sizes not in the config
        key = (type(model), repr(config), shapes, in_channels, channels_last, device.type, multiple)
        if key in _CACHE:
            return _CACHE[key]
        if device.type != "cuda":  # CUDA peaks depend on the GPU and its libraries
            disk_key = _disk_key(key)
            cached = disk_cache.lookup(DISK_TABLE, disk_key)
            if isinstance(cached, (int, float)) and math.isfinite(cached) and cached > 0:
                _CACHE[key] = float(cached)
                return float(cached)
    value = forward_bytes_per_pixel(
        model, in_channels, device, multiple=multiple, channels_last=channels_last
    )
    if key is not None:
        _CACHE[key] = value
    if disk_key is not None:
        disk_cache.remember(DISK_TABLE, disk_key, value)
    return value


def _disk_key(key: tuple[Any, ...]) -> str:
    """The in-process key made stable across processes, with everything else the probe's
    result depends on: versions, probe sizes, and the source files of the model class, of
    ``sr_domains.models`` and of this module (size and modification time: an edited checkout
    measures again)."""
    from . import __version__

    cls, *rest = key
    paths = {getattr(sys.modules.get(cls.__module__), "__file__", None), __file__}
    paths.update(str(f) for f in Path(__file__).with_name("models").glob("*.py"))
    files: list[tuple[object, ...]] = []
    for path in sorted(p for p in paths if p):
        try:
            st = os.stat(path)
            files.append((path, st.st_size, st.st_mtime_ns))
        except OSError:
            files.append((path,))
    return disk_cache.make_key(
        torch.__version__,
        __version__,
        PROBE,
        META_PROBE,
        cls.__module__,
        cls.__qualname__,
        *files,
        *rest,
    )


def forward_bytes_per_pixel(
    model: torch.nn.Module,
    in_channels: int,
    device: torch.device,
    *,
    multiple: int = 1,
    channels_last: bool = False,
    side: int | None = None,
) -> float:
    """Peak bytes of one forward pass per LR input pixel (batch 1), measured on a probe
    (``side`` x ``side``; default :data:`PROBE` / :data:`META_PROBE`).

    CUDA: the allocator's peak around a real forward. Elsewhere: the live tensor storages of a
    forward of a copy on the meta device (shapes only, no compute); a network that cannot run
    on the meta device is probed for real on the CPU.
    """
    m = max(1, multiple)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    meta_side = math.ceil((side or META_PROBE) / m) * m
    side = math.ceil((side or PROBE) / m) * m
    if device.type == "cuda":
        x = torch.rand(1, in_channels, side, side, device=device, generator=_probe_rng(device))
        x = x.contiguous(memory_format=fmt)
        with torch.inference_mode():
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            model(x)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base
        return max(float(peak), 1.0) / (side * side)
    try:
        probe_model = meta_copy(model)
        x = torch.empty(1, in_channels, meta_side, meta_side, device="meta")
        x = x.contiguous(memory_format=fmt)
        side = meta_side
    except Exception:  # pragma: no cover - unusual modules
        probe_model, x = model, torch.rand(1, in_channels, side, side, generator=_probe_rng())
        x = x.contiguous(memory_format=fmt)
    probe = _LiveStorages()
    with torch.inference_mode():
        try:
            with _dispatch_mode(probe):
                probe_model(x)
        except Exception:  # data-dependent network: run the real thing on a small CPU input
            if probe_model is model:
                raise
            probe = _LiveStorages()
            side = math.ceil(min(side, PROBE) / m) * m
            real = torch.rand(1, in_channels, side, side, generator=_probe_rng())
            real = real.contiguous(memory_format=fmt)
            with _dispatch_mode(probe):
                model.cpu()(real) if device.type == "cpu" else model(real.to(device))
    return max(float(probe.peak), 1.0) / (side * side)


def tile_for_budget(
    budget: int, bytes_per_pixel: float, *, batch: int = 1, multiple: int = 1, floor: int = 0
) -> int:
    """The largest square LR window (a multiple of 8 and of ``multiple``) whose ``batch``
    forward fits ``budget`` bytes, within ``[max(MIN_TILE, floor), MAX_TILE]``."""
    step = math.lcm(8, max(1, multiple))
    side = math.sqrt(budget / (max(1, batch) * bytes_per_pixel * SAFETY))
    tile = int(side) // step * step
    lo = math.ceil(max(MIN_TILE, floor) / step) * step
    return int(min(MAX_TILE, max(lo, tile)))


def budget_tile(
    model: torch.nn.Module,
    device: torch.device,
    max_memory: int | float | str | None,
    *,
    budget_device: torch.device | None = None,
    multiple: int = 1,
    channels_last: bool = False,
    batch: int = 1,
    margin: int = 40,
    ramp: int = 16,
) -> tuple[int, int]:
    """``(tile, budget)``: the engine's default tile for ``model`` (probed on ``device``) and
    the budget it fits (from ``budget_device``, default ``device``).

    The engine's own buffers per window (normalized input, network output and its weighted
    copy) are added to the model's peak; the tile never goes below ``4 * margin + ramp`` (the
    margins must leave room for useful pixels).
    """
    in_ch = int(getattr(model, "in_channels", 1))
    out_ch = int(getattr(model, "out_channels", in_ch))
    scale = int(getattr(model, "scale", 1))
    bpp = cached_bytes_per_pixel(
        model, in_ch, device, multiple=multiple, channels_last=channels_last
    )
    bpp += 4 * (3 * in_ch + 2 * out_ch * scale * scale)
    budget = resolve_budget(max_memory, budget_device or device)
    radius = getattr(model, "receptive_radius", lambda: None)()
    floor = 4 * min(margin if radius is None else radius, margin) + ramp
    tile = tile_for_budget(budget, bpp, batch=batch, multiple=multiple, floor=floor)
    log.info(
        "%s: %.0f bytes per LR pixel, budget %s -> tile %d",
        getattr(model, "arch", type(model).__name__),
        bpp,
        format_bytes(budget),
        tile,
    )
    return tile, budget


def _probe_rng(device: torch.device | str = "cpu") -> torch.Generator:
    """A generator of the probe's own: measuring memory never moves the caller's RNG."""
    return torch.Generator(device=device).manual_seed(0)


def keep_freed_memory(max_block: int = 2**30) -> bool:
    """Let glibc's malloc serve blocks up to ``max_block`` bytes from its heap and keep freed
    memory there instead of returning it to the OS after every tensor.

    A forward pass frees and reallocates large feature maps; with the default settings each of
    them is a fresh ``mmap`` whose pages fault in again (about a third of the CPU time of a
    1024^2 ``edsr-lite-ca`` forward). This is a process-wide setting, so the library never
    makes it by itself: the ``sr-domains`` CLI calls it, your own program may. The process then
    keeps its peak memory (bounded by the memory budget) until it exits. Returns True when the
    settings were applied (Linux with glibc), False elsewhere (jemalloc or tcmalloc via
    ``LD_PRELOAD`` give the same effect there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other libcs
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, ctypes.c_int(int(max_block))) == 1
    ok = mallopt(m_trim_threshold, ctypes.c_int(2**31 - 1)) == 1 and ok
    log.debug("glibc malloc keeps freed memory: %s", ok)
    return bool(ok)


__all__ = [
    "budget_tile",
    "cached_bytes_per_pixel",
    "default_budget",
    "format_bytes",
    "forward_bytes_per_pixel",
    "keep_freed_memory",
    "parse_bytes",
    "physical_memory",
    "resolve_budget",
    "tile_for_budget",
]
