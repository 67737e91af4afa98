"""``sr-domains`` command line: models | info | upscale | export | train | evaluate."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .cli_common import command_warnings
from .cli_export import add_export
from .cli_upscale import add_upscale
from .console_streams import escape_unencodable
from .errors import ConfigError, RegistryError, SRDomainsError

if TYPE_CHECKING:
    pass


def _cmd_info(args: argparse.Namespace) -> int:
    from .adapters import find_adapter
    from .errors import UnreadableFilesError

    path = Path(args.input)
    mod = find_adapter(path, args.domain).load()
    try:
        report = mod.info_json(path) if args.json else mod.info(path)
    except UnreadableFilesError as exc:  # what could be read, then the error (status 1)
        _print_info(exc.report, args.json)
        raise
    _print_info(report, args.json)
    return 0


def _print_info(report: Any, as_json: bool) -> None:
    if as_json:
        import json

        from .strict_json import finite_json

        # strict JSON: a NaN nodata value as "nan", as gdalinfo -json writes it
        info = finite_json(report, text=True)
        print(json.dumps(info, indent=2, default=str, allow_nan=False))
    else:
        print(report)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .weights_report import inspect_checkpoint

    report = inspect_checkpoint(args.inspect, extra_arches=args.extra_arches)
    print(report.to_json() if args.json else report.to_text())
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    if getattr(args, "inspect", None) is not None:
        return _cmd_inspect(args)
    if getattr(args, "json", False) or getattr(args, "extra_arches", False):
        raise ConfigError("--json and --extra-arches apply to --inspect FILE")
    import torch

    from .models import create_model, list_models
    from .pretrained import list_pretrained

    print("Architectures (create_model name, default config):")
    print(f"  {'name':<16} {'params':>10} {'radius':>7}  fp16  description")
    from .models import model_registry

    for name in list_models():
        with torch.random.fork_rng(devices=[]):  # (random init: not the caller's RNG)
            m = create_model(name, in_channels=3, scale=2)
        info = m.info()
        arch = model_registry().get(info.arch)
        radius = "global" if info.receptive_radius is None else str(info.receptive_radius)
        desc = arch.description if name == arch.name else f"preset of {arch.name}"
        fp16 = "yes" if info.fp16_safe else "no"
        print(f"  {name:<16} {info.n_params:>10,} {radius:>7}  {fp16:<4}  {desc}")
    print("\nShipped weights (used when --model/--weights are not given):")
    entries = list_pretrained()
    if not entries:
        print("  none")
    for e in entries:
        psnr = e.card.get("metrics", {}).get("psnr_gain_db")
        gain = f", {psnr:+.2f} dB vs bicubic (held-out)" if isinstance(psnr, (int, float)) else ""
        print(
            f"  {e.name:<28} {e.arch} x{e.scale}, {e.in_channels} band(s) "
            f"[{', '.join(e.bands)}], profile {e.card.get('profile', {}).get('recipe')}{gain}"
        )
    from .pretrained import RESAMPLED_FROM

    for scale, base in RESAMPLED_FROM.items():
        if entries and not any(e.scale == scale for e in entries):
            print(
                f"  x{scale}: no weights of its own; --scale {scale} runs the x{base} default, "
                f"its output resampled to x{scale} (bicubic; docs/weights.md)"
            )
    from .zoo_import import spandrel_installed

    zoo = "installed" if spandrel_installed() else 'not installed: pip install "sr-domains[zoo]"'
    print(
        "\nPublic checkpoints (--weights FILE): official EDSR/RCAN, BasicSR/Real-ESRGAN, ESRGAN "
        f"and SRCNN layouts, then 40+ families via spandrel ({zoo}); "
        "`sr-domains models --inspect FILE` says what a file is"
    )
    return 0


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    """train/evaluate live in sr_domains.train (they need the [train] extra)."""
    try:
        mod = importlib.import_module("sr_domains.train.cli")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("sr_domains"):
            return
        raise
    mod.add_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sr-domains",
        description="Super-resolution for remote sensing and medical imaging that keeps "
        "geometry and metadata right.",
    )
    parser.add_argument("--version", action="version", version=f"sr-domains {__version__}")
    _add_output_flags(parser, verbose=0, quiet=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "models",
        help="list architectures and shipped weights, or inspect a weights file",
        description="List architectures and shipped weights; with --inspect FILE, say what a "
        "weights file is (loader, family, scale, channels, parameters, input range, tiling, "
        "licence) or why it cannot be used.",
    )
    p.add_argument("--inspect", type=Path, metavar="FILE", help="describe a weights file")
    p.add_argument(
        "--extra-arches",
        action="store_true",
        help="also try spandrel_extra_arches (restrictive licences; install it yourself)",
    )
    p.add_argument("--json", action="store_true", help="--inspect: print JSON")
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("info", help="summarise a GeoTIFF, NIfTI volume or DICOM series")
    p.add_argument("input")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.add_argument("--domain", help="force the input type: geotiff, nifti or dicom")
    p.set_defaults(func=_cmd_info)
    add_upscale(sub)
    add_export(sub)
    _add_optional_commands(sub)
    for command in set(sub.choices.values()):  # -v / -q also after the command
        _add_output_flags(command, verbose=argparse.SUPPRESS, quiet=argparse.SUPPRESS)
    return parser


def _add_output_flags(parser: argparse.ArgumentParser, *, verbose: Any, quiet: Any) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=verbose, help="more logging (-vv)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=quiet,
        help="errors only: no warnings, no progress bars",
    )


def _os_error_text(exc: OSError) -> str:
    """One line for an OS error: the path, then the cause (``strerror``, else the message)."""
    from .io_safety import errno_cause

    root = errno_cause(exc)  # a library's bare re-raise hides the errno in its chain
    cause = root.strerror or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    paths = [p for p in (exc.filename, exc.filename2) if p is not None] or [
        p for p in (root.filename, root.filename2) if p is not None
    ]
    where = " -> ".join(str(p) for p in paths)
    return f"{where}: {cause}" if where and str(paths[0]) not in cause else cause


#: Which extra brings an optional package (for the one-line "not installed" error).
EXTRA_OF = {
    "rasterio": "geo",
    "nibabel": "medical",
    "pydicom": "medical",
    "monai": "monai",
    "ignite": "monai",
    "skimage": "train",
    "matplotlib": "train",
    "tensorboard": "train",
    "PIL": "train",
    "dask": "dask",
    "distributed": "dask",
    "xarray": "xarray",
    "rioxarray": "xarray",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "spandrel": "zoo",
}


class _Terminated(SystemExit):
    """SIGTERM, raised by :func:`_on_sigterm` (said as Ctrl-C is, exit status 143)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated(128 + signum)  # unwinds like Ctrl-C: writers remove their temporaries


def console() -> None:
    """The ``sr-domains`` script (and ``python -m sr_domains``): :func:`main` in a process of
    its own, which may also make process-wide settings (``upscale``: glibc keeps freed memory,
    :func:`~sr_domains.memory.keep_freed_memory`), and prints a path its standard output
    cannot encode (an ASCII or cp1252 console, a Japanese file name) escaped instead of
    failing with a traceback after the outputs were written."""
    escape_unencodable(sys.stdout, sys.stderr)
    sys.exit(main(own_process=True))


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run one ``sr-domains`` command (``argv``: its arguments, default ``sys.argv[1:]``);
    returns the exit status.

    Errors print one line (``-v`` adds the traceback). Exit status (as rio's): 0 success, 1 a
    runtime error (bad or unreadable input, an output that exists or is unsafe, a checkpoint
    that cannot be used, disk full, permissions, memory; in a batch: some files failed), 2 a
    usage error (unknown option or name, invalid or conflicting options), 130 interrupted,
    141 broken pipe, 143 terminated. Called from a program, Ctrl-C and SIGTERM stop the
    program too, after the line and once the command's temporary files are removed: Ctrl-C
    re-raises :class:`KeyboardInterrupt` (as any Python code does on Ctrl-C; unhandled, the
    process ends as Ctrl-C ends it), SIGTERM raises ``SystemExit(143)``; with ``own_process``
    they return 130 and 143.

    Called from a program (a script, a notebook, a test), it leaves the process as it found
    it: the SIGTERM handler, logging's handlers and levels and torch's thread count are
    restored on return; with logging already set up, ``-v``/``-q`` move only sr_domains'
    loggers. ``own_process`` (:func:`console`): the process is the command's own.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.own_process = own_process
    with _logging_for(args), _sigterm_handled():
        return _run(args)


@contextlib.contextmanager
def _logging_for(args: argparse.Namespace) -> Iterator[None]:
    """Log records to stderr at the level of ``-v``/``-q`` for the command, and logging as it
    was after it: a process without logging gets ``logging.basicConfig``'s handler on the root
    logger for the command only; one with logging of its own keeps it, and ``-v``/``-q`` set
    the ``sr_domains`` logger's level for the command only."""
    level = logging.ERROR if args.quiet else logging.WARNING - 10 * min(args.verbose, 2)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger, before = root, root.level
        root.addHandler(handler)
    else:
        handler = None
        logger = logging.getLogger("sr_domains")
        before = logger.level
    if handler is not None or args.verbose or args.quiet:
        logger.setLevel(level)
    if handler is not None:  # (-q: errors only, also of a logger with a level of its own)
        handler.setLevel(level)
    try:
        with command_warnings(args.quiet):
            yield
    finally:
        logger.setLevel(before)
        if handler is not None:
            root.removeHandler(handler)


@contextlib.contextmanager
def _sigterm_handled() -> Iterator[None]:
    """SIGTERM unwinds the command like Ctrl-C (writers remove their temporaries); the
    process's own handler is back after it."""
    if (
        threading.current_thread() is not threading.main_thread()  # (main thread only)
        or signal.getsignal(signal.SIGTERM) is None  # a host program's C handler: kept
    ):
        yield
        return
    before = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _run(args: argparse.Namespace) -> int:
    """The command of ``args``, its errors turned into one line and an exit status."""
    try:
        return int(args.func(args) or 0)
    except (ConfigError, RegistryError) as exc:  # usage
        return _fail(str(exc), 2, args.verbose)
    except SRDomainsError as exc:  # runtime: the input, the output or the weights
        return _fail(str(exc), 1, args.verbose)
    except KeyboardInterrupt:
        print("sr-domains: interrupted", file=sys.stderr)
        if not getattr(args, "own_process", False):
            raise  # (a program calling main() stops too, as Ctrl-C stops any Python code)
        return 130
    except _Terminated as exc:
        print("sr-domains: terminated", file=sys.stderr)
        if not getattr(args, "own_process", False):
            raise  # (a program calling main() stops too, as SIGTERM asked: SystemExit(143))
        return int(exc.code or 143)
    except BrokenPipeError:  # e.g. `sr-domains info X | head`: the reader went away
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MemoryError:
        return _fail("out of memory; try a smaller --tile or --batch-size", 1, args.verbose)
    except ModuleNotFoundError as exc:  # an optional dependency of the command is missing
        root = (exc.name or "").split(".")[0]
        if not root or root == "sr_domains":
            raise
        extra = EXTRA_OF.get(root, "all")
        return _fail(
            f"{args.command} needs {root}, which is not installed: "
            f'pip install "sr-domains[{extra}]"',
            1,
            args.verbose,
        )
    except OSError as exc:
        return _fail(_os_error_text(exc), 1, args.verbose)


def _fail(message: str, code: int, verbose: int) -> int:
    if verbose:
        traceback.print_exc()
    first, *rest = message.splitlines() or [""]
    print(f"sr-domains: error: {first}", file=sys.stderr)
    for line in rest:  # multi-line messages (series listings) stay readable
        print(f"  {line.strip()}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    console()
