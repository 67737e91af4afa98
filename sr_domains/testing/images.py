"""Small photo-like PNG folders for training and evaluation tests (needs Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_pngs(folder: Path, n: int = 2, size: int = 60, rgb: bool = False) -> Path:
    """Write ``n`` smooth-pattern ``size`` x ``size`` 8-bit PNGs (gray, or RGB) into ``folder``
    (created); returns it."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        bands = [np.sin(yy * rng.uniform(0.1, 0.5) + xx * rng.uniform(0.1, 0.5)) for _ in range(3)]
        img = (np.stack(bands, -1) + 1) * 127.5
        img = img.astype(np.uint8) if rgb else img[..., 0].astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{i}.png")
    return folder


__all__ = ["make_pngs"]
