"""sr_domains.rng: a seeded block seeds and restores the generators it uses, no others."""

from __future__ import annotations

import pytest
import torch

from sr_domains.rng import rng_kept, seed_for, seeded


def test_a_seeded_block_draws_from_its_seed_and_restores_the_callers_state():
    torch.default_generator.manual_seed(123)
    expected_after = torch.rand(4)
    torch.default_generator.manual_seed(123)
    with seeded(7):
        inside = torch.rand(4)
    assert torch.equal(inside, torch.rand(4, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(torch.rand(4), expected_after)  # the caller's sequence goes on


def test_seed_for_is_reproducible_and_rng_kept_undoes_it():
    state = torch.get_rng_state()
    with rng_kept("cpu"):
        seed_for(3, "cpu")
        a = torch.rand(3)
        seed_for(3, "cpu")
        assert torch.equal(torch.rand(3), a)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_run_seeds_and_restores_its_device_only():
    states = torch.cuda.get_rng_state_all()
    with seeded(5, "cuda:0"):
        torch.rand(2, device="cuda:0")
        if torch.cuda.device_count() > 1:  # torch.manual_seed would have seeded it too
            assert torch.equal(torch.cuda.get_rng_state(1), states[1])
    assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), states))
