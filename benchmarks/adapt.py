"""Time cost of ``--adapt`` on a 512 x 512 input: ``upscale_geotiff`` with and without
adaptation, side by side in one interleaved run, single-band and RGB, x2 and x4.

The input is a 512 x 512 crop of a real Landsat-7 tile blurred with a Gaussian PSF of 0.8 px and
1 DN of noise, so the adaptation really runs (a sharp, clean input is left to the model and
costs only the estimate).

    python benchmarks/adapt.py                 # default --adapt (200 steps), 2 repeats
    python benchmarks/adapt.py --steps 100 --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_input(path: Path, bands: int) -> Path:
    """A 512 x 512 crop of the Landsat-7 tile ``../shared/data/geotiff/RGB.byte.tif`` (generated
    content when absent), blurred with a Gaussian PSF of 0.8 px and 1 DN of noise."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from sr_domains.psf import gaussian_area_downsample
    from sr_domains.testing.geo import make_geotiff

    real = REPO.parent / "shared" / "data" / "geotiff" / "RGB.byte.tif"
    src_path = (
        real
        if real.exists()
        else make_geotiff(path.with_suffix(".g.tif"), width=600, height=600, count=3)
    )
    with rasterio.open(src_path) as src:
        h, w = src.height, src.width
        win = rasterio.windows.Window((w - 512) // 2, (h - 512) // 2, 512, 512)
        data = src.read(list(range(1, bands + 1)), window=win).astype(np.float32)
    data = gaussian_area_downsample(data, 1, 0.8)
    data += np.random.default_rng(0).normal(0, 1.0, data.shape).astype(np.float32)
    profile = {
        "driver": "GTiff",
        "width": 512,
        "height": 512,
        "count": bands,
        "dtype": "uint8",
        "crs": "EPSG:32618",
        "transform": from_origin(500000, 5000000, 300, 300),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.clip(np.round(data), 0, 255).astype(np.uint8))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from sr_domains.geo import upscale_geotiff
    from sr_domains.options import AdaptOptions

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for bands in (1, 3):
            src = make_input(work / f"in{bands}.tif", bands)
            for scale in (2, 4):
                times: dict[str, list[float]] = {"plain": [], "adapt": []}
                report = {}
                for r in range(args.repeats):  # interleaved: plain, adapt, plain, adapt
                    for mode in ("plain", "adapt"):
                        out = work / f"out_{bands}_{scale}_{mode}_{r}.tif"
                        adapt = AdaptOptions(steps=args.steps) if mode == "adapt" else None
                        t0 = time.perf_counter()
                        upscale_geotiff(src, out, scale=scale, adapt=adapt)
                        times[mode].append(time.perf_counter() - t0)
                        if adapt is not None:
                            import rasterio

                            with rasterio.open(out) as ds:
                                report = json.loads(ds.tags()["SR_DOMAINS_ADAPT"])
                plain = min(times["plain"])
                adapted = min(times["adapt"])
                rows.append((bands, scale, plain, adapted, report))
    print(
        f"\n512 x 512 uint8 input, {args.threads} threads, --adapt {args.steps} (best of "
        f"{args.repeats})\n"
    )
    print(
        "| bands | x | upscale s | upscale --adapt s | ratio | adaptation s | steps | "
        "estimated PSF / noise | self-val PSNR before -> after |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for bands, scale, plain, adapted, rep in rows:
        est = rep.get("estimate") or {}
        sv = rep.get("self_validation_psnr", {})
        print(
            f"| {bands} | {scale} | {plain:.1f} | {adapted:.1f} | {adapted / plain:.1f} | "
            f"{rep.get('seconds', 0):.1f} | {rep.get('fit', {}).get('steps', 0)} | "
            f"{est.get('psf_sigma_px', '')} / {est.get('noise', '')} | "
            f"{sv.get('before', float('nan')):.2f} -> {sv.get('after', float('nan')):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
