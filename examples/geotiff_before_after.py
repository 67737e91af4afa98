"""Before/after figure of GeoTIFF super-resolution: LR (nearest) | bicubic | SR crops.

Uses the shipped default weights when they exist, else the checkpoint given by ``--weights``
(or a model name by ``--model``). ``--toy`` falls back to the untrained test model: the figure
then only shows the pipeline (geometry, nodata), not super-resolution quality, and says so.

    python examples/geotiff_before_after.py                      # shipped default weights
    python examples/geotiff_before_after.py --weights edsr_x2.safetensors
    python examples/geotiff_before_after.py --toy                # placeholder until weights ship
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's sr_domains, installed or not


def _stretch(img: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) display image with a fixed per-band 2-98 % stretch."""
    x = (img.astype(np.float32) - lo[:, None, None]) / (hi - lo)[:, None, None]
    x = np.clip(np.nan_to_num(x), 0, 1)
    x = x[:3] if x.shape[0] >= 3 else np.repeat(x[:1], 3, axis=0)
    return np.moveaxis(x, 0, -1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--input", type=Path, default=HERE / "data" / "sample.tif")
    p.add_argument("--output", type=Path, default=HERE.parent / "docs/img/geotiff_before_after.png")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--weights", type=Path, help="checkpoint (.safetensors or public .pt/.pth)")
    p.add_argument("--model", help="shipped weights or architecture name")
    p.add_argument("--toy", action="store_true", help="untrained test model (placeholder figure)")
    p.add_argument("--crop", type=int, nargs=3, default=(70, 90, 60), metavar=("ROW", "COL", "N"),
                   help="LR crop: top row, left column, size (default 70 90 60)")  # fmt: skip
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio
    import torch
    from matplotlib.patches import Rectangle

    from sr_domains.errors import ConfigError
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing import tiny_model

    s = args.scale
    with rasterio.open(args.input) as ds:
        lr = ds.read()
        lr_valid = ds.read_masks() > 0
        name = args.input.name
    model, label = args.model, args.model or "shipped default weights"
    if args.weights:
        label = args.weights.name
    if args.toy:
        model, label = tiny_model(1, s), "UNTRAINED toy model (placeholder, not SR quality)"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sr.tif"
        try:
            upscale_geotiff(args.input, out, scale=s, model=model, weights=args.weights)
        except ConfigError as exc:
            print(f"no model available ({exc}); pass --weights PATH or --toy", file=sys.stderr)
            return 2
        with rasterio.open(out) as ds:
            sr = ds.read()

    valid = lr_valid.all(axis=0)
    lo = np.array([np.percentile(b[valid], 2) for b in lr], np.float32)
    hi = np.array([np.percentile(b[valid], 98) for b in lr], np.float32)
    r, c, n = args.crop
    lr_crop = lr[:, r : r + n, c : c + n]
    nearest = lr_crop.repeat(s, axis=1).repeat(s, axis=2)
    t = torch.from_numpy(lr_crop.astype(np.float32))[None]
    bicubic = torch.nn.functional.interpolate(t, scale_factor=s, mode="bicubic")[0].numpy()
    sr_crop = sr[:, r * s : (r + n) * s, c * s : (c + n) * s]

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6), constrained_layout=True)
    axes[0].imshow(_stretch(lr, lo, hi))
    axes[0].add_patch(Rectangle((c - 0.5, r - 0.5), n, n, fill=False, ec="yellow", lw=1.5))
    axes[0].set_title(f"{name} ({lr.shape[2]}x{lr.shape[1]} px)")
    panels = [
        (nearest, f"input, nearest x{s}"),
        (bicubic, f"bicubic x{s}"),
        (sr_crop, f"sr_domains x{s}"),
    ]
    for ax, (img, title) in zip(axes[1:], panels):
        ax.imshow(_stretch(img, lo, hi), interpolation="nearest")
        ax.set_title(title)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"GeoTIFF super-resolution x{s}; model: {label}", fontsize=11)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=80)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
