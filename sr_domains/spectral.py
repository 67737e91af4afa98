"""Spectral fidelity: multi-band output keeps the band ratios of bicubic interpolation.

A network sharpens each band a little differently, and per-band differences of detail are
colour fringes and changed spectra (a vegetation index computed on the output is no longer
that of the scene). The rule used here is the one pan-sharpening calls a ratio (Brovey /
SFIM-style) injection, with the SR output as the "pan": each output pixel is the MATLAB
bicubic upsampling of the input, scaled by one factor per pixel,

    out[b] = bicubic[b] * sum_b(sr[b]) / sum_b(bicubic[b]),

so the spatial detail is the network's (the band sum is kept) and every band ratio, spectral
angle and normalized difference index is exactly bicubic's (bicubic clipped at zero: its
undershoot below zero is no spectrum of non-negative data). It is applied in physical units:
stored values less the stored value of zero radiance / reflectance, 0 unless the file's band
offsets or a physical profile (``s2l2a``, ``scale:S,O``) say otherwise (Sentinel-2 L2A: 1000),
before the envelope and the physical domain, and never next to invalid input pixels (the
bicubic support must hold valid values only: those output pixels keep the network's values).
The envelope and the domain limit the *shared* factor, not each band (:func:`limit_gain`):
the factor stops where the first band reaches its bounds, so a network's overshoot dims or
brightens the pixel as a whole and the ratios stay bicubic's. Only where bicubic's own
spectrum leaves the bounds (its overshoot at a sharp edge between two spectra lifts one band
above its local range while another dips below its own) is a band still clipped on its own.
Data declared reflectance by its profile (``s2l2a``,
``reflectance``) is a non-negative quantity: its few values below zero (negative reflectance
over water or in shadow) are left out pixel by pixel like invalid ones. Otherwise data with
valid values below the zero (a temperature with band offsets) is no spectrum and the rule is
off for the image (:func:`~sr_domains.value_domain.build_rules`).
:class:`~sr_domains.value_domain.ValueRules` calls :func:`keep_band_ratios` on every output
block. ``ValueOptions(spectral=...)`` (CLI ``--spectral``): ``"auto"`` (default) applies
it when a single-band model runs band by band over several bands (it knows nothing of spectra,
and each band gets its own detail) and to a joint model whose card asks for it
(:attr:`~sr_domains.checkpoint.ModelCard.spectral`, as the shipped ``sr-lite-rgb-x2`` does),
``"bicubic"`` to every model, ``"model"`` never (a joint model's own spectra).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .value_ops import local_range

#: LR rows of context the bicubic kernel needs on each side of a block (cubic support +-2).
HALO = 2

#: HR rows of a block the rule handles at once: a quarter of the block (its temporaries, the
#: bicubic upsampling's included, are a few times that chunk), at least this many rows.
MIN_CHUNK_ROWS = 16


def keep_band_ratios(
    out: np.ndarray,
    values: np.ndarray,
    ok: np.ndarray,
    row0: int,
    first_lr_row: int,
    s: int,
    zero: Sequence[float] = (),
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    counted: tuple[int, int] | None = None,
    chunk_rows: int | None = None,
) -> tuple[int, int]:
    """In place: give HR rows ``[row0, row0 + rows)`` of ``out`` ``(C, rows, W*s)`` (stored
    units) the band ratios of the bicubic upsampling of ``values`` ``(C, n, W)`` (LR rows from
    ``first_lr_row``, with :data:`HALO` rows of context where the image has them; ``ok`` marks
    valid values). ``zero``: per band, the stored value of a physical zero (Sentinel-2 L2A's
    1000, the file's ``-offset / scale``; empty: 0): ratios are kept in physical units, so an
    index such as NDVI is bicubic's. ``bounds``: per band, the lowest and highest value each
    output pixel may take, on the LR grid of ``values`` (the envelope and the physical domain,
    ``-inf``/``inf`` for none): the shared factor is limited to what every band allows
    (:func:`limit_gain`). Returns how many output pixels were rescaled and how many of them
    had their factor limited (in HR columns ``counted = (c0, c1)`` only, where given).

    The rows are handled ``chunk_rows`` at a time (default: a quarter of the block, at least
    :data:`MIN_CHUNK_ROWS`), each from its own LR rows and :data:`HALO` rows of context, so the
    temporaries are a chunk's; the result is the same bit for bit whatever the chunk."""
    c, rows = out.shape[:2]
    if c < 2:
        return 0, 0
    z = np.zeros((c, 1, 1), np.float64)
    ok = np.asarray(ok, bool)
    if len(zero):
        z[:, 0, 0] = np.asarray(zero, np.float64)
        # a value below the physical zero (negative reflectance over water or in shadow) has
        # no spectrum to keep: the output pixels its bicubic support reaches keep the network's
        with np.errstate(invalid="ignore"):
            ok = ok & (values >= z)
    # valid LR pixels whose whole bicubic support is valid (outside the image counts as valid:
    # the boundary rule mirrors its pixels)
    all_ok = np.asarray(ok.all(axis=0), np.float32)[None]
    good_lr = local_range(all_ok, np.ones_like(all_ok, bool), HALO)[0][0] >= 1
    if not good_lr.any():
        return 0, 0
    n = values.shape[1]
    step = rows if min(values.shape[1:]) < 2 else max(MIN_CHUNK_ROWS, -(-rows // 4))
    step = max(1, chunk_rows or step)
    ratios = limited = 0
    for a in range(0, rows, step):
        b = min(rows, a + step)
        # the LR rows these HR rows fall on, and HALO rows of context on each side
        l0 = max(0, (row0 + a) // s - first_lr_row - HALO)
        l1 = min(n, (row0 + b - 1) // s - first_lr_row + 1 + HALO)
        rl = values[:, l0:l1], ok[:, l0:l1], good_lr[l0:l1]
        lr_bounds = None if bounds is None else (bounds[0][:, l0:l1], bounds[1][:, l0:l1])
        got = _ratios(
            out[:, a:b], *rl, z, row0 + a - (first_lr_row + l0) * s, s, lr_bounds, counted
        )
        ratios, limited = ratios + got[0], limited + got[1]
    return ratios, limited


def _ratios(
    out: np.ndarray,
    values: np.ndarray,
    ok: np.ndarray,
    good_lr: np.ndarray,
    z: np.ndarray,
    top: int,
    s: int,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    counted: tuple[int, int] | None,
) -> tuple[int, int]:
    """:func:`keep_band_ratios` for one chunk: HR rows ``out`` start ``top`` rows below the
    first of the LR rows ``values`` (``ok``, ``good_lr`` and ``bounds`` on the same rows)."""
    from .degrade import imresize  # torch: imported when a multi-band block needs it

    c, rows, width = out.shape
    filled = np.subtract(values, z, dtype=np.float64)  # (physical units, exact in float64)
    np.copyto(filled, 0, where=~ok)
    filled = filled.astype(np.float32)
    bic = imresize(filled, float(s))[:, top : top + rows, :width]  # (a fresh buffer)
    del filled
    # non-negative data: bicubic's undershoot below zero is an artefact, zero is its value
    np.maximum(bic, 0, out=bic)
    ri = (top + np.arange(rows)) // s
    ci = np.arange(width) // s
    good = good_lr[ri][:, ci]
    bic_sum = bic.sum(axis=0)
    good &= bic_sum > 0
    if not good.any():
        return 0, 0
    bad = ~good
    win = slice(None) if counted is None else slice(*counted)
    ft = out.dtype.type  # float32, or float64 for values float32 cannot hold
    bic = bic.astype(ft, copy=False)
    zf = z.astype(ft)
    gain = np.subtract(out[0], zf[0])  # the band sum, band by band (invalid pixels' NaN
    for k in range(1, c):  # left out below)
        gain += np.subtract(out[k], zf[k])
    gain[bad] = 0
    np.maximum(gain, 0, out=gain)
    bic_sum[bad] = 1
    gain /= bic_sum.astype(ft, copy=False)
    del bic_sum
    limited = 0
    if bounds is not None:
        lo, hi = bounds[0][:, ri][:, :, ci], bounds[1][:, ri][:, :, ci]
        fitted, fits = limit_gain(gain, bic, zf, lo, hi)
        changed = fitted != gain
        changed[bad] = False
        limited = int(np.count_nonzero(changed[:, win]))
        del changed, gain
        new = np.multiply(bic, fitted, out=bic)
        new += zf
        # a band the factor fits is inside its bounds up to round-off: clip that here (the
        # envelope would count it as a clamp)
        np.clip(new, lo, hi, out=new, where=fits)
    else:
        new = np.multiply(bic, gain, out=bic)
        new += zf
    np.copyto(out, new, where=np.broadcast_to(good, out.shape))
    return int(np.count_nonzero(good[:, win])), limited


def limit_gain(
    gain: np.ndarray, bic: np.ndarray, zero: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The shared factor of each pixel limited to the bands' bounds.

    ``out[b] = bic[b] * gain + zero[b]`` must lie in ``[lo[b], hi[b]]`` (``bic``, ``lo``,
    ``hi``: ``(C, ...)``, ``zero`` broadcasting to them, ``gain``: ``(...)``). Each band with
    ``bic > 0`` allows an interval of factors, and the factor is clipped to their intersection,
    so only the brightness is limited and the band ratios stay bicubic's. Where the intervals
    do not meet (bicubic's own spectrum leaves the bounds in opposite directions: its overshoot
    at a sharp edge between two spectra), the factor is clipped to the gap between them.
    Returns the factors and, per band, where the band fits its bounds with that factor."""
    with np.errstate(divide="ignore", invalid="ignore"):
        neg = bic > 0
        np.logical_not(neg, out=neg)
        g_lo, g_hi = _gains(lo, zero, bic, neg, -np.inf), _gains(hi, zero, bic, neg, np.inf)
    a, b = g_lo.max(axis=0), g_hi.min(axis=0)
    fitted = np.clip(gain, np.minimum(a, b), np.maximum(a, b, out=a))
    np.maximum(fitted, 0, out=fitted)
    fits = g_lo <= fitted
    fits &= fitted <= g_hi
    del g_lo, g_hi
    if neg.any():  # a band at zero (bic 0) is the zero whatever the factor: it fits or not
        at_zero = zero >= lo
        at_zero &= zero <= hi
        np.copyto(fits, at_zero, where=neg)
    return fitted, fits


def _gains(
    bound: np.ndarray, zero: np.ndarray, bic: np.ndarray, neg: np.ndarray, none: float
) -> np.ndarray:
    """``(bound - zero) / bic``, ``none`` where ``neg`` (bic <= 0), in one array."""
    g = np.subtract(bound, zero)
    g = g.astype(np.result_type(g, bic), copy=False)
    np.divide(g, bic, out=g)
    g[neg] = none
    return g


def declares_reflectance(recipe: str) -> bool:
    """True when the intensity profile ``recipe`` declares the data reflectance (``s2l2a``,
    ``reflectance``): a non-negative quantity whose values below zero are sensor noise."""
    return recipe.split(":")[0].strip().lower() in ("s2l2a", "reflectance")


def physical_zero(
    scales: Sequence[float],
    offsets: Sequence[float],
    recipe: str,
    profile_scale: Sequence[float],
    profile_offset: Sequence[float],
) -> list[float] | None:
    """Per band, the stored value of zero radiance / reflectance when it is not 0: from the
    data's own decoding (``value = stored * scale + offset``: GeoTIFF band scales/offsets, a
    decoded DataArray's), else from a physical profile (``s2l2a``, ``reflectance``,
    ``scale:S,O``: ``y = x * S + O``) of ``recipe``; None otherwise (percentile and range
    profiles say nothing of physical units)."""
    n = len(scales)
    if any(o != 0 for o in offsets) and all(s != 0 for s in scales):
        return [-o / s for s, o in zip(scales, offsets)]
    if recipe.split(":")[0] in ("scale", "reflectance", "s2l2a") and any(profile_offset):
        sc = list(profile_scale) * n if len(profile_scale) == 1 else list(profile_scale)
        of = list(profile_offset) * n if len(profile_offset) == 1 else list(profile_offset)
        return [-o / s for s, o in zip(sc, of)]
    return None


__all__ = [
    "HALO",
    "MIN_CHUNK_ROWS",
    "declares_reflectance",
    "keep_band_ratios",
    "limit_gain",
    "physical_zero",
]
