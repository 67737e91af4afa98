"""The ``sr-domains upscale`` command: its arguments (with --adapt and --isotropic) and its run
(GeoTIFF, NIfTI, DICOM; one machine or a Dask cluster)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .cli_common import add_progress, show_progress
from .errors import ConfigError
from .options import (
    BACKENDS,
    DEFAULT_ADAPT_STEPS,
    DEFAULT_BUDGET_MINUTES,
    AdaptOptions,
    InternalOptions,
    IsotropicOptions,
    UpscaleOptions,
    engine_fields,
)
from .value_domain import ValueOptions


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. COMPRESS=ZSTD), got {text!r}")
    return key.strip().upper(), value.strip()


def _axes(text: str) -> tuple[int, int]:
    v = _int_list(text)
    if len(v) != 2:
        raise argparse.ArgumentTypeError(f"expected two axes like 0,1, got {text!r}")
    return v[0], v[1]


def _envelope(text: str) -> float | None:
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'off', got {text!r}") from None


def _value_range(text: str) -> tuple[float | None, float | None]:
    lo, sep, hi = text.partition(",")
    try:
        if not sep:
            raise ValueError
        return (float(lo) if lo.strip() else None, float(hi) if hi.strip() else None)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LO,HI (e.g. 0,10000 or 0,), got {text!r}"
        ) from None


def add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="super-resolve a GeoTIFF, NIfTI volume or DICOM series",
        description="Super-resolve INPUT into OUTPUT keeping geometry and metadata. INPUT may "
        "be a GeoTIFF (or a folder/glob of them, then OUTPUT is a folder), a NIfTI file, or a "
        "DICOM series folder (OUTPUT is a folder).",
    )
    p.add_argument("input", help="input file, folder or glob")
    p.add_argument("output", help="output file or folder")
    p.add_argument(
        "--scale",
        type=int,
        metavar="S",
        help="factor 1..16 (default: the scale of --weights/--model, else 2)",
    )
    p.add_argument("--model", help="shipped weights name or architecture (see `sr-domains models`)")
    p.add_argument(
        "--weights", type=Path, help="checkpoint: ours (.safetensors) or public .pt/.pth"
    )
    p.add_argument(
        "--profile",
        help="intensity profile recipe, e.g. dtype, reflectance, "
        "percentile:1,99, mr, ct (default: the model card's)",
    )
    p.add_argument(
        "--tile", type=int, help="tile size in input pixels (default: from --max-memory)"
    )
    p.add_argument(
        "--overlap",
        type=int,
        help="tile overlap in input pixels (default: from the model's receptive field)",
    )
    p.add_argument("--batch-size", type=int, help="tiles per forward pass")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1")
    p.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "off", "fp16", "bf16"),
        help="mixed precision (auto: bf16/fp16 on CUDA when safe)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_progress(p)
    p.add_argument(
        "--domain",
        help="force the input type: geotiff, nifti or dicom (a batch: only that domain's inputs)",
    )
    p.add_argument(
        "--suffix",
        default="",
        metavar="TEXT",
        help="outputs written into a folder are named NAME + TEXT + extension (e.g. _x2)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be written, with the model and profile chosen; write nothing",
    )
    e = p.add_argument_group("speed (see docs/models_and_inference.md)")
    e.add_argument(
        "--backend",
        choices=BACKENDS,
        help="network runtime: torch (default) or onnxruntime (the [onnx] extra)",
    )
    e.add_argument("--threads", type=int, help="CPU threads of the network (default: all)")
    e.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of one forward pass, e.g. 2G; sets the default tile "
        "(default: 1/4 of RAM within 1-4 GiB, 60%% of free GPU memory)",
    )
    v = p.add_argument_group(
        "value fidelity (see docs/value_fidelity.md)",
        "By default outputs stay within the local input range (no ringing halo or overshoot), "
        "in the physical domain of the input (non-negative input stays non-negative, integer "
        "range, CT >= -1024 HU), keep exact-zero background and saturated pixels, and (band "
        "by band runs) bicubic's band ratios.",
    )
    v.add_argument(
        "--no-clamp", action="store_true", help="write the raw network output (only cast)"
    )
    v.add_argument(
        "--envelope",
        type=_envelope,
        default=0.0,
        metavar="TOL|off",
        help="local-range clamp tolerance as a fraction of the local range (default 0)",
    )
    v.add_argument(
        "--value-range",
        type=_value_range,
        metavar="LO,HI",
        help="physical value range in stored units (either side may be empty: ',10000')",
    )
    v.add_argument(
        "--spectral",
        choices=("auto", "bicubic", "model"),
        default="auto",
        help="band ratios of multi-band, non-negative output: 'bicubic' keeps those of bicubic "
        "interpolation (spectral angles, NDVI-like indices), 'model' the network's; 'auto' "
        "(default): bicubic's when a single-band model runs band by band or the model card "
        "asks for it (the shipped RGB x2 model)",
    )
    v.add_argument(
        "--saturation",
        type=float,
        metavar="V",
        help="saturation value of integer data (default: the dtype maximum)",
    )
    d = p.add_argument_group(
        "scale out (Dask; see docs/scaling_out.md)",
        "One task per file / volume / DICOM series of a folder or glob, resumable, with a run "
        "manifest (sr-domains-run.jsonl) next to the outputs.",
    )
    d.add_argument(
        "--workers", type=int, metavar="N", help="start a local Dask cluster of N processes"
    )
    d.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="use an existing Dask scheduler, e.g. tcp://host:8786 "
        "(default: $SR_DOMAINS_SCHEDULER)",
    )
    g = p.add_argument_group("remote sensing (GeoTIFF)")
    g.add_argument("--bands", type=_int_list, help="1-based bands to use, e.g. 4,3,2")
    g.add_argument("--nodata", type=float, help="nodata value (default: the file's)")
    g.add_argument("--cog", action="store_true", help="write a Cloud-Optimized GeoTIFF")
    g.add_argument(
        "--co",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="GDAL creation option replacing a default, e.g. COMPRESS=ZSTD (repeatable)",
    )
    g.add_argument(
        "--dtype",
        choices=("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64"),
        help="output data type (default: the input's; float32 keeps fractional values)",
    )
    m = p.add_argument_group("medical (NIfTI / DICOM)")
    m.add_argument(
        "--axes",
        type=_axes,
        help="in-plane axes of a NIfTI volume, e.g. 0,1 (default: the two with the finest spacing)",
    )
    m.add_argument(
        "--through-plane", action="store_true", help="also upscale the slice axis (NIfTI, DICOM)"
    )
    m.add_argument(
        "--series", dest="series_uid", help="DICOM SeriesInstanceUID (folder with several series)"
    )
    _add_isotropic(p)
    _add_adapt(p)
    p.set_defaults(func=_cmd_upscale)


def _add_adapt(p: argparse.ArgumentParser) -> None:
    """``--adapt`` and its flags (see docs/adaptation.md)."""
    g = p.add_argument_group(
        "per-input adaptation (GeoTIFF / NIfTI / DICOM; docs/adaptation.md)",
        "Fine-tune the model on the input itself (degraded with its estimated PSF and noise) "
        "before upscaling it. --seed, --budget (a time limit here) and --save-model apply.",
    )
    g.add_argument(
        "--adapt",
        type=int,
        nargs="?",
        const=DEFAULT_ADAPT_STEPS,
        metavar="STEPS",
        help=f"adapt the model to each input first (default {DEFAULT_ADAPT_STEPS} steps)",
    )
    g.add_argument(
        "--adapt-psf",
        default="estimate",
        metavar="estimate|bicubic|SIGMA",
        help="degradation of the input: estimated (default), MATLAB bicubic, or a Gaussian "
        "PSF sigma in input pixels",
    )
    g.add_argument(
        "--adapt-noise",
        default="estimate",
        metavar="estimate|SIGMA",
        help="noise of the input in normalized units (default: estimated)",
    )


def _adapt_options(args: argparse.Namespace) -> AdaptOptions | None:
    if args.adapt is None:
        if (args.adapt_psf, args.adapt_noise) != ("estimate", "estimate"):
            raise ConfigError("--adapt-psf and --adapt-noise need --adapt")
        return None
    if args.isotropic:
        raise ConfigError("--adapt and --isotropic exclude each other (--isotropic learns anyway)")
    if args.steps is not None:
        raise ConfigError("--steps applies to --isotropic; give --adapt STEPS")
    if args.save_model is not None:  # never over the input or the --weights it starts from
        from .output_checks import check_model_output

        sources = [Path(p) for p in (args.input, args.weights) if p is not None]
        check_model_output(args.save_model, sources, overwrite=args.overwrite)
    return AdaptOptions(
        steps=args.adapt,
        psf=args.adapt_psf,
        noise=args.adapt_noise,
        max_minutes=DEFAULT_BUDGET_MINUTES if args.budget is None else args.budget,
        seed=args.seed,
        save_model=args.save_model,
        overwrite=args.overwrite,
    )


def _add_isotropic(p: argparse.ArgumentParser) -> None:
    """``--isotropic`` and the per-input learning flags (see docs/medical.md)."""
    g = p.add_argument_group(
        "isotropic MRI (NIfTI / DICOM; docs/medical.md)",
        "Self-supervised through-plane SR: a network is fitted to the volume's own in-plane "
        "slices degraded with the slice profile, then applied along the slice axis.",
    )
    g.add_argument("--isotropic", action="store_true", help="make the volume isotropic")
    g.add_argument(
        "--target-spacing", type=float, metavar="MM", help="output spacing (default: in-plane)"
    )
    g.add_argument(
        "--slice-profile",
        default="gaussian",
        metavar="gaussian|rect|estimate|FILE",
        help="slice profile (default gaussian, FWHM = slice thickness); estimate fits it",
    )
    g.add_argument("--slice-thickness", type=float, metavar="MM", help="default: from the header")
    g.add_argument(
        "--budget", type=float, metavar="MINUTES",
        help=f"training time (default {DEFAULT_BUDGET_MINUTES:g} minutes)",
    )  # fmt: skip
    g.add_argument("--steps", type=int, help="exact training steps (repeatable with --seed)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--save-model", type=Path, metavar="PATH", help="save the fitted model")
    g.add_argument("--fusion", default="mean", choices=("mean", "fba"), help="fuse the two stacks")


def _isotropic_options(args: argparse.Namespace) -> tuple[IsotropicOptions | None, InternalOptions]:
    internal = InternalOptions(
        budget_minutes=DEFAULT_BUDGET_MINUTES if args.budget is None else args.budget,
        steps=args.steps,
        seed=args.seed,
        save_model=args.save_model,
    )
    iso_flags = (args.target_spacing, args.slice_thickness, args.slice_profile, args.fusion)
    if not args.isotropic:
        if iso_flags != (None, None, "gaussian", "mean"):
            raise ConfigError(
                "--target-spacing, --slice-profile, --slice-thickness and --fusion need --isotropic"
            )
        return None, internal
    return IsotropicOptions(
        args.target_spacing, args.slice_profile, args.slice_thickness, args.fusion
    ), internal


def _cmd_upscale(args: argparse.Namespace) -> int:
    from .adapters import find_adapter

    iso, internal = _isotropic_options(args)
    adapt = _adapt_options(args)
    if adapt is not None:
        internal = InternalOptions()  # --seed / --budget / --save-model went into adapt
    values = ValueOptions(
        clamp=not args.no_clamp,
        envelope=args.envelope,
        value_range=args.value_range,
        saturation=args.saturation,
        spectral=args.spectral,
    )
    scale = args.scale
    if scale is None and args.isotropic:
        scale = 2  # (no in-plane scale: --target-spacing sets the grid; --weights is a
        # model saved by --save-model, whose own scale is the slice factor it was fitted to)
    if scale is None:
        from .pretrained import model_scale

        scale = model_scale(args.model, args.weights) or 2
    options = UpscaleOptions(
        scale=scale,
        model=args.model,
        weights=args.weights,
        profile=args.profile,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        device=args.device,
        amp=args.amp,
        overwrite=args.overwrite,
        progress=show_progress(args),
        values=values,
        backend=args.backend,
        threads=args.threads,
        max_memory=args.max_memory,
        bands=args.bands,
        nodata=args.nodata,
        cog=args.cog,
        dtype=args.dtype,
        creation_options=tuple(args.co),
        axes=args.axes,
        through_plane=args.through_plane,
        series_uid=args.series_uid,
        isotropic=iso,
        internal=internal,
        adapt=adapt,
        suffix=args.suffix,
    )
    src, dst = Path(args.input), Path(args.output)
    distributed = bool(args.workers or args.scheduler or os.environ.get("SR_DOMAINS_SCHEDULER"))
    if not distributed and args.domain is None:
        _one_domain(src)
    if args.dry_run:
        from .dry_run import dry_run

        print(dry_run(src, dst, options, args.domain))
        return 0
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if distributed:
        return _upscale_distributed(args, options)
    adapter = find_adapter(src, args.domain)
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)  # this process is ours: all torch work obeys
    from .engine_config import EngineSettings, engine_settings
    from .memory import keep_freed_memory

    keep_freed_memory()  # this process is ours: no page faults on every feature map

    with engine_settings(EngineSettings(**engine_fields(options))):
        written = adapter.load().upscale(src, dst, options)
    for path in written:
        print(path)
    return 0


def _one_domain(src: Path) -> None:
    """A folder batch of GeoTIFFs that would leave NIfTI files or a DICOM series in the same
    folder out is refused: without a word it would look like a finished run. (A DICOM folder
    is one input, a series; other files beside it are not its business.)"""
    from .adapters import matching_domains
    from .geo.adapter import SUFFIXES

    if not src.is_dir():
        return
    names = matching_domains(src)
    if not names or names[0] != "geotiff":
        return
    rest = [f for f in src.iterdir() if f.is_file() and f.suffix.lower() not in SUFFIXES]
    others = set(names[1:]) | {n for f in rest for n in matching_domains(f)}
    others.discard("geotiff")  # a TIFF by content under another name: not in the batch either
    if others:
        listed = ["geotiff", *sorted(others)]
        raise ConfigError(
            f"{src}: holds {', '.join(listed)} inputs and a batch covers one domain: pass "
            f"--domain {'|'.join(n for n in listed if n != 'nifti')} to upscale one of them, or "
            "--workers N to upscale them all as one batch"
        )


def _upscale_distributed(args: argparse.Namespace, options: UpscaleOptions) -> int:
    from .adapters import find_adapter
    from .distributed import cluster_client, upscale_many

    src, dst = Path(args.input), Path(args.output)
    if src.is_file() and find_adapter(src, args.domain).name == "geotiff":
        from .geo.split import upscale_geotiff_split

        if dst.is_dir():
            dst = dst / src.name
        with cluster_client(None, args.workers, args.scheduler) as client:
            print(upscale_geotiff_split(src, dst, client=client, options=options))
        return 0
    report = upscale_many(
        args.input,
        args.output,
        options=options,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=options.progress,
        domain=args.domain,
    )
    for r in report.results:
        if r.status == "ok":
            print(r.task.dst)
    for r in report.failed:
        print(f"sr-domains: failed: {r.task.src}: {r.error}", file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    return 2 if report.failed else 0


__all__ = ["add_upscale"]
