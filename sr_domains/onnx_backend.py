"""ONNX Runtime as the engine's network: ``Upscaler(..., backend="onnxruntime")``.

The model is exported in memory (:func:`sr_domains.export.onnx_bytes`, dynamic batch, height
and width) and run by an ``onnxruntime.InferenceSession``; everything around the network
(tiling, intensity profile, nodata, value rules, writers) is the same engine as with PyTorch.
The CUDA execution provider is used when the device is CUDA and the installed onnxruntime has
it (``onnxruntime-gpu``); otherwise the CPU provider, with a warning if CUDA was asked for.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .errors import require
from .models.base import SRModel

log = logging.getLogger(__name__)


class OrtRunner:
    """Run ``(B, C, h, w)`` float32 batches of ``model`` through ONNX Runtime.

    Args:
        model: the network to export (its weights are copied; later changes are not seen).
        device: ``cuda`` selects the CUDA execution provider when available.
        threads: intra-op threads (default: ``torch.get_num_threads()``, so ``--threads`` and
            ``torch.set_num_threads`` govern both backends alike).
    """

    def __init__(self, model: SRModel, device: torch.device, threads: int | None = None) -> None:
        ort = require("onnxruntime", "onnx", "--backend onnxruntime")
        from .export import onnx_bytes

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                log.warning(
                    "onnxruntime has no CUDA execution provider (install onnxruntime-gpu); "
                    "running on the CPU"
                )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        from .models.resampled import ResampledSR

        # a resampled model (the x3 default): its network in ONNX Runtime, the resampling
        # (antialiased bicubic, which ONNX does not have) in PyTorch afterwards
        self.resampled = model if isinstance(model, ResampledSR) else None
        net = self.resampled.base if self.resampled is not None else model
        self.session = ort.InferenceSession(onnx_bytes(net), opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.providers = self.session.get_providers()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        y = self.session.run(None, {self.input_name: x})[0]
        if self.resampled is None:
            return y
        with torch.inference_mode():
            return self.resampled.resample(torch.from_numpy(y)).numpy()


__all__ = ["OrtRunner"]
