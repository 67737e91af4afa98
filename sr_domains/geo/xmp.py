"""The XMP packet copied to an upscaled output (drone and camera metadata: GPS, gimbal,
camera), with its image size in the output's pixels.

XMP states the image size as ``tiff:ImageWidth``/``tiff:ImageLength`` and
``exif:PixelXDimension``/``exif:PixelYDimension``, as attributes (``tiff:ImageWidth="4000"``)
or elements (``<tiff:ImageWidth>4000</tiff:ImageWidth>``): each is multiplied by the scale.
Camera calibration in pixels (DJI's ``drone-dji:Calibrated*``) describes the sensor that
took the source, not a super-resolved image; it is kept as it is, with a warning, since
rescaling it needs that camera model's pixel convention.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

#: XMP properties holding the image size in pixels.
SIZE_PROPERTIES = (
    "tiff:ImageWidth",
    "tiff:ImageLength",
    "exif:PixelXDimension",
    "exif:PixelYDimension",
)

_CALIBRATION = re.compile(r"drone-dji:Calibrated\w+")


def _scaled(text: str, scale: int) -> str:
    value = text.strip()
    return str(int(value) * scale) if value.isdigit() else text


def rescale_xmp(doc: str, scale: int, source: object = "") -> str:
    """``doc`` (an XMP packet) with its image size properties multiplied by ``scale``;
    ``source`` names the input in the calibration warning."""
    for prop in SIZE_PROPERTIES:
        name = re.escape(prop)
        doc = re.sub(
            rf'({name}\s*=\s*")([^"]*)(")',
            lambda m: m.group(1) + _scaled(m.group(2), scale) + m.group(3),
            doc,
        )
        doc = re.sub(
            rf"(<{name}>)([^<]*)(</{name}>)",
            lambda m: m.group(1) + _scaled(m.group(2), scale) + m.group(3),
            doc,
        )
    found = sorted(set(_CALIBRATION.findall(doc)))
    if found:
        log.warning(
            "%s: the XMP camera calibration (%s) is in the source camera's pixels and is "
            "copied as it is",
            source,
            ", ".join(found),
        )
    return doc


__all__ = ["SIZE_PROPERTIES", "rescale_xmp"]
