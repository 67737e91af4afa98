"""A polygonal display shutter or collimator on a finer grid: whole-pixel vertices whose
polygon holds the exact one (the shutter never hides a pixel the source showed).

The exact vertices (each source vertex's position on the new grid) fall between the new
pixels at x2 and x4. Rounding each one away from the centroid does not hold the polygon (the
x2 triangle (10,10), (10,50), (40,30): its exact apex lay 0.16 px outside the rounded edge).
For a convex polygon the convex hull of the whole-pixel corners around each exact vertex does:
it holds every exact vertex, so, being convex, their hull, which is the polygon. A non-convex
polygon has no such simple exact rule (its hull would show what the source hid): the caller
removes it (:mod:`sr_domains.medical.dicom_pixel_coords`). Vertices that land on whole pixels
(x3) are mapped as they are, whatever the polygon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Point = tuple[float, float]


def _whole(x: float) -> int | None:
    """``x`` as an int when it is one (to rounding), else None."""
    return round(x) if abs(x - round(x)) < 1e-6 else None


def _ends(x: float) -> tuple[int, ...]:
    """The whole pixels around ``x``: itself when whole, else the two either side."""
    w = _whole(x)
    return (w,) if w is not None else (math.floor(x), math.ceil(x))


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _hull(points: Iterable[Point]) -> list[Point]:
    """The convex hull, counter-clockwise in (row, column), without collinear points."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts
    lower: list[Point] = []
    upper: list[Point] = []
    for seq, out in ((pts, lower), (pts[::-1], upper)):
        for p in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
    return lower[:-1] + upper[:-1]


def _area2(pts: Sequence[Point]) -> float:
    """Twice the signed area (its sign: the orientation)."""
    return sum(_cross((0.0, 0.0), pts[i - 1], pts[i]) for i in range(len(pts)))


def _reduced(pts: Sequence[Point]) -> list[Point]:
    """``pts`` without repeated points and points on a straight run (same region)."""
    out = [p for i, p in enumerate(pts) if p != pts[i - 1]] or list(pts[:1])
    changed = True
    while changed and len(out) > 3:
        changed = False
        for i in range(len(out)):
            a, b, c = out[i - 1], out[i], out[(i + 1) % len(out)]
            ahead = (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) > 0
            if _cross(a, b, c) == 0 and ahead:
                del out[i]
                changed = True
                break
    return out


def is_convex(pts: Sequence[Point]) -> bool:
    """Whether the polygon ``pts`` (in order) is convex and simple: its vertices, less those on
    a straight run, are its hull's in cyclic order (a star, a dent, a spike: no)."""
    poly = _reduced(pts)
    hull = _hull(poly)
    if len(poly) != len(hull):
        return False
    if len(hull) < 3:
        return True  # (no area)
    for order in (poly, poly[::-1]):
        k = order.index(hull[0]) if hull[0] in order else -1
        if k >= 0 and order[k:] + order[:k] == hull:
            return True
    return False


def containing_vertices(src: Sequence[float], exact: Sequence[float]) -> list[int] | None:
    """Whole-pixel vertices (flat ``row, column`` pairs) for a polygon whose source vertices
    are ``src`` and whose exact vertices on the new grid are ``exact`` (same layout), holding
    the exact polygon; None when that cannot be done exactly (a non-convex polygon whose
    vertices fall between the new pixels).

    Raises:
        ValueError: fewer than 3 vertices, or an odd number of values.
    """
    if len(src) != len(exact) or len(src) % 2 or len(src) < 6:
        raise ValueError("a polygon needs 3 or more (row, column) pairs")
    pts = list(zip(exact[0::2], exact[1::2]))
    whole = [(_whole(r), _whole(c)) for r, c in pts]
    if all(r is not None and c is not None for r, c in whole):
        return [int(v) for pair in whole for v in pair if v is not None]
    source = list(zip((float(v) for v in src[0::2]), (float(v) for v in src[1::2])))
    if not is_convex(source):
        return None
    hull = _hull((float(r), float(c)) for x, y in pts for r in _ends(x) for c in _ends(y))
    if _area2(_reduced(source)) < 0:  # (the source's orientation kept)
        hull = [hull[0], *hull[:0:-1]]
    return [int(v) for p in hull for v in p]


__all__ = ["containing_vertices", "is_convex"]
