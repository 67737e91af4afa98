"""The ``sr-domains upscale`` command's arguments (--adapt and --isotropic:
:mod:`sr_domains.cli_upscale_options`); its run (GeoTIFF, NIfTI, DICOM; one machine or a Dask
cluster): :mod:`sr_domains.cli_upscale_run`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .cli_common import add_progress
from .cli_upscale_options import add_adapt, add_isotropic
from .cli_upscale_run import run_upscale
from .options import BACKENDS


def _int_list(text: str) -> tuple[int, ...]:
    try:
        items = text.replace(" ", "").split(",")
        if "" in items:  # "1,,2", "1,2,": a band or axis left out by a typo
            raise ValueError(text)
        return tuple(int(v) for v in items)
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


#: Arguments that are negative numbers, not options: argparse's own rule (``-9999``, ``-1.5``)
#: widened to every number ``float()`` reads that starts with a minus sign (``-1e5``, ``-inf``,
#: ``-nan``) and to ``--value-range -100,200``, so ``--nodata -inf`` works as
#: ``--nodata=-inf`` does (argparse took ``-inf`` for an option: "expected one argument"). No
#: option of the command starts with a digit or is named ``-inf``/``-nan``.
NEGATIVE_NUMBER = re.compile(r"-(\.?\d|inf(inity)?(,|$)|nan(,|$))", re.IGNORECASE)


#: ``--dtype`` choices: :data:`sr_domains.geo.output_spec.OUTPUT_DTYPES` (not imported: the
#: CLI starts without rasterio).
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="super-resolve a GeoTIFF, NIfTI volume or DICOM series",
        description="Super-resolve INPUT into OUTPUT keeping geometry and metadata. INPUT may "
        "be a GeoTIFF or a NIfTI file (or a folder/glob of them, then OUTPUT is a folder: a "
        "resumable batch), or a DICOM series folder (OUTPUT is a folder).",
    )
    p._negative_number_matcher = NEGATIVE_NUMBER  # (argparse's attribute; no public setter)
    p.add_argument("input", help="input file, folder or glob")
    p.add_argument("output", help="output file or folder")
    p.add_argument(
        "--scale",
        type=int,
        metavar="S",
        help="factor 1..16 (the shipped weights do 2, 3 and 4; other factors need --weights; "
        "default: the scale of --weights/--model, else 2)",
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
        help="print what would be written, with the model and profile chosen; write nothing "
        "(exit status 1 where the run would refuse an output or fail on an input)",
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
        "--envelope-radius",
        type=int,
        default=2,
        metavar="N",
        help="half-size of the input neighbourhood of that range, 1..8 input pixels (default 2: "
        "5 x 5; 1 keeps the ghosts of a bright point target, a ship in SAR, to its neighbours)",
    )
    v.add_argument(
        "--value-range",
        type=_value_range,
        metavar="LO,HI",
        help="physical value range (either side may be empty: ',10000'): a GeoTIFF's stored "
        "values (before any band scale/offset), NIfTI and DICOM values after "
        "scl_slope/RescaleSlope",
    )
    v.add_argument(
        "--spectral",
        choices=("auto", "bicubic", "model"),
        default="auto",
        help="band ratios of multi-band, non-negative output: 'bicubic' keeps those of bicubic "
        "interpolation (spectral angles, NDVI-like indices; pixels below zero left out), "
        "'model' the network's; 'auto' (default): bicubic's when a single-band model runs band "
        "by band or the model card asks for it (the shipped RGB x2 model)",
    )
    v.add_argument(
        "--saturation",
        type=float,
        metavar="V",
        help="value kept over the footprint of saturated input pixels (default: the integer "
        "dtype maximum; float data: none unless given, e.g. 1.0 for clipped reflectance)",
    )
    d = p.add_argument_group(
        "scale out (Dask; see docs/scaling_out.md)",
        "One task per file / volume / DICOM series of a folder or glob, resumable, with a run "
        "manifest (sr-domains-run.jsonl) next to the outputs.",
    )
    d.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="start a local Dask cluster of N processes (at most one per file)",
    )
    d.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="use an existing Dask scheduler, e.g. tcp://host:8786 "
        "(default: $SR_DOMAINS_SCHEDULER)",
    )
    g = p.add_argument_group("remote sensing (GeoTIFF)")
    g.add_argument("--bands", type=_int_list, help="1-based bands to use, e.g. 4,3,2")
    g.add_argument(
        "--nodata",
        type=float,
        help="nodata value of the output, a value of its type (--dtype); also invalid in the "
        "input (default: the file's; the file's own value stays invalid too; refused where "
        "valid pixels hold it and only the output needs it)",
    )
    g.add_argument("--cog", action="store_true", help="write a Cloud-Optimized GeoTIFF")
    g.add_argument(
        "--co",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="GDAL creation option replacing a default, e.g. COMPRESS=ZSTD, BLOCKXSIZE=256 "
        "(repeatable; GTiff or COG names; lossy codecs such as JPEG are refused)",
    )
    g.add_argument(
        "--dtype",
        choices=DTYPES,
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
    add_isotropic(p)
    add_adapt(p)
    p.set_defaults(func=run_upscale)


__all__ = ["add_upscale"]
