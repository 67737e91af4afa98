"""A network placed for inference: device, precision (AMP), memory format, backend, threads.

:class:`NetworkRunner` maps a normalized LR batch ``(N, C, h, w)`` (float32 numpy) to its HR
batch; :class:`~sr_domains.inference.Upscaler` adds tiling, band handling, nodata and value
rules around it.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .engine_config import resolve_amp, resolve_device, torch_threads
from .errors import ConfigError
from .models.base import SRModel

log = logging.getLogger(__name__)


class NetworkRunner:
    """``model`` on ``device`` (eval mode) with its precision, memory format and backend.

    Args:
        model: the network (moved to ``device``; the ONNX Runtime backend keeps it on the CPU
            and exports it once).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...
        amp: ``"auto"``, ``"off"``, ``"fp16"``, ``"bf16"`` (PyTorch backend only).
        channels_last: channels-last memory format (default: on CUDA, and on the CPU for the
            architectures where it is faster, ``SRModel.cpu_channels_last``).
        backend: ``"torch"`` or ``"onnxruntime"`` (:mod:`sr_domains.onnx_backend`).
        threads: CPU threads of the network while it is placed (and, for ONNX Runtime, runs).
    """

    def __init__(
        self,
        model: SRModel,
        *,
        device: str | torch.device | None = "auto",
        amp: str | bool | None = "auto",
        channels_last: bool | None = None,
        backend: str = "torch",
        threads: int | None = None,
    ) -> None:
        self.backend = backend
        self.threads = threads
        self.device = resolve_device(device)
        self.amp_dtype = resolve_amp(amp, self.device, model)
        if channels_last is None:
            cpu_pref = bool(getattr(model, "cpu_channels_last", False))
            channels_last = self.device.type == "cuda" or (self.device.type == "cpu" and cpu_pref)
        self.channels_last = bool(channels_last) and backend == "torch"
        self._ort = None
        with torch_threads(threads):
            if backend == "onnxruntime":
                from .onnx_backend import OrtRunner

                if self.amp_dtype is not None and amp not in ("auto", None, True):
                    log.warning("amp=%s is ignored by the onnxruntime backend (float32)", amp)
                self.amp_dtype = None
                self.model = model.cpu().eval()
                self._ort = OrtRunner(self.model, self.device, threads)
            else:
                self.model = model.to(self.device).eval()
                if self.channels_last:
                    # Module.to(memory_format=) exists; torch's overloads omit it
                    self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @property
    def compute_device(self) -> torch.device:
        """Where the network's tensors live (the CPU for ONNX Runtime, whatever it runs on)."""
        return torch.device("cpu") if self._ort is not None else self.device

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The HR batch (float32 numpy) of a normalized LR batch ``(N, C, h, w)``."""
        if self._ort is not None:
            return self._ort(batch)
        t = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        ctx = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), ctx:
            y = self.model(t).float()
        return y.cpu().numpy()  # channels-last stays strided: denormalize copies in C order


_LOW = (torch.float16, torch.bfloat16)


@contextlib.contextmanager
def module_state_kept(model: Any) -> Iterator[Any]:
    """Yield the module one call of the engine runs, and give a caller's module back as it
    came: the engine puts it in eval mode on its device (channels-last there, where that is
    faster); its training mode, device and memory format are restored on exit. A half or
    bfloat16 module is run as a float32 copy (and in AMP on a GPU), so the caller's module is
    never cast, even while another thread uses it. A module on the meta device (no weights
    yet) is refused. Anything else (a name, an Upscaler) passes through."""
    if not isinstance(model, torch.nn.Module):
        yield model
        return
    tensors = list(itertools.chain(model.parameters(), model.buffers()))
    if any(t.is_meta for t in tensors):
        raise ConfigError(
            f"{type(model).__name__} has its weights on the meta device (none loaded): load "
            "them first (load_checkpoint, or module.to_empty(device=...) and load_state_dict)"
        )
    if any(t.dtype in _LOW for t in tensors):  # (exact: float32 holds every such value)
        yield copy.deepcopy(model).float()
        return
    training = model.training
    device = tensors[0].device if tensors else None
    plain = all(p.is_contiguous() for p in model.parameters() if p.dim() == 4)
    try:
        yield model
    finally:
        model.train(training)
        if device is not None:
            model.to(device)
        if plain:
            model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


__all__ = ["NetworkRunner", "module_state_kept"]
