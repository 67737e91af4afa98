"""Which of the source GeoTIFF's tags and metadata namespaces its output carries
(:func:`sr_domains.geo.output_spec.build_spec`): not our own old ``SR_DOMAINS_*`` tags, stale
band statistics, TIFF tags of the old pixel grid or of the program that made the source, image
descriptions of an array library's layout, or namespaces that describe the file's layout."""

from __future__ import annotations

import json
from typing import Any

#: Prefix of the tags sr_domains writes (how the output was made); a source's are never copied.
TAG_PREFIX = "SR_DOMAINS_"
#: Tag namespaces that describe the file layout or are rewritten by GDAL, never copied.
SKIP_NAMESPACES = {"IMAGE_STRUCTURE", "DERIVED_SUBDATASETS", "SUBDATASETS", "RPC", "GEOLOCATION"}
#: XML metadata domains copied (drone and camera XMP: GPS, gimbal, camera); the others
#: (``xml:VRT``, ``xml:ESRI``, JPEG 2000 boxes, ...) describe the source file, not the image.
XML_NAMESPACES = {"xml:XMP"}


#: TIFF tags that describe the source's pixel grid or layout, never copied.
LAYOUT_TAGS = {"TIFFTAG_XRESOLUTION", "TIFFTAG_YRESOLUTION", "TIFFTAG_RESOLUTIONUNIT"}
#: TIFF tags that say which program made the file, when and on which computer: the source's
#: would claim the output was made there and then. ``TIFFTAG_SOFTWARE`` names sr_domains
#: instead; no time is written (a rerun writes the same bytes).
MAKER_TAGS = {"TIFFTAG_SOFTWARE", "TIFFTAG_DATETIME", "TIFFTAG_HOSTCOMPUTER"}


def describes_layout(text: str) -> bool:
    """An image description written by an array library about the old pixel layout (tifffile's
    ``{"shape": [...]}``, ImageJ's ``ImageJ=...``)."""
    t = text.strip()
    if t.startswith("ImageJ=") or "\nimages=" in t:
        return True
    if t.startswith("{"):
        try:
            return isinstance(json.loads(t), dict) and "shape" in json.loads(t)
        except ValueError:
            return False
    return False


def clean_tags(tags: dict[str, str], band: bool) -> dict[str, str]:
    """``tags`` (of the dataset, or of a band: ``band``) less those an output never carries."""
    out = {}
    for k, v in tags.items():
        key = k.upper()
        if key.startswith(TAG_PREFIX) or (band and key.startswith("STATISTICS_")):
            continue
        if key in LAYOUT_TAGS or key in MAKER_TAGS:
            continue
        if key == "TIFFTAG_IMAGEDESCRIPTION" and describes_layout(v):
            continue
        out[k] = v
    return out


def tag_namespaces(ds: Any, bidx: int = 0) -> list[str]:
    """The metadata namespaces of ``ds`` (of its band ``bidx``, 0: the dataset) an output
    carries."""
    try:
        names = ds.tag_namespaces(bidx) if bidx else ds.tag_namespaces()
    except Exception:  # pragma: no cover - some drivers refuse
        return []
    return [
        n
        for n in names
        if n and n not in SKIP_NAMESPACES and (not n.startswith("xml:") or n in XML_NAMESPACES)
    ]


__all__ = [
    "LAYOUT_TAGS",
    "MAKER_TAGS",
    "SKIP_NAMESPACES",
    "TAG_PREFIX",
    "XML_NAMESPACES",
    "clean_tags",
    "describes_layout",
    "tag_namespaces",
]
