"""``upscale_array`` on a 2-D input through a model that makes several bands from one: every
output band comes back, not only the first."""

from __future__ import annotations

import numpy as np

from sr_domains import upscale_array
from sr_domains.models import create_model


def test_a_2d_input_keeps_every_band_of_a_one_to_three_model():
    net = create_model("srcnn", in_channels=1, out_channels=3, scale=2).eval()
    img = np.random.default_rng(0).uniform(0, 1, (16, 12)).astype(np.float32)
    out, mask = upscale_array(img, model=net, return_mask=True)
    assert out.shape == (3, 32, 24) and mask.shape == (3, 32, 24) and mask.all()
    assert not np.allclose(out[0], out[1]) and not np.allclose(out[1], out[2])
    plain = upscale_array(img, model=net)
    np.testing.assert_array_equal(plain, out)


def test_a_2d_input_through_a_one_band_model_stays_2d():
    net = create_model("srcnn", in_channels=1, scale=2).eval()
    img = np.random.default_rng(1).uniform(0, 1, (16, 12)).astype(np.float32)
    assert upscale_array(img, model=net).shape == (32, 24)
