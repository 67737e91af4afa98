"""Process-wide settings overridden by blocks that end in another order than they started
(sr_domains.process_settings.SharedSetting, GDAL's block cache in sr_domains.geo.gdal_cache).
torch's CPU thread count is not one: with OpenMP each thread has its own, so torch_threads
saves and restores it per block."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from sr_domains.process_settings import SharedSetting


def _setting(value: int = 8) -> tuple[SharedSetting[int], dict[str, int], list[int]]:
    state = {"v": value}
    writes: list[int] = []

    def put(v: int) -> None:
        writes.append(v)
        state["v"] = v

    return SharedSetting(lambda: state["v"], put), state, writes


def test_a_nested_block_restores_what_was_in_effect_when_it_started():
    s, state, _ = _setting()
    with s.override(2):
        state["v"] = 4  # (changed inside the outer block)
        with s.override(1):
            assert state["v"] == 1
        assert state["v"] == 4
    assert state["v"] == 8


@pytest.mark.parametrize(("ends_first", "meanwhile"), [("first", 3), ("second", 1)])
def test_two_blocks_ending_in_either_order_leave_the_original(ends_first, meanwhile):
    # saved and restored per block, the second restored the first's value for good when the
    # first ended first; the one still running keeps its value until it ends
    s, state, _ = _setting()
    blocks = {"first": ExitStack(), "second": ExitStack()}
    blocks["first"].enter_context(s.override(1))
    blocks["second"].enter_context(s.override(3))
    blocks.pop(ends_first).close()
    assert state["v"] == meanwhile
    blocks.popitem()[1].close()
    assert state["v"] == 8


def test_a_value_made_from_the_current_one_and_no_needless_writes():
    s, state, writes = _setting(8)
    with s.override(lambda now: min(now, 16)):  # (already lower: kept, nothing written)
        assert state["v"] == 8
    assert writes == []
    with s.override(lambda now: min(now, 5)):
        assert state["v"] == 5
    assert writes == [5, 8]
