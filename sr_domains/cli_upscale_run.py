"""The run of ``sr-domains upscale`` (:mod:`sr_domains.cli_upscale` holds its arguments): the
checks before any work, the dry run, the run in this process or on a Dask cluster, and what it
prints (the outputs on stdout, failures and the summary on stderr, the outputs a run stopped
part-way completed)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_inputs import batch_domain, check_folder_output, check_one_domain, is_nifti_batch
from .cli_upscale_options import upscale_options
from .errors import ConfigError, ModelScaleError, SRDomainsError
from .options import UpscaleOptions, engine_fields, saved_model_path
from .output_names import shown

if TYPE_CHECKING:
    from .batch_tasks import RunReport


def run_upscale(args: argparse.Namespace) -> int:
    """``sr-domains upscale`` with its parsed arguments; the exit status."""
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
        except ModelScaleError as exc:  # the input it was for (a batch names each itself)
            raise exc.naming(src) from None
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


__all__ = ["run_upscale"]
