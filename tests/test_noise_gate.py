"""The noise gate (sr_domains.noise_gate): with no model named, a noisy input gets the default
blended towards its -robust variant, a clean one the default as it is; recorded in provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sr_domains.adapt.estimate import estimate_noise, estimate_white_noise
from sr_domains.inference import Upscaler
from sr_domains.noise_gate import (
    HIGH,
    LOW,
    choose_for_noise,
    chosen_by_default,
    gate_weight,
    input_noise,
    noise_variant,
)
from sr_domains.pretrained import load_pretrained
from sr_domains.testing import tiny_model


def _scene(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth normalized image (roughly 0..1) with an edge: little noise of its own."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.4 + 0.3 * np.sin(5 * xx) * np.cos(3 * yy) + 0.2 * (xx > 0.5)
    return img[None].astype(np.float32)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return (img + sigma * np.random.default_rng(seed).standard_normal(img.shape)).astype(np.float32)


def test_gate_weight_and_the_noise_estimate():
    assert gate_weight(0.0) == 0 and gate_weight(LOW) == 0
    assert gate_weight(HIGH) == 1 and gate_weight(1.0) == 1
    assert 0 < gate_weight((LOW + HIGH) / 2) < 1
    clean, noisy = _scene(), _noisy(_scene(), 0.03)
    sigma = input_noise([noisy])
    assert sigma is not None and 0.02 < sigma < 0.04  # it measures the noise added
    assert input_noise([clean]) < LOW
    assert input_noise([clean[:, :8, :8]]) is None  # too small to tell
    with_nan = noisy.copy()
    with_nan[:, :20] = np.nan  # padding is ignored, not read as flat (noise-free) image
    assert input_noise([with_nan]) == pytest.approx(sigma, rel=0.25)


@pytest.mark.parametrize("sigma", [0.005, 0.01, 0.02])
def test_white_noise_estimate_reads_white_noise_exactly(sigma):
    img = _noisy(_scene(128), sigma, seed=3)
    assert estimate_white_noise(img) == pytest.approx(sigma, rel=0.1)
    assert estimate_white_noise(img) == pytest.approx(estimate_noise(img), rel=0.1)


def test_fine_texture_is_not_read_as_noise():
    """Grass (a real photo, scikit-image) has detail near the pixel pitch that the finest-scale
    estimate reads as noise; the gate's estimate does not, so the default stays the default,
    while the same noise on a photo of ordinary structure is found."""
    data = pytest.importorskip("skimage.data")
    grass = (data.grass()[:192, :192].astype(np.float32) / 255)[None]
    camera = (data.camera()[:192, :192].astype(np.float32) / 255)[None]
    assert estimate_noise(grass) > 2 * HIGH  # the single-scale reading: "very noisy"
    assert input_noise([grass]) < LOW
    up = Upscaler(load_pretrained("sr-lite-gray-x2"))
    same, choice = choose_for_noise(up, [grass])
    assert same is up and choice is not None and choice.weight == 0
    assert input_noise([_noisy(camera, 0.02)]) == pytest.approx(0.02, rel=0.15)


def test_only_shipped_defaults_with_a_variant_are_gated():
    assert noise_variant(load_pretrained("sr-lite-gray-x2")) == "sr-lite-gray-x2-robust"
    assert noise_variant(load_pretrained("sr-lite-gray-x4")) == "sr-lite-gray-x4-robust"
    for name in ("sr-lite-gray-x2-robust", "sr-lite-gray-x2-bicubic", "sr-lite-rgb-x2"):
        assert noise_variant(load_pretrained(name)) is None
    assert noise_variant(tiny_model(1, 2)) is None
    assert chosen_by_default(None, None)
    assert not chosen_by_default("sr-lite-gray-x2", None)
    assert not chosen_by_default(None, "w.safetensors")
    net = load_pretrained("sr-lite-gray-x2")
    assert not chosen_by_default(net, None)
    net.chosen_by_default = True  # what a Dask worker sets for an unnamed default
    assert chosen_by_default(net, None)


def test_clean_input_keeps_the_default_and_noisy_input_gets_the_variant():
    up = Upscaler(load_pretrained("sr-lite-gray-x2"), device="cpu")
    same, clean = choose_for_noise(up, [_scene()])
    assert same is up and clean is not None and clean.weight == 0
    gated, noisy = choose_for_noise(up, [_noisy(_scene(), 0.03)])
    assert noisy is not None and noisy.weight == 1 and noisy.variant == "sr-lite-gray-x2-robust"
    robust = load_pretrained("sr-lite-gray-x2-robust").state_dict()
    for k, v in gated.model.state_dict().items():
        torch.testing.assert_close(v, robust[k], rtol=0, atol=1e-7)
    assert gated.model.card.name == "sr-lite-gray-x2+1.00xsr-lite-gray-x2-robust"
    assert up.model.card.name == "sr-lite-gray-x2"  # the engine given is left alone
    half, mid = choose_for_noise(up, [_noisy(_scene(), (LOW + HIGH) / 2, seed=3)])
    assert mid is not None and 0 < mid.weight < 1
    assert half.model.card.name == f"sr-lite-gray-x2+{mid.weight:.2f}xsr-lite-gray-x2-robust"
    k = next(k for k, v in robust.items() if v.is_floating_point() and v.numel() > 100)
    own = up.model.state_dict()[k]
    torch.testing.assert_close(half.model.state_dict()[k], own + mid.weight * (robust[k] - own))
    assert json.loads(json.dumps(mid.to_dict()))["variant"] == "sr-lite-gray-x2-robust"


@pytest.fixture
def noisy_geotiff(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "noisy.tif", width=64, height=64, dtype="float32")
    with rasterio.open(src, "r+") as ds:
        ds.write(_noisy(_scene(), 0.05) * 1000.0)
    return src


def test_geotiff_default_is_gated_and_recorded_named_model_is_not(noisy_geotiff, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff

    auto = upscale_geotiff(noisy_geotiff, tmp_path / "auto.tif", scale=2)
    robust = upscale_geotiff(
        noisy_geotiff, tmp_path / "robust.tif", model="sr-lite-gray-x2-robust", scale=2
    )
    named = upscale_geotiff(noisy_geotiff, tmp_path / "named.tif", model="sr-lite-gray-x2")
    with rasterio.open(auto) as a, rasterio.open(robust) as r, rasterio.open(named) as n:
        tags = a.tags()
        record = json.loads(tags["SR_DOMAINS_NOISE"])
        assert record["weight"] == 1 and record["variant"] == "sr-lite-gray-x2-robust"
        assert tags["SR_DOMAINS_MODEL"] == "sr-lite-gray-x2+1.00xsr-lite-gray-x2-robust"
        assert tags["SR_DOMAINS_WEIGHTS_HASH_OF"] == "state_dict"
        np.testing.assert_allclose(a.read(), r.read(), rtol=0, atol=1e-3)  # = the variant
        assert "SR_DOMAINS_NOISE" not in n.tags()
        assert np.abs(n.read() - a.read()).max() > 1.0  # the named default differs
        assert a.crs == n.crs and a.transform == n.transform  # geometry untouched


def test_nifti_default_records_the_choice(tmp_path):
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti

    vol = np.stack([_noisy(_scene(), 0.04, seed=k)[0] * 800 + 100 for k in range(5)], axis=-1)
    src = tmp_path / "noisy.nii.gz"
    nib.save(nib.Nifti1Image(vol.astype(np.float32), np.diag([0.9, 0.9, 3.0, 1.0])), src)
    out = nib.load(upscale_nifti(src, tmp_path / "o.nii.gz"))
    prov = json.loads(next(e for e in out.header.extensions if e.get_code() == 6).get_content())
    assert prov["noise"]["weight"] > 0 and prov["noise"]["variant"].endswith("-robust")
    assert prov["weights"].startswith("sr-lite-gray-x2+")
    named = nib.load(upscale_nifti(src, tmp_path / "n.nii.gz", model="sr-lite-gray-x2"))
    prov_n = json.loads(next(e for e in named.header.extensions if e.get_code() == 6).get_content())
    assert "noise" not in prov_n and prov_n["weights"] == "sr-lite-gray-x2"
    np.testing.assert_allclose(out.affine, named.affine)


def test_dask_worker_marks_an_unnamed_default():
    from sr_domains.distributed import Task, worker_model
    from sr_domains.options import UpscaleOptions

    task = Task(src="in.nii.gz", dst="out.nii.gz", domain="nifti")
    assert worker_model(task, UpscaleOptions(scale=2)).chosen_by_default is True
    named = worker_model(task, UpscaleOptions(scale=2, model="sr-lite-gray-x2"))
    assert named.chosen_by_default is False


@pytest.mark.parametrize("size", [29, 48])
def test_small_images_read_white_noise_on_every_grid_offset(size):
    """Under 64 x 64 both scales are read on every offset of the block grids: a 29 x 29 px
    slice (the battery's x2 LR of the oblique NIfTI) reads its noise, a clean one none, and
    fine texture (grass, which the single-scale estimate read as noise) none either."""
    data = pytest.importorskip("skimage.data")
    grass = (data.grass()[:size, :size].astype(np.float32) / 255)[None]
    assert estimate_noise(grass) > HIGH and estimate_white_noise(grass) < LOW
    noisy = [_noisy(_scene(size), 0.02, seed=k) for k in range(5)]
    reads = [estimate_white_noise(x) for x in noisy]
    assert min(reads) > LOW and np.median(reads) == pytest.approx(0.02, rel=0.2)
    assert estimate_white_noise(_scene(size)) < LOW
    for x in noisy:
        x[:, :, : size // 4] = np.nan  # padding is ignored on every grid offset
    reads = [estimate_white_noise(x) for x in noisy]
    assert min(reads) > LOW and np.median(reads) == pytest.approx(0.02, rel=0.2)


def test_small_textured_input_keeps_the_default_and_small_noisy_one_gets_the_variant():
    """The single-scale estimate, used under 64 px until 2026-12-05, read fine texture as
    noise (the battery's 44 x 40 drone bands at x4: the robust variant for clean inputs), and
    then the gate stopped deciding under 64 px, which left small noisy MR slices without the
    robust blend. The split read on every grid offset tells the two apart."""
    data = pytest.importorskip("skimage.data")
    grass = (data.grass()[:44, :40].astype(np.float32) / 255)[None]
    camera = (data.camera()[100:132, 100:132].astype(np.float32) / 255)[None]
    assert estimate_noise(grass) > HIGH  # the single-scale reading: "noisy"
    assert estimate_white_noise(grass) < LOW
    assert estimate_white_noise(grass[:, :29, :29]) < LOW
    assert estimate_white_noise(_noisy(camera, 0.02)) == pytest.approx(0.02, rel=0.15)
    up = Upscaler(load_pretrained("sr-lite-gray-x4"))
    same, choice = choose_for_noise(up, [grass])
    assert same is up and choice is not None and choice.weight == 0
    gated, noisy = choose_for_noise(up, [_noisy(_scene(29), 0.02, seed=5)])
    assert noisy is not None and noisy.weight == 1 and gated is not up
    assert input_noise([_noisy(_scene(29), 0.02)[:, :16, :20]]) is None  # under MIN_SIDE


def test_small_nifti_slices_are_gated(tmp_path):
    """A volume of 30 x 36 px slices (nibabel's anatomical.nii is 33 x 41) is gated too."""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti

    vol = np.stack(
        [_noisy(_scene(36), 0.03, seed=k)[0, :30] * 800 + 100 for k in range(5)], axis=-1
    )
    src = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(vol.astype(np.float32), np.diag([2.0, 2.0, 3.0, 1.0])), src)
    out = nib.load(upscale_nifti(src, tmp_path / "o.nii.gz"))
    prov = json.loads(next(e for e in out.header.extensions if e.get_code() == 6).get_content())
    assert prov["noise"]["weight"] > 0.5 and prov["noise"]["variant"] == "sr-lite-gray-x2-robust"
