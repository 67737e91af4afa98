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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # use this checkout's sr_domains, installed or not
LIMIT_BYTES = 1.5e9
RATIO = 1.20
BANDS = 4  # uint16 (2 bytes a value)


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


def _child(
    src: str, dst: str, scale: int, tile: int | None, threads: int, max_memory: str | None
) -> None:
    """Runs in the subprocess: import, upscale, report peak RSS (bytes) and times as JSON."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    from sr_domains import panels
    from sr_domains.engine_config import EngineSettings, engine_settings
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing import tiny_model

    plan = panels.plan_panels
    seen: dict[str, int] = {}

    def plan_panels(width: int, max_cols: int, *args: int) -> list:
        cut = plan(width, max_cols, *args)
        seen.update(panels=len(cut), panel_cols=max_cols)
        return cut

    panels.plan_panels = plan_panels  # (iter_hr_blocks looks it up at run time)

    rss_import = peak_rss()
    t1 = time.perf_counter()
    with engine_settings(EngineSettings(max_memory=max_memory)):
        upscale_geotiff(
            src, dst, scale=scale, model=tiny_model(BANDS, scale), tile=tile, device="cpu",
            overwrite=True,
        )  # fmt: skip
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


def _generate(path: Path, size: int) -> float:
    """Write the input raster in a subprocess (keeps this process small)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[3])\n"
        "from sr_domains.testing.geo import make_geotiff\n"
        "n = int(sys.argv[2])\n"
        f"make_geotiff(sys.argv[1], width=n, height=n, count={BANDS}, dtype='uint16', nodata=0,"
        " block=512, seed=1)\n"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(path), str(size), str(REPO)], check=True)
    return time.perf_counter() - t


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
    p.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.scale, args.tile, args.threads, args.max_memory)
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
        for size in args.sizes:
            src = folder / f"in_{size}.tif"
            gen_s = 0.0 if src.exists() else _generate(src, size)
            dst = folder / f"out_{size}_x{args.scale}.tif"
            cmd = [sys.executable, __file__, "--child", str(src), str(dst),
                   "--scale", str(args.scale), "--threads", str(args.threads)]  # fmt: skip
            if args.tile:
                cmd += ["--tile", str(args.tile)]
            if args.max_memory:
                cmd += ["--max-memory", args.max_memory]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            res = json.loads(r.stdout.strip().splitlines()[-1])
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
