"""Remote sensing domain: GeoTIFF in, georeferenced GeoTIFF out.

>>> from sr_domains.geo import upscale_geotiff
>>> upscale_geotiff("scene.tif", "scene_x2.tif", scale=2, bands=[4, 3, 2])  # doctest: +SKIP

Importing this package needs no rasterio; the functions below import it on first use (install
the ``geo`` extra). See ``docs/remote_sensing.md`` for the rules on geometry, nodata and tags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from .batch import expand_inputs, upscale_many, write_many
    from .reader import RasterSource
    from .resume import is_complete
    from .upscale import fit_profile, upscale_geotiff, write_geotiff

_EXPORTS = {
    "upscale_geotiff": "upscale",
    "upscale_many": "batch",
    "write_geotiff": "upscale",
    "write_many": "batch",
    "is_complete": "resume",
    "expand_inputs": "batch",
    "fit_profile": "upscale",
    "RasterSource": "reader",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "RasterSource",
    "expand_inputs",
    "fit_profile",
    "is_complete",
    "upscale_geotiff",
    "upscale_many",
    "write_geotiff",
    "write_many",
]
