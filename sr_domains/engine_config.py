"""How the engine runs: device, precision, tiling, backend, threads and memory budget.

:class:`EngineSettings` holds the run-wide choices that domain APIs do not take one by one
(backend, memory budget, threads); :func:`engine_settings` sets them for a block of code, and
every :class:`~sr_domains.inference.Upscaler` created inside it uses them unless given its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .errors import ConfigError
from .models.base import SRModel
from .options import BACKENDS, DEFAULT_TILE, UpscaleOptions, parse_bytes

#: The automatic margin never exceeds this many LR pixels (deep nets have huge theoretical
#: receptive fields but small effective ones). Pass ``overlap`` for more.
MAX_AUTO_MARGIN = 40
#: Extra overlap used as a blending ramp when the margin cannot cover the receptive field.
RAMP = 16


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r} requested but this machine has cuda:0.."
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    elif dev.type != "cpu":  # mps, xpu, ...: their torch module says if they are usable
        backend = getattr(torch.backends, dev.type, None) or getattr(torch, dev.type, None)
        available = getattr(backend, "is_available", None)
        if available is None or not available():
            raise ConfigError(f"device {device!r} requested but it is not available here")
    return dev


def resolve_amp(amp: str | bool | None, device: torch.device, model: SRModel) -> torch.dtype | None:
    """Autocast dtype: ``"auto"`` = bf16 (or fp16) on CUDA when the model declares it safe,
    full precision elsewhere; ``"off"``/False = none; ``"fp16"``/``"bf16"`` = forced."""
    if amp is None or amp is False or (isinstance(amp, str) and amp.lower() in ("off", "none")):
        return None
    choice = "auto" if amp is True else str(amp).lower()
    if choice == "auto":
        if device.type != "cuda":
            return None
        if model.bf16_safe and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if model.fp16_safe else None
    if choice in ("bf16", "bfloat16"):
        return torch.bfloat16
    if choice in ("fp16", "float16", "half"):
        if device.type == "cpu":
            raise ConfigError("fp16 autocast is not supported on the CPU; use bf16 or off")
        return torch.float16
    raise ConfigError(f"invalid amp {amp!r}; use auto, off, fp16 or bf16")


@dataclass(frozen=True)
class Tiling:
    """Resolved tiling parameters for one model."""

    tile: int
    overlap: int
    margin: int
    exact: bool  # True when the margin covers the model's receptive field


def resolve_tiling(model: SRModel, tile: int | None = None, overlap: int | None = None) -> Tiling:
    """Default overlap from the receptive field (see module constants)."""
    radius = model.receptive_radius()
    tile = DEFAULT_TILE if tile is None else int(tile)
    if overlap is None:
        if radius is not None and radius <= MAX_AUTO_MARGIN and 2 * radius < tile:
            margin, overlap = radius, 2 * radius
        else:
            margin = MAX_AUTO_MARGIN if radius is None else min(radius, MAX_AUTO_MARGIN)
            ramp = min(RAMP, tile // 4)  # small tiles: a shorter ramp keeps overlap < tile
            margin = min(margin, max(0, (tile - ramp) // 4))
            overlap = 2 * margin + ramp
    else:
        overlap = int(overlap)
        if overlap < 0:
            raise ConfigError(f"overlap must be >= 0, got {overlap}")
        margin = overlap // 2 if radius is None else min(radius, overlap // 2)
        if radius is None:
            margin = overlap // 4  # keep half of the overlap as a blending ramp
    if tile < 1:
        raise ConfigError(f"tile must be >= 1, got {tile}")
    exact = radius is not None and margin >= radius
    return Tiling(tile, overlap, margin, exact)


@dataclass(frozen=True)
class EngineSettings:
    """Run-wide engine choices (None = the engine's default).

    Attributes:
        backend: ``"torch"`` or ``"onnxruntime"``.
        max_memory: memory budget of one forward batch (``"4G"``, bytes; default: see
            :mod:`sr_domains.memory`); sets the default tile size.
        threads: CPU threads of the network (``torch.set_num_threads`` / ONNX Runtime).
    """

    backend: str | None = None
    max_memory: int | str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.max_memory is not None and self.max_memory != "auto":
            parse_bytes(self.max_memory)


_SETTINGS: contextvars.ContextVar[EngineSettings | None] = contextvars.ContextVar(
    "sr_domains_engine_settings", default=None
)


def current_settings() -> EngineSettings:
    """The settings in force (see :func:`engine_settings`)."""
    return _SETTINGS.get() or EngineSettings()


def settings_with(
    backend: str | None = None, threads: int | None = None, max_memory: int | str | None = None
) -> EngineSettings:
    """The settings in force (:func:`current_settings`) with the fields given (not None)
    replacing theirs: what a run of ``UpscaleOptions`` uses, e.g.
    ``settings_with(**engine_fields(options))``, resolved where the run starts and carried to
    its workers (:mod:`sr_domains.distributed`)."""
    run = current_settings()
    return EngineSettings(
        backend=backend if backend is not None else run.backend,
        threads=threads if threads is not None else run.threads,
        max_memory=max_memory if max_memory is not None else run.max_memory,
    )


def carry_settings(options: UpscaleOptions, settings: EngineSettings) -> UpscaleOptions:
    """``options`` with the engine fields of ``settings``: they travel to Dask workers, where
    no :func:`engine_settings` block of the caller is in force."""
    memory = settings.max_memory
    return dataclasses.replace(
        options,
        backend=settings.backend,
        threads=settings.threads,
        max_memory=None if memory is None or memory == "auto" else str(memory),
    )


@contextlib.contextmanager
def engine_settings(settings: EngineSettings) -> Iterator[EngineSettings]:
    """Use ``settings`` for every engine created in this block (thread- and task-local).

    >>> with engine_settings(EngineSettings(backend="onnxruntime", threads=2)):
    ...     upscale_geotiff("in.tif", "out.tif")  # doctest: +SKIP
    """
    token = _SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _SETTINGS.reset(token)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous count after."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


__all__ = [
    "BACKENDS",
    "MAX_AUTO_MARGIN",
    "RAMP",
    "EngineSettings",
    "Tiling",
    "carry_settings",
    "current_settings",
    "engine_settings",
    "resolve_amp",
    "resolve_device",
    "resolve_tiling",
    "settings_with",
    "torch_threads",
]
