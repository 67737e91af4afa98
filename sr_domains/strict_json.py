"""Provenance as strict JSON (RFC 8259): a non-finite number is written as ``null``, never as
``NaN`` or ``Infinity``, so strict readers (JavaScript's ``JSON.parse``, ``jq``) take every
record sr_domains writes beside or into an output (NIfTI extension, output manifests, GeoTIFF
tags)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite_json(value: Any, *, text: bool = False) -> Any:
    """``value`` with every NaN or infinite float (NumPy's too) replaced by None (``text``:
    by ``"nan"``, ``"inf"`` or ``"-inf"``, as ``gdalinfo -json`` writes a NaN nodata value),
    tuples as lists and NumPy scalars as Python numbers; other values as they are."""
    if isinstance(value, dict):
        return {k: finite_json(v, text=text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v, text=text) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value) if text else None
    return value


def provenance_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite_json` of ``value`` with ``allow_nan=False``."""
    return json.dumps(finite_json(value), allow_nan=False, **kwargs)


__all__ = ["finite_json", "provenance_json"]
