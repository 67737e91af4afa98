"""What the nodata fill (sr_domains.nodata_fill) costs and what it buys.

Part 1 (cost): a uint16 GeoTIFF (default 1000 x 1000, 2 bands) with a nodata collar (about 1/8
of the pixels) and the same pixels without a nodata value, upscaled x2 with the default model,
interleaved (the machine is shared: ratios side by side); plus the fill alone on one 512 x 512
window with nodata in it.

Part 2 (benefit, needs ``../shared/data``): the drone bands of ``615.tif`` (the quality
battery's satellite gray set, MATLAB-bicubic LR x2): PSNR of the valid pixels by their distance
to nodata, for the local fill (what ``upscale`` does) and for one constant (the band's valid
mean, what it did before), against bicubic of the same filled LR.

    python benchmarks/nodata_fill.py [--size 1000] [--reps 3]
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

from sr_domains import metrics  # noqa: E402
from sr_domains.degrade import imresize  # noqa: E402
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.intensity import IntensityProfile  # noqa: E402
from sr_domains.nodata_fill import fill_invalid  # noqa: E402
from sr_domains.pretrained import load_pretrained  # noqa: E402

IDENTITY = IntensityProfile("identity", (1.0,), (0.0,))


def part1(size: int, reps: int) -> None:
    import rasterio

    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    with tempfile.TemporaryDirectory() as tmp:
        masked = make_geotiff(
            Path(tmp) / "nodata.tif", width=size, height=size, count=2, dtype="uint16", nodata=0
        )
        with rasterio.open(masked) as ds:
            profile, data = ds.profile, ds.read()
            share = float((data == 0).all(axis=0).mean())
        profile.update(nodata=None)
        plain = Path(tmp) / "plain.tif"
        with rasterio.open(plain, "w", **profile) as ds:
            ds.write(np.where(data == 0, 1000, data).astype(np.uint16))
        times: dict[str, list[float]] = {"all valid": [], "nodata collar": []}
        for r in range(reps):
            for name, src in (("all valid", plain), ("nodata collar", masked)):
                t0 = time.perf_counter()
                upscale_geotiff(src, Path(tmp) / f"out{r}{name[0]}.tif", scale=2)
                times[name].append(time.perf_counter() - t0)
    print(f"\n2-band uint16 {size} x {size}, x2, {share:.0%} nodata ({reps} interleaved runs)\n")
    print("| input | median s | runs s |")
    print("|---|---:|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | {' / '.join(f'{t:.2f}' for t in ts)} |")
    ratio = statistics.median(times["nodata collar"]) / statistics.median(times["all valid"])
    print(f"\nnodata / all-valid time: {ratio:.3f}")
    rng = np.random.default_rng(0)
    x = rng.random((2, 530, 530)).astype(np.float32)
    bad = np.zeros((530, 530), bool)
    bad[:, 300:] = True
    ts = []
    for _ in range(max(reps, 3)):
        t0 = time.perf_counter()
        fill_invalid(x, bad[None], np.array([0.5, 0.5]))
        ts.append(time.perf_counter() - t0)
    print(f"fill alone, one 2-band 530 x 530 window: {1e3 * statistics.median(ts):.0f} ms")


def part2() -> None:
    from scipy import ndimage

    from sr_domains.train.battery import SAT_GRAY, load_set
    from sr_domains.train.scoring import _lr_valid, make_lr

    images = load_set(SAT_GRAY, "percentile:0.5,99.5")
    if not images:
        print("\n(part 2 skipped: ../shared/data/geotiff/615.tif is not here)")
        return
    up = Upscaler(load_pretrained("sr-lite-gray-x2"), tile=512)
    bands = ((0, 4), (4, 16), (16, 10**6))
    rows = []
    for i, (name, hr, valid, _) in enumerate(images):
        h, w = hr.shape[1] // 2 * 2, hr.shape[2] // 2 * 2
        hr = np.ascontiguousarray(hr[:, :h, :w], np.float32)
        valid = np.broadcast_to(np.asarray(valid, bool)[..., :h, :w], hr.shape)
        lr = make_lr(np.where(valid, hr, np.float32(hr[valid].mean())), 2, _default(), i)
        ok = _lr_valid(valid, 2)
        far = lr[np.broadcast_to(ok, lr.shape)].mean()
        local = up.upscale(np.where(ok, lr, np.nan), profile=IDENTITY, valid_mask=ok)
        constant = up.upscale(np.where(ok, lr, far).astype(np.float32), profile=IDENTITY)
        bic = imresize(fill_invalid(lr, ~ok, far), 2.0)
        m = ok.repeat(2, -2).repeat(2, -1)[0]
        dist = ndimage.distance_transform_edt(m) / 2  # in LR pixels
        for lo, hi in bands:
            sel = (dist > lo) & (dist <= hi)
            sel[:2], sel[-2:], sel[:, :2], sel[:, -2:] = False, False, False, False
            if not sel.any():
                continue

            b, a, c = (
                metrics.psnr(x, hr, data_range=1.0, mask=sel[None]) for x in (bic, local, constant)
            )
            reach = f"{lo}-{hi}" if hi < 10**6 else f"> {lo}"
            rows.append((name, reach, b, a - b, c - b, int(sel.sum())))
    print("\n615.tif drone bands, x2 MATLAB-bicubic LR: gain over bicubic (dB) by distance to "
          "nodata (LR px)\n")  # fmt: skip
    print("| band | distance | PSNR bicubic | local fill | constant fill | pixels |")
    print("|---|---|---:|---:|---:|---:|")
    for name, d, b, a, c, n in rows:
        print(f"| {name} | {d} | {b:.2f} | {a:+.2f} | {c:+.2f} | {n} |")


def _default():
    from sr_domains.degrade import DegradationConfig

    return DegradationConfig()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    part1(args.size, args.reps)
    part2()
    return 0


if __name__ == "__main__":
    sys.exit(main())
