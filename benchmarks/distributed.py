"""Files per second and per-worker peak memory of a Dask batch with 1 and 2 workers.

Generates a batch of 3-band uint16 GeoTIFFs, then runs ``sr_domains.distributed.upscale_many``
on an embedded LocalCluster of 1 and of 2 worker processes (interleaved, ``--repeat`` rounds;
cluster start-up and the first model load are excluded by a warm-up task). Prints a table and
the scaling efficiency ``(files/s with 2) / (2 x files/s with 1)``. On a 2-core machine the ideal
is 1.0; torch threads per worker are ``cores // workers``, so the single worker already uses
both cores and the efficiency measures the gain of process parallelism over torch threads.

    python benchmarks/distributed.py                 # 12 files of 384 x 384, 2 rounds
    python benchmarks/distributed.py --files 24 --size 512 --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# this file is named like the `distributed` package: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _warm(_: int) -> int:
    from sr_domains.distributed import Task, worker_model
    from sr_domains.options import UpscaleOptions

    worker_model(Task("nifti", "", ""), UpscaleOptions())
    return 0


def run(files: Path, out: Path, workers: int) -> tuple[float, list[int]]:
    from sr_domains.distributed import cluster_client, upscale_many
    from sr_domains.options import UpscaleOptions

    with cluster_client(workers=workers) as c:
        c.gather(c.map(_warm, range(workers * 2), pure=False))  # start workers, load torch
        t0 = time.perf_counter()
        report = upscale_many(files, out, options=UpscaleOptions(), client=c)
        sec = time.perf_counter() - t0
        rss = sorted(c.run(_peak_rss).values())
    if report.failed:
        raise SystemExit(f"failures: {[r.error for r in report.failed]}")
    return sec, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from sr_domains.testing.geo import make_geotiff

    times: dict[int, list[float]] = {1: [], 2: []}
    rss: dict[int, list[int]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src = t / "in"
        src.mkdir()
        for i in range(args.files):
            make_geotiff(
                src / f"s{i:03d}.tif",
                width=args.size,
                height=args.size,
                count=3,
                dtype="uint16",
                seed=i,
            )
        for r in range(args.repeat):
            for w in (1, 2):  # interleaved: noise hits both settings alike
                out = t / f"out-{w}-{r}"
                sec, mem = run(src, out, w)
                times[w].append(sec)
                rss[w].extend(mem)
                shutil.rmtree(out)
    print(f"{args.files} GeoTIFFs of {args.size} x {args.size} x 3 (uint16), x2, shipped weights\n")
    print("| workers | files/s (median) | wall s (runs) | peak RSS per worker MB |")
    print("|---:|---:|---|---|")
    fps = {}
    for w in (1, 2):
        med = statistics.median(times[w])
        fps[w] = args.files / med
        runs = ", ".join(f"{x:.1f}" for x in times[w])
        mem = ", ".join(f"{m / 2**20:.0f}" for m in sorted(set(rss[w]))[-w:])
        print(f"| {w} | {fps[w]:.2f} | {runs} | {mem} |")
    print(f"\nscaling efficiency 1 -> 2 workers: {fps[2] / (2 * fps[1]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
