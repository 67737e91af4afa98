"""Real MONAI batches: DataLoader collation, decollate, Invertd vs SRInvertd, SaveImaged(resample),
progress -- on NIfTI files written here (oblique affines) and the real sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from monai.data import (  # noqa: E402
    DataLoader,
    Dataset,
    MetaTensor,
    decollate_batch,
    list_data_collate,
    pad_list_data_collate,
)
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirstd,
    Invertd,
    LoadImaged,
    Orientationd,
    SaveImaged,
    ScaleIntensityRanged,
    Spacingd,
)

from sr_domains.image import upscale_matrix  # noqa: E402
from sr_domains.medical.geometry import corners, upscaled_affine, voxel_sizes  # noqa: E402
from sr_domains.monai import SRInferer, SRInvertd, SuperResolution, SuperResolutiond  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti, oblique_affine  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]
G = np.array([3.0, -2.0, 1.5])


def linear(w: np.ndarray) -> np.ndarray:
    """Values linear in world position: bilinear SR reproduces them away from the edges."""
    return 500.0 + w @ G


def _world(affine: np.ndarray, shape) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return idx @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def _misfit(x: MetaTensor, margin: int = 3) -> float:
    """Largest interior deviation of ``x`` from ``linear`` at the world positions its own
    affine gives its voxels (0 when pixels and geometry agree)."""
    want = linear(_world(x.affine.numpy(), x.shape[1:]))
    inner = (slice(margin, -margin), slice(margin, -margin), slice(None))
    return float(np.abs(x.numpy()[0] - want)[inner].max())


def _load(*extra) -> Compose:
    return Compose([LoadImaged("image"), EnsureChannelFirstd("image"), *extra])


def _loader(files, transform, **kw) -> DataLoader:
    data = [{"image": str(f)} for f in files]
    return DataLoader(Dataset(data, transform=transform), num_workers=0, **kw)


def test_srinferer_on_a_collated_batch_of_two_volumes(tmp_path):
    """DataLoader(batch_size=2) -> SRInferer -> decollate_batch -> SaveImaged: every volume
    keeps its own geometry (the batch used to crash MetaTensor's constructor)."""
    affs = [oblique_affine((1.0, 1.25, 3.0)), oblique_affine((0.9, 1.1, 2.5))]
    affs[1][:3, 3] += (12.0, -7.0, 30.0)
    files = [
        make_nifti(tmp_path / f"v{i}.nii.gz", shape=(14, 12, 5), affine=a, dtype="float32")
        for i, a in enumerate(affs)
    ]
    scale = ScaleIntensityRanged("image", a_min=0.0, a_max=1000.0, b_min=0.0, b_max=1.0)
    batch = next(iter(_loader(files, _load(scale), batch_size=2)))
    assert batch["image"].is_batch and tuple(batch["image"].shape) == (2, 1, 14, 12, 5)
    model = tiny_model(1, 2)
    batch["pred"] = SRInferer()(batch["image"], model)
    items = decollate_batch(batch)
    assert len(items) == 2
    save = SaveImaged("pred", output_dir=tmp_path / "out", separate_folder=False, print_log=False)
    for item, f in zip(items, files):
        pred = item["pred"]
        assert isinstance(pred, MetaTensor) and tuple(pred.shape) == (1, 28, 24, 5)
        file_aff = nib.load(f).affine
        np.testing.assert_allclose(
            pred.affine.numpy(), upscaled_affine(file_aff, (0, 1), 2), atol=1e-5
        )
        pix = voxel_sizes(file_aff) / (2, 2, 1)
        np.testing.assert_allclose(np.asarray(pred.meta["pixdim"])[1:4], pix, rtol=1e-5)
        assert tuple(int(n) for n in pred.meta["spatial_shape"]) == (28, 24, 5)
        # the same volume alone through the transform gives the same pixels
        alone = SuperResolution(model, device="cpu")(item["image"])
        np.testing.assert_allclose(pred.numpy(), alone.numpy(), atol=1e-6)
        save(item)
        out = nib.load(tmp_path / "out" / f.name.replace(".nii.gz", "_trans.nii.gz"))
        src = nib.load(f)
        assert np.abs(corners(out.affine, out.shape) - corners(src.affine, src.shape)).max() < 1e-4


def test_different_sizes_pad_list_collate_then_srinvertd(tmp_path, shared_data):
    """Volumes of different sizes (the real sample and a crop of it) in one batch via
    pad_list_data_collate: after SRInferer and SRInvertd each prediction is its own file's
    grid at twice the in-plane resolution, padding gone, pixels equal to the volume alone."""
    real = nib.load(shared_data / "nifti" / "aniso_vox.nii.gz")
    crop = real.slicer[5:41, 3:33, 2:20]  # nibabel moves the affine with the crop
    nib.save(crop, tmp_path / "crop.nii.gz")
    files = [shared_data / "nifti" / "aniso_vox.nii.gz", tmp_path / "crop.nii.gz"]
    scale = ScaleIntensityRanged("image", a_min=0.0, a_max=2000.0, b_min=0.0, b_max=1.0)
    loader = _loader(files, _load(scale), batch_size=2, collate_fn=pad_list_data_collate)
    batch = next(iter(loader))
    assert tuple(batch["image"].shape[2:]) == real.shape  # the crop was padded
    model = interp_model(2, "nearest")  # no neighbourhood: padding cannot leak into pixels
    batch["pred"] = SRInferer()(batch["image"], model)
    items = [SRInvertd("pred")(item) for item in decollate_batch(batch)]
    for item, f in zip(items, files):
        src = nib.load(f)
        pred = item["pred"]
        assert tuple(pred.shape[1:]) == (src.shape[0] * 2, src.shape[1] * 2, src.shape[2])
        np.testing.assert_allclose(
            pred.affine.numpy(), upscaled_affine(src.affine, (0, 1), 2), atol=1e-4
        )
        lone = MetaTensor(
            torch.as_tensor(src.get_fdata(dtype=np.float32)[None] / 2000.0),
            affine=torch.as_tensor(src.affine),
        )
        ref = SuperResolution(model, axes=(0, 1), device="cpu")(lone)
        np.testing.assert_allclose(pred.numpy(), ref.numpy(), atol=1e-5)
        assert not pred.applied_operations


def _spaced_batch(tmp_path, spacing, pixdim, orientation="RAS"):
    src = make_nifti(
        tmp_path / "in.nii.gz",
        shape=(24, 20, 6),
        affine=oblique_affine(spacing),
        dtype="float32",
        values=linear,
    )
    spacing_t = [] if pixdim is None else [Spacingd("image", pixdim=pixdim)]
    pre = _load(Orientationd("image", orientation), *spacing_t)
    batch = next(iter(_loader([src], pre, batch_size=1)))
    batch["pred"] = SRInferer()(batch["image"], interp_model(2))
    return src, pre, decollate_batch(batch)[0]


def test_invertd_misreads_the_prediction_srinvertd_keeps_the_sr(tmp_path, caplog):
    """MONAI's Invertd gives the SR array the input's (LR) metadata and replays the inverse
    of Spacingd: right size, wrong content (what docs/monai.md says). SRInvertd lands on the
    file's grid at the SR voxel size with pixels at their world positions."""
    src, pre, item = _spaced_batch(tmp_path, (0.5, 0.5, 3.0), (1.0, 1.0, 3.0))
    file_aff = nib.load(src).affine
    assert _misfit(item["pred"]) < 1e-3  # the prediction itself is right
    inv = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(dict(item))
    spread = np.ptp(linear(_world(file_aff, (24, 20, 6))))
    assert tuple(inv["pred"].shape[1:]) == (24, 20, 6)
    assert _misfit(inv["pred"]) > 0.05 * spread  # misplaced content
    out = SRInvertd("pred")(dict(item))["pred"]
    # 0.5 mm file -> 1 mm (Spacingd) -> x2 = 0.5 mm: the file's own grid
    assert tuple(out.shape[1:]) == (24, 20, 6)
    np.testing.assert_allclose(out.affine.numpy(), file_aff, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.meta["pixdim"])[1:4], (0.5, 0.5, 3.0), rtol=1e-5)
    assert _misfit(out) < 1e-3 and not out.applied_operations


@pytest.mark.parametrize("orientation", ["RAS", "PSL"])
def test_srinvertd_after_orientation_only_is_an_exact_permutation(tmp_path, orientation):
    src, _, item = _spaced_batch(tmp_path, (1.0, 1.25, 3.0), None, orientation)
    out = SRInvertd("pred", mode="nearest")(dict(item))["pred"]
    file_aff = nib.load(src).affine
    np.testing.assert_allclose(out.affine.numpy(), upscaled_affine(file_aff, (0, 1), 2), atol=1e-4)
    assert tuple(out.shape[1:]) == (48, 40, 6)
    np.testing.assert_allclose(np.sort(out.numpy().ravel()), np.sort(item["pred"].numpy().ravel()))


@pytest.mark.parametrize(
    ("spacing", "pixdim", "want_shape", "want_zooms"),
    [
        ((0.5, 0.5, 3.0), (1.0, 1.0, 3.0), (24, 20, 6), (0.5, 0.5, 3.0)),  # the case
        ((0.75, 0.75, 3.0), (1.0, 1.0, 3.0), (36, 30, 6), (0.5, 0.5, 3.0)),  # 1.5x the file
        ((1.0, 1.0, 3.0), (1.0, 1.0, 4.0), (48, 40, 6), (0.5, 0.5, 3.0)),  # slice axis: file's
    ],
)
@pytest.mark.parametrize("how", ["inferer", "transform"])
def test_saveimaged_resample_true_after_spacingd(
    tmp_path, spacing, pixdim, want_shape, want_zooms, how
):
    """resample=True writes the file's orientation and field of view at the voxel size the
    model produced on the axes it upscaled (not the file's voxel size / 2)."""
    save = SaveImaged(
        "pred", output_dir=tmp_path / "o", separate_folder=False, resample=True, print_log=False
    )
    if how == "inferer":
        src, _, item = _spaced_batch(tmp_path, spacing, pixdim)
    else:
        src = make_nifti(tmp_path / "in.nii.gz", shape=(24, 20, 6), affine=oblique_affine(spacing))
        sr = SuperResolutiond("image", interp_model(2), device="cpu")
        item = _load(Orientationd("image", "RAS"), Spacingd("image", pixdim=pixdim), sr)(
            {"image": str(src)}
        )
        item["pred"] = item["image"]
    save(item)
    (saved,) = (tmp_path / "o").glob("*.nii.gz")
    out, inp = nib.load(saved), nib.load(src)
    assert out.shape == want_shape
    np.testing.assert_allclose(out.header.get_zooms(), want_zooms, rtol=1e-5)
    f = np.array(want_shape) / np.array(inp.shape)
    np.testing.assert_allclose(out.affine, inp.affine @ upscale_matrix(f), atol=1e-4)
    assert np.abs(corners(out.affine, out.shape) - corners(inp.affine, inp.shape)).max() < 1e-3


def test_progress_bars_count_slices(capfd):
    """progress=True: one bar over the slices of each volume (and of the batch)."""
    model = tiny_model(1, 2)
    vol = MetaTensor(torch.rand(1, 10, 8, 7), affine=torch.as_tensor(oblique_affine((1, 1, 3))))
    SuperResolution(model, device="cpu", progress=True)(vol)
    err = capfd.readouterr().err
    assert "SuperResolution" in err and "7/7" in err
    SuperResolution(model, device="cpu", progress=True, through_plane=True)(vol)
    assert "25/25" in capfd.readouterr().err  # 10 + 8 + 7 planes
    batch = list_data_collate([{"x": vol}, {"x": vol.clone()}])["x"]
    SRInferer(progress=True)(batch, model)
    err = capfd.readouterr().err
    assert "SRInferer" in err and "14/14" in err
    SuperResolution(model, device="cpu")(vol)
    SRInferer()(batch, model)
    assert "SuperResolution" not in capfd.readouterr().err  # silent by default


def test_a_batch_with_fewer_affines_than_images_is_refused():
    """3-D volumes folded into slices by hand keep one affine per volume: clear error."""
    vols = [MetaTensor(torch.rand(1, 6, 6, 3), affine=torch.as_tensor(oblique_affine((1, 1, 2))))]
    batch = list_data_collate([{"x": v} for v in vols * 2])["x"]  # (2, 1, 6, 6, 3)
    folded = batch.permute(0, 4, 1, 2, 3).reshape(6, 1, 6, 6)
    with pytest.raises(ValueError, match="fold=False"):
        SRInferer()(folded, interp_model(2))
    with pytest.raises(ValueError, match="expected a batch"):
        SRInferer()(batch[:0], interp_model(2))


def test_batched_meta_survives_the_round_trip_of_collation(tmp_path):
    """list_data_collate of MetaTensors built by hand with extra meta entries (a channel
    marker as LoadImage writes it) works too; the batch comes back per-item."""
    items = []
    for k in range(3):
        aff = oblique_affine((1.0, 1.0, 2.0))
        aff[:3, 3] += k
        x = MetaTensor(torch.rand(1, 8, 6, 3), affine=torch.as_tensor(aff))
        x.meta["original_channel_dim"] = float("nan")
        items.append({"img": x})
    batch = list_data_collate(items)["img"]
    out = SRInferer()(batch, interp_model(2))
    for k, one in enumerate(decollate_batch(out)):
        want = upscaled_affine(items[k]["img"].affine.numpy(), (0, 1), 2)
        np.testing.assert_allclose(one.affine.numpy(), want, atol=1e-9)
        assert tuple(one.shape) == (1, 16, 12, 3)
