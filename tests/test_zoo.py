"""Public checkpoints through spandrel: checkpoints written by spandrel's own architecture
classes load through our API, give spandrel's outputs, and keep geometry in every domain."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _zoo_models import MODELS, compact, image, save  # skips the module without spandrel

from sr_domains import inference
from sr_domains.checkpoint import (
    ModelCard,
    load_checkpoint,
    save_checkpoint,
)
from sr_domains.errors import CheckpointError
from sr_domains.public_weights import load_public_checkpoint
from sr_domains.weights_report import inspect_checkpoint
from sr_domains.zoo import SpandrelSR, import_spandrel

spandrel = import_spandrel()
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")  # spandrel's code


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models run faster with one intra-op thread on small shared machines."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


@pytest.mark.parametrize("name", list(MODELS))
def test_loads_through_our_api_and_equals_spandrel(name, tmp_path):
    _, scale, family = MODELS[name]
    path = save(name, tmp_path, wrap="params_ema" if name == "compact" else None)
    model = load_public_checkpoint(path)
    assert isinstance(model, SpandrelSR)
    assert (model.arch, model.scale, model.in_channels, model.out_channels) == (
        f"spandrel:{family}",
        scale,
        3,
        3,
    )
    assert model.card.name == name
    assert model.card.arch == model.arch
    assert model.card.bands == ["red", "green", "blue"]
    ref = spandrel.ModelLoader().load_from_file(path).eval()  # spandrel's own file reader
    x = image(24, 20)  # meets every size requirement: no padding
    with torch.no_grad():  # clones: some spandrel networks scale their input in place (RCAN)
        ours = model(x)
        assert torch.equal(x, image(24, 20))  # ours never modifies the caller's tensor
        torch.testing.assert_close(ours, ref.model(x.clone()), rtol=1e-5, atol=1e-5)  # raw
        torch.testing.assert_close(ours.clamp(0, 1), ref(x.clone()), rtol=1e-5, atol=1e-5)
        small = image(13, 11)  # below SwinIR/OmniSR's minimum, not a multiple of 4 (x1)
        got = model(small)
        torch.testing.assert_close(got.clamp(0, 1), ref(small.clone()), rtol=1e-5, atol=1e-5)
    assert got.shape == (1, 3, 13 * scale, 11 * scale)


@pytest.mark.parametrize("name", ["rrdb_x1", "rrdb_x8", "esrgan_plus", "rcan_unshuffle"])
def test_variants_our_loaders_refuse_go_to_spandrel(name, tmp_path):
    """Our exact RRDB/RCAN loaders come first; the variants they do not cover load through
    spandrel, and the report says why."""
    report = inspect_checkpoint(save(name, tmp_path))
    assert report.loader.startswith("spandrel ")
    assert report.arch == f"spandrel:{MODELS[name][2]}"
    if name != "rcan_unshuffle":  # RCAN-unshuffle has no layout of ours at all
        assert any("loader declined" in n for n in report.notes), report.notes


def test_exact_loaders_still_come_first(tmp_path):
    """A BasicSR RRDBNet x4 (both loaders read it) is ours: exact receptive radius."""
    from sr_domains import create_model

    ours = create_model("rrdb", scale=4, num_block=1, num_feat=8, num_grow_ch=4)
    sd = {k: v for k, v in ours.state_dict().items() if not k.startswith("norm_mean")}
    torch.save({"params_ema": sd}, tmp_path / "RealESRGAN_tiny.pth")
    report = inspect_checkpoint(tmp_path / "RealESRGAN_tiny.pth")
    assert (report.loader, report.arch, report.family) == ("sr_domains", "rrdb", "BasicSR RRDBNet")
    assert report.receptive_radius == ours.receptive_radius()


@pytest.mark.parametrize("name", list(MODELS))
def test_geotiff_keeps_geometry_and_names_the_architecture(name, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import check_upscaled, make_geotiff

    _, scale, family = MODELS[name]
    path = save(name, tmp_path)
    src = make_geotiff(tmp_path / "in.tif", width=36, height=28, count=3, nodata=0)
    dst = tmp_path / "out.tif"
    upscale_geotiff(src, dst, scale=scale, weights=path)  # x1 restoration and x8 included
    check_upscaled(src, dst, scale)
    with rasterio.open(dst) as ds:
        tags = ds.tags()
        assert tags["SR_DOMAINS_MODEL_ARCH"] == f"spandrel:{family}"
        assert tags["SR_DOMAINS_MODEL"] == path.name
        valid = ds.read_masks(1) > 0
        assert valid.any() and np.ptp(ds.read(1)[valid]) > 0


@pytest.mark.parametrize("name", list(MODELS))
def test_nifti_keeps_geometry_and_names_the_architecture(name, tmp_path):
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti
    from sr_domains.medical.geometry import corners
    from sr_domains.testing.medical import make_nifti

    _, scale, family = MODELS[name]
    path = save(name, tmp_path)
    src = make_nifti(tmp_path / "in.nii.gz", shape=(18, 16, 2), spacing=(1.0, 1.25, 3.0))
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", scale=scale, weights=path)
    a, b = nib.load(src), nib.load(dst)
    assert b.shape == (18 * scale, 16 * scale, 2)
    err = np.abs(corners(a.affine, a.shape) - corners(b.affine, b.shape)).max()
    assert err < 1e-4, err  # float32 header; the field of view is unchanged
    np.testing.assert_allclose(
        b.header.get_zooms(), np.array([1.0 / scale, 1.25 / scale, 3.0]), rtol=1e-6
    )
    prov = json.loads(b.header.extensions[-1].get_content())
    assert (prov["model"], prov["weights"]) == (f"spandrel:{family}", name)
    assert np.isfinite(b.get_fdata()).all()


def test_dicom_series_keeps_geometry(tmp_path):
    pytest.importorskip("pydicom")
    from sr_domains.image import scale_dicom_plane
    from sr_domains.medical import load_dicom_series, upscale_dicom_series
    from sr_domains.testing.medical import make_dicom_series

    path = save("compact", tmp_path)
    make_dicom_series(tmp_path / "in", n_slices=2, rows=18, cols=16, pixel_spacing=(0.9, 0.65))
    upscale_dicom_series(tmp_path / "in", tmp_path / "out", scale=4, weights=path)
    src, dst = load_dicom_series(tmp_path / "in"), load_dicom_series(tmp_path / "out")
    assert dst.shape == (2, 72, 64)
    np.testing.assert_allclose(dst.pixel_spacing, np.array([0.9, 0.65]) / 4, rtol=1e-12)
    for a, b in zip(src.slices, dst.slices):
        ipp, _ = scale_dicom_plane(a.position, a.iop, a.pixel_spacing, 4)
        np.testing.assert_allclose(b.position, ipp, atol=1e-6)
        assert "spandrel:Compact" in b.ds.DerivationDescription


def test_monai_transform_keeps_the_affine(tmp_path):
    pytest.importorskip("monai")
    from monai.data import MetaTensor

    from sr_domains.medical.geometry import upscaled_affine
    from sr_domains.monai import SuperResolutiond
    from sr_domains.testing.medical import oblique_affine

    torch.manual_seed(0)  # a grayscale Compact (1 channel, like the MR data)
    torch.save(compact(4, channels=1).state_dict(), path := tmp_path / "compact_gray.pth")
    affine = oblique_affine((1.0, 1.25, 3.0))
    img = MetaTensor(image(20, 18, 1)[0, :, :, :, None].repeat(1, 1, 1, 2), affine=affine)
    out = SuperResolutiond("img", scale=4, weights=path, profile="identity", device="cpu")(
        {"img": img}
    )["img"]
    assert tuple(out.shape) == (1, 80, 72, 2)
    np.testing.assert_allclose(
        np.asarray(out.affine), upscaled_affine(affine, (0, 1), 4), rtol=1e-6, atol=1e-6
    )


def test_card_and_save_round_trip(tmp_path):
    """A public model can be given a card (bands, profile) and saved as ours; loading re-detects
    the family with spandrel and is bit-exact."""
    model = load_public_checkpoint(save("span", tmp_path))
    card = ModelCard(name="span-rgb", profile={"recipe": "percentile:0.5,99.5"})
    out = save_checkpoint(model, tmp_path / "span.safetensors", card=card)
    loaded, got = load_checkpoint(out)
    assert (loaded.arch, got.arch, got.profile["recipe"]) == (
        "spandrel:SPAN",
        "spandrel:SPAN",
        "percentile:0.5,99.5",
    )
    x = image(20, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_explicit_family_scale_and_options_are_checked(tmp_path):
    path = save("compact", tmp_path)
    assert load_public_checkpoint(path, arch="spandrel:Compact").scale == 4
    with pytest.raises(CheckpointError, match="asked for 'SwinIR' but spandrel detected Compact"):
        load_public_checkpoint(path, arch="spandrel:SwinIR")
    with pytest.raises(CheckpointError, match="scale=2 given, but the file has 4"):
        load_public_checkpoint(path, scale=2)
    with pytest.raises(CheckpointError, match="apply to sr_domains' own architectures"):
        load_public_checkpoint(path, arch="spandrel", pixel_range=255.0)
    with pytest.raises(CheckpointError, match=r"compact\.pth.*unrecognised checkpoint layout"):
        load_public_checkpoint(path, arch="edsr")  # ours only: not an EDSR layout


def test_channel_changing_models_are_refused(tmp_path):
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    gray_to_rgb = Compact(num_in_ch=1, num_out_ch=3, num_feat=8, num_conv=1, upscale=2)
    torch.save(gray_to_rgb.state_dict(), tmp_path / "colorize.pth")
    with pytest.raises(CheckpointError, match=r"colorize\.pth.*maps 1 channel\(s\) to 3"):
        load_public_checkpoint(tmp_path / "colorize.pth")


def test_extra_arches_stay_out_by_default():
    registry_ids = {str(a.architecture.id) for a in spandrel.MAIN_REGISTRY}
    assert not registry_ids & {"SRFormer", "CodeFormer", "MAT", "DDColor", "Restormer"}
