"""What an existing model file is, told by its leading bytes and, for a zip archive, by its
entry names (never unpickled): an ``--overwrite`` replaces a model file only with one of its
own format, never a training checkpoint (``last.pt``) or a state dict with an export.

``torch.jit.save``, ``torch.export.save`` and ``torch.save`` all write zip archives (under one
top folder, except torch.export before torch 2.6, whose entries are at the root): TorchScript
holds ``constants.pkl`` and ``code/``; an ExportedProgram ``archive_format`` and ``models/``
(torch >= 2.6; ``serialized_exported_program.json`` before); ``torch.save`` only ``data.pkl``
and its tensors."""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

#: Model formats by key (export formats, and the checkpoints :func:`save_checkpoint` writes).
LABELS = {
    "torchscript": "TorchScript",
    "exported-program": "torch.export ExportedProgram",
    "onnx": "ONNX",
    "safetensors": "safetensors",
}
#: Model format an output of that suffix has.
BY_SUFFIX = {
    ".pt": "torchscript",
    ".pt2": "exported-program",
    ".onnx": "onnx",
    ".safetensors": "safetensors",
}
#: Most of ``data.pkl`` read to name a training checkpoint (its tensors live elsewhere).
_PICKLE_MAX = 1 << 20


def _entries(path: Path) -> set[str] | None:
    """Entry names of a zip archive, as they are and below their top folder (``torch.save``
    and TorchScript write one; torch.export before torch 2.6 wrote its entries at the root),
    or None for another file."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            return {n.partition("/")[2] or n for n in names} | set(names)
    except (OSError, zipfile.BadZipFile, ValueError):
        return None


def _pickled_strings(path: Path) -> set[str]:
    """The strings in a ``torch.save`` archive's ``data.pkl`` (read as opcodes, not run)."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if "data.pkl" in (n, n.partition("/")[2]))
            with z.open(name) as f:
                data = f.read(_PICKLE_MAX)
        return {a for _, a, _ in pickletools.genops(data) if isinstance(a, str)}
    except Exception:  # (cut short, not a pickle: named by its layout alone)
        return set()


def kind(path: Path) -> str:
    """What ``path`` is, for a message: ``"a TorchScript file"``, ``"a training checkpoint
    (torch.save)"``... ("" when it cannot be read)."""
    head = _head(path)
    if not head:
        return ""
    if head[:2] == b"PK":
        names = _entries(path)
        if names is None:
            return "a zip archive that cannot be read"
        if "constants.pkl" in names and any(n.startswith("code/") for n in names):
            return "a TorchScript file"
        if ("archive_format" in names and any(n.startswith("models/") for n in names)) or (
            "serialized_exported_program.json" in names
        ):
            return "a torch.export ExportedProgram"
        if "data.pkl" in names:
            keys = _pickled_strings(path)
            if "optimizer" in keys or {"model", "step"} <= keys:
                return "a training checkpoint (torch.save, with its resume state)"
            return "a torch.save file (a state dict or checkpoint)"
        return "a zip archive, not a PyTorch model"
    if head[:1] == b"\x80":
        return "a pickle (a legacy torch.save file)"
    if head[8:9] == b"{":
        return "a safetensors file"
    if head[:1] == b"\x08":
        return "an ONNX model"
    return "not a model file"


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(9)
    except OSError:
        return b""


def is_format(path: Path, fmt: str) -> bool:
    """Whether the file at ``path`` is a model file of ``fmt`` (a key of :data:`LABELS`)."""
    if fmt == "torchscript":
        return kind(path) == "a TorchScript file"
    if fmt == "exported-program":
        return kind(path) == "a torch.export ExportedProgram"
    head = _head(path)
    if fmt == "onnx":  # protobuf ModelProto: field 1 (ir_version) first
        return head[:1] == b"\x08"
    return head[8:9] == b"{"  # safetensors: an 8-byte header length, then its JSON


__all__ = ["BY_SUFFIX", "LABELS", "is_format", "kind"]
