"""What a weights file is, read from its content (not its name), and checks of the tensors in it.

Users rename files (a downloaded ``.safetensors`` saved as ``.pth``, ``model.PTH``), and a
suffix-based reader then reports a safetensors file as "pickled objects" or a text file as
``KeyError: 101``. :func:`sniff_weights` reads the first bytes instead:

* ``safetensors``: an 8-byte little-endian header length, then a JSON object that fits the file;
* ``torch``: a zip archive written by ``torch.save`` (its ``data.pkl``), or a legacy pickle;
* ``torchscript`` / ``torch.export``: zip archives of whole programs (``code/`` entries,
  ``serialized_exported_program``/``data/weights``): not weights, said as such;
* ``unknown``: anything else (text, ONNX, images).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from .errors import CheckpointError

WeightsKind = Literal["safetensors", "torch", "torchscript", "torch.export", "unknown"]

_ZIP = b"PK\x03\x04"
_PICKLE = b"\x80"  # pickle protocol 2+ opcode (legacy torch.save)


def sniff_weights(path: str | Path) -> WeightsKind:
    """The kind of weights file ``path`` is, from its content.

    Raises:
        CheckpointError: the path does not exist, is a folder, or is empty.
    """
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder, not a weights file")
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(f"{p}: the file is empty")
    with open(p, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(_ZIP):
        return _zip_kind(p)
    if head.startswith(_PICKLE):
        return "torch"
    return "unknown"


def _zip_kind(p: Path) -> WeightsKind:
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return "torch"  # a truncated torch.save archive: torch.load says what is wrong
    parts = {part for n in names for part in n.split("/")[1:2]}
    if "code" in parts:
        return "torchscript"
    if any("serialized_exported_program" in n or "/data/weights/" in n for n in names):
        return "torch.export"
    return "torch"


def not_weights_message(p: Path, kind: WeightsKind) -> str:
    """Why a file of ``kind`` is not read as weights (for a kind other than safetensors/torch)."""
    if kind == "torchscript":
        return (
            f"{p}: this is a TorchScript program (torch.jit.save / sr-domains export), not "
            "weights; give the .safetensors/.pth weights it was made from"
        )
    if kind == "torch.export":
        return (
            f"{p}: this is a torch.export program (.pt2), not weights; give the "
            ".safetensors/.pth weights it was made from"
        )
    return (
        f"{p}: not a weights file (neither safetensors nor a torch.save archive; ONNX models, "
        "images and text cannot be loaded as weights)"
    )


def check_tensors(p: Path, state: Mapping[Any, Any]) -> None:
    """Refuse a state dict whose keys are not names, or whose tensors carry no data (saved on
    the ``meta`` device), are not floating point (complex anywhere; integer weights and biases,
    e.g. quantized ones: integer *buffers* such as SwinIR's position indices or BatchNorm's
    counters are fine) or hold NaN/inf."""
    if not state:
        raise CheckpointError(f"{p}: not a state dict (it holds no tensors)")
    odd_keys = [k for k in state if not isinstance(k, str)]
    if odd_keys:
        raise CheckpointError(f"{p}: not a state dict (keys must be names, got {odd_keys[:4]})")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    meta = [k for k, t in tensors.items() if t.is_meta]
    if meta:
        raise CheckpointError(
            f"{p}: tensors without data (saved on the meta device): {', '.join(meta[:4])}"
        )
    wrong = [
        f"{k} ({str(t.dtype).replace('torch.', '')})"
        for k, t in tensors.items()
        if t.is_complex()
        or (not t.is_floating_point() and k.rsplit(".", 1)[-1] in ("weight", "bias"))
    ]
    if wrong:
        raise CheckpointError(
            f"{p}: weights must be floating point; not: {', '.join(wrong[:4])}"
            + (f" (+{len(wrong) - 4} more)" if len(wrong) > 4 else "")
        )
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(t.isfinite().all())]
    if bad:
        raise CheckpointError(f"{p}: weights hold NaN or inf values: {', '.join(bad[:4])}")


__all__ = ["WeightsKind", "check_tensors", "not_weights_message", "sniff_weights"]
