"""Channel layout guard and numpy output of the MONAI transforms / inferer, on real NIfTI files.

A volume loaded without ``EnsureChannelFirst`` used to be read as a 2-D image with many
channels: upscaled on its last two axes while the affine grew on its first two. It is refused
now; genuine 2-D images and slices go through as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from monai.data import MetaTensor, list_data_collate, set_track_meta  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirst,
    LoadImage,
    LoadImaged,
    ScaleIntensity,
    ScaleIntensityd,
    SqueezeDim,
    Zoom,
)

from sr_domains.errors import GeometryError  # noqa: E402
from sr_domains.image import upscale_matrix  # noqa: E402
from sr_domains.medical.geometry import upscaled_affine  # noqa: E402
from sr_domains.monai import SRInferer, SuperResolution, SuperResolutiond  # noqa: E402
from sr_domains.testing.medical import interp_model, oblique_affine  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]

AFF = oblique_affine((1.0, 1.25, 3.0))


def _nifti(path: Path, shape: tuple[int, ...], affine: np.ndarray) -> str:
    data = np.random.default_rng(0).integers(0, 1000, shape).astype(np.int16)
    nib.save(nib.Nifti1Image(data, affine), path)
    return str(path)


def _sr(**kw) -> SuperResolution:
    return SuperResolution(interp_model(2), device="cpu", **kw)


def _kw() -> dict:
    return {"model": interp_model(2), "device": "cpu"}


def test_volume_without_channel_axis_is_refused(tmp_path):
    """The probe: ScaleIntensity()(LoadImage()(vol)) gave (16, 24, 10) with the affine grown on
    (x, y); the data grew on (y, z)."""
    x = ScaleIntensity()(LoadImage()(_nifti(tmp_path / "v.nii.gz", (16, 12, 5), AFF)))
    assert tuple(x.shape) == (16, 12, 5)
    with pytest.raises(GeometryError, match=r"EnsureChannelFirst.*original_channel_dim'\] = 0"):
        _sr()(x)
    d = Compose([LoadImaged("img"), ScaleIntensityd("img")])({"img": str(tmp_path / "v.nii.gz")})
    with pytest.raises(GeometryError, match="spatial_shape \\(16, 12, 5\\)"):
        SuperResolutiond("img", **_kw())(d)


def test_meta_dict_mode_volume_without_channel_axis_is_refused(tmp_path):
    """set_track_meta(False): plain tensor plus "<key>_meta_dict", same evidence, same error."""
    src = _nifti(tmp_path / "v.nii.gz", (16, 12, 5), AFF)
    set_track_meta(False)
    try:
        d = LoadImaged("img", image_only=False)({"img": src})
        assert not isinstance(d["img"], MetaTensor) and "img_meta_dict" in d
        with pytest.raises(GeometryError, match="EnsureChannelFirst"):
            SuperResolutiond("img", **_kw())(d)
    finally:
        set_track_meta(True)


def test_single_first_axis_slice_without_channel_axis_is_refused(tmp_path):
    """A (1, Y, Z) file (one sagittal slice) without EnsureChannelFirst looked like one 2-D
    channel, but the affine grew on x (the 4 mm axis) instead of z."""
    aff = np.diag([4.0, 0.5, 0.5, 1.0])
    x = LoadImage()(_nifti(tmp_path / "s.nii.gz", (1, 16, 12), aff))
    with pytest.raises(GeometryError, match="EnsureChannelFirst"):
        _sr()(x)
    # EnsureChannelFirst + SqueezeDim (3x3 affine of axes y, z): the same shape, accepted
    sq = SqueezeDim(1)(EnsureChannelFirst()(x))
    assert tuple(sq.shape) == tuple(int(n) for n in sq.meta["spatial_shape"])
    y = _sr()(sq)
    assert tuple(y.shape) == (1, 32, 24)
    want = sq.affine.numpy() @ upscale_matrix((2.0, 2.0))
    np.testing.assert_allclose(y.affine.numpy(), want, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(y.affine.numpy()[:2, :2], axis=0), [0.25, 0.25])


def test_channel_last_four_d_nifti_is_refused(tmp_path):
    """A 4-D NIfTI (X, Y, Z, 2) read by LoadImage is channel-last (original_channel_dim -1):
    it ran as 20 channels of (18, 6, 2) images with the affine grown on the wrong axes."""
    src = _nifti(tmp_path / "v4.nii.gz", (20, 18, 6, 2), AFF)
    x = LoadImage()(src)
    assert tuple(x.shape) == (20, 18, 6, 2)
    with pytest.raises(GeometryError, match=r"channel-last.*EnsureChannelFirst"):
        _sr()(x / 1000.0)
    d = LoadImaged("img")({"img": src})
    with pytest.raises(GeometryError, match="channel-last"):
        SuperResolutiond("img", **_kw())(d)
    y = _sr()(EnsureChannelFirst()(x) / 1000.0)  # the fix the message names
    assert tuple(y.shape) == (2, 40, 36, 6)
    np.testing.assert_allclose(y.affine.numpy(), upscaled_affine(AFF, (0, 1), 2), atol=1e-9)


def test_inferer_refuses_an_unbatched_volume_and_a_batch_without_channels(tmp_path):
    """SRInferer takes batches: an EnsureChannelFirst'ed (1, X, Y, Z) volume without its batch
    axis gave (1, 16, 24, 10) with the affine grown on (x, y); a collated batch of volumes
    without channel axes did the same per item."""
    src = _nifti(tmp_path / "v.nii.gz", (16, 12, 5), AFF)
    vol = EnsureChannelFirst()(ScaleIntensity()(LoadImage()(src)))
    assert not vol.is_batch and tuple(vol.affine.shape) == (4, 4)
    with pytest.raises(GeometryError, match=r"batch item 0 .*image\[None\]"):
        SRInferer()(vol, interp_model(2))
    raw = [ScaleIntensity()(LoadImage()(src)) for _ in range(2)]
    batch = list_data_collate([{"img": r} for r in raw])["img"]
    assert batch.is_batch and tuple(batch.shape) == (2, 16, 12, 5)
    with pytest.raises(GeometryError, match="EnsureChannelFirst"):
        SRInferer()(batch, interp_model(2))
    # with the batch axis: a batch of one 3-D image, upscaled in plane, affine fixed
    out = SRInferer()(vol[None], interp_model(2))
    assert tuple(out.shape) == (1, 1, 32, 24, 5)
    np.testing.assert_allclose(
        np.asarray(out.affine).reshape(4, 4), upscaled_affine(AFF, (0, 1), 2), atol=1e-9
    )


def test_two_d_images_and_slices_are_unaffected(tmp_path):
    """2-D files, slices of a volume (4x4 affine kept) and squeezed slices (3x3 affine)."""
    flat = EnsureChannelFirst()(LoadImage()(_nifti(tmp_path / "f.nii.gz", (16, 12), AFF)))
    vol = EnsureChannelFirst()(LoadImage()(_nifti(tmp_path / "v.nii.gz", (16, 12, 5), AFF)))
    one = EnsureChannelFirst()(LoadImage()(_nifti(tmp_path / "o.nii.gz", (16, 12, 1), AFF)))
    four = np.asarray(vol.affine)
    cases = {
        "2-D file": (flat, np.asarray(flat.affine) @ upscale_matrix((2.0, 2.0, 1.0))),
        "slice": (vol[..., 2], upscaled_affine(four, (0, 1), 2)),
        "singleton slice": (one[..., 0], upscaled_affine(four, (0, 1), 2)),
        "squeezed": (SqueezeDim(3)(one), four[[0, 1, 3]][:, [0, 1, 3]] @ upscale_matrix((2, 2))),
    }
    for name, (x, want) in cases.items():
        assert tuple(x.shape) == (1, 16, 12), name
        y = _sr()(x)
        assert tuple(y.shape) == (1, 32, 24), name
        np.testing.assert_allclose(y.affine.numpy(), want, atol=1e-9, err_msg=name)
        inf = SRInferer()(x[None], interp_model(2))
        np.testing.assert_allclose(np.asarray(inf.affine).reshape(want.shape), want, atol=1e-9)


def test_channels_stated_by_hand_let_a_volume_shaped_array_through(tmp_path):
    """The way out the message names: original_channel_dim = 0 says the first axis holds
    channels (a stack of 16 channels of (12, 5) images here)."""
    x = LoadImage()(_nifti(tmp_path / "v.nii.gz", (16, 12, 5), AFF))
    x.meta["original_channel_dim"] = 0
    assert tuple(_sr()(x / 1000.0).shape) == (16, 24, 10)


@pytest.mark.parametrize("shape", [(1, 8, 6), (2, 8, 6, 4)])
def test_numpy_input_gives_a_metatensor_while_meta_is_tracked(shape):
    """As MONAI's Zoom: an array gets the identity affine, grown by the voxel-centre rule; the
    result is invertible. With tracking off: a plain tensor, as before."""
    a = np.random.default_rng(1).random(shape).astype(np.float32)
    sr = _sr()
    for given in (a, torch.as_tensor(a)):
        y = sr(given)
        assert isinstance(y, MetaTensor)
        want = upscaled_affine(np.eye(4), (0, 1), 2)
        np.testing.assert_allclose(y.affine.numpy(), want, atol=1e-12)
        back = sr.inverse(y)
        assert isinstance(back, MetaTensor) and tuple(back.shape) == shape
        np.testing.assert_allclose(back.affine.numpy(), np.eye(4), atol=1e-12)
    d = SuperResolutiond("img", **_kw())({"img": a})
    assert isinstance(d["img"], MetaTensor) and d["img"].applied_operations
    if len(shape) == 3:  # MONAI's Zoom puts the same grid at the same place
        z = Zoom(2.0, keep_size=False)(a)
        assert isinstance(z, MetaTensor) and z.shape == y.shape
        np.testing.assert_allclose(y.affine.numpy(), z.affine.numpy(), atol=1e-12)
    set_track_meta(False)
    try:
        assert type(sr(a)) is torch.Tensor
        assert type(SuperResolutiond("img", **_kw())({"img": a})["img"]) is torch.Tensor
    finally:
        set_track_meta(True)


def test_make_low_resolution_refuses_a_volume_without_channel_axis(tmp_path):
    """MakeLowResolution read (X, Y, Z) as (C, H, W) too: it shrank (y, z) while the affine
    shrank on (x, y)."""
    from sr_domains.monai import MakeLowResolution

    path = _nifti(tmp_path / "v.nii.gz", (16, 12, 6), AFF)
    with pytest.raises(GeometryError, match="EnsureChannelFirst"):
        MakeLowResolution(scale=2)(LoadImage()(path))
    lr = MakeLowResolution(scale=2)(EnsureChannelFirst()(LoadImage()(path)))
    assert tuple(lr.shape) == (1, 8, 6, 6)  # (in-plane: the first two spatial axes)


@pytest.mark.parametrize("shape", [(1, 8, 8, 4), (1, 8, 8)])
def test_an_affine_with_nan_is_refused_with_a_geometry_error(shape):
    """It failed with numpy's "cannot convert float NaN to integer", naming nothing."""
    affine = torch.eye(4, dtype=torch.float64)
    affine[0, 0] = float("nan")
    with pytest.raises(GeometryError, match="NaN or inf"):
        SuperResolution(interp_model(2))(MetaTensor(torch.rand(*shape), affine=affine))
