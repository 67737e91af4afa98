"""One GeoTIFF split across Dask workers against one process: wall time, interleaved, and the
engine's work (LR pixels of every window computed) of the row bands the split uses now
(:func:`~sr_domains.geo.split.split_plan`, cut on the tile grid) and of the bands it used
before (equal row bands with the budget's tile, :func:`~sr_domains.geo.split.row_bands`),
relative to one process; for the bands now also the work when every window whose rows reach
a band is computed (the engine's skip before it tested the blend weight). The work columns are
exact; wall times depend on the machine (on a 2-core machine one process already uses both
cores, so a split cannot gain there).

    python benchmarks/split.py                      # 1600 x 1600, 3 bands, 2 workers, 2 rounds
    python benchmarks/split.py --size 2000 --workers 2 --repeat 3
    python benchmarks/split.py --tile 512           # an explicit tile, for both runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/distributed.py is named like the `distributed` package: keep this folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from sr_domains.distributed import cluster_client  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.job import gdal_env, prepare_job  # noqa: E402
from sr_domains.geo.reader import RasterSource  # noqa: E402
from sr_domains.geo.split import (  # noqa: E402
    _plan,
    band_work,
    row_bands,
    split_plan,
    upscale_geotiff_split,
)
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.tiling import TilePlan  # noqa: E402


def _extent_work(plan: TilePlan, rows: tuple[int, int]) -> int:
    """LR pixels of every window whose rows reach HR ``rows`` (blend weight or not)."""
    s, (th, tw) = plan.scale, plan.tile
    reach = sum(not ((y + th) * s <= rows[0] or y * s >= rows[1]) for y in plan.ys)
    return reach * len(plan.xs) * th * tw


def _work(
    src: Path, workers: int, options: UpscaleOptions
) -> tuple[int, dict[str, float], list[tuple[int, int]]]:
    """(the one-process tile, the work of each split as a multiple of one process's, the
    bands now)."""
    with gdal_env(), RasterSource(src) as rs:
        job = prepare_job(rs, options)
        tile, block = job.up.tiling.tile, job.spec.block
        whole = _plan(job, rs.shape, tile, None)
        one = band_work(whole, (0, rs.shape[0] * job.up.scale))
        cuts = row_bands(job.spec.profile["height"], workers, block)
        fixed = options.tile is not None
        t, bands = split_plan(job, rs.shape, workers, block, fixed_tile=fixed)
        new_plan = _plan(job, rs.shape, t, None)
        work = {
            "old": sum(band_work(whole, b) for b in cuts) / one,
            "extent": sum(_extent_work(new_plan, b) for b in bands) / one,
            "new": sum(band_work(new_plan, b) for b in bands) / one,
        }
        return tile, work, bands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1600)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tile", type=int, default=None, help="default: the memory budget's")
    args = ap.parse_args()
    opts = UpscaleOptions(tile=args.tile)
    with tempfile.TemporaryDirectory() as tmp:
        src = make_geotiff(
            Path(tmp) / "big.tif", width=args.size, height=args.size, count=3, dtype="uint16"
        )
        tile, work, bands = _work(src, args.workers, opts)
        single, split = [], []
        with cluster_client(None, args.workers) as client:
            upscale_geotiff_split(src, Path(tmp) / "warm.tif", client=client, options=opts)
            for i in range(args.repeat):
                t0 = time.perf_counter()
                upscale_geotiff(src, Path(tmp) / f"s{i}.tif", tile=args.tile)
                single.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                upscale_geotiff_split(src, Path(tmp) / f"p{i}.tif", client=client, options=opts)
                split.append(time.perf_counter() - t0)
    s1, s2 = statistics.median(single), statistics.median(split)
    which = "tile" if args.tile else "budget tile"
    print(f"{args.size} x {args.size} x 3 uint16, x2, {args.workers} workers, {which} {tile}")
    print(f"bands now: {bands}")
    print("| run | work (x one process) | wall s (median) |")
    print("|---|---:|---:|")
    print(f"| one process | 1.00 | {s1:.1f} |")
    print(f"| split, bands before (equal rows, {which}) | {work['old']:.2f} | - |")
    print(f"| split, bands now, skip before (windows reaching a band) | {work['extent']:.2f} | - |")
    print(f"| split, bands now (windows with weight in a band) | {work['new']:.2f} | {s2:.1f} |")


if __name__ == "__main__":
    main()
