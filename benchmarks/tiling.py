"""Whole-image vs tiled inference throughput for every architecture.

Prints megapixels/s (input pixels) for a whole-image pass and a tiled pass with the default
(receptive-field) overlap, the overhead ratio, and whether the tiled result equals the whole one.

    python benchmarks/tiling.py                  # CPU (+ CUDA when available)
    python benchmarks/tiling.py --size 256 --tile 128 --archs edsr rcan-small
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sr_domains.inference import Upscaler, resolve_tiling
from sr_domains.intensity import profile_from_any
from sr_domains.models import create_model

DEFAULT_ARCHS = ["srcnn", "edsr", "edsr-lite-ca", "rcan-small", "rrdb-small"]


def _run(up: Upscaler, x: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    prof = profile_from_any("identity")
    up.upscale(x[:, :32, :32], profile=prof)  # warm-up
    best = float("inf")
    out = None
    for _ in range(repeats):
        if up.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = up.upscale(x, profile=prof)
        if up.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=384, help="square input size (LR pixels)")
    ap.add_argument("--tile", type=int, default=192, help="tile size for the tiled pass")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--archs", nargs="*", default=DEFAULT_ARCHS)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    x = np.random.default_rng(0).random((args.channels, args.size, args.size), dtype=np.float32)
    mpix = args.size * args.size / 1e6
    print(
        f"input {args.channels}x{args.size}x{args.size}, x{args.scale}, tile {args.tile}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    header = (
        f"{'arch':<15} {'device':<6} {'overlap':>7} {'exact':>5} {'whole MP/s':>10} "
        f"{'tiled MP/s':>10} {'overhead':>8} {'max|diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in args.archs:
        for dev in devices:
            model = create_model(name, in_channels=args.channels, scale=args.scale)
            tiling = resolve_tiling(model, args.tile)
            whole = Upscaler(model, tile=10**6, device=dev, amp="off")
            tiled = Upscaler(model, tile=args.tile, device=dev, amp="off")
            t_whole, y_whole = _run(whole, x, args.repeats)
            t_tiled, y_tiled = _run(tiled, x, args.repeats)
            diff = float(np.abs(y_whole - y_tiled).max())
            print(
                f"{name:<15} {dev:<6} {tiling.overlap:>7} {'yes' if tiling.exact else 'no':>5} "
                f"{mpix / t_whole:>10.4f} {mpix / t_tiled:>10.4f} {t_tiled / t_whole:>8.2f} "
                f"{diff:>10.2e}"
            )


if __name__ == "__main__":
    main()
