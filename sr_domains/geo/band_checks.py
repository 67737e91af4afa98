"""What a raster's bands are, for the checks before a run: their meaning (colour
interpretation or description) matched to a joint model's card, colour tables refused, and
integer bands that look like class codes named."""

from __future__ import annotations

import logging
import re
from typing import Any, cast

import numpy as np
from rasterio.enums import ColorInterp

from ..errors import InputFileError
from ..models.base import SRModel
from .reader import RasterSource

log = logging.getLogger(__name__)


#: Colour interpretations that say nothing of a band's meaning (its description may).
_UNSAID = (ColorInterp.undefined, ColorInterp.gray)


def band_meaning(ds: Any, i: int) -> str | None:
    """What band ``i`` of ``ds`` holds: its colour interpretation (``red``, ``rededge``,
    ``nir``, ...) or, when that is undefined/gray, its description: ``red``, ``green``,
    ``blue``, ``nir`` (``NIR``, "near infrared") or ``rededge`` ("red edge", "RedEdge",
    ``RE1``, ``VRE``: never red); None when it does not say."""
    ci = ds.colorinterp[i - 1]
    if ci not in _UNSAID:
        return str(ci.name).lower()
    words = re.findall(r"[a-z]+", (ds.descriptions[i - 1] or "").lower())
    text = " ".join(words)
    if re.search(r"\bred ?edge\b|\bvre\b", text):
        return "rededge"
    found = [w for w in ("red", "green", "blue", "nir") if w in words]
    if "near" in words and "infrared" in words:
        found = ["nir"]
    if not found and "re" in words:
        return "rededge"
    return found[0] if len(found) == 1 else None


#: What :func:`band_meaning` can say of a band (colour interpretations and descriptions).
MEANINGS = frozenset({c.name.lower() for c in ColorInterp} | {"nir", "rededge"})


def band_code(ds: Any, i: int) -> str | None:
    """The band code the description of band ``i`` of ``ds`` starts with (``B04``, ``B8A``,
    ``SR_B4``, ``B4, central wavelength 665 nm``: lower case, leading zeros dropped: ``b4``,
    ``b8a``), for model cards that name bands by the sensor's codes; None when the
    description is no such code (``Band 1``, none)."""
    return _code(ds.descriptions[i - 1] or "")


def _code(text: str) -> str | None:
    m = re.match(r"\s*(?:sr_)?b0*(\d+a?)(?![a-z0-9])", text.lower())
    return f"b{m.group(1)}" if m else None


def match_bands(rs: RasterSource, net: SRModel) -> list[int] | None:
    """The order in which to feed the selected bands to a joint model so that their meaning
    (:func:`band_meaning`; :func:`band_code` when the card names bands by codes such as
    ``B04``) matches the model card's ``bands``; None when they already match or when either
    side does not say. A contradiction is logged, naming every band of the file that holds
    each meaning the model expects."""
    card = getattr(net, "card", None)
    want = card.get("bands") if isinstance(card, dict) else getattr(card, "bands", None)
    want = [str(b).lower() for b in (want or [])]
    label = band_meaning
    if want and not set(want) <= MEANINGS:  # sensor band codes: matched by description
        label = band_code
        want = [_code(b) or b for b in want]
    have = [label(rs.ds, i) for i in rs.indexes]
    if len(want) != len(have) or not want or any(h is None for h in have) or have == want:
        return None
    named = ", ".join(f"{i}={h}" for i, h in zip(rs.indexes, have))
    if sorted(cast("list[str]", have)) == sorted(want) and len(set(want)) == len(want):
        log.info("%s: bands %s are fed to the model as %s", rs.path.name, named, ", ".join(want))
        return [have.index(b) for b in want]
    every = [label(rs.ds, i) for i in range(1, rs.ds.count + 1)]
    holders = {b: [i for i, m in enumerate(every, 1) if m == b] for b in dict.fromkeys(want)}
    where = ", ".join(f"{b}: {' or '.join(map(str, holders[b])) or 'none'}" for b in holders)
    firsts = [holders[b][0] for b in want if holders[b]]
    example = (
        f", e.g. --bands {','.join(map(str, firsts))}"
        if len(firsts) == len(want) and len(set(firsts)) == len(firsts)
        else ""
    )
    log.warning(
        "%s: the selected bands are %s but the model expects %s; select matching bands with "
        "--bands / bands= (the file's %s%s) or use a model for these bands",
        rs.path.name,
        named,
        ", ".join(want),
        where,
        example,
    )
    return None


def refuse_palette(src: RasterSource) -> None:
    """Refuse a band with a colour table: categorical (a palette) or bilevel (GDAL gives a
    1-bit band a black/white table), with the advice that fits each."""
    for i in src.indexes:
        if src.ds.colorinterp[i - 1] != ColorInterp.palette:
            continue
        if src.ds.tags(i, ns="IMAGE_STRUCTURE").get("NBITS") == "1":
            raise InputFileError(
                src.path,
                f"band {i} is 1-bit (bilevel: a mask or a scanned page), which is not "
                "super-resolved: resample a mask with nearest (gdalwarp -r near), or make a "
                "page 8-bit gray first (gdal_translate -ot Byte -scale 0 1 0 255)",
            )
        raise InputFileError(
            src.path,
            f"band {i} has a colour table (categorical/paletted data), which cannot be "
            "super-resolved; expand it first, e.g. gdal_translate -expand rgb",
        )


def warn_class_map(rs: RasterSource, window: tuple[np.ndarray, np.ndarray]) -> None:
    """Warn about integer bands that look like class codes (a scene classification or land
    cover without a colour table, which :func:`refuse_palette` cannot see), judged on the
    central ``window`` of an integer raster."""
    from ..label_like import warn_label_like

    values, ok = window
    for k, band in enumerate(rs.indexes):
        warn_label_like(rs.path, values[k][ok[k]], rs.dtype, band if rs.n_bands > 1 else None)


__all__ = ["band_meaning", "match_bands", "refuse_palette", "warn_class_map"]
