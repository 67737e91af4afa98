"""Tile planning, blend weights and streaming stitching — pure functions, no torch.

Windows are planned independently on each axis (the 2-D plan is their Cartesian product).
Adjacent windows overlap by at least ``overlap`` LR pixels. Each window's weight along an axis is
zero within ``margin`` pixels of an edge it shares with a neighbour (those pixels lack context),
then ramps linearly to 1 across the rest of the overlap. Weights are normalized per axis, and as
the plan is a product, the 2-D weight ``wy[:, None] * wx[None, :]`` of all windows sums to 1
everywhere. Hence, when ``margin >= receptive radius`` (which needs ``overlap >= 2 * margin``),
every pixel that gets weight is computed with full context and **tiled output equals the
whole-image output** up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


def plan_axis(size: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of windows of length ``min(tile, size)`` covering ``[0, size)``.

    ``size`` and ``tile`` must be multiples of ``multiple`` when the window is smaller than the
    axis; starts are multiples of ``multiple`` and consecutive windows overlap by >= ``overlap``.
    """
    if size < 1 or tile < 1 or overlap < 0:
        raise ConfigError(f"bad tiling: size={size}, tile={tile}, overlap={overlap}")
    length = min(tile, size)
    if length == size:
        return [0]
    if overlap >= length:
        raise ConfigError(f"overlap ({overlap}) must be smaller than the tile ({length})")
    # Work in units of `multiple`; spread windows evenly so no window is mostly redundant.
    m = max(1, multiple)
    size_u, length_u = size // m, length // m
    stride_u = (length - overlap) // m
    if stride_u < 1:
        raise ConfigError(
            f"tile ({length}) must exceed the overlap ({overlap}) by at least the model's size "
            f"multiple ({m})"
        )
    n = math.ceil((size_u - length_u) / stride_u) + 1
    step = (size_u - length_u) / (n - 1)
    return [math.floor(i * step + 0.5) * m for i in range(n)]


def axis_weights(starts: list[int], length: int, margin: int) -> list[np.ndarray]:
    """Normalized 1-D blend weights (one array of ``length`` per window, see module docs)."""
    size = starts[-1] + length
    raw = []
    for k, s in enumerate(starts):
        d = np.arange(length, dtype=np.float64)
        w = np.ones(length)
        if k > 0:  # shared left edge
            band = max(starts[k - 1] + length - s - 2 * margin, 0)
            w = np.minimum(w, np.clip((d - margin + 1) / (band + 1), 0.0, 1.0))
        if k < len(starts) - 1:  # shared right edge
            band = max(s + length - starts[k + 1] - 2 * margin, 0)
            dr = length - 1 - d
            w = np.minimum(w, np.clip((dr - margin + 1) / (band + 1), 0.0, 1.0))
        raw.append(w)
    total = np.zeros(size)
    for s, w in zip(starts, raw):
        total[s : s + length] += w
    if np.any(total <= 0):
        raise ConfigError(
            f"overlap too small for margin {margin}: some pixels get no weight; "
            f"use overlap >= {2 * margin}"
        )
    return [w / total[s : s + length] for s, w in zip(starts, raw)]


@dataclass(frozen=True)
class TilePlan:
    """Windows over a ``(H, W)`` LR image (padded up to ``multiple``) and their weights.

    Use :func:`make_plan` to build one.
    """

    shape: tuple[int, int]
    padded: tuple[int, int]
    tile: tuple[int, int]
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    margin: int
    scale: int

    @property
    def n_windows(self) -> int:
        return len(self.ys) * len(self.xs)

    def hr_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-window normalized weights at HR resolution along y and x (float32)."""
        s = self.scale
        wy = axis_weights(list(self.ys), self.tile[0], self.margin)
        wx = axis_weights(list(self.xs), self.tile[1], self.margin)
        return (
            [np.repeat(w, s).astype(np.float32) for w in wy],
            [np.repeat(w, s).astype(np.float32) for w in wx],
        )

    def row_reach(self) -> list[tuple[int, int]]:
        """Per window row, the HR rows ``[a, b)`` where its blend weight is non-zero: outside
        them the row's windows add nothing to the output."""
        s, reach = self.scale, []
        for y0, w in zip(self.ys, axis_weights(list(self.ys), self.tile[0], self.margin)):
            nz = np.flatnonzero(w)
            a, b = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)  # (none: reaches nothing)
            reach.append(((y0 + a) * s, (y0 + b) * s))
        return reach


def make_plan(
    shape: tuple[int, int],
    *,
    scale: int,
    tile: int | tuple[int, int],
    overlap: int,
    margin: int,
    multiple: int = 1,
) -> TilePlan:
    """Plan windows of ``tile`` LR pixels over an image of ``shape`` (rows, cols).

    Args:
        shape: LR image size.
        scale: upscaling factor (for HR weights).
        tile: window size; rounded down to ``multiple`` and clamped to the (padded) image.
        overlap: minimum overlap of adjacent windows, in LR pixels.
        margin: pixels next to a shared window edge that get zero weight; ``2*margin`` must not
            exceed ``overlap``.
        multiple: window sizes and starts are multiples of this (model's size multiple); the
            image is padded up to it.
    """
    if margin * 2 > overlap:
        raise ConfigError(f"margin ({margin}) must be at most half the overlap ({overlap})")
    th, tw = (tile, tile) if isinstance(tile, int) else tile
    m = max(1, multiple)
    padded = (math.ceil(shape[0] / m) * m, math.ceil(shape[1] / m) * m)
    th = min(max(m, (th // m) * m), padded[0])
    tw = min(max(m, (tw // m) * m), padded[1])
    if (th < padded[0] or tw < padded[1]) and min(
        th if th < padded[0] else 10**9, tw if tw < padded[1] else 10**9
    ) <= overlap:
        raise ConfigError(f"tile ({tile}) must be larger than the overlap ({overlap})")
    th = _fit_length(padded[0], th, overlap, m)
    tw = _fit_length(padded[1], tw, overlap, m)
    ys = plan_axis(padded[0], th, overlap, m)
    xs = plan_axis(padded[1], tw, overlap, m)
    return TilePlan(
        (int(shape[0]), int(shape[1])),
        padded,
        (th, tw),
        tuple(ys),
        tuple(xs),
        int(margin),
        int(scale),
    )


def _fit_length(size: int, length: int, overlap: int, multiple: int) -> int:
    """Shrink a window so the same number of windows covers ``size`` with the least work.

    A 2000-pixel axis with 512-pixel tiles and 72 overlap needs 5 windows either way; windows of
    432 instead of 512 pixels do the same job with 16% less computation.
    """
    if length >= size:
        return length
    n = len(plan_axis(size, length, overlap, multiple))
    best = math.ceil((size + (n - 1) * overlap) / n / multiple) * multiple
    best = min(length, max(best, overlap + multiple))
    return best if len(plan_axis(size, best, overlap, multiple)) <= n else length


ReadFn = Callable[[int, int, int, int], np.ndarray]
"""``read(y0, x0, h, w) -> (C, h, w)`` float32 window of the (padded) LR image."""

RunFn = Callable[[np.ndarray], np.ndarray]
"""``run((B, C, h, w)) -> (B, C_out, h*s, w*s)`` float32 network batch."""

SkipFn = Callable[[int, int, int, int], bool]
"""``skip(y0, x0, h, w) -> True`` when a window needs no network pass (e.g. all nodata)."""


def stream_tiles(
    plan: TilePlan,
    read: ReadFn,
    run: RunFn,
    out_channels: int,
    *,
    batch_size: int = 1,
    skip: SkipFn | None = None,
    flush_rows: int = 1,
    on_window: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Run the plan and yield finished HR row blocks ``(row0, (C_out, rows, W*s))`` in order.

    Memory holds one strip of HR rows (window height x full width, plus less than
    ``flush_rows`` finished rows waiting for their block, :func:`strip_rows`), allocated once
    and reused, however tall the image, and at most one batch of windows. Yielded blocks start
    at multiples of ``flush_rows`` HR rows and, when ``flush_rows > 1``, are at most
    ``flush_rows`` rows (one output block row), so what a consumer makes of a block stays that
    size. A block is a **view into the strip, valid until
    the generator resumes**: copy what you keep (the engine's inverse profile does). Skipped
    windows contribute zeros (their pixels must be masked by the caller). ``on_window(n)`` is
    called after each batch with its window count (and with 1 for each skipped window).
    """
    s = plan.scale
    th, tw = plan.tile
    out_h, out_w = plan.shape[0] * s, plan.shape[1] * s
    if plan.n_windows == 1 and not (skip and skip(0, 0, th, tw)):
        # one window covers the image: no weights, no accumulator, no copy
        out = _checked(run(read(0, 0, th, tw)[None]), out_channels, th * s, tw * s)[0]
        if on_window:
            on_window(1)
        yield 0, out[:, :out_h, :out_w]
        return
    wy, wx = plan.hr_weights()
    ones_y = [bool((w == 1).all()) for w in wy]  # single windows: skip multiplying by ones
    ones_x = [bool((w == 1).all()) for w in wx]
    full_w = plan.padded[1] * s
    rows = strip_rows(plan, flush_rows)
    acc = np.zeros((out_channels, rows, full_w), np.float32)  # HR rows from `base`
    base = 0
    for k, y0 in enumerate(plan.ys):
        end = (y0 + th) * s

        def skipped(x0: int, y0: int = y0) -> bool:
            if skip is None or not skip(y0, x0, th, tw):
                return False
            if on_window:
                on_window(1)
            return True

        for chunk in _batches(plan.xs, batch_size, skipped):
            batch = np.stack([read(y0, x0, th, tw) for x0 in chunk])
            out = _checked(run(batch), out_channels, th * s, tw * s)
            del batch
            r0 = y0 * s - base
            for x0, o in zip(chunk, out):
                j = plan.xs.index(x0)
                if not ones_y[k]:
                    o *= wy[k][None, :, None]
                if not ones_x[j]:
                    o *= wx[j][None, None, :]
                acc[:, r0 : r0 + th * s, x0 * s : (x0 + tw) * s] += o
            del out
            if on_window:
                on_window(len(chunk))
        final = _flush_to(plan, k, flush_rows)
        if final > base:
            done = final - base
            step = flush_rows if flush_rows > 1 else done
            for r in range(0, done, step):
                yield base + r, acc[:, r : min(r + step, done), :out_w]
            _shift_rows(acc, done, end - base)
            base = final


def _batches(xs: tuple[int, ...], size: int, skipped: Callable[[int], bool]) -> Iterator[list[int]]:
    """The window starts ``xs`` that are not ``skipped``, ``size`` at a time. ``skipped`` is
    asked only when a batch needs its next window (a skip check may load and keep the window),
    so at most one batch of windows is held, not a whole window row."""
    chunk: list[int] = []
    for x0 in xs:
        if skipped(x0):
            continue
        chunk.append(x0)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _flush_to(plan: TilePlan, k: int, flush_rows: int) -> int:
    """HR rows finished once window row ``k`` is done, rounded down to ``flush_rows`` (all of
    the image's rows after the last window row)."""
    s, out_h = plan.scale, plan.shape[0] * plan.scale
    if k + 1 == len(plan.ys):
        return out_h
    return min(plan.ys[k + 1] * s // flush_rows * flush_rows, out_h)


def strip_rows(plan: TilePlan, flush_rows: int) -> int:
    """HR rows the strip of :func:`stream_tiles` holds: the most any window row reaches below
    the first row not yet flushed (at most ``tile * scale + flush_rows - 1``)."""
    base = most = 0
    for k, y0 in enumerate(plan.ys):
        most = max(most, (y0 + plan.tile[0]) * plan.scale - base)
        base = max(base, _flush_to(plan, k, flush_rows))
    return most


def _shift_rows(acc: np.ndarray, d: int, used: int) -> None:
    """In place: move rows ``[d, used)`` of ``acc`` ``(C, rows, W)`` to the front and zero the
    rows after them. Copies of at most ``d`` rows of one channel never overlap, so numpy
    makes no temporary copy."""
    for c in range(acc.shape[0]):
        for r in range(0, used - d, d):
            n = min(d, used - d - r)
            acc[c, r : r + n] = acc[c, d + r : d + r + n]
    acc[:, max(used - d, 0) : used] = 0


def _checked(out: np.ndarray, channels: int, h: int, w: int) -> np.ndarray:
    if out.shape[-2:] != (h, w) or out.shape[1] != channels:
        raise RuntimeError(f"network returned {out.shape[1:]}, expected ({channels}, {h}, {w})")
    return out


__all__ = ["TilePlan", "axis_weights", "make_plan", "plan_axis", "stream_tiles", "strip_rows"]
