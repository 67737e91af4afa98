"""What a weights file is, read from its content (not its name), and checks of the tensors in it.

Users rename files (a downloaded ``.safetensors`` saved as ``.pth``, ``model.PTH``), and a
suffix-based reader then reports a safetensors file as "pickled objects" or a text file as
``KeyError: 101``. :func:`sniff_weights` reads the first bytes instead:

* ``safetensors``: an 8-byte little-endian header length, then a JSON object that fits the file;
* ``torch``: a zip archive written by ``torch.save`` (its ``data.pkl``), or a legacy pickle;
* ``torchscript`` / ``torch.export``: zip archives of whole programs (``code/`` entries,
  ``serialized_exported_program``/``data/weights``): not weights, said as such;
* ``unknown``: anything else (text, ONNX, images, other zip archives).

:func:`read_state_dict` reads the tensors of any weights file (used by
:mod:`sr_domains.checkpoint`, the public-weights loader and the VGG reader).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import torch

from .errors import CheckpointError

log = logging.getLogger(__name__)

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
            expected = _safetensors_extent(p, n)
            if expected is not None and size < expected:  # the header fits, the tensors not
                raise CheckpointError(
                    f"{p}: truncated ({size} of {expected} bytes; a copy or download cut "
                    "short): copy it again"
                )
            return "safetensors"
        if head[8:9] == b"{" and n < 2**27:  # a header longer than the file: cut short
            raise CheckpointError(f"{p}: the file is truncated (an incomplete safetensors file)")
    if head.startswith(_ZIP):
        return _zip_kind(p)
    if head.startswith(_PICKLE):
        return "torch"
    return "unknown"


def _safetensors_extent(p: Path, n: int) -> int | None:
    """The size a safetensors file with an ``n``-byte header says it has (8 + ``n`` + the end
    of its last tensor's bytes), or None when the header is no JSON that says so."""
    import json

    try:
        with open(p, "rb") as fh:
            fh.seek(8)
            header = json.loads(fh.read(n))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return 8 + n + max(ends, default=0)


def _zip_kind(p: Path) -> WeightsKind:
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as exc:  # (no central directory at the end)
        raise CheckpointError(
            f"{p}: the file is truncated or damaged (an incomplete zip archive)"
        ) from exc
    parts = {part for n in names for part in n.split("/")[1:2]}
    if "code" in parts:
        return "torchscript"
    if any("serialized_exported_program" in n or "/data/weights/" in n for n in names):
        return "torch.export"
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    return "unknown"  # another zip archive (.npz, ...)


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
    bad = [k for k, t in tensors.items() if t.is_floating_point() and _not_finite(k, t)]
    if bad:
        raise CheckpointError(f"{p}: weights hold NaN or inf values: {', '.join(bad[:4])}")


def _not_finite(key: str, t: torch.Tensor) -> bool:
    """NaN anywhere, or inf in a weight/bias (a buffer may hold -inf, e.g. an attention
    mask). One reduction first: a finite sum means every value is finite."""
    if bool(torch.isfinite(t.sum(dtype=torch.float32))):
        return False
    if key.rsplit(".", 1)[-1] in ("weight", "bias"):
        return True
    return bool(t.isnan().any())


# BasicSR / Real-ESRGAN, Lightning, plain training scripts (the keys spandrel unwraps too)
_WRAPPER_KEYS = (
    "params_ema",
    "params-ema",
    "params",
    "state_dict",
    "model_state_dict",
    "model",
    "net",
)
_PREFIXES = ("module.", "netG.")  # DataParallel, BasicSR generator wrappers


def is_resume_checkpoint(path: Path) -> bool:
    """True for a trainer's ``last.pt``: a dict with the model, optimizer and step."""
    if sniff_weights(path) != "torch":
        return False
    try:
        with open(path, "rb") as fh:
            obj = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(obj, dict) and {"step", "model", "opt"} <= obj.keys()


def read_safetensors(path: Path, tensors: bool) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """``(metadata, tensors)`` of a safetensors file (no tensors unless ``tensors``); a file of
    another kind (a ``torch.save`` pickle, ...) is refused by name, not parsed as one."""
    from safetensors import safe_open

    kind = sniff_weights(path)
    if kind == "torch":
        if is_resume_checkpoint(path):
            raise CheckpointError(
                f"{path}: this is a training run's resume checkpoint (read by train --resume); "
                f"use the weights the run writes when it ends, "
                f"{path.parent / 'weights.safetensors'}"
            )
        raise CheckpointError(
            f"{path}: this is a PyTorch pickle (torch.save, .pt/.pth), not an sr_domains "
            "checkpoint (.safetensors with a model card); read it with load_public_checkpoint()"
        )
    if kind != "safetensors":
        raise CheckpointError(not_weights_message(path, kind))
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()} if tensors else {}  # noqa: SIM118
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if state and DIGEST_KEY in metadata and tensors_digest(state) != metadata[DIGEST_KEY]:
        raise CheckpointError(
            f"{path}: the weights do not match the checksum saved with them (sha256 of the "
            "tensors): the file is damaged; restore it from a good copy"
        )
    return metadata, state


#: Metadata key of the sha256 of a checkpoint's tensors, written by ``save_checkpoint`` and
#: checked whenever the tensors are read: safetensors has no checksum of its own, so a flipped
#: byte in the data would load as a slightly different model.
DIGEST_KEY = "sr_domains.tensors_sha256"


def tensors_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors in key order: each key, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def unpickle_error(exc: BaseException) -> str:
    """One line for a failed weights-only ``torch.load``, without torch's advice to retry
    with weights-only loading off (which would run code from the file)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        glob = re.search(r"GLOBAL (\S+)", text)
        op = re.search(r"Unsupported operand (\d+)", text)
        detail = (
            f"it references {glob.group(1)}"
            if glob
            else f"pickle instruction {op.group(1)}"
            if op
            else "objects that are not tensors"
        )
        return (
            f"refused: the file holds pickled objects that are not plain tensors ({detail}); "
            "sr_domains loads .pt/.pth files weights-only and never runs code from them"
        )
    if "PytorchStreamReader failed" in text or "failed finding central directory" in text:
        return "the file is truncated or damaged (an incomplete torch.save archive)"
    lines = text.strip().splitlines()
    first = lines[0][:200] if lines else ""
    return f"cannot read the checkpoint ({type(exc).__name__}{': ' + first if first else ''})"


def read_state_dict(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of any weights file: safetensors, or a ``.pt``/``.pth`` state dict (unwrapped
    from ``params_ema`` / ``params`` / ``state_dict``). Raises :class:`CheckpointError` naming
    the file when it is missing or unreadable."""
    path = Path(path)
    kind = sniff_weights(path)  # by content: renamed files are common
    if kind == "safetensors":
        state = read_safetensors(path, tensors=True)[1]
        check_tensors(path, state)
        return state
    if kind == "torch":
        return _read_torch_state(path)
    raise CheckpointError(not_weights_message(path, kind))


def _read_torch_state(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load`` (weights only) and unwrap ``params_ema`` / ``params`` / ``state_dict``."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it may not parse
            warnings.simplefilter("ignore", UserWarning)
            with open(path, "rb") as fh:  # (a file object: torch may dispatch on the suffix)
                obj = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: {unpickle_error(exc)}") from exc
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                log.info("%s: using the %r weights", path, key)
                obj = obj[key]
                break
        else:
            if len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
                obj = next(iter(obj.values()))
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: not a state dict ({type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: not a state dict; non-tensor entries {bad[:8]}")
    check_tensors(path, obj)
    state = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


__all__ = [
    "WeightsKind",
    "check_tensors",
    "not_weights_message",
    "read_safetensors",
    "read_state_dict",
    "sniff_weights",
    "unpickle_error",
]
