"""Decimal string (DS) values as the derived-series writers store them."""

from __future__ import annotations

from typing import Any


def ds_number(v: float) -> Any:
    """A decimal string (DS) value, formatted to fit the 16-character limit, without the
    trailing zeros of a value rounded to fit (``7.390600000000001`` -> ``7.3906``, not
    ``7.39060000000000``)."""
    from pydicom.valuerep import DSfloat, format_number_as_ds

    text = format_number_as_ds(float(v))
    if "." in text and "e" not in text.lower():
        text = text.rstrip("0").rstrip(".") or "0"
    return DSfloat(text)
