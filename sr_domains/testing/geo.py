"""Generated GeoTIFFs for tests, examples and benchmarks (needs the ``geo`` extra).

:func:`make_geotiff` writes a raster with smooth, image-like content (a few low-frequency waves
plus sharp-edged fields, different per band) so super-resolution has something to do, and any
combination of CRS, rotation, nodata collar, NaN holes, internal mask or alpha band, tags and band
descriptions. Content is a function of the global pixel position and is generated strip by
strip, so rasters far bigger than memory can be written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require

#: Value ranges used for each dtype kind (content stays well inside the dtype's range).
_RANGES = {
    "uint8": (10.0, 245.0),
    "uint16": (0.0, 10000.0),  # reflectance x 10000, like Landsat/Sentinel-2 L2A
    "int16": (-1000.0, 3000.0),
    "uint32": (0.0, 100000.0),
    "int32": (-50000.0, 50000.0),
    "float32": (0.0, 1.0),
    "float64": (-5.0, 5.0),
}


def _default_transform(crs: str | None, rotated: bool):
    from affine import Affine

    geographic = crs is not None and "4326" in str(crs)
    if geographic:
        base = Affine(1e-4, 0.0, 10.0, 0.0, -1e-4, 50.0)
    else:
        base = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
    if rotated:  # base x rotation(30 deg), spelled out (affine 3 deprecates `*`, 2.x lacks `@`)
        m = np.array(tuple(base)[:9]).reshape(3, 3) @ np.array(
            tuple(Affine.rotation(30.0))[:9]
        ).reshape(3, 3)
        base = Affine(*m.ravel()[:6])
    return base


def _waves(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, n: int) -> np.ndarray:
    f = np.zeros((yy.shape[0], xx.shape[1]))
    for _ in range(n):
        fx, fy = rng.uniform(-1.5, 1.5, 2)
        f += rng.uniform(0.3, 1.0) * np.sin(2 * math.pi * (fx * xx + fy * yy) + rng.uniform(0, 6))
    return f / n


def _content(
    y0: int, rows: int, width: int, band: int, lo: float, hi: float, seed: int
) -> np.ndarray:
    """Smooth field with sharp-edged parcels for rows ``[y0, y0 + rows)`` of one band.

    Bands share a common scene (as real spectral bands do) plus a band-specific part.
    """
    yy = (np.arange(y0, y0 + rows, dtype=np.float64)[:, None] + 0.5) / 64.0
    xx = (np.arange(width, dtype=np.float64)[None, :] + 0.5) / 64.0
    shared = _waves(np.random.default_rng(seed), yy, xx, 5)
    own = _waves(np.random.default_rng(seed * 1000 + band + 1), yy, xx, 3)
    # parcels: piecewise-constant fields with sharp borders, brightness varying per band
    px, py = np.floor(xx / 0.9), np.floor(yy / 0.7 + 0.3 * np.sin(xx))
    parcels = np.sin(px * 12.9898 + py * 78.233) * np.cos(band * 0.7 + px * 0.3)
    f = 0.5 + 0.35 * shared + 0.15 * own + 0.12 * parcels
    np.clip(f, 0.0, 1.0, out=f)
    return lo + (hi - lo) * f


def make_geotiff(
    path: str | Path,
    *,
    width: int = 64,
    height: int = 48,
    count: int = 1,
    dtype: str = "uint8",
    crs: str | None = "EPSG:32633",
    transform: Any = None,
    nodata: float | None = None,
    rotated: bool = False,
    nan_fraction: float = 0.0,
    mask: str | None = None,
    tags: Mapping[str, str] | None = None,
    band_tags: Sequence[Mapping[str, str]] | None = None,
    descriptions: Sequence[str | None] | None = None,
    units: Sequence[str | None] | None = None,
    colorinterp: Sequence[str] | None = None,
    block: int = 256,
    compress: str | None = "deflate",
    seed: int = 0,
) -> Path:
    """Write a GeoTIFF with realistic-looking content; returns its path.

    Args:
        path: output file.
        width, height, count, dtype: raster shape and numpy dtype name.
        crs: CRS text (``"EPSG:4326"`` picks a degree-sized default transform) or None.
        transform: corner affine; default: 10 m UTM-like pixels (or 1e-4 degree), rotated by
            30 degrees when ``rotated``.
        nodata: when set, a triangular collar in the top-left corner (about 1/8 of the pixels)
            holds this value and it is declared as the file's nodata.
        rotated: rotate the default transform.
        nan_fraction: float rasters only: put NaN holes (disks) over about this fraction.
        mask: None, ``"internal"`` (a per-dataset mask hides the collar) or ``"alpha"``
            (an extra alpha band, 0 on the collar). Without ``nodata`` the collar values are
            ordinary data hidden only by the mask.
        tags: dataset tags; band_tags: one mapping per band.
        descriptions, units: one per band (None entries allowed).
        colorinterp: per band names from :class:`rasterio.enums.ColorInterp`.
        block: tile size (the file is tiled when width and height are >= block, striped
            otherwise).
        compress: GDAL compression or None.
        seed: content seed.
    """
    rasterio = require("rasterio", "geo", "make_geotiff")
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    path = Path(path)
    dt = np.dtype(dtype)
    lo, hi = _RANGES.get(dt.name, (0.0, 1.0))
    if transform is None:
        transform = _default_transform(crs, rotated)
    if mask not in (None, "internal", "alpha"):
        raise ValueError(f"mask must be None, 'internal' or 'alpha', got {mask!r}")
    n_total = count + (1 if mask == "alpha" else 0)
    tiled = width >= block and height >= block
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": n_total,
        "dtype": dt.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if compress:
        profile["compress"] = compress
    rng = np.random.default_rng(seed)
    holes = []
    if nan_fraction > 0:
        if dt.kind != "f":
            raise ValueError("nan_fraction needs a float dtype")
        radius = max(2.0, 0.05 * min(width, height))
        n = max(1, round(nan_fraction * width * height / (math.pi * radius**2)))
        holes = [(rng.uniform(0, height), rng.uniform(0, width), radius) for _ in range(n)]
    strip = max(1, min(height, (block if tiled else 256)))
    env = rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True)
    with env, rasterio.open(path, "w", **profile) as dst:
        # always explicit: GDAL's default for 4-band uint8 would call band 4 alpha; before the
        # pixels (an alpha band's ExtraSamples tag cannot change once GDAL has flushed a block)
        if colorinterp:
            ci = [ColorInterp[c] for c in colorinterp]
        else:
            ci = [ColorInterp.gray] + [ColorInterp.undefined] * (count - 1)
        if mask == "alpha" and len(ci) == count:
            ci = [*ci, ColorInterp.alpha]
        dst.colorinterp = ci
        for y0 in range(0, height, strip):
            rows = min(strip, height - y0)
            yy = np.arange(y0, y0 + rows)[:, None]
            xx = np.arange(width)[None, :]
            collar = (xx / width + yy / height) < 0.5 if (nodata is not None or mask) else None
            data = np.empty((count, rows, width), dt)
            for b in range(count):
                v = _content(y0, rows, width, b, lo, hi, seed)
                if dt.kind in "ui":
                    v = np.rint(v)
                if nodata is not None and collar is not None:
                    v[collar] = nodata
                    if dt.kind in "ui":  # keep valid pixels distinct from nodata
                        v[~collar & (v == nodata)] = nodata + (1 if nodata < hi else -1)
                for cy, cx, r in holes:
                    v[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = np.nan
                data[b] = v.astype(dt)
            win = Window(0, y0, width, rows)
            dst.write(data, indexes=list(range(1, count + 1)), window=win)
            valid = np.full((rows, width), 255, np.uint8)
            if collar is not None:
                valid[collar] = 0
            if mask == "internal":
                dst.write_mask(valid, window=win)
            elif mask == "alpha":
                dst.write(valid.astype(dt), n_total, window=win)
        if tags:
            dst.update_tags(**tags)
        for b in range(count):
            if band_tags and b < len(band_tags) and band_tags[b]:
                dst.update_tags(b + 1, **band_tags[b])
            if descriptions and b < len(descriptions) and descriptions[b]:
                dst.set_band_description(b + 1, descriptions[b])
            if units and b < len(units) and units[b]:
                dst.set_band_unit(b + 1, units[b])
    return path


def _corners(transform: Any, width: int, height: int) -> np.ndarray:
    a, b, c, d, e, f = tuple(transform)[:6]
    pts = [(0, 0), (width, 0), (0, height), (width, height)]
    return np.array([(a * x + b * y + c, d * x + e * y + f) for x, y in pts], dtype=np.float64)


def check_upscaled(
    src: str | Path,
    dst: str | Path,
    scale: int,
    *,
    bands: Sequence[int] | None = None,
    nodata: float | None = None,
) -> None:
    """Assert that ``dst`` is ``src`` upscaled by ``scale`` "exactly on top of the original".

    Checks: size x scale, same CRS, the four outer corners equal to 1e-9 of a pixel (GCPs
    scaled for GCP rasters), dtype, nodata, every invalid input pixel's ``scale x scale`` block
    invalid in the output and every valid one valid, no NaN and no nodata value in valid
    output, dataset/band tags, descriptions and units kept, provenance tag present. Reads
    whole rasters: meant for small test files.
    """
    rasterio = require("rasterio", "geo", "check_upscaled")
    from ..geo.gdal_paths import open_dataset
    from ..geo.reader import RasterSource

    s = scale
    with RasterSource(src, tuple(bands) if bands else None, nodata) as rs, open_dataset(dst) as d:
        a = rs.ds
        assert (d.width, d.height) == (a.width * s, a.height * s), "size"
        assert (d.crs is None) == (a.crs is None), "crs presence"
        assert a.crs is None or d.crs == a.crs, "crs"
        if not a.transform.is_identity:
            px = max(
                abs(a.transform.a) + abs(a.transform.b), abs(a.transform.d) + abs(a.transform.e)
            )
            diff = _corners(a.transform, a.width, a.height) - _corners(
                d.transform, d.width, d.height
            )
            assert np.abs(diff).max() <= 1e-9 * px, f"corners differ by {np.abs(diff).max()}"
        else:
            assert d.transform.is_identity, "ungeoreferenced input gave a georeferenced output"
        gcps, gcrs = a.gcps
        if gcps:
            out, ocrs = d.gcps
            assert ocrs == gcrs, "gcp crs"
            assert len(out) == len(gcps), "gcp count"
            for g, o in zip(gcps, out):
                assert abs(o.row - g.row * s) < 1e-9, "gcp row"
                assert abs(o.col - g.col * s) < 1e-9, "gcp col"
                assert (o.x, o.y) == (g.x, g.y), "gcp position"
        assert d.dtypes[0] == a.dtypes[0], "dtype"
        want_nd = rs.nodata
        assert (d.nodata is None) == (want_nd is None), "nodata"
        if want_nd is not None:
            assert d.nodata == want_nd or (np.isnan(d.nodata) and np.isnan(want_nd)), "nodata"
        n = rs.n_bands
        assert d.count == n + (1 if rs.has_alpha else 0), "band count"
        lr = rs.read(rasterio.windows.Window(0, 0, a.width, a.height))
        valid_up = lr.valid.repeat(s, axis=1).repeat(s, axis=2)
        out = d.read(list(range(1, n + 1)))
        if d.nodata is not None and not np.isnan(d.nodata):
            out_invalid = out == np.array(d.nodata).astype(out.dtype)
        else:
            out_invalid = ~np.isfinite(out) if out.dtype.kind == "f" else np.zeros(out.shape, bool)
        if rs.has_dataset_mask or rs.has_alpha:
            out_invalid |= d.read_masks(list(range(1, n + 1))) == 0
        assert np.array_equal(out_invalid, ~valid_up), "validity not kept"
        if out.dtype.kind == "f":
            assert np.isfinite(out[valid_up]).all(), "NaN/inf in valid output"
        from .. import __version__
        from ..geo.output_spec import LAYOUT_TAGS, MAKER_TAGS, describes_layout

        assert d.tags().get("TIFFTAG_SOFTWARE") == f"sr_domains {__version__}", "software"
        for key, v in a.tags().items():
            stale = key in LAYOUT_TAGS or (
                key == "TIFFTAG_IMAGEDESCRIPTION" and describes_layout(v)
            )
            if key in MAKER_TAGS:  # the source's program, time and computer: not ours
                assert key == "TIFFTAG_SOFTWARE" or key not in d.tags(), f"maker tag {key}"
            elif stale:  # describes the source's pixel grid: must be gone
                assert key not in d.tags(), f"stale tag {key} copied"
            elif not key.startswith("SR_DOMAINS_"):
                assert d.tags().get(key) == v, f"dataset tag {key}"
        for k, i in enumerate(rs.indexes, start=1):
            assert d.descriptions[k - 1] == a.descriptions[i - 1], f"description of band {i}"
            assert d.units[k - 1] == a.units[i - 1], f"unit of band {i}"
            for key, v in a.tags(i).items():
                if not key.startswith("STATISTICS_"):
                    assert d.tags(k).get(key) == v, f"band {i} tag {key}"
        assert d.tags().get("SR_DOMAINS_SYNTHETIC") == "super-resolved", "provenance"
        assert d.tags().get("SR_DOMAINS_SCALE") == str(s), "provenance scale"


__all__ = ["check_upscaled", "make_geotiff"]
