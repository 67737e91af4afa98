"""MakeLowResolutiond: LR geometry consistent with HR, degradations aligned with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from monai.data import MetaTensor  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    DivisiblePadd,
    EnsureChannelFirstd,
    LoadImaged,
    SaveImaged,
)

from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.image import upscale_matrix  # noqa: E402
from sr_domains.medical.geometry import corners, scale_factors  # noqa: E402
from sr_domains.monai import (  # noqa: E402
    MakeLowResolution,
    MakeLowResolutiond,
    RandMakeLowResolution,
    RandMakeLowResolutiond,
    SRInvertd,
    SuperResolutiond,
)
from sr_domains.testing.medical import interp_model, make_nifti, oblique_affine  # noqa: E402

AFF = oblique_affine((1.0, 1.25, 3.0))
pytestmark = pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")


def _hr(shape=(12, 8, 5), values=None, affine=AFF) -> MetaTensor:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    v = values(world) if values is not None else np.random.rand(*shape)
    x = MetaTensor(torch.as_tensor(v[None], dtype=torch.float32), affine=torch.as_tensor(affine))
    x.meta.update(original_affine=affine.copy(), spatial_shape=np.array(shape))
    return x


def _world(affine: np.ndarray, shape) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


@pytest.mark.parametrize("axes", [(0, 1), (1, 2)])
@pytest.mark.parametrize("scale", [2, 3])
def test_lr_affine_is_the_inverse_voxel_centre_rule(axes, scale):
    shape = (12, 6, 6) if scale == 3 else (12, 8, 6)
    hr = _hr(shape)
    lr = MakeLowResolutiond("img", scale=scale, axes=axes)({"img": hr})["img_lr"]
    f = scale_factors(axes, scale)
    lr_shape = tuple(int(n / g) for n, g in zip(shape, f))
    assert tuple(lr.shape[1:]) == lr_shape
    lr_aff = lr.affine.numpy()
    np.testing.assert_allclose(lr_aff, AFF @ np.linalg.inv(upscale_matrix(f)), atol=1e-12)
    np.testing.assert_allclose(corners(lr_aff, lr_shape), corners(AFF, shape), atol=1e-9)
    # each LR voxel centre is the mean of the centres of its HR block
    hr_world = _world(AFF, shape)
    block = hr_world.reshape(*[v for n, g in zip(shape, f) for v in (int(n / g), int(g))], 3).mean(
        axis=(1, 3, 5)
    )
    np.testing.assert_allclose(_world(lr_aff, lr_shape), block, atol=1e-9)
    assert tuple(lr.meta["spatial_shape"]) == lr_shape
    np.testing.assert_allclose(lr.meta["original_affine"], lr_aff, atol=1e-12)


@pytest.mark.parametrize("degrade", ["area", "gaussian", "kspace"])
def test_lr_pixels_sit_where_the_lr_affine_says(degrade):
    """HR values = f(world); the LR values must be f at the LR affine's world positions (a
    linear f for area/gaussian -- symmetric kernels keep it, interior for the blur -- and a
    band-limited periodic f for k-space truncation)."""
    shape = (16, 12, 3)
    aff = np.diag([0.8, 1.1, 3.0, 1.0])
    if degrade == "kspace":
        n0, n1 = shape[0] * 0.8, shape[1] * 1.1

        def f(w):
            return np.cos(2 * np.pi * 2 * w[..., 0] / n0 + 0.3) + np.sin(2 * np.pi * w[..., 1] / n1)

    else:

        def f(w):
            return 2.0 + 0.3 * w[..., 0] - 0.2 * w[..., 1]

    hr = _hr(shape, f, aff)
    lr = MakeLowResolution(2, axes=(0, 1), degrade=degrade)(hr)
    want = f(_world(lr.affine.numpy(), lr.shape[1:]))
    inner = (slice(2, -2), slice(2, -2)) if degrade == "gaussian" else (slice(None),) * 2
    np.testing.assert_allclose(lr.numpy()[0][inner], want[inner], atol=1e-5)


def test_super_resolution_of_the_lr_restores_the_hr_grid(tmp_path):
    src = make_nifti(tmp_path / "hr.nii.gz", shape=(16, 12, 6), spacing=(1.0, 1.25, 3.0))
    pipe = Compose(
        [
            LoadImaged("hr"),
            EnsureChannelFirstd("hr"),
            MakeLowResolutiond("hr", lr_keys="lr", degrade="kspace"),
            SuperResolutiond("lr", interp_model(2), device="cpu", profile="mr"),
            SaveImaged("lr", output_dir=tmp_path / "out", separate_folder=False, print_log=False),
        ]
    )
    d = pipe({"hr": str(src)})
    hr, restored = d["hr"], d["lr"]
    assert restored.shape == hr.shape
    np.testing.assert_allclose(restored.affine.numpy(), hr.affine.numpy(), atol=1e-9)
    np.testing.assert_allclose(restored.meta["original_affine"], hr.meta["original_affine"])
    assert tuple(restored.meta["spatial_shape"]) == tuple(hr.meta["spatial_shape"])
    (saved,) = (tmp_path / "out").glob("*.nii.gz")
    np.testing.assert_allclose(nib.load(saved).affine, nib.load(src).affine, atol=1e-4)
    rel = np.abs(restored.numpy() - hr.numpy()).mean() / np.abs(hr.numpy()).mean()
    assert rel < 0.2  # smooth phantom: interpolation of its LR version is close


def test_saved_lr_file_covers_the_same_field_of_view(tmp_path):
    src = make_nifti(tmp_path / "hr.nii.gz", shape=(16, 12, 6))
    pipe = Compose(
        [
            LoadImaged("hr"),
            EnsureChannelFirstd("hr"),
            MakeLowResolutiond("hr", lr_keys="lr", scale=4, axes=(0, 1)),
            SaveImaged("lr", output_dir=tmp_path / "o", separate_folder=False, print_log=False),
        ]
    )
    pipe({"hr": str(src)})
    (saved,) = (tmp_path / "o").glob("*.nii.gz")
    lr, hr = nib.load(saved), nib.load(src)
    assert lr.shape == (4, 3, 6)
    assert np.abs(corners(lr.affine, lr.shape) - corners(hr.affine, hr.shape)).max() < 1e-4
    np.testing.assert_allclose(lr.header.get_zooms(), np.array(hr.header.get_zooms()) * [4, 4, 1])


@pytest.mark.parametrize("noise", ["gaussian", "rician"])
def test_noise_is_deterministic_under_monai_seeding(noise):
    hr = _hr((8, 8, 2))
    t = RandMakeLowResolutiond("img", noise=noise, noise_std=(0.05, 0.1), axes=(0, 1))
    a = Compose([t]).set_random_state(seed=7)({"img": hr})["img_lr"]
    b = Compose([t]).set_random_state(seed=7)({"img": hr})["img_lr"]
    c = Compose([t]).set_random_state(seed=8)({"img": hr})["img_lr"]
    clean = MakeLowResolution(axes=(0, 1))(hr)
    assert torch.equal(a, b) and not torch.equal(a, c)
    residual = (a - clean).numpy()
    assert 0.02 < residual.std() < 0.2
    if noise == "rician":
        assert float(a.min()) >= 0


def test_custom_degrade_and_errors():
    hr = _hr((8, 8, 2))
    lr = MakeLowResolution(degrade=lambda x, s: x[..., ::s, ::s], axes=(0, 1))(hr)
    np.testing.assert_array_equal(lr.numpy(), hr.numpy()[:, ::2, ::2])
    with pytest.raises(ConfigError, match="degrade returned"):
        MakeLowResolution(degrade=lambda x, s: x, axes=(0, 1))(hr)
    with pytest.raises(ConfigError, match="multiple of 2"):
        MakeLowResolution(axes=(0, 1))(_hr((9, 8, 2)))
    with pytest.raises(ConfigError, match="sigma"):
        MakeLowResolution(degrade="area", sigma=1.0)
    with pytest.raises(ConfigError, match="noise"):
        RandMakeLowResolution(noise="poisson")
    with pytest.raises(ConfigError, match="noise_std needs"):
        RandMakeLowResolution(noise_std=0.1)
    with pytest.raises(ConfigError, match="RandMakeLowResolution"):
        MakeLowResolution(noise="gaussian", noise_std=0.1)  # the deterministic one says where
    with pytest.raises(ConfigError, match="RandMakeLowResolution"):
        MakeLowResolutiond("img", sigma=(0.5, 1.0))
    with pytest.raises(ConfigError, match="lr_keys"):
        MakeLowResolutiond(["a", "b"], lr_keys="c")
    x2d = MetaTensor(torch.rand(1, 8, 6))
    assert tuple(MakeLowResolution(3 - 1)(x2d).shape) == (1, 4, 3)


def test_odd_sized_file_made_lr_then_sr_comes_back_to_its_own_grid(tmp_path):
    """13 voxels -> DivisiblePadd 14 -> LR 7 -> SR 14 -> SRInvertd: the file's 13 again. The
    LR image's as-loaded grid is the file's field of view in whole LR voxels (6.5 -> 7)."""
    src = make_nifti(tmp_path / "hr.nii.gz", shape=(13, 10, 4), spacing=(1.0, 1.25, 3.0))
    file_aff = nib.load(src).affine
    d = Compose(
        [
            LoadImaged("hr"),
            EnsureChannelFirstd("hr"),
            DivisiblePadd("hr", k=(2, 2, 1)),
            MakeLowResolutiond("hr", lr_keys="lr", axes=(0, 1)),
        ]
    )({"hr": str(src)})
    lr = d["lr"]
    assert tuple(lr.shape[1:]) == (7, 5, 4)
    assert tuple(int(n) for n in lr.meta["spatial_shape"]) == (7, 5, 4)
    lr_orig = np.asarray(lr.meta["original_affine"])
    np.testing.assert_allclose(
        corners(lr_orig, (7, 5, 4)), corners(file_aff, (13, 10, 4)), atol=1e-6
    )
    sr = SuperResolutiond("lr", interp_model(2, "nearest"), axes=(0, 1), device="cpu")(d)
    back = SRInvertd("lr", mode="nearest")(sr)["lr"]
    assert tuple(back.shape[1:]) == (13, 10, 4)
    np.testing.assert_allclose(back.affine.numpy(), file_aff, atol=1e-6)
