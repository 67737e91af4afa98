"""Cost of the per-input rules added on top of the network: the band-ratio rule
(``--spectral``, sr_domains.spectral) and the noise gate (sr_domains.noise_gate).

Part 1: a 4-band uint16 GeoTIFF (default 1000 x 1000) upscaled x2 with the default single-band
model (band by band), ``--spectral model`` and ``--spectral auto`` interleaved (the machine is
shared: ratios side by side), plus the median angle between the output and bicubic spectra.
Part 2: the noise gate on a 512 x 512 window: the noise estimate alone and the whole choice
(estimate + blend with the robust variant) for a clean and a noisy input.

    python benchmarks/spectral_noise.py [--size 1000] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sr_domains.degrade import imresize  # noqa: E402
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.noise_gate import choose_for_noise, input_noise  # noqa: E402
from sr_domains.pretrained import load_pretrained  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402


def _angle_to_bicubic(out: np.ndarray, lr: np.ndarray) -> float:
    bic = np.maximum(imresize(lr.astype(np.float32), 2.0), 0).astype(np.float64)
    out = out.astype(np.float64)
    cos = (out * bic).sum(0) / np.maximum(
        np.linalg.norm(out, axis=0) * np.linalg.norm(bic, axis=0), 1e-12
    )
    return float(np.median(np.degrees(np.arccos(np.clip(cos, -1, 1)))[8:-8, 8:-8]))


def part1(size: int, reps: int) -> None:
    import rasterio

    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    with tempfile.TemporaryDirectory() as tmp:
        src = make_geotiff(Path(tmp) / "ms.tif", width=size, height=size, count=4, dtype="uint16")
        with rasterio.open(src) as ds:
            lr = ds.read()
        times: dict[str, list[float]] = {"model": [], "auto": []}
        angles: dict[str, float] = {}
        for r in range(reps):
            for mode in ("model", "auto"):
                dst = Path(tmp) / f"{mode}{r}.tif"
                t0 = time.perf_counter()
                upscale_geotiff(src, dst, scale=2, values=ValueOptions(spectral=mode))
                times[mode].append(time.perf_counter() - t0)
                if r == 0:
                    with rasterio.open(dst) as ds:
                        angles[mode] = _angle_to_bicubic(ds.read(), lr)
    print(f"\n4-band uint16 {size} x {size}, x2, band by band ({reps} interleaved runs)\n")
    print("| --spectral | median s | runs s | median angle to bicubic (deg) |")
    print("|---|---:|---|---:|")
    for mode, ts in times.items():
        runs = " / ".join(f"{t:.1f}" for t in ts)
        print(f"| {mode} | {statistics.median(ts):.1f} | {runs} | {angles[mode]:.4f} |")
    ratio = statistics.median(times["auto"]) / statistics.median(times["model"])
    print(f"\nauto / model time: {ratio:.3f}")


def part2(reps: int) -> None:
    yy, xx = np.mgrid[0:512, 0:512] / 512
    clean = (0.4 + 0.3 * np.sin(9 * xx) * np.cos(7 * yy) + 0.2 * (xx > 0.5))[None].astype(
        np.float32
    )
    noisy = clean + 0.03 * np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    up = Upscaler(load_pretrained("sr-lite-gray-x2"), device="cpu")
    print("\nnoise gate on a 512 x 512 window (median of runs)\n")
    print("| input | estimated sigma | weight | estimate ms | whole choice ms |")
    print("|---|---:|---:|---:|---:|")
    for name, img in (("clean", clean), ("noisy sigma 0.03", noisy)):
        est, full = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            sigma = input_noise([img])
            est.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _, choice = choose_for_noise(up, [img])
            full.append(time.perf_counter() - t0)
        if choice is None or sigma is None:
            raise SystemExit("the noise gate made no choice for the default model")
        print(
            f"| {name} | {sigma:.4f} | {choice.weight:.2f} | {1e3 * statistics.median(est):.0f} "
            f"| {1e3 * statistics.median(full):.0f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    part1(args.size, args.reps)
    part2(args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
