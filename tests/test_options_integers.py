"""Integer options are checked the same way everywhere: NumPy integers and integral floats
are taken (stored as int), booleans and fractions refused, tiles below 8 px refused by every
engine entry point, and the overlap checked against the tile only when the user gives one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_domains import Upscaler, load_pretrained
from sr_domains.errors import ConfigError
from sr_domains.options import UpscaleOptions


@pytest.fixture(scope="module")
def model():
    return load_pretrained("sr-lite-gray-x2")


def test_numpy_integers_and_integral_floats_are_taken_as_int():
    o = UpscaleOptions(scale=np.int64(3), tile=np.int32(64), batch_size=2.0, threads=np.uint8(2))
    assert (o.scale, o.tile, o.batch_size, o.threads) == (3, 64, 2, 2)
    assert all(type(v) is int for v in (o.scale, o.tile, o.batch_size, o.threads))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scale", True),
        ("scale", 2.5),
        ("scale", "2"),
        ("tile", 8.5),
        ("batch_size", 2.5),
        ("threads", 1.5),
        ("overlap", 0.5),
        ("batch_size", False),
    ],
)
def test_booleans_fractions_and_text_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"{field.replace('_', ' ')} must be an integer"):
        UpscaleOptions(**{field: value})


def test_out_of_range_keeps_its_message():
    with pytest.raises(ConfigError, match="batch size must be >= 1, got 0"):
        UpscaleOptions(batch_size=0)
    with pytest.raises(ConfigError, match="scale must be an integer 1..16, got 17"):
        UpscaleOptions(scale=17)


def test_overlap_is_checked_against_a_given_tile_only():
    # the engine picks the tile from the memory budget (often far above 512): not judged here
    assert UpscaleOptions(overlap=600).overlap == 600
    with pytest.raises(ConfigError, match=r"overlap \(64\) must be smaller than the tile \(64\)"):
        UpscaleOptions(tile=64, overlap=64)


def test_keyword_api_refuses_a_boolean_scale_and_a_fractional_batch(tmp_path):
    from sr_domains.medical import upscale_nifti
    from sr_domains.testing.medical import make_nifti

    src = make_nifti(tmp_path / "in.nii.gz", (16, 16, 4))
    for kwargs, message in (
        ({"scale": True}, "scale must be an integer"),
        ({"batch_size": 1.5}, "batch size must be an integer"),
    ):
        with pytest.raises(ConfigError, match=message):
            upscale_nifti(src, tmp_path / "out.nii.gz", model="sr-lite-gray-x2", **kwargs)
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.parametrize("tile", [0, 1, 4, 7])
def test_engines_refuse_tiles_below_8(model, tile):
    with pytest.raises(ConfigError, match=f"tile must be >= 8 pixels, got {tile}"):
        Upscaler(model, tile=tile)
    from sr_domains.monai import SRInferer

    with pytest.raises(ConfigError, match=f"tile must be >= 8 pixels, got {tile}"):
        SRInferer(tile=tile)
    with pytest.raises(ConfigError, match=f"tile must be >= 8 pixels, got {tile}"):
        SRInferer(roi_size=(tile, tile))


def test_engines_refuse_a_fractional_batch_size(model):
    from sr_domains.monai import SRInferer

    with pytest.raises(ConfigError, match="batch_size must be an integer"):
        Upscaler(model, batch_size=1.5)
    with pytest.raises(ConfigError, match="batch_size must be an integer"):
        SRInferer(batch_size=2.5)
    assert Upscaler(model, tile=16, batch_size=np.int64(2)).batch_size == 2


def test_superresolution_declares_torch_and_returns_a_tensor_for_numpy(model):
    from monai.utils import TransformBackends

    from sr_domains.monai import SuperResolution

    assert SuperResolution.backend == [TransformBackends.TORCH]
    img = np.random.default_rng(0).random((1, 12, 12)).astype(np.float32)
    out = SuperResolution(model)(img)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (1, 24, 24)


def test_a_profile_fitted_on_rows_names_the_way_out():
    from sr_domains import upscale_array
    from sr_domains.intensity import profile_from_any

    a = np.random.default_rng(0).random((12, 10)).astype(np.float32)
    wrong = profile_from_any("percentile", a)  # bands on the first axis: 12 "bands"
    with pytest.raises(ConfigError, match=r"image\[None\]"):
        upscale_array(a, load_pretrained("sr-lite-gray-x2"), profile=wrong)
    right = profile_from_any("percentile", a[None])
    assert upscale_array(a, load_pretrained("sr-lite-gray-x2"), profile=right).shape == (24, 20)
