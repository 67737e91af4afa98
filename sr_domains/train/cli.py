"""``sr-domains train`` and ``sr-domains evaluate`` (added to the main CLI when importable)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from ..cli_common import add_progress, show_progress
from ..errors import ConfigError

log = logging.getLogger(__name__)

#: ``evaluate --degradation`` names: kinds with their defaults, then the battery's case names
#: (:data:`sr_domains.train.battery.CASES`, with the battery's settings).
DEGRADATIONS = (
    *("bicubic", "wald", "kspace"),
    *("gauss-0.4", "gauss-0.8", "motion", "wald+noise", "kspace+rician"),
)


def _key_value(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. steps=100), got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: value is not valid YAML: {exc}") from None
    return key.strip(), parsed


def _step(text: str) -> int:
    """A --stop-at step: >= 1 (a pause writes last.pt after its step; step 0 has none)."""
    return _at_least_one(text, "a step number")


def _at_least_one(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected {what} >= 1, got {text!r}")
    return value


def _count(text: str) -> int:
    """A count option (--max-images, --max-pixels): >= 1."""
    return _at_least_one(text, "a number")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``evaluate`` on the main parser's subcommands."""
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config (configs/)",
        description="Train from a YAML config (strict: unknown keys are errors). Multi-GPU / "
        "multi-process: torchrun --nproc_per_node=N -m sr_domains train --config C.",
    )
    p.add_argument("--config", required=True, type=Path, help="YAML training config")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, dotted keys allowed (e.g. --set steps=100 "
        "--set optim.lr=1e-4); repeatable",
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an existing run dir (not with --resume)",
    )
    p.add_argument(
        "--stop-at",
        type=_step,
        metavar="STEP",
        help="pause after STEP >= 1 (last.pt is written; continue later with --resume)",
    )
    add_progress(p)
    p.set_defaults(func=_cmd_train)

    e = sub.add_parser(
        "evaluate",
        help="PSNR/SSIM (SAM/ERGAS) of a model vs bicubic on held-out data, and a figure",
        description="Degrade each HR image to LR, super-resolve it with the tiled engine and "
        "compare SR and bicubic with the HR (normalized units, data range 1 = the intensity "
        "profile's fitted range). Prints a Markdown table.",
    )
    src = e.add_mutually_exclusive_group()
    src.add_argument("--weights", type=Path, help="checkpoint (.safetensors or public .pt/.pth)")
    src.add_argument("--model", help="shipped weights name (default: the shipped default)")
    e.add_argument("--data", nargs="*", default=[], help="files, folders or globs of HR data")
    e.add_argument("--corpus", help="a built-in offline corpus, e.g. gray-heldout, rgb-heldout")
    e.add_argument(
        "--scale",
        type=int,
        choices=(2, 3, 4),
        help="the shipped default of this scale (default 2); with --model/--weights: must be "
        "the model's scale; with --battery: the defaults upscale picks at this scale (x3: the "
        "x2 defaults resampled), instead of every model",
    )
    e.add_argument("--profile", help="intensity recipe (default: the model card's)")
    e.add_argument("--bands", help="1-based bands, e.g. 4,3,2")
    e.add_argument(
        "--degradation",
        default="bicubic",
        choices=DEGRADATIONS,
        metavar="NAME",
        help="how LR inputs are made: bicubic (default), wald or kspace (those kinds' "
        "defaults), or a quality battery case with its settings: gauss-0.4, gauss-0.8, motion, "
        "wald+noise, kspace+rician",
    )
    e.add_argument(
        "--max-images",
        type=_count,
        help="score at most N images (default 50; with --battery: the first N of each set)",
    )
    e.add_argument(
        "--max-pixels", type=_count, help="HR crop size limit (default 1048576 = 1024x1024)"
    )
    e.add_argument("--png", type=Path, help="comparison figure LR | bicubic | SR | HR")
    e.add_argument("--json", type=Path, help="write the scores as JSON")
    e.add_argument(
        "--overwrite", action="store_true", help="replace an existing --png / --json file"
    )
    e.add_argument("--device", default="auto")
    e.add_argument("--tile", type=int, help="tile size (LR pixels)")
    e.add_argument(
        "--battery",
        action="store_true",
        help="the quality battery: every shipped model (or --model/--weights) under five "
        "degradations per domain on held-out real data, vs bicubic and Lanczos",
    )
    e.add_argument(
        "--adapt",
        type=int,
        nargs="?",
        const=200,
        metavar="STEPS",
        help="with --battery: also score the model adapted to each degraded image (default "
        "200 steps; docs/adaptation.md)",
    )
    e.set_defaults(func=_cmd_evaluate)


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_train_config
    from .trainer import train

    if args.resume and args.overwrite:  # which one was meant? never guess (one deletes)
        raise ConfigError("--resume and --overwrite exclude each other: choose one")
    cfg = load_train_config(args.config, dict(args.overrides))
    if not args.resume:  # the run writes RUN_DIR/config.yaml: never over the config it read
        from ..output_checks import check_paths

        check_paths(cfg.run_dir / "config.yaml", [args.config], kind="file")
        # nor one --overwrite deletes (a temporary's name, under tb/): its inputs are checked
        # by train(); the --config is the CLI's
        from .run_inputs import check_inputs

        check_inputs(cfg.run_dir, [("--config", args.config)])
    result = train(
        cfg,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=show_progress(args),
        stop_at=args.stop_at,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun: rank 0 says what was done
        return 0
    if result.already_finished:
        print(f"nothing to resume: finished at step {result.steps} ({result.weights})")
        return 0
    if result.weights is None and result.steps < cfg.steps:
        print(f"paused at step {result.steps}: {cfg.run_dir / 'last.pt'} (continue with --resume)")
    if result.weights is not None:
        print(result.weights)
        if result.validation:
            v = result.validation
            print(f"validation: PSNR {v['psnr']:.2f} dB (bicubic {v['psnr_bicubic']:.2f} dB)")
    return 0


def _report_inputs(args: argparse.Namespace) -> list[Path]:
    """The files a report is made from (data and weights; see ``report_sources``)."""
    from .evaluate import report_sources

    return report_sources(args.data or (), args.weights)


def _check_json(args: argparse.Namespace, inputs: list[Path]) -> None:
    """Refuse a --json that exists (without --overwrite), would replace an input or is the
    --png file, before any work (:mod:`sr_domains.io_safety` rules; ``evaluate`` checks its
    --png itself)."""
    from ..io_safety import preflight

    if args.json is not None:
        png = getattr(args, "png", None)
        if png is not None and os.path.realpath(png) == os.path.realpath(args.json):
            raise ConfigError(
                f"{args.json}: --png and --json name the same file; give each its own"
            )
        preflight(args.json, inputs, overwrite=args.overwrite)


def _write_json(path: Path, data: Any, inputs: list[Path], overwrite: bool) -> None:
    from ..io_safety import atomic_output
    from ..strict_json import provenance_json

    with atomic_output(path, inputs, overwrite=overwrite) as tmp:
        # strict JSON: a PSNR of identical images (infinite) is null
        tmp.write_text(provenance_json(data, indent=2), encoding="utf-8")


def _degradation(name: str) -> Any:
    """A battery case of that name (``motion`` is one: the command offers the battery's
    cases with their settings), else the kind ``name``."""
    from .battery import CASES

    return next((c for c in CASES if c.name == name), name)


def _cmd_battery(args: argparse.Namespace) -> int:
    from ..pretrained import list_pretrained, load_pretrained, resolve_model
    from .battery import run_battery

    ignored = [
        flag
        for flag, given in (
            ("--data", bool(args.data)),
            ("--corpus", args.corpus is not None),
            ("--profile", args.profile is not None),
            ("--bands", args.bands is not None),
            ("--degradation", args.degradation != "bicubic"),
            ("--png", args.png is not None),
            ("--tile", args.tile is not None),
            ("--max-pixels", args.max_pixels is not None),
        )
        if given
    ]
    if ignored:  # the battery has its own data and degradations: say so, do not ignore them
        raise ConfigError(f"{', '.join(ignored)}: not used by --battery (its data are fixed)")
    inputs = _report_inputs(args)
    _check_json(args, inputs)
    if args.weights or args.model:
        net = resolve_model(args.model, args.weights, scale=args.scale, n_bands=None)
        name = str(getattr(getattr(net, "card", None), "name", "") or args.weights or args.model)
        models = [(name, net)]
    elif args.scale is not None:  # what upscale runs at this scale when no model is named
        models = []
        for bands in (1, 3):
            net = resolve_model(None, None, scale=args.scale, n_bands=bands)
            name = str(getattr(getattr(net, "card", None), "name", ""))
            if net.arch == "resampled":
                name = f"{name} resampled to x{args.scale}"
            models.append((name, net))
    else:
        models = [(e.name, load_pretrained(e.name)) for e in list_pretrained()]
    adapt = None
    if args.adapt is not None:
        from ..options import AdaptOptions

        adapt = AdaptOptions(steps=args.adapt)
    report = run_battery(models, device=args.device, adapt=adapt, max_images=args.max_images)
    print(report.table())
    if args.json:
        _write_json(args.json, report.to_dict(), inputs, args.overwrite)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    if args.battery:
        return _cmd_battery(args)
    if args.adapt is not None:
        raise ConfigError("--adapt applies to --battery")
    bands = tuple(int(b) for b in args.bands.split(",")) if args.bands else None
    inputs = _report_inputs(args)
    _check_json(args, inputs)
    report = evaluate(
        weights=args.weights,
        model=args.model,
        data=tuple(args.data),
        corpus=args.corpus,
        scale=args.scale,
        profile=args.profile,
        bands=bands,
        degradation=_degradation(args.degradation),
        max_images=50 if args.max_images is None else args.max_images,
        max_pixels=1024 * 1024 if args.max_pixels is None else args.max_pixels,
        png=args.png,
        device=args.device,
        tile=args.tile,
        overwrite=args.overwrite,
    )
    print(report.table)
    if args.png:
        print(f"\nfigure: {args.png}")
    if args.json:
        _write_json(args.json, report.to_dict(), inputs, args.overwrite)
    return 0


__all__ = ["add_commands"]
