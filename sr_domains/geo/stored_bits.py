"""Unsigned integer GeoTIFFs stored in fewer bits than their type (``NBITS=12`` in uint16:
values 0..4095, a 12-bit sensor's range).

The value rules take their domain and saturation pin from those bits (:func:`stored_range`),
not from the type, and the output keeps the bits when its values are bounded by them
(:func:`keep_nbits`); without this the output lost ``NBITS`` and its saturated pixels were
not pinned (the pin sat at 65535).
"""

from __future__ import annotations

import logging

import numpy as np

from ..value_rules import ValueRules
from .output_spec import OutputSpec
from .reader import RasterSource

log = logging.getLogger(__name__)

#: Codecs GDAL stores NBITS data with exactly (3.10: LERC writes zeros or refuses, lossless
#: WEBP and JXL change values; an unknown codec keeps the type's full width).
NBITS_CODECS = frozenset({"NONE", "DEFLATE", "LZW", "ZSTD", "LZMA", "PACKBITS"})


def stored_bits(rs: RasterSource) -> int | None:
    """``NBITS`` of the selected bands when they all declare the same width, narrower than
    their unsigned integer type; else None."""
    if rs.dtype.kind != "u":
        return None
    found = {rs.ds.tags(i, ns="IMAGE_STRUCTURE").get("NBITS") for i in rs.indexes}
    if len(found) != 1 or None in found:
        return None
    try:
        bits = int(str(next(iter(found))))
    except ValueError:
        return None
    return bits if 0 < bits < 8 * rs.dtype.itemsize else None


def stored_range(bits: int | None) -> tuple[float, float] | None:
    """The values ``bits`` unsigned bits hold, or None."""
    return None if bits is None else (0.0, float((1 << bits) - 1))


def keep_nbits(
    spec: OutputSpec, rules: ValueRules | None, bits: int | None, rs: RasterSource
) -> None:
    """Write the output in the input's ``bits`` where nothing can fall outside them: the same
    type, no ``NBITS`` of the user's, a nodata value and value rules within the bits (with the
    rules off (``--no-clamp``) or a ``--value-range`` beyond them, or a codec GDAL does not
    store those bits with exactly (:data:`NBITS_CODECS`), the type's full width). An alpha band
    keeps its meaning so: opaque is the bits' maximum (4095), as in the input.
    GDAL's horizontal predictor needs whole 8/16/32-bit samples: it is left out (a user's
    ``PREDICTOR`` keeps the full width instead)."""
    if bits is None or "NBITS" in spec.creation or "PREDICTOR" in spec.creation:
        return
    codec = str(spec.creation.get("COMPRESS", spec.profile.get("compress", "NONE"))).upper()
    if codec not in NBITS_CODECS:
        log.info("%s: NBITS=%d not kept: GDAL stores it with %s inexactly", rs.path, bits, codec)
        return
    top = (1 << bits) - 1
    if spec.profile["dtype"] != rs.dtype.name:
        return
    if spec.nodata is not None and not 0 <= spec.nodata <= top:
        return
    if rules is None or rules.domain is None or not np.all(np.asarray(rules.domain.hi) <= top):
        log.info("%s: NBITS=%d not kept: output values are not bounded by it", rs.path, bits)
        return
    spec.profile["nbits"] = bits
    spec.profile["predictor"] = 1


__all__ = ["keep_nbits", "stored_bits", "stored_range"]
