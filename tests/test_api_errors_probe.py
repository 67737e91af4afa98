"""Python API errors and edge cases: ``SRInvert`` on 2-D NIfTI and PNG, ``load_public_checkpoint``
on ``save_checkpoint``'s file and ``load_checkpoint`` on a ``.pth``, ``adapt_model`` with no or
unnormalized images, ``SRInferer`` with a NumPy batch, ``upscale_array`` with an architecture
name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_domains import create_model, load_checkpoint, load_public_checkpoint, save_checkpoint
from sr_domains.adapt import AdaptOptions, adapt_model
from sr_domains.array_api import upscale_array
from sr_domains.errors import CheckpointError, ConfigError


def _net(channels: int = 1) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("edsr", in_channels=channels, scale=2, n_blocks=1, n_feats=8).eval()


def test_srinvert_puts_a_2d_nifti_back_on_its_grid(tmp_path):
    nib = pytest.importorskip("nibabel")
    from monai.transforms import LoadImage, SaveImage

    from sr_domains.monai import SRInvert, SuperResolution

    affine = np.array([[0, -0.5, 0, 3], [0.6, 0, 0, 4], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    nib.save(nib.Nifti1Image(np.random.rand(24, 20).astype(np.float32), affine), tmp_path / "a.nii")
    x = LoadImage(ensure_channel_first=True)(tmp_path / "a.nii")
    y = SuperResolution(_net(), profile="identity")(x)
    z = SRInvert()(y)
    # the file's orientation, voxel sizes halved about the voxel centres (as for 3-D)
    expected = affine @ np.array(
        [[0.5, 0, 0, -0.25], [0, 0.5, 0, -0.25], [0, 0, 1, 0], [0, 0, 0, 1.0]]
    )
    assert tuple(z.shape) == (1, 48, 40)
    assert np.allclose(z.affine.numpy(), expected)
    SaveImage(output_dir=tmp_path, output_postfix="sr", separate_folder=False, resample=True)(y)
    saved = nib.load(tmp_path / "a_sr.nii.gz")
    assert np.allclose(saved.affine, expected) and np.allclose(saved.get_fdata(), z[0], atol=1e-4)


def test_srinvert_says_a_png_has_no_grid(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    from monai.transforms import LoadImage

    from sr_domains.monai import SRInvert

    pil.fromarray((np.random.rand(16, 12) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    x = LoadImage(ensure_channel_first=True)(tmp_path / "p.png")
    with pytest.raises(ConfigError, match="no original_affine.*PNG") as err:
        SRInvert()(x)
    assert "not loaded by LoadImage?" not in str(err.value)


def test_load_public_checkpoint_reads_a_save_checkpoint_file(tmp_path):
    net = _net(3)
    save_checkpoint(net, tmp_path / "w.safetensors")
    loaded = load_public_checkpoint(tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert loaded.card.arch == "edsr"
    with pytest.raises(CheckpointError, match="scale=4 given, but the file has 2"):
        load_public_checkpoint(tmp_path / "w.safetensors", scale=4)


def test_load_checkpoint_names_a_pytorch_pickle(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "w.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "w.pth")
    text = str(err.value)
    assert str(tmp_path / "w.pth") in text and "PyTorch pickle" in text
    assert "load_public_checkpoint" in text and "header too large" not in text


def test_adapt_model_refuses_no_images():
    with pytest.raises(ConfigError, match="at least one image"):
        adapt_model(_net(), [], AdaptOptions(steps=1))


def test_adapt_model_refuses_unnormalized_images():
    raw = (np.random.default_rng(0).random((1, 48, 48)) * 255).astype(np.uint8)
    with pytest.raises(ConfigError, match=r"intensity space.*normalize"):
        adapt_model(_net(), [raw], AdaptOptions(steps=1, psf=0.8, noise=0.0))


def test_srinferer_takes_a_numpy_batch():
    from sr_domains.monai import SRInferer

    batch = np.random.default_rng(0).random((2, 1, 16, 12), np.float32)
    out = SRInferer(profile="identity")(batch, _net())
    ref = SRInferer(profile="identity")(torch.from_numpy(batch), _net())
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 1, 32, 24)
    assert torch.equal(out, ref)
    with pytest.raises(TypeError, match="torch.Tensor, MetaTensor or numpy.ndarray"):
        SRInferer()(batch.tolist(), _net())


def test_upscale_array_with_an_architecture_name_says_how_to_pass_weights():
    with pytest.raises(ConfigError) as err:
        upscale_array(np.zeros((1, 16, 16), np.float32), "edsr")
    text = str(err.value)
    assert "--weights" not in text and "weights=" not in text
    assert "load_checkpoint(path)" in text and "load_public_checkpoint(path)" in text
