"""Per-input adaptation (``--adapt``): blind degradation estimates, the fine-tuning itself, and
that adapted outputs keep the geometry and metadata of non-adapted ones in every domain."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _scenes import fractal

from sr_domains.adapt import (
    AdaptOptions,
    PatchSampler,
    adapt_model,
    estimate_degradation,
    estimate_noise,
)
from sr_domains.errors import ConfigError
from sr_domains.models import create_model
from sr_domains.psf import gaussian_area_downsample

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def shapes(n: int, seed: int) -> np.ndarray:
    """Discs of constant value on smooth shading (piecewise smooth, like anatomy or fields),
    anti-aliased by 2x supersampling."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: 2 * n, : 2 * n]
    img = np.full((2 * n, 2 * n), 0.2, np.float32)
    for _ in range(40):
        cy, cx = rng.uniform(0, 2 * n, 2)
        r = rng.uniform(n / 20, n / 4)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1)
    img += 0.1 * np.sin(xx / n * 3) * np.cos(yy / n * 2.5)
    return gaussian_area_downsample(img[None], 2, 0.0)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 0.9])
def test_psf_estimate_is_exact_on_piecewise_smooth_scenes(sigma):
    est = estimate_degradation(gaussian_area_downsample(shapes(256, 1), 2, sigma))
    assert est.psf_sigma == pytest.approx(sigma, abs=0.1)
    assert est.noise < 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_psf_estimate_follows_the_true_width(seed):
    hr = fractal(384, seed, np.float32)[None]
    est = [
        estimate_degradation(gaussian_area_downsample(hr, 2, s)).psf_sigma for s in (0.3, 0.6, 0.9)
    ]
    assert est[0] < est[1] < est[2]
    for true, got in zip((0.3, 0.6, 0.9), est, strict=True):
        assert abs(got - true) < 0.15, (true, got)


def test_noise_estimate_ignores_blur_and_finds_added_noise():
    lr = gaussian_area_downsample(fractal(384, 2, np.float32)[None], 2, 0.8)
    clean = estimate_noise(lr)
    noisy = lr + 0.02 * np.random.default_rng(0).standard_normal(lr.shape).astype(np.float32)
    assert clean < 0.01  # a 1/f scene keeps some fine detail; real images read ~1e-3
    assert estimate_noise(noisy) == pytest.approx(0.02, rel=0.2)
    with pytest.raises(ConfigError, match="16x16"):
        estimate_noise(np.zeros((1, 8, 8), np.float32))


def test_sampler_takes_multiband_stacks():
    img = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    s = PatchSampler([img], (16, 16))
    batch = s.sample(5, torch.Generator().manual_seed(0))
    assert batch.shape == (5, 3, 16, 16)
    with pytest.raises(ConfigError, match="bands"):
        PatchSampler([img, img[:, :1]], (16, 16))


def _blurred_input(seed: int = 0) -> np.ndarray:
    return gaussian_area_downsample(fractal(256, seed, np.float32)[None], 2, 0.9)


def test_adaptation_lowers_its_loss_improves_self_validation_and_repeats():
    torch.manual_seed(0)
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opts = AdaptOptions(steps=30, lr=5e-4, batch_size=8, patch=48, keep_if_worse=True)
    lr = _blurred_input()
    net, report = adapt_model(model, [lr], opts, device="cpu")
    assert net is not model
    for k, v in model.state_dict().items():  # the original is left untouched
        torch.testing.assert_close(v, before[k])
    assert report.fit["steps"] == 30
    assert report.fit["loss_end"] < report.fit["loss_start"]
    assert report.psnr_after > report.psnr_before
    assert report.estimate is not None and 0.6 < report.estimate.psf_sigma < 1.2
    assert "gaussian sigma=" in report.degradation
    d = report.to_dict()
    assert d["kept"] == "adapted" and d["self_validation_psnr"]["after"] > 0
    net2, _ = adapt_model(model, [lr], opts, device="cpu")
    for k, v in net.state_dict().items():  # same seed, same steps: the same model
        torch.testing.assert_close(v, net2.state_dict()[k])


def test_sharp_clean_inputs_are_left_to_the_model():
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    sharp = gaussian_area_downsample(shapes(256, 3), 2, 0.0)
    net, report = adapt_model(model, [sharp], AdaptOptions(steps=5), device="cpu")
    assert net is model and report.kept == "original" and "nothing to adapt" in report.reason
    assert "not adapted" in report.describe()
    # an explicit degradation always adapts
    net, report = adapt_model(model, [sharp], AdaptOptions(steps=2, psf=0.5, noise=0.0))
    assert report.estimate is None and report.fit["steps"] == 2


def test_constant_or_empty_inputs_are_not_fitted_to():
    """A constant raster, or one without a valid pixel (all NaN), ran the whole fine-tune and
    kept the original only because self-validation could not improve on it."""
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    for image in (np.full((64, 64), 0.4, np.float32), np.full((64, 64), np.nan, np.float32)):
        net, report = adapt_model(model, [image], AdaptOptions(steps=50, psf=0.5, noise=0.0))
        assert net is model and report.kept == "original" and report.fit == {}
        assert "constant (or has no valid pixel)" in report.reason


def test_band_mismatch_and_bad_options_are_clear_errors():
    rgb = create_model("edsr-lite-ca", in_channels=3, scale=2)
    with pytest.raises(ConfigError, match="bands match"):
        adapt_model(rgb, [np.zeros((2, 64, 64), np.float32)], AdaptOptions(steps=1))
    gray = create_model("edsr-lite-ca", in_channels=1, scale=2)
    with pytest.raises(ConfigError, match="too small"):
        adapt_model(gray, [np.zeros((1, 6, 6), np.float32)], AdaptOptions(steps=1, psf=0.5))
    for bad in ({"psf": "gauss"}, {"psf": 9}, {"noise": "lots"}, {"steps": 0}):
        with pytest.raises(ConfigError):
            AdaptOptions(**bad)
    assert AdaptOptions(psf="0.7").psf == 0.7


# -- domains ------------------------------------------------------------------------------------

rasterio = pytest.importorskip("rasterio")


def _fast(**kw) -> AdaptOptions:
    return AdaptOptions(steps=3, psf=0.8, noise=0.0, batch_size=4, patch=32, **kw)


def test_geotiff_adapted_output_keeps_geometry_and_tags(tmp_path):
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "in.tif", width=80, height=64, count=3, nodata=0)
    a = upscale_geotiff(src, tmp_path / "plain.tif", scale=2)
    b = upscale_geotiff(src, tmp_path / "adapted.tif", scale=2, adapt=_fast())
    with rasterio.open(a) as pa, rasterio.open(b) as pb:
        assert (pa.width, pa.height, pa.count, pa.dtypes) == (
            pb.width,
            pb.height,
            pb.count,
            pb.dtypes,
        )
        assert pa.crs == pb.crs and pa.transform == pb.transform and pa.nodata == pb.nodata
        ta, tb = pa.tags(), pb.tags()
        assert pa.read_masks(1).tolist() == pb.read_masks(1).tolist()
        assert pa.read().tolist() != pb.read().tolist()  # the model did change
    report = json.loads(tb.pop("SR_DOMAINS_ADAPT"))
    assert report["kept"] == "adapted" and report["fit"]["steps"] == 3
    assert tb.pop("SR_DOMAINS_MODEL").endswith("+adapted")
    assert tb.pop("SR_DOMAINS_WEIGHTS_HASH_OF") == "state_dict"
    # the adapted output names the weights file it started from (a resume compares it)
    assert tb.pop("SR_DOMAINS_BASE_WEIGHTS_SHA256") == ta["SR_DOMAINS_WEIGHTS_SHA256"]
    for key in ("SR_DOMAINS_MODEL", "SR_DOMAINS_WEIGHTS_HASH_OF", "SR_DOMAINS_WEIGHTS_SHA256"):
        ta.pop(key)
    tb.pop("SR_DOMAINS_WEIGHTS_SHA256")
    ta.pop("SR_DOMAINS_VALUES"), tb.pop("SR_DOMAINS_VALUES")
    # the adapt settings are part of the recipe a resume compares
    assert json.loads(ta.pop("SR_DOMAINS_RECIPE")) == {}
    assert json.loads(tb.pop("SR_DOMAINS_RECIPE"))["adapt_steps"] == 3
    assert ta == tb


def test_nifti_and_dicom_adapted_outputs_keep_geometry(tmp_path):
    nib = pytest.importorskip("nibabel")
    pydicom = pytest.importorskip("pydicom")
    from sr_domains.medical import upscale_dicom_series, upscale_nifti
    from sr_domains.testing.medical import make_dicom_series, make_nifti

    src = make_nifti(tmp_path / "t1.nii.gz", shape=(48, 40, 6), spacing=(1.0, 1.0, 3.0))
    a = nib.load(upscale_nifti(src, tmp_path / "plain.nii.gz"))
    b = nib.load(upscale_nifti(src, tmp_path / "adapted.nii.gz", adapt=_fast()))
    assert a.shape == b.shape and np.allclose(a.affine, b.affine)
    assert a.header.get_data_dtype() == b.header.get_data_dtype()
    ext = json.loads(b.header.extensions[0].get_content())
    assert ext["adapt"]["fit"]["steps"] == 3 and "adapt" not in json.loads(
        a.header.extensions[0].get_content()
    )

    series = make_dicom_series(tmp_path / "mr", n_slices=4, rows=40, cols=36)
    files = upscale_dicom_series(series[0].parent, tmp_path / "mr_x2", adapt=_fast())
    plain = upscale_dicom_series(series[0].parent, tmp_path / "mr_x2_plain")
    for f, g in zip(files, plain, strict=True):
        da, db = pydicom.dcmread(f), pydicom.dcmread(g)
        assert (da.Rows, da.Columns) == (db.Rows, db.Columns)
        assert da.ImagePositionPatient == db.ImagePositionPatient
        assert da.PixelSpacing == db.PixelSpacing
        assert "adapted to the input" in da.DerivationDescription
        assert "adapted" not in db.DerivationDescription


def test_cli_adapt_flags(tmp_path, capsys):
    from sr_domains.cli import main
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "in.tif", width=64, height=64, count=1)
    out = tmp_path / "out.tif"
    model_path = tmp_path / "adapted.safetensors"
    argv = ["upscale", str(src), str(out), "--adapt", "2", "--adapt-psf", "0.8"]
    assert (
        main([*argv, "--adapt-noise", "0", "--save-model", str(model_path), "--no-progress"]) == 0
    )
    assert out.exists() and model_path.exists()
    from sr_domains import load_checkpoint

    _, card = load_checkpoint(model_path)
    assert "adapted to one input" in card.notes
    capsys.readouterr()
    # --save-model: an existing file only with --overwrite, the --weights or the input never
    first = model_path.read_bytes()
    again = [*argv, "--save-model", str(model_path)]
    assert main([*again[:2], str(tmp_path / "o2.tif"), *again[3:]]) == 1
    assert "output exists" in capsys.readouterr().err
    assert model_path.read_bytes() == first and not (tmp_path / "o2.tif").exists()
    assert main([*again[:2], str(tmp_path / "o2.tif"), *again[3:], "--overwrite", "-q"]) == 0
    assert model_path.read_bytes() != first
    _, card = load_checkpoint(model_path)
    assert "adapted to one input" in card.notes
    for target in (model_path, src):
        kept = target.read_bytes()
        with_weights = [*argv[:2], str(tmp_path / "o3.tif"), *argv[3:], "--overwrite"]
        with_weights += ["--weights", str(model_path), "--save-model", str(target)]
        assert main(with_weights) != 0
        assert target.read_bytes() == kept and not (tmp_path / "o3.tif").exists()
    capsys.readouterr()
    for bad, msg in (
        (["--adapt-psf", "0.8"], "need --adapt"),
        (["--adapt", "--steps", "3"], "--adapt STEPS"),
        (["--adapt", "--adapt-psf", "wide"], "adapt PSF"),
    ):
        assert main(["upscale", str(src), str(tmp_path / "x.tif"), *bad]) == 2
        assert msg in capsys.readouterr().err


def test_save_model_is_refused_early_and_written_even_when_skipped(tmp_path):
    from sr_domains import load_checkpoint
    from sr_domains.errors import OutputExistsError

    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"not ours")
    with pytest.raises(OutputExistsError):
        adapt_model(model, [_blurred_input()], AdaptOptions(steps=50, save_model=taken))
    assert taken.read_bytes() == b"not ours"
    sharp = gaussian_area_downsample(shapes(256, 3), 2, 0.0)
    out = tmp_path / "kept.safetensors"
    net, report = adapt_model(model, [sharp], AdaptOptions(steps=5, save_model=out))
    assert net is model
    assert report.kept == "original" and out.exists()
    _, card = load_checkpoint(out)
    assert '"kept": "original"' in card.notes


@pytest.mark.parametrize("how", ["resolve_model", "load_pretrained"])
def test_save_model_never_replaces_the_weights_the_model_was_loaded_from(tmp_path, how):
    """In Python the caller passes no inputs: the model knows the file it came from (the
    shipped weights too), and ``save_model=`` naming it is refused even with ``overwrite``."""
    import shutil

    from sr_domains.errors import UnsafeOutputError
    from sr_domains.pretrained import list_pretrained, load_pretrained, resolve_model

    shipped = next(e.path for e in list_pretrained() if e.name == "sr-lite-gray-x2")
    if how == "resolve_model":
        weights = tmp_path / "mine.safetensors"
        shutil.copy(shipped, weights)
        model = resolve_model(None, weights, scale=2, n_bands=1)
    else:
        weights, model = shipped, load_pretrained("sr-lite-gray-x2")
    before = weights.read_bytes()
    opts = AdaptOptions(steps=2, save_model=weights, overwrite=True, psf=0.8, noise=0.0)
    with pytest.raises(UnsafeOutputError, match="would replace the input"):
        adapt_model(model, [_blurred_input()], opts)
    assert weights.read_bytes() == before


def test_save_model_with_a_batch_of_several_inputs_is_refused_before_any_work(tmp_path):
    """--save-model keeps the model adapted to one input: in a batch the second input failed on
    the first one's file (the rest never ran) or replaced it; now refused, nothing written."""
    pytest.importorskip("rasterio")
    from sr_domains.cli import main
    from sr_domains.distributed import upscale_many
    from sr_domains.geo import upscale_many as upscale_geotiff_many
    from sr_domains.options import UpscaleOptions
    from sr_domains.testing.geo import make_geotiff

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(2):
        make_geotiff(scenes / f"s{i}.tif", width=64, height=64, count=1, seed=i)
    saved = tmp_path / "adapted.safetensors"
    adapt = AdaptOptions(steps=1, psf=0.5, noise=0.0, save_model=saved)
    with pytest.raises(ConfigError, match="2 inputs"):
        upscale_geotiff_many(scenes, tmp_path / "a", adapt=adapt)
    with pytest.raises(ConfigError, match="2 inputs"):
        upscale_many(scenes, tmp_path / "b", options=UpscaleOptions(adapt=adapt))
    argv = ["upscale", str(scenes), str(tmp_path / "c"), "--adapt", "1", "--no-progress"]
    assert main([*argv, "--save-model", str(saved)]) == 2
    assert main([*argv, "--save-model", str(saved), "--dry-run"]) == 2  # says so too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenes"]
    # one input in a batch is one model: saved
    report = upscale_many(
        scenes / "s0.tif", tmp_path / "d", options=UpscaleOptions(adapt=adapt, tile=32)
    )
    assert [r.status for r in report.results] == ["ok"] and saved.is_file()


def test_an_input_too_small_to_adapt_on_is_named(tmp_path, capsys):
    """A single run said "the input is too small to adapt on" without naming the file (only
    a batch added the name)."""
    from sr_domains.cli import main
    from sr_domains.testing.geo import make_geotiff
    from sr_domains.testing.medical import make_nifti

    tif = make_geotiff(tmp_path / "px.tif", width=6, height=5, count=1)
    nii = make_nifti(tmp_path / "thin.nii.gz", shape=(6, 5, 3))
    for src, dst in ((tif, "o.tif"), (nii, "o.nii.gz")):
        assert main(["upscale", str(src), str(tmp_path / dst), "--adapt", "2", "-q"]) == 1
        err = capsys.readouterr().err
        assert f"{src}: the input is too small to adapt on" in err, err
        assert not (tmp_path / dst).exists()
