"""The SeriesNumber of a derived DICOM series (one rule for every writer, re-exported by
:mod:`.dicom_derive`).

``source + SERIES_NUMBER_STRIDE * (1000 * kind + tenths)``: the source's number below the
stride, then the scale in tenths (3 digits), then the kind (:data:`SERIES_NUMBER_KINDS`). Read
as ``K SSS NNNNN``: series 3 at in-plane x2 is 102000003, at x4 104000003. Sources 0..99999
never collide, for any kind and scale, nor with a source number (derived ones are >= 10^8).

An output of a derived series (a source numbered ``K SSS NNNNN``, 10^8 .. 10^9 - 1) adds
:data:`SERIES_NUMBER_AGAIN` too, so it never takes a number of the first generation: in-plane
x2 of series 3's in-plane x2 output (102000003) is 1204000003, not the 204000003 of series 3's
through-plane x4.
"""

from __future__ import annotations

SERIES_NUMBER_STRIDE = 100_000
SERIES_NUMBER_KINDS = {"in-plane": 1, "through-plane": 2, "isotropic": 3}
#: The kind's part of the offset added to the source SeriesNumber, per derivation kind (the
#: scale adds :func:`series_scale_part`).
SERIES_NUMBER_OFFSETS = {k: SERIES_NUMBER_STRIDE * 1000 * v for k, v in SERIES_NUMBER_KINDS.items()}
#: The in-plane kind's part (100000000, the default kind): an in-plane x2 output of series N
#: is ``N + SERIES_NUMBER_OFFSET + series_scale_part(2)``.
SERIES_NUMBER_OFFSET = SERIES_NUMBER_OFFSETS["in-plane"]
#: Added to the offset of an output of a derived series (a source in :data:`DERIVED_NUMBERS`).
SERIES_NUMBER_AGAIN = 1_000_000_000
#: The numbers a derived series of a source 0..99999 gets (``K SSS NNNNN``, K from 1).
DERIVED_NUMBERS = range(SERIES_NUMBER_STRIDE * 1000, SERIES_NUMBER_AGAIN)
_IS_RANGE = (-(2**31), 2**31 - 1)  # an IS value (PS3.5 6.2): at most 11 characters of 12
_TENTHS_MAX = 999  # three digits, below the kind's


def derived_kind(slice_factor: float, plane_factors: tuple[float, float] | None) -> str:
    """The derivation kind of a written series: ``isotropic`` (one factor per in-plane axis),
    ``through-plane`` (the slice count changes) or ``in-plane``."""
    if plane_factors is not None:
        return "isotropic"
    return "in-plane" if slice_factor == 1 else "through-plane"


def series_scale_part(scale: float) -> int:
    """The scale's part of the SeriesNumber offset: the factor in tenths (x2 -> 20, x2.5 ->
    25; from 1 to 999) times :data:`SERIES_NUMBER_STRIDE` (x2 -> 2000000)."""
    return SERIES_NUMBER_STRIDE * min(max(round(10 * float(scale)), 1), _TENTHS_MAX)


def derived_series_number(source: int, kind: str, scale: float) -> int | None:
    """The SeriesNumber the writers give the ``kind`` output of ``scale`` (an isotropic output:
    its largest planned factor) of series ``source``: ``source + SERIES_NUMBER_STRIDE * (1000
    * K + tenths)``, K = 1 in-plane, 2 through-plane, 3 isotropic (series 3: 102000003 in-plane
    x2, 104000003 x4, 202000003 through-plane x2), plus :data:`SERIES_NUMBER_AGAIN` for a
    derived source (module docs). ``source`` - that offset when the sum leaves the IS range (a
    source near 2^31 - 1); None (left empty, Type 2) when neither fits (a source already out
    of range)."""
    offset = SERIES_NUMBER_OFFSETS[kind] + series_scale_part(scale)
    if source in DERIVED_NUMBERS:
        offset += SERIES_NUMBER_AGAIN
    lo, hi = _IS_RANGE
    return next((n for n in (source + offset, source - offset) if lo <= n <= hi), None)


__all__ = [
    "DERIVED_NUMBERS",
    "SERIES_NUMBER_AGAIN",
    "SERIES_NUMBER_KINDS",
    "SERIES_NUMBER_OFFSET",
    "SERIES_NUMBER_OFFSETS",
    "SERIES_NUMBER_STRIDE",
    "derived_kind",
    "derived_series_number",
    "series_scale_part",
]
