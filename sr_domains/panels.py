"""Stream a large image through an :class:`~sr_domains.inference.Upscaler` in bounded memory.

Used by every writer that handles images too large for memory (the GeoTIFF writer today).

``Upscaler.stream`` holds one strip of HR rows (window height x full image width), so its
memory grows with the raster *width*. To make peak memory independent of the raster size, wide
rasters are cut into vertical **panels** (column ranges, aligned to the output block width), each
streamed top to bottom as its own image with ``context`` extra LR columns on each side (the
tiling margin plus the margin of the nodata fill, :mod:`sr_domains.nodata_fill`):

* when the model's receptive field is covered (``Tiling.exact``), a hard cut between panels is
  exact: every output pixel sees all the input it depends on, so the result equals the
  whole-image result (up to float rounding);
* otherwise the two panels also overlap by ``ramp`` LR columns right of the cut and are blended
  linearly there, exactly like tiles inside a panel. The left panel's values for that seam are
  spooled to a temporary file row block by row block and read back in the same order while the
  right panel runs, so nothing of full height is kept in memory.

A raster narrower than one panel takes the plain ``Upscaler.stream`` path unchanged.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from .inference import RAMP, Upscaler
from .intensity import IntensityProfile, work_dtype
from .nodata_fill import MARGIN as FILL_MARGIN
from .tiling import strip_rows
from .value_domain import ValueRules
from .value_ops import chunk_rows

#: Memory budget for the HR buffers one panel's strip holds at once (:func:`strip_bytes`).
PANEL_BUDGET_BYTES = 96 * 2**20

ReadFn = Callable[[int, int, int, int], "tuple[np.ndarray, np.ndarray | None]"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Panel:
    """A column range of the LR image: output ``[x0, x1)``, read ``[r0, r1)``, and the number of
    LR columns right of ``x1`` blended with the next panel (``seam``)."""

    x0: int
    x1: int
    r0: int
    r1: int
    seam: int


def panel_budget(upscaler: Upscaler) -> int:
    """Bytes for one panel's HR strip buffers (:func:`strip_bytes`): :data:`PANEL_BUDGET_BYTES`,
    or an eighth of the engine's memory budget when that is larger (big budget tiles need wide
    panels, or the panel cuts would cost extra windows)."""
    return max(PANEL_BUDGET_BYTES, (getattr(upscaler, "memory_budget", None) or 0) // 8)


@dataclass(frozen=True)
class StripSpec:
    """Everything but the width that sizes one panel's strip (:func:`strip_bytes`,
    :func:`panel_width`): ``n_out`` output channels; ``flush_rows``, the HR rows of a flushed
    block; ``context`` LR columns read on each side and ``ramp`` more right of the cut (seam
    blend); ``height``, the image's LR rows (exact strip rows; None: their upper bound);
    ``itemsize``, the work dtype's (8 for float64 and 32-bit integers); ``write_bytes``, what
    the consumer allocates per HR value of a block while it writes it (the GeoTIFF writer's
    cast, masks and +-inf footprint: :func:`sr_domains.geo.writer.write_bytes`); ``spectral``,
    whether the value rules give the blocks bicubic's band ratios
    (:func:`sr_domains.spectral.keep_band_ratios`); ``saturation``, whether they move pixels
    off a saturation value (integer rasters, :meth:`.ValueRules.unsaturate`)."""

    n_out: int
    flush_rows: int
    context: int = 0
    ramp: int = 0
    height: int | None = None
    itemsize: int = 4
    write_bytes: float = 0.0
    spectral: bool = False
    saturation: bool = False


def finish_bytes(
    itemsize: int,
    scale: int,
    flush_rows: int,
    seam: bool,
    write: float = 0,
    spectral: bool = False,
    saturation: bool = False,
    bands: int = 1,
) -> float:
    """Bytes per HR value of a flushed block while it is finished and written: the block (in
    the work dtype, ``itemsize``) plus the largest of what is allocated beside it, one after
    the other: the seam blend's copy, the temporaries of the value rules
    (:mod:`sr_domains.value_rules`: their LR rows, masks and envelope, about ``8 * itemsize``
    bytes per LR value; HR-sized gathers when the block's rows do not fall on whole input
    pixels; with ``spectral``, the band-ratio rule's, which handles a quarter of the block at
    a time: its upsampled bicubic, gathered bounds and factor limits, about ``2 * itemsize +
    6`` bytes per value beside the LR rows; with ``saturation``, the move off the saturation
    value, one of the ``bands`` at a time and an eighth of its rows at a time
    (:func:`~sr_domains.value_ops.off_saturation`): the distance to it and its mask,
    ``itemsize + 1`` bytes per value of such a chunk (off the pixel grid: the band's
    footprint mask, 2 bytes per value of the band, and 2 per value of the block), beside the
    LR rows, envelope, footprint and pins, ``4 * itemsize + 6`` bytes per LR value, ``2 *
    itemsize`` more with ``spectral``; the other rules' masks are gone by then) and the
    consumer's ``write`` bytes per value: upper bounds of what ``tracemalloc`` measures
    (``tests/test_strip_memory.py``, ``benchmarks/geotiff_memory.py --trace``; the upsampled
    bicubic is torch's, counted too)."""
    off_grid = flush_rows % scale != 0
    rules = 10 * itemsize / scale**2 + 2
    if off_grid:
        rules += 2 * itemsize + 4
    if spectral:
        rules = max(rules, itemsize * (2 + 4 / scale**2) + 6)
    if saturation:
        lr = 4 * itemsize + 6 + (2 * itemsize if spectral else 0)
        rows = max(1, flush_rows if off_grid else flush_rows // scale)  # (the band's first axis)
        band = (itemsize + 1) * chunk_rows(rows) / rows + (2 if off_grid else 0)
        rules = max(rules, lr / scale**2 + band / bands + 2 * off_grid)
    return itemsize + max(itemsize if seam else 0, rules, write)


def strip_bytes(upscaler: Upscaler, spec: StripSpec, cols: int) -> int:
    """Bytes one panel of ``cols`` output LR columns holds at once while it streams: the float32
    accumulator of :func:`~sr_domains.tiling.stream_tiles` (tile height x scale rows plus the
    finished rows waiting for their block, over the panel's read width: ``cols`` plus
    ``2 * context + ramp``, rounded up to the size multiple) and one flushed block while it is
    finished and written (:func:`finish_bytes`)."""
    s, m = upscaler.scale, max(1, getattr(upscaler, "multiple", 1))
    flush, n_out = spec.flush_rows, spec.n_out
    read = -(-(cols + 2 * spec.context + spec.ramp) // m) * m
    if spec.height is None:
        rows = upscaler.tiling.tile * s + max(flush - 1, 0)
    else:
        rows = strip_rows(upscaler.plan((spec.height, read)), flush)
    block = flush if flush > 1 else rows
    per_value = finish_bytes(
        spec.itemsize, s, flush, spec.ramp > 0, spec.write_bytes, spec.spectral,
        spec.saturation, n_out,
    )  # fmt: skip
    return 4 * n_out * rows * read * s + math.ceil(per_value * n_out * block * read * s)


def panel_width(upscaler: Upscaler, spec: StripSpec, align: int) -> int:
    """LR columns per panel: a multiple of ``align`` whose :func:`strip_bytes` fit
    :func:`panel_budget` (``align`` itself when none does). Among the widths from half that
    cap to the cap, the one that wastes the least network work per output column wins (a
    panel read one column wider than a tile would need a whole extra window); wider panels
    re-read less input at their edges."""
    tile = upscaler.tiling.tile
    budget = panel_budget(upscaler)

    def fits(k: int) -> bool:
        return strip_bytes(upscaler, spec, k * align) <= budget

    lo, hi = 1, 2  # the most aligned widths that fit: lo fits (or is 1), hi does not
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    cap = lo * align
    best, best_cost = cap, math.inf
    for cols in range(max(align, cap // 2 // align * align), cap + 1, align):
        read = cols + 2 * spec.context + spec.ramp
        plan = upscaler.plan((tile, read))
        cost = len(plan.xs) * plan.tile[1] / cols  # LR columns computed per output column
        if cost < best_cost * 0.999 or (cost <= best_cost * 1.001 and cols > best):
            best, best_cost = cols, cost
    return best


def _spectral(upscaler: Upscaler, rules: ValueRules, n_bands: int) -> bool:
    """Whether the band-ratio rule will run (``--spectral auto`` as the engine resolves it)."""
    if rules.spectral is not None:
        return bool(rules.spectral)
    auto = getattr(upscaler, "auto_spectral", None)
    return True if auto is None else bool(auto(n_bands))


def plan_panels(width: int, max_cols: int, align: int, context: int, ramp: int) -> list[Panel]:
    """Cut ``[0, width)`` into panels of ``max_cols`` columns (the last one takes the rest;
    ``max_cols`` is a multiple of ``align``), see module docs."""
    if width <= max_cols:
        return [Panel(0, width, 0, width, 0)]
    cuts = [*range(0, width, max_cols), width]
    panels = []
    for i in range(len(cuts) - 1):
        x0, x1 = cuts[i], cuts[i + 1]
        seam = min(ramp, cuts[i + 2] - x1) if i + 2 < len(cuts) else 0
        r0 = max(0, x0 - context)
        r1 = min(width, x1 + seam + context)
        panels.append(Panel(x0, x1, r0, r1, seam))
    return panels


class _Spool:
    """Row blocks written once, then read back once in the same order (a temp file)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.dtype = np.dtype(np.float32)  # the blocks' (float64 for data float32 cannot hold)

    def write(self, a: np.ndarray) -> None:
        self.dtype = a.dtype
        self.file.write(np.ascontiguousarray(a).tobytes())

    def rewind(self) -> None:
        self.file.seek(0)

    def read(self, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape)) * self.dtype.itemsize
        buf = self.file.read(n)
        if len(buf) != n:  # pragma: no cover - would be a bookkeeping bug
            raise RuntimeError("seam spool out of sync")
        return np.frombuffer(buf, self.dtype).reshape(shape)

    def close(self) -> None:
        self.file.close()


def iter_hr_blocks(
    upscaler: Upscaler,
    read: ReadFn,
    shape: tuple[int, int],
    n_bands: int,
    *,
    profile: IntensityProfile,
    fill: float | Sequence[float] | np.ndarray,
    flush_rows: int,
    align: int,
    on_block: Callable[[int], None] | None = None,
    rules: ValueRules | None = None,
    band_order: Sequence[int] | None = None,
    rows: tuple[int, int] | None = None,
    dtype: DTypeLike | None = None,
    write_bytes: float = 0.0,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(hr_row0, hr_col0, block)``: finished HR blocks (stored units, float32 or float64
    as :meth:`~sr_domains.inference.Upscaler.stream` gives them) covering
    the whole output once, panel by panel, top to bottom within a panel.

    ``read(y0, x0, h, w)`` reads LR windows in image coordinates; ``align`` is the LR column
    multiple for panel cuts (so HR cuts fall on output block boundaries); ``on_block(n)`` is
    called after each block with its number of HR pixels; ``rules``, ``band_order`` and
    ``rows`` (HR rows to produce) are passed to :meth:`~sr_domains.inference.Upscaler.stream`.
    Panels are as wide as :func:`strip_bytes` fit :func:`panel_budget`; ``dtype`` (the values'
    stored dtype, which sets the blocks' float type) is read from one pixel when not given;
    ``write_bytes``: what the consumer allocates per HR value of a block while it handles it
    (:attr:`StripSpec.write_bytes`).
    """
    h, w = shape
    s = upscaler.scale
    n_out = upscaler.out_channels(n_bands)
    t = upscaler.tiling
    ramp = 0 if t.exact else RAMP
    context = t.margin + FILL_MARGIN  # the fill of nodata next to the margin needs its own
    if dtype is None:
        dtype = np.asarray(read(0, 0, 1, 1)[0]).dtype
    size = work_dtype(dtype).itemsize
    spectral = rules is not None and n_out == n_bands >= 2 and _spectral(upscaler, rules, n_bands)
    saturation = rules is not None and n_out == n_bands and rules.saturation is not None
    spec = StripSpec(n_out, flush_rows, context, ramp, h, size, write_bytes, spectral, saturation)
    max_cols = panel_width(upscaler, spec, align)
    need = strip_bytes(upscaler, spec, min(max_cols, w))
    if need > panel_budget(upscaler):
        log.info(
            "the narrowest panel (%d LR columns) needs %.0f MiB of strip, over its %.0f MiB "
            "budget", max_cols, need / 2**20, panel_budget(upscaler) / 2**20,
        )  # fmt: skip
    panels = plan_panels(w, max_cols, align, context, ramp)
    spool_in: _Spool | None = None
    spool_out: _Spool | None = None
    prev_seam = 0
    try:
        for p in panels:
            spool_out = _Spool() if p.seam else None

            def panel_read(y0: int, x0: int, rh: int, rw: int, r0: int = p.r0):
                return read(y0, x0 + r0, rh, rw)

            if rules is not None and len(panels) > 1:  # count the panel's own columns only
                rules.counted = ((p.x0 - p.r0) * s, (p.x1 - p.r0) * s)

            stream = upscaler.stream(
                panel_read,
                (h, p.r1 - p.r0),
                n_bands,
                profile=profile,
                fill=fill,
                flush_rows=flush_rows,
                rules=rules,
                band_order=band_order,
                rows=rows,
            )
            for row0, block in stream:
                n_rows = block.shape[1]
                a, b = (p.x0 - p.r0) * s, (p.x1 - p.r0) * s
                if spool_out is not None:
                    spool_out.write(block[:, :, b : b + p.seam * s])
                out = block[:, :, a:b]
                if spool_in is not None:
                    k = prev_seam * s
                    left = spool_in.read((n_out, n_rows, k))
                    wl = 1.0 - (np.arange(k, dtype=np.float32) + 0.5) / k
                    out = np.array(out)  # own the memory before blending in place
                    seam = out[:, :, :k]  # (a view) out + (left - out) * wl: exact where the
                    seam += (left - seam) * wl  # two sides agree, and between them (float64)
                n_px = out.shape[1] * out.shape[2]
                del block  # hold no strip-sized array while the stream computes the next one
                yield row0, p.x0 * s, out
                del out
                if on_block:
                    on_block(n_px)
            if spool_in is not None:
                spool_in.close()
            spool_in, spool_out, prev_seam = spool_out, None, p.seam
            if spool_in is not None:
                spool_in.rewind()
    finally:
        if rules is not None:
            rules.counted = None
        for spool in (spool_in, spool_out):
            if spool is not None:
                spool.close()


__all__ = [
    "Panel",
    "StripSpec",
    "finish_bytes",
    "iter_hr_blocks",
    "panel_budget",
    "panel_width",
    "plan_panels",
    "strip_bytes",
]
