"""Remote sensing domain: GeoTIFF in, georeferenced GeoTIFF out.

>>> from sr_domains.geo import upscale_geotiff
>>> upscale_geotiff("scene.tif", "scene_x2.tif", scale=2, bands=[4, 3, 2])  # doctest: +SKIP

Importing this package needs no rasterio; the functions below import it on first use (install
the ``geo`` extra). See ``docs/remote_sensing.md`` for the rules on geometry, nodata and tags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .reader import RasterSource
    from .upscale import expand_inputs, fit_profile, is_complete, upscale_geotiff, upscale_many

_EXPORTS = {
    "upscale_geotiff": "upscale",
    "upscale_many": "upscale",
    "is_complete": "upscale",
    "expand_inputs": "upscale",
    "fit_profile": "upscale",
    "RasterSource": "reader",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RasterSource",
    "expand_inputs",
    "fit_profile",
    "is_complete",
    "upscale_geotiff",
    "upscale_many",
]
