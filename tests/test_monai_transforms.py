"""SuperResolution(d) in real MONAI pipelines: LoadImaged -> ... -> SaveImaged on NIfTI files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from monai.data import MetaTensor  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirst,
    EnsureChannelFirstd,
    Invertd,
    LoadImage,
    LoadImaged,
    Orientationd,
    Rotated,
    SaveImaged,
    ScaleIntensityd,
    ScaleIntensityRanged,
    ScaleIntensityRangePercentilesd,
)

from sr_domains import upscale_array  # noqa: E402
from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.intensity import profile_from_any  # noqa: E402
from sr_domains.medical.geometry import corners, scale_factors, upscaled_affine  # noqa: E402
from sr_domains.monai import SuperResolution, SuperResolutiond  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti, oblique_affine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]


def _sr(model=None, **kw):
    return SuperResolutiond("img", model or interp_model(2), device="cpu", **kw)


def _run(src: Path, out_dir: Path, *middle, resample: bool = False, image_only: bool = True):
    pipeline = Compose(
        [
            LoadImaged("img", image_only=image_only),
            EnsureChannelFirstd("img"),
            *middle,
            SaveImaged(
                "img",
                output_dir=out_dir,
                output_postfix="sr",
                separate_folder=False,
                resample=resample,
                print_log=False,
            ),
        ]
    )
    data = pipeline({"img": str(src)})
    (saved,) = out_dir.glob("*.nii.gz")
    return data, nib.load(saved)


def _corner_err(a_in, shape_in, a_out, shape_out) -> float:
    """Corner sets compared order-free (an Orientation transform may permute them)."""
    c_in = np.sort(np.round(corners(a_in, shape_in), 3), axis=0)
    c_out = np.sort(np.round(corners(a_out, shape_out), 3), axis=0)
    return float(np.abs(c_in - c_out).max())


@pytest.mark.parametrize("image_only", [True, False])
def test_compose_load_scale_sr_save_keeps_the_field_of_view(tmp_path, image_only):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(20, 16, 8), spacing=(1.0, 1.25, 3.0))
    scale = ScaleIntensityRangePercentilesd("img", 0.5, 99.5, 0.0, 1.0)
    data, out = _run(src, tmp_path / "out", scale, _sr(), image_only=image_only)
    inp = nib.load(src)
    assert out.shape == (40, 32, 8)
    assert np.abs(corners(inp.affine, inp.shape) - corners(out.affine, out.shape)).max() < 1e-4
    np.testing.assert_allclose(out.header.get_zooms(), (0.5, 0.625, 3.0), rtol=1e-6)
    np.testing.assert_allclose(out.affine, upscaled_affine(inp.affine, (0, 1), 2), atol=1e-5)
    mt = data["img"]
    assert isinstance(mt, MetaTensor)
    assert tuple(mt.meta["spatial_shape"]) == (40, 32, 8)
    np.testing.assert_allclose(np.asarray(mt.meta["pixdim"])[1:4], (0.5, 0.625, 3.0), rtol=1e-6)


def test_real_nifti_through_the_pipeline(tmp_path, shared_data):
    src = shared_data / "nifti" / "aniso_vox.nii.gz"  # int16, 4x4x5 mm, oblique
    scale = ScaleIntensityRangePercentilesd("img", 0.5, 99.5, 0.0, 1.0)
    _, out = _run(src, tmp_path / "out", scale, _sr(tiny_model(1, 2)))
    inp = nib.load(src)
    assert out.shape == (116, 116, 24)
    assert np.abs(corners(inp.affine, inp.shape) - corners(out.affine, out.shape)).max() < 1e-3
    np.testing.assert_allclose(out.header.get_zooms(), (2.0, 2.0, 5.0), rtol=1e-5)


def test_saved_pixels_sit_at_their_world_positions(tmp_path):
    """Values linear in world position must stay that function of the *saved* affine's world
    positions: pixels and geometry of the written file agree (interior voxels)."""
    g = np.array([3.0, -2.0, 1.5])
    src = make_nifti(
        tmp_path / "in.nii.gz",
        shape=(10, 12, 6),
        affine=oblique_affine((1.1, 0.8, 2.5)),
        dtype="float32",
        values=lambda w: 500.0 + w @ g,
    )
    scale = ScaleIntensityRanged("img", a_min=0.0, a_max=1000.0, b_min=0.0, b_max=1.0)
    _, out = _run(src, tmp_path / "out", scale, _sr(interp_model(3), scale=3))
    data = out.get_fdata()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij"), -1)
    world = idx @ out.affine[:3, :3].T + out.affine[:3, 3]
    inner = (slice(3, -3), slice(3, -3), slice(None))
    np.testing.assert_allclose(data[inner], ((500.0 + world @ g) / 1000.0)[inner], atol=2e-6)


@pytest.mark.parametrize("orientation", ["RAS", "PSL"])
def test_orientation_then_save_with_and_without_resample(tmp_path, orientation):
    """resample=False writes the current (reoriented) HR grid; resample=True writes the file's
    own orientation at the new resolution (original_affine/spatial_shape were updated), with
    the same values (no interpolation: only axis permutations/flips)."""
    src = make_nifti(tmp_path / "in.nii.gz", shape=(12, 10, 6), spacing=(1.0, 1.25, 3.0))
    inp = nib.load(src)
    outs = {}
    for resample in (False, True):
        mid = [Orientationd("img", orientation), _sr()]
        _, out = _run(src, tmp_path / f"r{resample}", *mid, resample=resample)
        assert _corner_err(inp.affine, inp.shape, out.affine, out.shape) < 1e-3
        outs[resample] = out
    back = outs[True]
    np.testing.assert_allclose(back.affine, upscaled_affine(inp.affine, (0, 1), 2), atol=1e-4)
    assert back.shape == (24, 20, 6)
    # same voxels, reordered: compare the sorted values
    a = np.sort(outs[False].get_fdata().ravel())
    b = np.sort(back.get_fdata().ravel())
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("axes", [(0, 1), (0, 2), (1, 2)])
def test_values_equal_slice_wise_upscale_array(axes):
    aff = oblique_affine((1.0, 1.25, 3.0))
    x = MetaTensor(torch.rand(1, 9, 8, 7), affine=torch.as_tensor(aff))
    model = tiny_model(1, 2)
    y = SuperResolution(model, scale=2, axes=axes, device="cpu")(x)
    f = scale_factors(axes, 2)
    assert tuple(y.shape[1:]) == tuple(int(n * s) for n, s in zip(x.shape[1:], f))
    np.testing.assert_allclose(y.affine.numpy(), upscaled_affine(aff, axes, 2), atol=1e-12)
    (k,) = {0, 1, 2} - set(axes)
    for j in (0, x.shape[1 + k] - 1):
        plane = np.take(x.numpy()[0], j, axis=k)
        ref = upscale_array(plane, model, profile="identity", device="cpu")
        np.testing.assert_allclose(np.take(y.numpy()[0], j, axis=k), ref, atol=1e-6)


def test_default_axes_are_the_finest_two():
    x = MetaTensor(torch.rand(1, 4, 9, 8), affine=torch.diag(torch.tensor([3.0, 0.5, 0.5, 1.0])))
    y = SuperResolution(interp_model(2), device="cpu")(x)
    assert tuple(y.shape) == (1, 4, 18, 16)


def test_2d_image_and_multichannel_modes():
    aff = torch.diag(torch.tensor([0.7, 0.9, 1.0, 1.0], dtype=torch.float64))
    x = MetaTensor(torch.rand(2, 12, 10), affine=aff)
    per_channel = SuperResolution(tiny_model(1, 2), device="cpu")(x)
    joint_model = tiny_model(2, 2, seed=3)
    joint = SuperResolution(joint_model, channels=2, device="cpu")(x)
    assert tuple(per_channel.shape) == tuple(joint.shape) == (2, 24, 20)
    ref = upscale_array(x.numpy(), tiny_model(1, 2), profile="identity", device="cpu")
    np.testing.assert_allclose(per_channel.numpy(), ref, atol=1e-6)
    ref = upscale_array(x.numpy(), joint_model, profile="identity", device="cpu")
    np.testing.assert_allclose(joint.numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(joint.affine[:2, :2].numpy(), np.diag([0.35, 0.45]))
    np.testing.assert_allclose(joint.affine[:2, 3].numpy(), [-0.175, -0.225])
    # a joint model on a 3-D image: plane by plane with all channels
    vol = MetaTensor(torch.rand(2, 6, 5, 3))
    out = SuperResolution(joint_model, channels=2, device="cpu")(vol)
    ref = upscale_array(vol.numpy()[:, :, :, 1], joint_model, profile="identity", device="cpu")
    np.testing.assert_allclose(out.numpy()[:, :, :, 1], ref, atol=1e-6)
    # a 1-channel model on a 2-channel volume, with a per-channel intensity profile
    vol2 = MetaTensor(torch.stack([torch.rand(6, 5, 3), 50 + 100 * torch.rand(6, 5, 3)]))
    out = SuperResolution(tiny_model(1, 2), profile="percentile:0,100", device="cpu")(vol2)
    for c in range(2):  # fitted once on the channel's whole volume (min..max here)
        prof = profile_from_any("percentile:0,100", vol2.numpy()[c][None])
        ref = upscale_array(vol2.numpy()[c, :, :, 2], tiny_model(1, 2), profile=prof, device="cpu")
        np.testing.assert_allclose(out.numpy()[c, :, :, 2], ref, rtol=1e-5, atol=1e-4)
    with pytest.raises(ConfigError, match="3 bands"):
        SuperResolution(tiny_model(3, 2), channels=3, device="cpu")(x)


def test_through_plane_profile_and_nan():
    aff = oblique_affine((1.0, 1.0, 2.0))
    x = MetaTensor(100.0 + 900.0 * torch.rand(1, 6, 6, 4), affine=torch.as_tensor(aff))
    x[0, 2, 3, 1] = float("nan")
    sr = SuperResolution(interp_model(2), through_plane=True, profile="mr", device="cpu")
    y = sr(x)
    assert tuple(y.shape) == (1, 12, 12, 8)
    np.testing.assert_allclose(y.affine.numpy(), upscaled_affine(aff, (0, 1), 2, True), atol=1e-12)
    v = y.numpy()
    assert np.isnan(v[0, 4:6, 6:8, 2:4]).all() and np.isfinite(v).sum() == v.size - 8
    assert np.nanmin(v) >= 100.0 and np.nanmax(v) <= 1000.0  # profile inverted: input units


def test_inverse_and_invertd_restore_the_input_grid():
    aff = oblique_affine((1.0, 1.25, 3.0))
    x = MetaTensor(torch.rand(1, 8, 6, 4), affine=torch.as_tensor(aff))
    x.meta.update(original_affine=aff.copy(), spatial_shape=np.array([8, 6, 4]))
    t = Compose([SuperResolutiond("img", interp_model(2, "nearest"), device="cpu")])
    d = t({"img": x})
    assert [op["class"] for op in d["img"].applied_operations] == ["SuperResolution"]
    inv = Invertd("img", transform=t, orig_keys="img")(d)["img"]
    assert tuple(inv.shape) == (1, 8, 6, 4) and not inv.applied_operations
    np.testing.assert_allclose(inv.affine.numpy(), aff, atol=1e-12)
    np.testing.assert_allclose(inv.numpy(), x.numpy(), atol=1e-6)  # nearest: block mean = input
    assert tuple(inv.meta["spatial_shape"]) == (8, 6, 4)


def test_dicom_folder_loaded_by_monai_goes_through_and_back(tmp_path):
    """MONAI's PydicomReader stores ``spatial_shape`` as a tuple (its NIfTI reader: an array):
    the transform, its inverse and SRInvert read either."""
    pytest.importorskip("pydicom")
    from sr_domains.monai import SRInvert
    from sr_domains.testing.medical import make_dicom_series

    make_dicom_series(tmp_path / "s", n_slices=4, rows=12, cols=10)
    x = EnsureChannelFirst()(LoadImage(image_only=True, reader="PydicomReader")(tmp_path / "s"))
    assert isinstance(x.meta["spatial_shape"], tuple)
    sr = SuperResolution(interp_model(2, "nearest"), device="cpu")
    y = sr(x)
    want = (1, 2 * x.shape[1], 2 * x.shape[2], 4)  # (columns, rows, slices) in MONAI's order
    assert tuple(y.shape) == want
    assert y.meta["spatial_shape"] == (2 * x.shape[1], 2 * x.shape[2], 4)  # still a tuple
    back = sr.inverse(y)
    assert back.meta["spatial_shape"] == x.meta["spatial_shape"]
    np.testing.assert_allclose(back.affine.numpy(), x.affine.numpy(), atol=1e-12)
    np.testing.assert_allclose(back.numpy(), x.numpy(), atol=1e-4)
    assert tuple(SRInvert()(y).shape) == want


def test_input_is_not_modified_and_plain_tensors_work():
    pix = np.array([1.0, 1.0, 1.25, 3.0, 1, 1, 1, 1], np.float32)
    x = MetaTensor(torch.rand(1, 6, 5, 3), affine=torch.diag(torch.tensor([1.0, 1.25, 3.0, 1.0])))
    x.meta["pixdim"] = pix.copy()
    before = x.clone()
    sr = SuperResolution(interp_model(2), device="cpu")
    y = sr(x)
    np.testing.assert_array_equal(x.meta["pixdim"], pix)
    assert torch.equal(x.as_tensor(), before.as_tensor()) and torch.equal(x.affine, before.affine)
    np.testing.assert_allclose(y.meta["pixdim"][1:4], (0.5, 0.625, 3.0))
    plain = sr(torch.rand(1, 6, 5))
    assert tuple(plain.shape) == (1, 12, 10)


def test_bad_inputs_are_clear(caplog):
    sr = SuperResolution(interp_model(2), device="cpu")
    with pytest.raises(ConfigError, match="channel-first"):
        sr(torch.rand(1, 1, 4, 4, 4))
    with pytest.raises(ConfigError, match="both axes"):
        SuperResolution(interp_model(2), axes=(0, 2), device="cpu")(torch.rand(1, 4, 4))
    with pytest.raises(ConfigError, match="x3"):
        SuperResolution(interp_model(2), scale=3)
    sr(MetaTensor(1000.0 * torch.rand(1, 6, 6)))  # raw intensities with profile identity
    assert "expect roughly 0..1" in caplog.text
    # a label map put through by mistake, complex MR data (the imaginary part was dropped
    # with only a numpy warning), an empty crop
    with pytest.raises(ConfigError, match="boolean"):
        sr(MetaTensor(torch.rand(1, 6, 6) > 0.5))
    with pytest.raises(ConfigError, match="complex"):
        sr(MetaTensor(torch.randn(1, 6, 6, dtype=torch.complex64)))
    with pytest.raises(ConfigError, match="empty"):
        sr(torch.zeros(1, 0, 6))


def test_import_without_monai_names_the_extra():
    code = (
        "import sys; sys.modules['monai'] = None\n"
        "import sr_domains.monai as m\n"
        "from sr_domains.errors import MissingDependencyError\n"
        "try:\n    m.SuperResolutiond\nexcept MissingDependencyError as e:\n    print(e)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert 'pip install "sr-domains[monai]"' in res.stdout


def test_after_a_rotation_resample_true_writes_the_current_grid(tmp_path):
    """No axis permutation links the rotated grid to the file's: original_affine becomes the
    current HR grid, so SaveImage(resample=True) writes it without resampling."""
    src = make_nifti(tmp_path / "in.nii.gz", shape=(12, 10, 6), oblique=False)
    mid = [Rotated("img", angle=(0.0, 0.0, 0.4), keep_size=True), _sr()]
    data, out = _run(src, tmp_path / "out", *mid, resample=True)
    assert out.shape == (24, 20, 6)
    np.testing.assert_allclose(out.affine, data["img"].affine.numpy(), atol=1e-5)
    np.testing.assert_allclose(data["img"].meta["original_affine"], out.affine, atol=1e-5)


@pytest.mark.parametrize("resample", [False, True])
def test_png_pipeline_writes_the_upscaled_size(tmp_path, resample):
    pil = pytest.importorskip("PIL.Image")
    pil.fromarray((np.random.rand(20, 30) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    Compose(
        [
            LoadImaged("img"),
            EnsureChannelFirstd("img"),
            ScaleIntensityd("img"),
            _sr(),
            SaveImaged(
                "img",
                output_dir=tmp_path / "out",
                output_ext=".png",
                output_dtype=np.uint8,
                scale=255,
                separate_folder=False,
                resample=resample,
                print_log=False,
            ),
        ]
    )({"img": str(tmp_path / "a.png")})
    (saved,) = (tmp_path / "out").glob("*.png")
    assert pil.open(saved).size == (60, 40)


def test_colour_model_on_a_gray_volume_repeats_and_averages():
    """A 3-channel model on 1-channel MR: each plane repeated on its channels, outputs averaged
    (as the NIfTI/DICOM functions do)."""
    from sr_domains.testing.medical import interp_model

    vol = MetaTensor(torch.rand(1, 8, 6, 4))
    out = SuperResolution(interp_model(2, "nearest", in_channels=3), device="cpu", axes=(0, 1))(vol)
    assert tuple(out.shape) == (1, 16, 12, 4)
    np.testing.assert_allclose(out.numpy()[0, ::2, ::2], vol.numpy()[0], atol=1e-5)
