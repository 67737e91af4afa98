"""SRInferer: equals upscale_array, fixes the affine that MONAI's own inferers keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("monai")

from monai.data import MetaTensor, list_data_collate
from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer

from sr_domains import create_model, upscale_array
from sr_domains.errors import ConfigError
from sr_domains.medical.geometry import corners, upscaled_affine
from sr_domains.monai import SRInferer
from sr_domains.testing import tiny_model
from sr_domains.testing.medical import oblique_affine
from sr_domains.value_domain import ValueOptions

AFF = oblique_affine((1.0, 1.25, 3.0))


class Nearest(nn.Module):
    """A plain upscaling module (not an SRModel) that declares its scale."""

    scale = 2

    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest")


class Undeclared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


@pytest.mark.parametrize(
    ("model", "tile"), [(tiny_model(1, 2), 16), (create_model("edsr-lite-ca", in_channels=1), 40)]
)
def test_2d_batch_equals_upscale_array_with_tiling(model, tile):
    x = torch.rand(2, 1, 56, 45)
    inferer = SRInferer(tile=tile)
    assert isinstance(inferer, Inferer)
    out = inferer(x, model)
    assert type(out) is torch.Tensor and tuple(out.shape) == (2, 1, 112, 90)
    assert inferer.upscaler(model, 1, torch.device("cpu")).plan((56, 45)).n_windows > 1
    for b in range(2):
        ref = upscale_array(x[b].numpy(), model, profile="identity", tile=tile, device="cpu")
        np.testing.assert_allclose(out[b].numpy(), ref, rtol=0, atol=1e-5)


def test_3d_metatensor_slice_wise_and_affine():
    model = tiny_model(1, 2)
    x = MetaTensor(torch.rand(1, 1, 12, 10, 5), affine=torch.as_tensor(AFF))
    out = SRInferer(roi_size=(8, 8))(x, model)
    assert isinstance(out, MetaTensor) and tuple(out.shape) == (1, 1, 24, 20, 5)
    np.testing.assert_allclose(out.affine.numpy(), upscaled_affine(AFF, (0, 1), 2), atol=1e-12)
    err = corners(out.affine.numpy(), (24, 20, 5)) - corners(AFF, (12, 10, 5))
    assert np.abs(err).max() < 1e-9
    for k in (0, 4):
        ref = upscale_array(
            x[0, :, :, :, k].numpy(), model, profile="identity", tile=8, device="cpu"
        )
        np.testing.assert_allclose(out[0, :, :, :, k].numpy(), ref, atol=1e-5)


def test_batched_affines_from_a_collated_batch():
    items = [
        MetaTensor(torch.rand(1, 8, 6, 4), affine=torch.as_tensor(AFF)),
        MetaTensor(torch.rand(1, 8, 6, 4), affine=torch.as_tensor(AFF @ np.diag([1, 1, 1, 1.0]))),
    ]
    items[1].affine[:3, 3] += 10.0
    batch = list_data_collate([{"img": i} for i in items])["img"]
    assert batch.is_batch and batch.affine.shape == (2, 4, 4)
    out = SRInferer()(batch, tiny_model(1, 2))
    assert out.is_batch and out.affine.shape == (2, 4, 4)
    for b in range(2):
        want = upscaled_affine(items[b].affine.numpy(), (0, 1), 2)
        np.testing.assert_allclose(out.affine[b].numpy(), want, atol=1e-12)


@pytest.mark.parametrize("kind", ["tuple", "array", "tensor"])
def test_spatial_shape_survives_collate_inferer_decollate(kind):
    """MONAI collates a tuple ``spatial_shape`` (its PydicomReader's) axis by axis, an array or
    tensor item by item; the output keeps that layout, so ``decollate_batch`` gives each item
    its own upscaled shape (an (B, 3) array in place of the per-axis list was split wrongly)."""
    from monai.data import decollate_batch

    shapes = [(8, 6, 4), (9, 7, 4)]  # as loaded from each file (the current grids are 8 x 6 x 4)
    items = []
    for sh in shapes:
        value = {"tuple": sh, "array": np.array(sh), "tensor": torch.tensor(sh)}[kind]
        meta = {"original_affine": AFF.copy(), "spatial_shape": value}
        items.append(MetaTensor(torch.rand(1, 8, 6, 4), affine=torch.as_tensor(AFF), meta=meta))
    out = SRInferer()(list_data_collate(items), tiny_model(1, 2))
    got = [tuple(int(n) for n in d.meta["spatial_shape"]) for d in decollate_batch(out)]
    assert got == [(2 * a, 2 * b, c) for a, b, c in shapes]


def test_monai_inferers_keep_the_lr_affine_srinferer_fixes_it():
    """The pitfall: MONAI's inferers run an upscaling network fine but copy the LR affine, so
    the output covers twice the physical extent. Same network, same pixels, right affine."""
    aff = torch.as_tensor(np.diag([2.0, 3.0, 4.0, 1.0]))
    x2 = MetaTensor(torch.rand(1, 1, 16, 12), affine=aff)
    x3 = MetaTensor(torch.rand(1, 1, 16, 12, 5), affine=aff)
    net = Nearest()
    swi = SlidingWindowInferer(roi_size=(16, 12), sw_batch_size=1)(x2, net)
    sli = SliceInferer(roi_size=(16, 12), spatial_dim=2, sw_batch_size=1)(x3, net)
    ours2, ours3 = SRInferer()(x2, net), SRInferer()(x3, net)
    for theirs, ours, shape in ((swi, ours2, (32, 24)), (sli, ours3, (32, 24, 5))):
        assert tuple(theirs.shape[2:]) == tuple(ours.shape[2:]) == shape
        np.testing.assert_allclose(theirs.numpy(), ours.numpy(), atol=1e-6)
        assert torch.equal(theirs.affine, aff)  # MONAI: LR affine on the HR grid
        n = len(shape)
        lr_shape = tuple(x3.shape[2 : 2 + n])
        theirs_extent = np.ptp(corners(theirs.affine.numpy()[: n + 1, : n + 1], shape), axis=0)
        ours_extent = np.ptp(corners(ours.affine.numpy()[: n + 1, : n + 1], shape), axis=0)
        lr_extent = np.ptp(corners(aff.numpy()[: n + 1, : n + 1], lr_shape), axis=0)
        np.testing.assert_allclose(ours_extent, lr_extent)
        np.testing.assert_allclose(theirs_extent[:2], 2 * lr_extent[:2])


def test_plain_modules_need_a_scale_and_a_matching_output():
    x = torch.rand(1, 1, 9, 7)
    net = Undeclared()
    with pytest.raises(ConfigError, match="scale"):
        SRInferer()(x, net)
    out = SRInferer(scale=2, values=ValueOptions(clamp=False))(x, net)  # the bare network
    assert tuple(out.shape) == (1, 1, 18, 14)
    with torch.no_grad():
        np.testing.assert_allclose(out.numpy(), net(x).numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="expected"):
        SRInferer(scale=3)(x, net)
    with pytest.raises(ConfigError, match="the model Nearest upscales x2 but x3"):
        SRInferer(scale=3)(x, Nearest())


def test_training_mode_restored_and_bad_arguments():
    model = tiny_model(1, 2).train()
    SRInferer()(torch.rand(1, 1, 6, 6), model)
    assert model.training
    with pytest.raises(ConfigError, match="LR pixels"):
        SRInferer(overlap=0.25)
    with pytest.raises(ConfigError, match="square"):
        SRInferer(roi_size=(16, 32))
    with pytest.raises(ConfigError, match="batch"):
        SRInferer()(torch.rand(1, 6, 6), model)
    with pytest.raises(ConfigError, match="extra"):
        SRInferer()(torch.rand(1, 1, 6, 6), model, 1)
    # the scale is checked when the inferer is made: 2.9 ran as x2, a model name as the
    # first argument failed only at the first batch
    with pytest.raises(ConfigError, match="integer >= 2, got 2.9"):
        SRInferer(2.9)
    with pytest.raises(ConfigError, match="first argument is the scale"):
        SRInferer("sr-lite-gray-x2")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=">= 2, got 0"):
        SRInferer(0)
    assert SRInferer(2.0).scale == 2
