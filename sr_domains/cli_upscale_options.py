"""Parsed ``sr-domains upscale`` arguments -> one :class:`UpscaleOptions`, and the argument
groups of ``--adapt`` and ``--isotropic`` (whose flags share --seed / --budget / --save-model)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import show_progress
from .errors import ConfigError
from .options import (
    DEFAULT_ADAPT_STEPS,
    DEFAULT_BUDGET_MINUTES,
    AdaptOptions,
    InternalOptions,
    IsotropicOptions,
    UpscaleOptions,
)
from .value_domain import ValueOptions


def upscale_options(args: argparse.Namespace) -> UpscaleOptions:
    """Every option of one ``upscale`` run, checked (flags that need another flag are refused)."""
    iso, internal = _isotropic_options(args)
    adapt = _adapt_options(args)
    if adapt is not None:
        internal = InternalOptions()  # --seed / --budget / --save-model went into adapt
    values = ValueOptions(
        clamp=not args.no_clamp,
        envelope=args.envelope,
        envelope_radius=args.envelope_radius,
        value_range=args.value_range,
        saturation=args.saturation,
        spectral=args.spectral,
    )
    scale = args.scale
    if scale is not None and args.isotropic:  # (a given --scale 2 equals the default below)
        raise ConfigError("--scale does not apply to --isotropic (use --target-spacing)")
    if scale is None and args.isotropic:
        scale = 2  # (no in-plane scale: --target-spacing sets the grid; --weights is a
        # model saved by --save-model, whose own scale is the slice factor it was fitted to)
    if scale is None:
        from .pretrained import model_scale

        scale = model_scale(args.model, args.weights) or 2
    return UpscaleOptions(
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


def add_adapt(p: argparse.ArgumentParser) -> None:
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


def add_isotropic(p: argparse.ArgumentParser) -> None:
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


__all__ = ["add_adapt", "add_isotropic", "upscale_options"]
