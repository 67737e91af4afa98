"""``sr-domains export``: weights to ONNX, TorchScript or a torch.export program."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .options import EXPORT_FORMATS
from .output_names import shown

if TYPE_CHECKING:
    from .models.base import SRModel


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export weights to ONNX, TorchScript or a torch.export program",
        description="Write the network of WEIGHTS to OUTPUT with dynamic batch, height and "
        "width and the model card embedded (ONNX metadata_props, or an extra file), then check "
        "the exported file against PyTorch on a fresh input.",
    )
    p.add_argument("output", help="output file (.onnx, .pt, .pt2)")
    p.add_argument(
        "--weights",
        required=True,
        help="our .safetensors, a public .pt/.pth checkpoint or a shipped weights name",
    )
    p.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="default: from the output suffix (.onnx, .pt = torchscript, .pt2)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-check", action="store_true", help="skip running the exported file")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17, 18 with --dynamo)")
    p.add_argument(
        "--model",
        help="layout of public weights the file cannot tell (e.g. srcnn-residual, spandrel)",
    )
    p.add_argument("--scale", type=int, help="scale of public weights that do not store it (SRCNN)")
    p.add_argument(
        "--dynamo",
        action="store_true",
        help="ONNX: use the torch.export-based exporter (slower to export)",
    )
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import SUFFIXES, check_opset, export_model

    out = Path(args.output)
    by_suffix = {v: k for k, v in SUFFIXES.items()}
    implied = by_suffix.get(out.suffix.lower())
    fmt = args.format or implied
    if fmt is None:
        raise ConfigError(f"{out}: cannot tell the format from the suffix; pass --format")
    if implied is not None and implied != fmt:
        raise ConfigError(
            f"{out}: the suffix {out.suffix} is for {implied} files, not {fmt}; name it "
            f"{out.with_suffix(SUFFIXES[fmt]).name}"
        )
    check_opset(args.opset, fmt, args.dynamo)  # before loading anything
    model, sources = _load_weights(args.weights, args.model, args.scale)
    result = export_model(
        model,
        out,
        fmt,
        overwrite=args.overwrite,
        check=not args.no_check,
        opset=args.opset,
        dynamo=args.dynamo,
        sources=sources,
    )
    diff = "not checked" if result.max_abs_diff is None else f"max |diff| {result.max_abs_diff:.2e}"
    if not getattr(args, "quiet", False):  # details on stderr: stdout holds only the path
        print(
            f"sr-domains: exported {result.format}, {diff}, {result.seconds:.1f} s", file=sys.stderr
        )
    print(shown(result.path))
    return 0


def _load_weights(
    text: str, arch: str | None = None, scale: int | None = None
) -> tuple[SRModel, tuple[Path, ...]]:
    """A model from a checkpoint path (ours or public, told apart by content; ``arch`` and
    ``scale`` as in :func:`~sr_domains.pretrained.resolve_model`) or a shipped weights name,
    with the files it came from."""
    from .pretrained import list_pretrained, load_pretrained, resolve_model

    path = Path(text)
    if path.exists() or path.is_symlink():
        return resolve_model(arch, path, scale=scale, n_bands=None), (path,)
    if arch is not None or scale is not None:
        raise ConfigError("--model/--scale apply to a weights file, not a shipped name")

    if any(e.name == text for e in list_pretrained()):
        entry = next(e for e in list_pretrained() if e.name == text)
        return load_pretrained(text), (entry.path,)
    names = ", ".join(e.name for e in list_pretrained()) or "none"
    raise ConfigError(f"--weights {text}: no such file or shipped weights (shipped: {names})")


__all__ = ["add_export"]
