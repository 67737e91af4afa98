"""The strip of stream_tiles: blocks of one output block row at most, the same pixels."""

from __future__ import annotations

import numpy as np

from sr_domains.tiling import make_plan, stream_tiles


def _nearest(batch: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(batch, 2, axis=2), 2, axis=3).astype(np.float32)


def _blocks(image: np.ndarray, tile: int, flush_rows: int) -> list[tuple[int, np.ndarray]]:
    plan = make_plan(image.shape[1:], scale=2, tile=tile, overlap=8, margin=4)

    def read(y0: int, x0: int, h: int, w: int) -> np.ndarray:
        return image[:, y0 : y0 + h, x0 : x0 + w].copy()

    # (a block is a view of the strip, valid until the next: keep copies)
    return [
        (r0, b.copy())
        for r0, b in stream_tiles(plan, read, _nearest, image.shape[0], flush_rows=flush_rows)
    ]


def test_blocks_are_at_most_one_output_block_row_and_cover_the_image_once():
    image = np.random.default_rng(0).random((3, 70, 33), dtype=np.float32)
    whole = _blocks(image, 1000, 1)  # one window: the untiled output
    assert len(whole) == 1
    blocks = _blocks(image, 24, 8)  # windows 48 HR rows tall, about 30 apart
    assert [r0 for r0, _ in blocks] == list(range(0, 140, 8))
    assert [b.shape for _, b in blocks] == [(3, 8, 66)] * 17 + [(3, 4, 66)]
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks], axis=1), whole[0][1], 1e-6)
