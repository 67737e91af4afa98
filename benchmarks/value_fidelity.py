"""Value fidelity of the shipped x2 models: how many pixels the rules clamp, what they cost or
gain in PSNR, and how much ringing they remove at a point target and a step edge.

Part 1 (real held-out data, the offline ``gray-heldout`` / ``rgb-heldout`` corpora): each image
is degraded in stored units (MATLAB bicubic, and a Gaussian sensor-like PSF), super-resolved with
the shipped default x2 weights under each setting, and scored against the original (PSNR in the
profile's normalized units, data range 1, border of 2 px cropped):

* raw               -- the network output, only cast (``--no-clamp``)
* domain            -- physical domain only (``--envelope off``)
* envelope 0, NxN   -- clamped to the range of the NxN input neighbourhood, then the domain
                       (5 x 5 is the default)
* envelope 0.1, 5x5 -- that range widened by 10 %

Part 2 (synthetic, uint16, a Sentinel-2-like dark background of 248 DN): a 2 x 2 point target of
4000 DN and a step edge 248 -> 2000 DN, degraded with bicubic. Printed: the darkest output value
around the target (halo; the input never goes below 248), and the overshoot above 2000 and
below 248 at the edge, for bicubic interpolation, raw SR and SR with the default rules.

    python benchmarks/value_fidelity.py            # both parts (about a minute on 2 cores)
    python benchmarks/value_fidelity.py --part 2   # the synthetic part only (seconds)
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sr_domains import metrics  # noqa: E402
from sr_domains.degrade import DegradationConfig, imresize  # noqa: E402
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.intensity import profile_from_any  # noqa: E402
from sr_domains.pretrained import default_pretrained, load_pretrained  # noqa: E402
from sr_domains.train.data import DataConfig, load_images  # noqa: E402
from sr_domains.train.scoring import make_lr  # noqa: E402
from sr_domains.value_domain import (  # noqa: E402
    ValueOptions,
    band_minimum,
    build_rules,
)

SETTINGS = {
    "raw": ValueOptions(clamp=False),
    "domain": ValueOptions(envelope=None),
    "envelope 0, 3x3": ValueOptions(envelope=0.0, envelope_radius=1),
    "envelope 0, 5x5 (default)": ValueOptions(),
    "envelope 0, 7x7": ValueOptions(envelope=0.0, envelope_radius=3),
    "envelope 0.1, 5x5": ValueOptions(envelope=0.1),
}
DEGRADATIONS = {
    "bicubic": DegradationConfig(kind="bicubic"),
    "gaussian PSF": DegradationConfig(kind="wald"),
}


def part1() -> None:
    print("## Real held-out data, shipped x2 weights\n")
    print("| corpus | LR made by | setting | PSNR dB | vs raw | clamped % (envelope / domain) |")
    print("|---|---|---|---:|---:|---|")
    for corpus, bands in (("gray-heldout", 1), ("rgb-heldout", 3)):
        net = load_pretrained(default_pretrained(2, bands).name)
        up = Upscaler(net, device="cpu", amp="off")
        cfg = DataConfig(corpus=corpus, profile="percentile:0.5,99.5")
        if bands == 3:
            cfg = dataclasses.replace(cfg, channels=3)
        images = load_images(cfg, max_pixels=512 * 512, with_profile=True)
        for dname, deg in DEGRADATIONS.items():
            psnr: dict[str, list[float]] = {k: [] for k in SETTINGS}
            pct: dict[str, list[tuple[float, float]]] = {k: [] for k in SETTINGS}
            for _name, hr_n, valid, prof in images:
                h, w = hr_n.shape[1:]
                hr_n = hr_n[:, : h - h % 2, : w - w % 2]
                hr = prof.denormalize(hr_n)  # stored units
                ok = None if valid is None else valid[:, : h - h % 2, : w - w % 2]
                lr_ok = None if ok is None else ok.reshape(1, h // 2, 2, w // 2, 2).all((2, 4))
                filled = (
                    hr if ok is None else np.where(ok, hr, hr[np.broadcast_to(ok, hr.shape)].mean())
                )
                lr = make_lr(filled, 2, deg)
                mask = None if lr_ok is None else lr_ok.repeat(2, 1).repeat(2, 2)
                for key, opts in SETTINGS.items():
                    rules = build_rules(opts, band_minimum(hr, ok), dtype=np.float32)
                    sr = up.upscale(lr, profile=prof, valid_mask=lr_ok, rules=rules)
                    psnr[key].append(
                        metrics.psnr(
                            prof.normalize(sr), hr_n, data_range=1.0, crop_border=2, mask=mask
                        )
                    )
                    if rules is not None and rules.stats.total:
                        d = rules.stats.to_dict()
                        pct[key].append((d["envelope_pct"], d["domain_pct"]))
            base = float(np.mean(psnr["raw"]))
            for key in SETTINGS:
                m = float(np.mean(psnr[key]))
                p = np.mean(pct[key], axis=0) if pct[key] else (0.0, 0.0)
                print(
                    f"| {corpus} | {dname} | {key} | {m:.3f} | {m - base:+.3f} | "
                    f"{p[0]:.2f} / {p[1]:.3f} |"
                )


def _phantom() -> np.ndarray:
    img = np.full((64, 64), 248.0, np.float32)
    img[20:22, 20:22] = 4000.0  # point target
    img[:, 44:] = 2000.0  # step edge
    return img[None]


def part2() -> None:
    print("\n## Synthetic point target and step edge (uint16, background 248 DN)\n")
    hr = _phantom()
    lr = make_lr(hr, 2, DEGRADATIONS["bicubic"])
    lr = np.clip(np.rint(lr), 0, 65535).astype(np.uint16)
    net = load_pretrained(default_pretrained(2, 1).name)
    up = Upscaler(net, device="cpu", amp="off")
    prof = profile_from_any("percentile:0.5,99.5", lr)
    outs = {"bicubic interpolation": imresize(lr.astype(np.float32), 2.0)}
    for key in SETTINGS:
        rules = build_rules(SETTINGS[key], band_minimum(lr), dtype=np.uint16)
        outs[f"SR {key}"] = up.upscale(lr, profile=prof, rules=rules)
    print("| output | darkest value near the target | edge: max - 2000 | edge: 248 - min |")
    print("|---|---:|---:|---:|")
    for key, out in outs.items():
        near = out[0, 12:30, 12:30]  # around the point target (HR 20..21)
        edge = out[0, 32:, 34:56]  # around the edge (HR column 44)
        print(f"| {key} | {near.min():.0f} | {edge.max() - 2000:+.0f} | {248 - edge.min():+.0f} |")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", type=int, choices=(1, 2), help="run one part only (default: both)")
    args = ap.parse_args()
    if args.part in (None, 1):
        part1()
    if args.part in (None, 2):
        part2()
