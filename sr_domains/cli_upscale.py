"""The ``sr-domains upscale`` command: its arguments (--adapt and --isotropic:
:mod:`sr_domains.cli_upscale_options`) and its run (GeoTIFF, NIfTI, DICOM; one machine or a
Dask cluster)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_common import add_progress
from .cli_inputs import batch_domain, check_folder_output, check_one_domain, is_nifti_batch
from .cli_upscale_options import add_adapt, add_isotropic, upscale_options
from .errors import ConfigError, SRDomainsError
from .options import BACKENDS, UpscaleOptions, engine_fields, saved_model_path
from .output_names import shown

if TYPE_CHECKING:
    from .batch_tasks import RunReport


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
        help="physical value range in stored units (either side may be empty: ',10000')",
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
    p.set_defaults(func=_cmd_upscale)


def _cmd_upscale(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:  # (the dry run refuses it too)
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    options = upscale_options(args)
    src, dst = Path(args.input), Path(args.output)
    distributed = bool(args.workers or args.scheduler or os.environ.get("SR_DOMAINS_SCHEDULER"))
    check_folder_output(args.output, src, args.domain, distributed)
    if not distributed and args.domain is None:
        check_one_domain(src)
    if not distributed and (saved := saved_model_path(options)) is not None:
        _check_model_outside(saved, src, dst, args.domain)
    if args.dry_run:
        from . import dry_run

        planned = dry_run.plan(src, dst, options, args.domain, distributed)
        print(dry_run.report(planned, options))
        return 1 if dry_run.would_fail(planned) else 0  # (a script can tell a refused run)
    with _written_on_interrupt(dst):
        if distributed:
            return _upscale_distributed(args, options)
        return _upscale_here(args, options, src, dst)


def _check_model_outside(saved: Path, src: Path, dst: Path, domain: str | None) -> None:
    """``--save-model`` inside a DICOM output folder is refused before any work."""
    from .adapters import find_adapter

    try:
        dicom = find_adapter(src, domain).name == "dicom"
    except SRDomainsError:  # (not ours to say: the run reports the input)
        return
    if dicom:
        from .medical.model_paths import check_model_outside

        check_model_outside(saved, dst)


@contextlib.contextmanager
def _written_on_interrupt(out_dir: Path) -> Iterator[None]:
    """A batch stopped part-way (Ctrl-C, SIGTERM, or an error that ends it: a full disk) still
    prints (stdout) the outputs it completed, as its run manifest recorded them; before an
    error, one line (stderr) says what it did, and the error follows as ever."""
    from .output_checks import RUN_MANIFEST

    manifest = out_dir / RUN_MANIFEST
    start = _size(manifest)
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        _print_written(manifest, start)
        raise
    except BrokenPipeError:  # (stdout is gone)
        raise
    except Exception:
        records = _print_written(manifest, start)
        if records:
            n = [sum(r.get("status") == s for r in records) for s in ("ok", "skipped", "failed")]
            done = f"{n[0]} written, {n[1]} already complete, {n[2]} failed"
            print(f"sr-domains: stopped by the error below after {done}", file=sys.stderr)
        raise


def _print_written(manifest: Path, start: int) -> list[dict[str, object]]:
    """Print the outputs of the ``ok`` records appended to ``manifest`` after its first
    ``start`` bytes (all of it when it is shorter now: written anew); the whole records."""
    try:
        data = manifest.read_bytes() if manifest.is_file() else b""
    except OSError:
        data = b""
    tail = data[start:] if len(data) >= start else data
    records = []
    for line in tail.decode("utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):  # (a record cut short by a kill)
            records.append(json.loads(line))
    # this process's records only: another run into the folder appends (or rewrites) too
    records = [r for r in records if isinstance(r, dict) and r.get("pid") == os.getpid()]
    for record in records:
        if record.get("status") == "ok":
            print(shown(str(record.get("output"))), flush=True)
    return records


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _upscale_here(args: argparse.Namespace, options: UpscaleOptions, src: Path, dst: Path) -> int:
    """``upscale`` in this process (a file, a folder or a glob)."""
    from .adapters import find_adapter
    from .batch_tasks import BatchFailedError, BatchOutputs

    batch = is_nifti_batch(src, args.domain)  # (else the adapter: a GeoTIFF folder is its batch)
    adapter = None if batch else find_adapter(src, args.domain)
    from .engine_config import EngineSettings, engine_settings, torch_threads

    if getattr(args, "own_process", False):  # (the script's process: not a caller's)
        from .memory import keep_freed_memory

        keep_freed_memory()  # no page faults on every feature map

    # all torch work of the command obeys --threads (the profile fit and --adapt too)
    with torch_threads(options.threads), engine_settings(EngineSettings(**engine_fields(options))):
        if adapter is None:  # NIfTI files: the batch runner, in this process
            from .distributed import upscale_many

            report = upscale_many(
                args.input, args.output, options=options, progress=options.progress, domain="nifti"
            )
            return _print_report(report)
        try:
            written = adapter.load().upscale(src, dst, options)
        except BatchFailedError as exc:  # a GeoTIFF folder or glob: every input reported
            return _print_report(exc.report)
    if isinstance(written, BatchOutputs):  # (its summary is ours to print, not a log line)
        return _print_report(written.report)
    for path in written:
        print(shown(path))
    return 0


def _upscale_distributed(args: argparse.Namespace, options: UpscaleOptions) -> int:
    from .distributed import cluster_client, upscale_many

    src, dst = Path(args.input), Path(args.output)
    if batch_domain(src, args.domain, distributed=True) is None:  # one GeoTIFF: split in tiles
        from .geo.names import geotiff_output_name
        from .geo.split import check_split, upscale_geotiff_split

        if dst.is_dir():
            dst = dst / geotiff_output_name(src, options.suffix)
        check_split(src, dst, options)  # before a local cluster takes seconds to start
        with cluster_client(None, args.workers, args.scheduler) as client:
            print(shown(upscale_geotiff_split(src, dst, client=client, options=options)))
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
    return _print_report(report)


def _print_report(report: RunReport) -> int:
    """Print a batch's outputs (stdout), then its failures and summary (stderr), on Dask or in
    this process alike; the exit status (1 when an input failed; 2 is for usage errors)."""
    for r in report.results:
        if r.status == "ok":
            print(shown(r.task.dst))
    for r in report.failed:  # the input named once (most errors name it already)
        named = r.error if r.error.startswith(r.task.src) else f"{r.task.src}: {r.error}"
        print(f"sr-domains: failed: {shown(named)}", file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    if not report.failed:
        return 0
    print(f"sr-domains: error: {report.failures()}", file=sys.stderr)
    return 1


__all__ = ["add_upscale"]
