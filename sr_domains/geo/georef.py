"""Georeferencing of an upscaled raster: transform, GCPs, RPCs and CRS.

Rules (pixel-is-area, bounds unchanged):

* geotransform (north-up or rotated/sheared): ``transform * Affine.scale(1/s)``;
* GCPs (pixel/line are corner-based image coordinates): pixel and line times ``s``, same CRS;
* RPCs (``LINE_OFF``/``SAMP_OFF`` refer to pixel centres): ``off' = (off + 0.5) * s - 0.5``,
  ``scale' = scale * s``; the ground side is unchanged;
* no CRS but a transform: the transform is scaled and no CRS is written (warning);
* no georeferencing at all: the output is not georeferenced either (warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..image import scale_geotransform

try:
    from affine import Affine
    from rasterio.control import GroundControlPoint
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Georef:
    """How a raster is placed on the Earth (any of the fields may be missing).

    Attributes:
        crs: the dataset CRS (rasterio ``CRS``) or None.
        transform: corner-based affine, or None when the raster has none (identity).
        gcps: ground control points, or None.
        gcps_crs: CRS of the GCPs.
        rpcs: rasterio ``RPC`` or None.
    """

    crs: Any = None
    transform: Affine | None = None
    gcps: tuple[Any, ...] | None = None
    gcps_crs: Any = None
    rpcs: Any = None

    @property
    def kind(self) -> str:
        """``"transform"``, ``"gcps"``, ``"rpcs"`` or ``"none"`` (what places the pixels)."""
        if self.transform is not None:
            return "transform"
        if self.gcps:
            return "gcps"
        if self.rpcs is not None:
            return "rpcs"
        return "none"


def read_georef(ds: Any, path: Path | None = None, *, warn: bool = True) -> Georef:
    """The georeferencing of an open rasterio dataset (with ``warn``, logs what an output made
    from it will lack when it is incomplete)."""
    name = path.name if path is not None else ds.name
    transform = None if ds.transform.is_identity else ds.transform
    gcps, gcps_crs = ds.gcps
    rpcs = ds.rpcs
    g = Georef(ds.crs, transform, tuple(gcps) or None, gcps_crs, rpcs)
    if not warn:
        return g
    if g.kind == "none":
        log.warning(
            "%s is not georeferenced (no transform, GCPs or RPCs); the output will not be either",
            name,
        )
    elif g.kind == "transform" and ds.crs is None:
        log.warning("%s has a transform but no CRS; the output keeps the transform, no CRS", name)
    return g


def scale_rpcs(rpcs: Any, s: float) -> Any:
    """RPCs of the image upscaled by ``s`` (see module docs)."""
    d = rpcs.to_dict()
    d.update(
        line_off=(rpcs.line_off + 0.5) * s - 0.5,
        samp_off=(rpcs.samp_off + 0.5) * s - 0.5,
        line_scale=rpcs.line_scale * s,
        samp_scale=rpcs.samp_scale * s,
    )
    return type(rpcs)(**d)


def scale_gcps(gcps: tuple[Any, ...], s: float) -> tuple[Any, ...]:
    """GCPs of the image upscaled by ``s`` (pixel and line times ``s``)."""
    return tuple(
        GroundControlPoint(row=g.row * s, col=g.col * s, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info)
        for g in gcps
    )


def scale_georef(g: Georef, s: float) -> Georef:
    """The georeferencing of the raster upscaled by ``s`` with identical bounds."""
    transform = None if g.transform is None else Affine(*scale_geotransform(g.transform, s))
    return Georef(
        crs=g.crs,
        transform=transform,
        gcps=None if not g.gcps else scale_gcps(g.gcps, s),
        gcps_crs=g.gcps_crs,
        rpcs=None if g.rpcs is None else scale_rpcs(g.rpcs, s),
    )


def apply_georef(dst: Any, g: Georef) -> None:
    """Write GCPs and RPCs on an open output (CRS and transform go in the creation profile)."""
    if g.gcps and g.transform is None:
        dst.gcps = (list(g.gcps), g.gcps_crs)
    if g.rpcs is not None:
        dst.rpcs = g.rpcs


def describe_georef(g: Georef) -> str:
    """One line for ``info``."""
    if g.kind == "transform":
        t = g.transform
        assert t is not None  # kind 'transform'
        rotated = t.b != 0 or t.d != 0
        return "geotransform" + (" (rotated/sheared)" if rotated else " (north-up)")
    if g.kind == "gcps":
        return f"{len(g.gcps or ())} GCPs"
    if g.kind == "rpcs":
        return "RPCs"
    return "none"


__all__ = [
    "Georef",
    "apply_georef",
    "describe_georef",
    "read_georef",
    "scale_gcps",
    "scale_georef",
    "scale_rpcs",
]
