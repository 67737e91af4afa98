"""Export a model to ONNX, TorchScript or a ``torch.export`` ExportedProgram, card included.

Every format takes any batch size and any ``H, W`` (multiples of the model's size multiple)
and carries the model card, so an exported file says what it is:

* ONNX: ``metadata_props`` ``sr_domains.card`` (the card JSON) and ``sr_domains.info`` (scale,
  bands, receptive radius, size multiple); opset 17; input ``lr``, output ``sr``;
* TorchScript: the extra file ``sr_domains.card.json`` (``torch.jit.load(..., _extra_files=)``);
* ExportedProgram: the extra file ``sr_domains.card.json`` (``torch.export.load(...,
  extra_files=)``).

:func:`export_model` checks the exported file against the eager model on an input of another
size than the one it was traced with, and writes atomically.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .errors import ConfigError, MissingDependencyError, SRDomainsError, require
from .models.base import SRModel
from .options import EXPORT_FORMATS

log = logging.getLogger(__name__)

Format = Literal["onnx", "torchscript", "exported-program"]
FORMATS: tuple[str, ...] = EXPORT_FORMATS
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}
CARD_KEY = "sr_domains.card"
INFO_KEY = "sr_domains.info"
CARD_FILE = "sr_domains.card.json"
OPSET = 17
#: Largest |exported - eager| accepted by the check (float32 networks agree to ~1e-6).
TOLERANCE = 1e-4


class ExportError(SRDomainsError, RuntimeError):
    """An export failed or the exported file does not reproduce the eager model."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote."""

    path: Path
    format: str
    max_abs_diff: float | None  # exported vs eager on the check input (None: not checked)
    seconds: float


def card_dict(model: SRModel) -> dict[str, Any]:
    """The model card of ``model`` (``model.card`` if attached, else one built from it)."""
    from .checkpoint import ModelCard
    from .config import to_dict

    card = getattr(model, "card", None)
    if isinstance(card, ModelCard):
        return to_dict(card)
    if isinstance(card, dict):
        return dict(card)
    return to_dict(ModelCard.for_model(model))


def info_dict(model: SRModel) -> dict[str, Any]:
    """What a runtime needs to tile the exported network like the engine does."""
    return {
        "arch": model.arch,
        "scale": model.scale,
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "receptive_radius": model.receptive_radius(),
        "size_multiple": int(getattr(model, "size_multiple", 1)),
        "input_range": "normalized (see the card's profile)",
    }


@contextlib.contextmanager
def _traceable(model: SRModel) -> Iterator[SRModel]:
    """A CPU float32 eval copy whose mean-shift decision is fixed for tracing."""
    m = copy.deepcopy(model).float().cpu().eval()
    # Module.to(memory_format=) exists; torch's overloads omit it
    m = m.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    m.static_io = m.io_is_identity()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / deprecation chatter of torch.onnx and jit
        yield m


def _example(model: SRModel, batch: int = 1, side: int = 24) -> torch.Tensor:
    m = int(getattr(model, "size_multiple", 1))
    side = -(-side // m) * m
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, model.in_channels, side, side + m, generator=g)


@contextlib.contextmanager
def _onnx_log_off() -> Iterator[None]:
    """Keep the TorchScript exporter's ONNX log off.

    torch (2.7+) tests the function ``_jit_is_onnx_log_enabled`` instead of calling it, so every
    export turns the log on for good, and a failed export prints its whole graph (hundreds of
    lines) to stdout.
    """
    utils: Any = None
    with contextlib.suppress(ImportError):  # another torch layout: nothing to patch
        utils = importlib.import_module("torch.onnx._internal.torchscript_exporter.utils")
    orig = getattr(utils, "setup_onnx_logging", None)
    was = bool(torch._C._jit_is_onnx_log_enabled())
    if orig is not None:
        utils.setup_onnx_logging = lambda verbose: contextlib.nullcontext()
    try:
        yield
    finally:
        if orig is not None:
            utils.setup_onnx_logging = orig
        torch._C._jit_set_onnx_log_enabled(was)


def onnx_bytes(model: SRModel, *, opset: int = OPSET, dynamo: bool = False) -> bytes:
    """The model as an ONNX graph with dynamic batch, height and width (no metadata).

    ``dynamo=False`` uses PyTorch's TorchScript-based exporter (about 10x faster to export);
    ``True`` uses the ``torch.export``-based one (needs ``onnxscript``).
    """
    with _traceable(model) as m:
        x = _example(m)
        if dynamo:
            require("onnxscript", "onnx", "ONNX export with dynamo=True")
            from torch.export import Dim

            mult = int(getattr(m, "size_multiple", 1))
            h, w = Dim("h", min=1, max=65536 // mult), Dim("w", min=1, max=65536 // mult)
            shapes = {"x": {0: Dim("n", min=1, max=4096), 2: mult * h, 3: mult * w}}
            prog = torch.onnx.export(  # (verbose=False: no "[torch.onnx] ..." lines on stdout)
                m,
                (x,),
                dynamo=True,
                dynamic_shapes=shapes,
                opset_version=max(opset, 18),
                verbose=False,
            )
            assert prog is not None  # dynamo=True without a file returns the program
            prog.model.graph.inputs[0].name = "lr"
            prog.model.graph.outputs[0].name = "sr"
            buf = io.BytesIO()
            prog.save(buf)  # type: ignore[arg-type]  # a file object works; annotated as a path
            return buf.getvalue()
        buf = io.BytesIO()
        with _onnx_log_off():
            torch.onnx.export(
                m,
                (x,),
                buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects
                dynamo=False,
                input_names=["lr"],
                output_names=["sr"],
                dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "H", 3: "W"}},
                opset_version=opset,
            )
        return buf.getvalue()


def with_metadata(data: bytes, props: dict[str, str]) -> bytes:
    """ONNX bytes with ``props`` added to ``metadata_props`` (needs the ``onnx`` package)."""
    onnx = require("onnx", "onnx", "writing ONNX metadata")
    proto = onnx.load_from_string(data)
    old = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**old, **props})
    proto.producer_name = "sr_domains"
    return proto.SerializeToString()


def read_card(path: str | PathLike[str]) -> dict[str, Any]:
    """The card embedded in an exported file (any of the three formats, told apart by
    content; weights files are read by :func:`sr_domains.checkpoint.read_card`)."""
    from .weights_files import sniff_weights

    path = Path(path)
    kind = sniff_weights(path)
    if kind in ("safetensors", "torch"):
        raise ConfigError(
            f"{path}: this is a weights file, not an export; read its card with "
            "sr_domains.checkpoint.read_card (or sr-domains models --inspect)"
        )
    if kind == "unknown":  # (ONNX protobuf has no magic number)
        onnx = require("onnx", "onnx", "reading ONNX metadata")
        proto = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        if CARD_KEY not in props:
            raise ConfigError(f"{path}: no {CARD_KEY} in the ONNX metadata_props")
        return json.loads(props[CARD_KEY])
    extra = {CARD_FILE: ""}
    if kind == "torch.export":
        torch.export.load(str(path), extra_files=extra)
    else:
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    if not extra[CARD_FILE]:
        raise ConfigError(f"{path}: no {CARD_FILE} in the exported file")
    return json.loads(extra[CARD_FILE])


def _write(model: SRModel, fmt: str, dst: Path, opset: int, dynamo: bool) -> None:
    card = json.dumps(card_dict(model), sort_keys=True)
    info = json.dumps(info_dict(model), sort_keys=True)
    if fmt == "onnx":
        data = with_metadata(
            onnx_bytes(model, opset=opset, dynamo=dynamo),
            {
                CARD_KEY: card,
                INFO_KEY: info,
            },
        )
        dst.write_bytes(data)
        return
    extra = {CARD_FILE: card, "sr_domains.info.json": info}
    # (serialized in memory, then written: torch's own file writer aborts the process on a
    # failed write, a full disk or ``ulimit -f``, where Python's raises OSError)
    buf = io.BytesIO()
    with _traceable(model) as m:
        if fmt == "torchscript":
            torch.jit.save(torch.jit.script(m), buf, _extra_files=extra)
            dst.write_bytes(buf.getvalue())
            return
        from torch.export import Dim

        mult = int(getattr(m, "size_multiple", 1))
        h, w = Dim("h", min=1, max=65536 // mult), Dim("w", min=1, max=65536 // mult)
        shapes = {"x": {0: Dim("n", min=1, max=4096), 2: mult * h, 3: mult * w}}
        with _unshuffle_from_one(m):
            ep = torch.export.export(m, (_example(m, batch=2),), dynamic_shapes=shapes)
        torch.export.save(ep, buf, extra_files=extra)
    dst.write_bytes(buf.getvalue())


@contextlib.contextmanager
def _unshuffle_from_one(m: SRModel) -> Iterator[None]:
    """Let the torch.export program of a pixel-unshuffle RRDB take its smallest input (2 x 2).

    torch.export takes a dynamic size to be at least 2 (it specializes 0 and 1), so the
    half-size dims after ``pixel_unshuffle`` made the program refuse a 2-pixel side (``Guard
    failed: x.size()[3] // 2 != 1``). On the export copy ``m`` the unshuffle is traced as a
    stride-2 convolution with one-hot kernels (exact: one input value times 1, plus zeros),
    with torch's size-oblivious tracing. A torch without that switch keeps the 2-pixel limit.
    """
    cfg: Any = None
    with contextlib.suppress(ImportError):
        cfg = importlib.import_module("torch.fx.experimental._config")
    if not getattr(m, "unshuffle", False) or not hasattr(cfg, "backed_size_oblivious"):
        yield
        return
    body = m.forward_body
    kernel = torch.eye(4).reshape(4, 1, 2, 2)

    def unshuffled_body(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = torch.nn.functional.conv2d(x.reshape(n * c, 1, h, w), kernel.to(x.dtype), stride=2)
        return body(y.reshape(n, c * 4, y.shape[2], y.shape[3]))

    setattr(m, "unshuffle", False)  # noqa: B010 - the export copy's flag, not the model's
    setattr(m, "forward_body", unshuffled_body)  # noqa: B010
    try:
        with cfg.patch(backed_size_oblivious=True):
            yield
    finally:
        delattr(m, "forward_body")
        setattr(m, "unshuffle", True)  # noqa: B010


def run_exported(path: Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    """Run an exported file on ``x`` (CPU) with its own runtime."""
    if fmt == "onnx":
        ort = require("onnxruntime", "onnx", "checking an ONNX export")
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        if fmt == "torchscript":
            return torch.jit.load(str(path), map_location="cpu")(x).numpy()
        return torch.export.load(str(path)).module()(x).numpy()


def check_export(model: SRModel, path: Path, fmt: str) -> float:
    """Max |exported - eager| on an input of another size than the traced one (batch 1)."""
    x = _example(model, batch=1, side=37)
    ref_model = copy.deepcopy(model).float().cpu().eval()
    with torch.inference_mode():
        ref = ref_model(x).numpy()
    got = run_exported(path, fmt, x)
    if got.shape != ref.shape:
        raise ExportError(f"{path}: exported output has shape {got.shape}, expected {ref.shape}")
    return float(np.abs(got - ref).max())


def check_opset(opset: int | None, fmt: str, dynamo: bool = False) -> int:
    """The ONNX opset to use: ``opset``, or the default (:data:`OPSET`; 18 with ``dynamo``,
    the lowest that exporter writes). One the exporter cannot write is refused before any
    work (torch fails with dozens of lines of graph dump otherwise)."""
    if fmt != "onnx":
        if opset is not None:
            raise ConfigError(f"opset applies to ONNX export, not {fmt}")
        if dynamo:
            raise ConfigError(f"dynamo applies to ONNX export, not {fmt}")
        return OPSET
    lo = 18 if dynamo else 9  # below 9 the built-in networks' ops (arange, resize) fail
    if opset is None:
        return max(OPSET, lo)
    from torch.onnx import _constants

    top = "ONNX_MAX_OPSET" if dynamo else "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET"
    hi = int(getattr(_constants, top, getattr(_constants, "ONNX_MAX_OPSET", 20)))
    if not lo <= opset <= hi:
        raise ConfigError(f"ONNX opset must be {lo}..{hi} for this exporter, got {opset}")
    return opset


def export_model(
    model: SRModel,
    dst: str | PathLike[str],
    fmt: Format | str = "onnx",
    *,
    overwrite: bool = False,
    check: bool = True,
    opset: int | None = None,
    dynamo: bool = False,
    sources: tuple[str | PathLike[str], ...] = (),
) -> ExportResult:
    """Export ``model`` (any registered architecture, any weights) to ``dst``.

    Args:
        model: the network; its ``card`` attribute (shipped/loaded weights) is embedded, else a
            card describing the architecture.
        dst: output file (written atomically; ``.onnx``, ``.pt``, ``.pt2`` are the usual names).
        fmt: ``"onnx"``, ``"torchscript"`` or ``"exported-program"``.
        overwrite: replace an existing ``dst`` (never one of ``sources``).
        check: run the exported file once and compare with the eager model
            (:data:`TOLERANCE`); :class:`ExportError` if they disagree.
        opset: ONNX opset (default :data:`OPSET`, 18 with ``dynamo``); ONNX only.
        dynamo: ONNX only: use the ``torch.export``-based exporter.
        sources: input files (the weights) that ``dst`` must not replace.
    """
    from .io_safety import atomic_output, preflight

    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    opset = check_opset(opset, fmt, dynamo)
    if fmt == "onnx":
        for mod in ("onnx",) + (("onnxscript",) if dynamo else ()):
            require(mod, "onnx", "ONNX export")
    dst = Path(dst)
    preflight(dst, list(sources), kind="file", overwrite=overwrite, fmt=fmt)
    t0 = time.perf_counter()
    with atomic_output(dst, list(sources), overwrite=overwrite, fmt=fmt) as tmp:
        try:
            _write(model, fmt, Path(tmp), opset, dynamo)
        except (MissingDependencyError, ConfigError):
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"{dst}: {fmt} export of {model.arch} failed: {first}") from exc
        diff = check_export(model, Path(tmp), fmt) if check else None
        if diff is not None and not diff <= TOLERANCE:
            raise ExportError(
                f"{dst}: the {fmt} export differs from the model by {diff:.3g} (> {TOLERANCE})"
            )
    seconds = time.perf_counter() - t0
    log.info("exported %s to %s (%s, max diff %s)", model.arch, dst, fmt, diff)
    return ExportResult(dst, fmt, diff, seconds)


__all__ = [
    "CARD_KEY",
    "FORMATS",
    "ExportError",
    "ExportResult",
    "card_dict",
    "check_export",
    "export_model",
    "info_dict",
    "onnx_bytes",
    "read_card",
    "run_exported",
    "with_metadata",
]
