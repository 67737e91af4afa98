"""Peak memory and time of GeoTIFF upscaling vs raster size (bounded-memory streaming check).

Generates 4-band uint16 rasters (default 2000x2000 and 8000x8000) in a temp folder, strip by
strip, then upscales each x2 on the CPU with a small model in a fresh subprocess that reports
its own peak RSS, wall time and panel count. Prints a table and whether the criteria hold:
peak RSS of the largest run < 1.5 GB, and within 20% of the smallest run that fills every
bounded buffer (more than one panel, the profile sample at its cap, an output larger than the
GDAL block cache): a smaller raster needs less than the bound, so it is no yardstick for
"memory independent of the raster size" (1000 x 1000 x 4 is half the sample cap).

    python benchmarks/geotiff_memory.py                 # 2000 and 8000 (several minutes)
    python benchmarks/geotiff_memory.py --sizes 1000 2000 --keep /tmp/bench

``--trace`` checks the strip budget instead (``sr_domains.panels.strip_bytes``): for float32,
uint16 and uint8 rasters of 1, 3 and 4 bands at x2, x3 and x4 (and the 3-band ones run band by
band by a single-band model, where the default ``--spectral auto`` gives the blocks bicubic's
band ratios: the ``3/1`` rows) it traces (``tracemalloc``)
every Python and numpy allocation alive at once while the panels stream, the GeoTIFF writer
included, and checks that the peak stays within the strip's share of ``--max-memory``
(``panels.panel_budget``; where even the narrowest panel needs more, what ``strip_bytes``
counts for it) plus one batch of windows (the network's share, which sets the
tile). Each traced run first upscales a 64 x 64 raster of the same kind untraced, so the
modules and caches the path sets up on first use (about 1 MiB: bytecode, ``numpy.ma``,
signatures) are not taken for the strip's memory. torch's own CPU buffers (the network's
activations and output, the band-ratio rule's bicubic) are not traced: they are the
network's share of ``--max-memory``, seen in the peak RSS of a plain run. ``--strip-budget``
lowers the strip's floor (``PANEL_BUDGET_BYTES``) so that small rasters are cut into several
panels:

    python benchmarks/geotiff_memory.py --trace --max-memory 128M --strip-budget 16 --tile 64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # use this checkout's sr_domains, installed or not
LIMIT_BYTES = 1.5e9
RATIO = 1.20
BANDS = 4  # uint16 (2 bytes a value)
MiB = 2**20


def peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    Linux: ``VmHWM`` of /proc/self/status, which starts afresh at exec. ``ru_maxrss`` does not:
    a child inherits the high-water mark of the parent image it was forked from, which would
    count the parent's raster generation against the child.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _traced_strip(job: Any, seen: dict[str, Any]) -> None:
    """Trace the panels' stream and the writer (``job.iter_hr_blocks`` is looked up at run
    time): ``seen`` gets the traced peak, the strip budget, what the strip holds by
    :func:`~sr_domains.panels.strip_bytes` (over the budget only where the narrowest panel is)
    and one batch of windows."""
    import tracemalloc

    from sr_domains import panels

    real, width = job.iter_hr_blocks, panels.panel_width

    def panel_width(up: Any, spec: Any, align: int) -> int:
        cols = width(up, spec, align)
        seen["strip_bytes"] = panels.strip_bytes(up, spec, min(cols, spec_width[0]))
        return cols

    spec_width = [0]
    panels.panel_width = panel_width

    def traced(up: Any, read: Any, shape: Any, n_bands: int, **kw: Any) -> Any:
        tile, s = up.tiling.tile, up.scale
        spec_width[0] = shape[1]
        seen.update(
            strip_budget=panels.panel_budget(up),
            batch=4 * (3 * n_bands + 2 * n_bands * s**2) * tile**2 * up.batch_size,
        )
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for item in real(up, read, shape, n_bands, **kw):
                yield item  # the writer runs here, traced too
                del item
            seen["traced_peak"] = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()

    job.iter_hr_blocks = traced


def _child(
    src: str,
    dst: str,
    scale: int,
    tile: int | None,
    threads: int,
    max_memory: str | None,
    strip_budget: str | None = None,
    trace: bool = False,
    per_band: bool = False,
    warm: str | None = None,
) -> None:
    """Runs in the subprocess: import, upscale, report peak RSS (bytes) and times as JSON
    (``warm``: a small raster upscaled first, untraced)."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    from sr_domains import panels
    from sr_domains.engine_config import EngineSettings, engine_settings
    from sr_domains.geo import job, upscale_geotiff
    from sr_domains.testing import tiny_model

    plan = panels.plan_panels
    seen: dict[str, Any] = {}

    def plan_panels(width: int, max_cols: int, *args: int) -> list:
        cut = plan(width, max_cols, *args)
        seen.update(panels=len(cut), panel_cols=max_cols)
        return cut

    panels.plan_panels = plan_panels  # (iter_hr_blocks looks it up at run time)
    if strip_budget:
        panels.PANEL_BUDGET_BYTES = int(float(strip_budget) * MiB)
    bands = BANDS
    if trace:
        import rasterio

        with rasterio.open(src) as ds:
            bands = ds.count
    model = tiny_model(1 if per_band else bands, scale)

    def run(path: str) -> None:
        with engine_settings(EngineSettings(max_memory=max_memory)):
            upscale_geotiff(path, dst, scale=scale, model=model, tile=tile, device="cpu",
                            overwrite=True)  # fmt: skip

    if warm:  # what the path imports and caches on first use is not the strip's memory
        run(warm)
    if trace:
        _traced_strip(job, seen)

    rss_import = peak_rss()
    t1 = time.perf_counter()
    run(src)
    t2 = time.perf_counter()
    peak = peak_rss()
    print(
        json.dumps(
            {
                "peak_rss": peak,
                "rss_after_import": rss_import,
                "upscale_s": t2 - t1,
                "total_s": t2 - t0,
                **seen,
            }
        )
    )


def _saturates(run: dict, scale: int) -> bool:
    """Whether a run fills every buffer that is bounded, not sized to the raster: more than
    one panel, a profile sample at its cap and an output larger than the GDAL block cache."""
    from sr_domains.geo.job import GDAL_CACHE_MB
    from sr_domains.geo.reader import SAMPLE_VALUES

    n = run["size"] ** 2
    return (
        run.get("panels", 1) > 1
        and n * BANDS >= SAMPLE_VALUES
        and n * scale**2 * BANDS * 2 > GDAL_CACHE_MB * 2**20
    )


def _generate(
    path: Path, size: int, height: int | None = None, bands: int = BANDS, dtype: str = "uint16"
) -> float:
    """Write the input raster in a subprocess (keeps this process small)."""
    nodata = "None" if dtype[0] == "f" else "0"
    holes = 0.02 if dtype[0] == "f" else 0.0
    code = (
        "import sys; sys.path.insert(0, sys.argv[3])\n"
        "from sr_domains.testing.geo import make_geotiff\n"
        "n, h = int(sys.argv[2]), int(sys.argv[4])\n"
        f"make_geotiff(sys.argv[1], width=n, height=h, count={bands}, dtype='{dtype}', "
        f"nodata={nodata}, nan_fraction={holes}, block=512, seed=1)\n"
    )
    t = time.perf_counter()
    args = [str(path), str(size), str(REPO), str(height or size)]
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    return time.perf_counter() - t


def _run_child(
    args: argparse.Namespace,
    src: Path,
    dst: Path,
    scale: int,
    per_band: bool = False,
    warm: Path | None = None,
) -> dict[str, Any]:
    """Upscale ``src`` in a fresh subprocess (this script's ``--child``; ``warm`` first,
    untraced); its JSON report."""
    cmd = [sys.executable, __file__, "--child", str(src), str(dst),
           "--scale", str(scale), "--threads", str(args.threads)]  # fmt: skip
    for flag, value in (("--tile", args.tile), ("--max-memory", args.max_memory),
                        ("--strip-budget", args.strip_budget)):  # fmt: skip
        if value:
            cmd += [flag, str(value)]
    if args.trace:
        cmd.append("--trace")
    if per_band:
        cmd.append("--per-band")
    if warm is not None:
        cmd += ["--warm", str(warm)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def trace_table(args: argparse.Namespace, folder: Path) -> int:
    """``--trace``: the traced strip peak against its budget for each dtype, band count and
    scale; returns the exit status (1 when a peak is over its budget)."""
    budget = args.max_memory or "default"
    print(f"{'dtype':>8} {'bands':>5} {'scale':>5} {'panels':>10} {'traced peak':>12} "
          f"{'strip budget':>13} {'counted':>10} {'+ batch':>9} {'--max-memory':>13}"
          "  check")  # fmt: skip
    ok = True
    for dtype in ("float32", "uint16", "uint8"):
        for bands in (1, 3, 4):
            src = folder / f"trace_{dtype}_{bands}.tif"
            warm = folder / f"warm_{dtype}_{bands}.tif"
            if not src.exists():
                _generate(src, args.sizes[0], args.trace_height, bands, dtype)
            if not warm.exists():
                _generate(warm, 64, 64, bands, dtype)
            modes = (False, True) if bands == 3 else (False,)  # True: band by band (3/1)
            for scale, per_band in [(k, p) for k in (2, 3, 4) for p in modes]:
                dst = folder / f"trace_out_x{scale}.tif"
                r = _run_child(args, src, dst, scale, per_band, warm)
                dst.unlink()
                limit = max(r["strip_budget"], r["strip_bytes"]) + r["batch"]
                fits = r["traced_peak"] <= limit
                ok &= fits
                print(
                    f"{dtype:>8} {f'{bands}/1' if per_band else bands:>5} {'x' + str(scale):>5} "
                    f"{r.get('panels', 1):>3} x {r.get('panel_cols', 0):>4} "
                    f"{r['traced_peak'] / MiB:>8.1f} MiB {r['strip_budget'] / MiB:>9.1f} MiB "
                    f"{r['strip_bytes'] / MiB:>6.1f} MiB "
                    f"{r['batch'] / MiB:>5.1f} MiB {budget:>13}  {'PASS' if fits else 'FAIL'}",
                    flush=True,
                )
    print(f"\ntraced strip peak within its budget (+ one batch of windows): "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--tile", type=int, default=None, help="LR tile size (default: library's)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument(
        "--max-memory", help="memory budget, as --max-memory of upscale (default: the library's)"
    )
    p.add_argument("--keep", type=Path, help="folder to keep the rasters in (default: temp)")
    p.add_argument(
        "--trace", action="store_true", help="check the traced strip peak against its budget"
    )
    p.add_argument("--trace-height", type=int, default=600, help="--trace rasters' rows")
    p.add_argument("--strip-budget", help="the strip budget's floor, MiB (PANEL_BUDGET_BYTES)")
    p.add_argument("--per-band", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--warm", help=argparse.SUPPRESS)
    p.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(
            args.child[0], args.child[1], args.scale, args.tile, args.threads, args.max_memory,
            args.strip_budget, args.trace, args.per_band, args.warm,
        )  # fmt: skip
        return 0

    tmp = None
    if args.keep:
        folder = args.keep
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="sr_geotiff_bench_")
        folder = Path(tmp.name)
    rows = []
    try:
        if args.trace:
            return trace_table(args, folder)
        for size in args.sizes:
            src = folder / f"in_{size}.tif"
            gen_s = 0.0 if src.exists() else _generate(src, size)
            dst = folder / f"out_{size}_x{args.scale}.tif"
            try:
                res = _run_child(args, src, dst, args.scale)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return 1
            res.update(size=size, gen_s=gen_s, out_mb=dst.stat().st_size / 1e6)
            rows.append(res)
            print(
                f"{size}x{size}: peak RSS {res['peak_rss'] / 1e6:.0f} MB, "
                f"upscale {res['upscale_s']:.1f} s",
                flush=True,
            )
            if not args.keep:
                dst.unlink()
    finally:
        if tmp is not None:
            tmp.cleanup()

    print()
    print(f"{'input':>12} {'output':>12} {'peak RSS':>10} {'after import':>13} "
          f"{'upscale':>9} {'Mpx/s':>7} {'out size':>9} {'panels':>13}")  # fmt: skip
    for r in rows:
        s, k = r["size"], args.scale
        mpx = (s * k) ** 2 / 1e6 / r["upscale_s"]
        print(
            f"{s:>5}x{s:<6} {s * k:>5}x{s * k:<6} {r['peak_rss'] / 1e6:>7.0f} MB "
            f"{r['rss_after_import'] / 1e6:>10.0f} MB {r['upscale_s']:>7.1f} s {mpx:>7.1f} "
            f"{r['out_mb']:>6.0f} MB {r.get('panels', 1):>3} x {r.get('panel_cols', 0):>5}"
        )
    big = rows[-1]["peak_rss"]
    ok_abs = big < LIMIT_BYTES
    print()
    print(f"peak RSS of the largest run < 1.5 GB: {'PASS' if ok_abs else 'FAIL'} "
          f"({big / 1e9:.2f} GB)")  # fmt: skip
    # Peak RSS stops growing once every bounded buffer is full: the strip (from one panel on),
    # the whole-file profile sample (SAMPLE_VALUES) and the GDAL block cache (GDAL_CACHE_MB).
    # A smaller raster needs less, so it is no yardstick for "independent of the raster size".
    full = [r for r in rows[:-1] if _saturates(r, args.scale)]
    narrow = [str(r["size"]) for r in rows[:-1] if not _saturates(r, args.scale)]
    note = f"; {', '.join(narrow)}: fills less than the bounded buffers" if narrow else ""
    if not _saturates(rows[-1], args.scale) or not full:
        print(f"largest within 20% of the smallest full run: n/a (needs two sizes that fill the "
              f"bounded buffers{note})")  # fmt: skip
        return 0 if ok_abs else 1
    small = full[0]
    ok_ratio = big <= RATIO * small["peak_rss"]
    print(f"largest within 20% of the smallest full run ({small['size']}): "
          f"{'PASS' if ok_ratio else 'FAIL'} ({big / small['peak_rss']:.2f}x{note})")  # fmt: skip
    return 0 if ok_abs and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
