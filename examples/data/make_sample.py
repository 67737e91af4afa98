"""Recreate ``sample.tif``: a 200x200 crop of rasterio's ``RGB.byte.tif`` test image (CC0).

python examples/data/make_sample.py /path/to/RGB.byte.tif
"""

from __future__ import annotations

import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

ROW, COL, SIZE = 280, 100, 200  # reef, coast, land, clouds and a nodata collar edge


def main(src: str, dst: str = str(Path(__file__).with_name("sample.tif"))) -> None:
    window = Window(COL, ROW, SIZE, SIZE)
    with rasterio.open(src) as ds:
        profile = ds.profile
        profile.update(
            width=SIZE,
            height=SIZE,
            transform=ds.window_transform(window),
            tiled=False,
            blockysize=16,
            compress="deflate",
            predictor=2,
            zlevel=9,
        )
        profile.pop("blockxsize", None)
        data = ds.read(window=window)
        with rasterio.open(dst, "w", **profile) as out:
            out.write(data)
            out.colorinterp = ds.colorinterp
            out.update_tags(**ds.tags())


if __name__ == "__main__":
    main(*sys.argv[1:])
