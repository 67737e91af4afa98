"""The band-ratio rule handles a block a chunk of rows at a time (sr_domains.spectral): every
chunk size gives the block handled whole, bit for bit, and the same counts."""

from __future__ import annotations

import numpy as np
import pytest

from sr_domains.spectral import keep_band_ratios
from sr_domains.value_domain import ValueOptions, build_rules


def _block(c: int, s: int, dtype: str, ft: type, seed: int):
    """LR values (with NaN or zeros, a physical zero above some of them), the rows of a block
    that start and end off the input pixels, the network's output there and the bounds."""
    rng = np.random.default_rng(seed)
    h, w = 40, 23
    base = rng.uniform(200, 3000, (1, h, w)) * rng.uniform(0.3, 1.7, (c, 1, 1))
    values = np.clip(base + rng.normal(0, 300, (c, h, w)), 0, None).astype(dtype)
    values[:, 17, 3:9] = 0
    ok = np.ones(values.shape, bool)
    if dtype[0] == "f":
        values[1, 30:32, 15:18] = np.nan
        ok = np.isfinite(values)
    row0, rows = 5 * s + 1, 24 * s - 1
    a, b = row0 // s - 3, (row0 + rows - 1) // s + 4
    vals, okk = values[:, a:b], ok[:, a:b]
    up = np.repeat(np.repeat(np.nan_to_num(values.astype(np.float64)), s, 1), s, 2)
    out = (up[:, row0 : row0 + rows] + rng.normal(0, 500, (c, rows, w * s))).astype(ft)
    out[:, ::9, ::7] = np.nan
    rules = build_rules(ValueOptions(), [0.0] * c, dtype=np.dtype(dtype))
    env = rules._envelope(vals, okk, ft)
    return out, vals, okk, row0, a, rules._bounds(env, vals.shape, ft)


@pytest.mark.parametrize(
    ("c", "s", "dtype", "ft", "zero", "bounded"),
    [
        (3, 2, "uint16", np.float32, False, True),
        (4, 3, "float32", np.float32, True, True),  # NaN; a physical zero
        (2, 4, "float64", np.float64, True, False),  # float64 blocks; no bounds
        (13, 2, "uint16", np.float32, False, True),
    ],
)
def test_chunked_rule_equals_the_whole_block(c, s, dtype, ft, zero, bounded):
    out, vals, ok, row0, first, bounds = _block(c, s, dtype, ft, seed=c * s)
    z = [40.0 * (k + 1) for k in range(c)] if zero else ()
    counted = (2 * s, 17 * s)
    whole = out.copy()
    args = (vals, ok, row0, first, s, z, bounds if bounded else None, counted)
    n_whole = keep_band_ratios(whole, *args, chunk_rows=out.shape[1])
    assert n_whole[0] > 0 and (n_whole[1] > 0 or not bounded)
    assert not np.array_equal(whole, out, equal_nan=True)  # the rule changed pixels
    for chunk in (None, 1, 2, s + 1, 7, 16):
        got = out.copy()
        assert keep_band_ratios(got, *args, chunk_rows=chunk) == n_whole, chunk
        assert got.tobytes() == whole.tobytes(), chunk  # bit for bit (NaN and -0.0 included)
