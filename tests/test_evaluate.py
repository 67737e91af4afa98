"""Evaluation: the protocol is computed as documented, the CLI prints a table and writes a
figure, and the shipped default weights beat bicubic on held-out data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sr_domains import metrics
from sr_domains.checkpoint import ModelCard, save_checkpoint
from sr_domains.cli import main
from sr_domains.degrade import DegradationConfig, describe_degradation, imresize
from sr_domains.errors import ConfigError, OutputExistsError, UnsafeOutputError
from sr_domains.inference import Upscaler
from sr_domains.models import create_model
from sr_domains.nodata_fill import fill_invalid
from sr_domains.testing.medical import interp_model
from sr_domains.train.evaluate import evaluate
from sr_domains.train.scoring import make_lr, score_image

PIL = pytest.importorskip("PIL.Image")

from sr_domains.testing.images import make_pngs  # noqa: E402


def _pngs(folder: Path, n: int = 2, size: int = 60, rgb: bool = False) -> Path:
    return make_pngs(folder, n, size, rgb)


def _weights(tmp_path: Path, in_channels: int = 1) -> Path:
    model = create_model("edsr", in_channels=in_channels, n_blocks=1, n_feats=8)
    card = ModelCard(name="tiny", profile={"recipe": "percentile:1,99"})
    return save_checkpoint(model, tmp_path / f"tiny{in_channels}.safetensors", card)


def test_score_image_follows_the_documented_protocol():
    """With a nearest-neighbour "model" the scores equal a hand computation of the protocol."""
    rng = np.random.default_rng(0)
    hr = rng.random((1, 41, 38)).astype(np.float32)  # odd sizes: cropped to multiples of 2
    valid = np.ones((1, 41, 38), bool)
    valid[:, :6, :9] = False
    up = Upscaler(interp_model(2, "nearest"), device="cpu")
    deg = DegradationConfig(kind="bicubic")
    score, panel = score_image(up, "x", hr, valid, degradation=deg, seed=5, panel_size=16)
    h = hr[:, :40, :38]
    v = valid[:, :40, :38]
    filled = np.where(v, h, h[v].mean())
    lr = make_lr(filled, 2, deg, seed=5)
    mask = v.reshape(1, 20, 2, 19, 2).all(axis=(2, 4)).repeat(2, 1).repeat(2, 2)
    nearest = lr.repeat(2, 1).repeat(2, 2)
    kw = {"data_range": 1.0, "mask": mask, "crop_border": 2}
    assert score.psnr == pytest.approx(metrics.psnr(nearest, h, **kw), abs=1e-4)
    # bicubic interpolates what the model is given: invalid LR pixels filled (nodata_fill)
    lr_ok = mask[:, ::2, ::2]
    base = imresize(fill_invalid(lr, ~lr_ok, lr[lr_ok].mean()), 2.0)
    assert score.psnr_bicubic == pytest.approx(metrics.psnr(base, h, **kw), abs=1e-6)
    assert score.ssim_bicubic == pytest.approx(metrics.ssim(base, h, **kw), abs=1e-6)
    assert score.psnr_bicubic != pytest.approx(metrics.psnr(imresize(lr, 2.0), h, **kw), abs=1e-4)
    assert score.sam is None  # single band
    assert panel is not None and panel.sr.shape == panel.hr.shape == (1, 16, 16)


def test_evaluate_cli_prints_a_table_and_writes_figure_and_json(tmp_path, capsys):
    data = _pngs(tmp_path / "imgs", rgb=True)
    weights = _weights(tmp_path, in_channels=3)
    png, js = tmp_path / "cmp.png", tmp_path / "scores.json"
    argv = ["evaluate", "--weights", str(weights), "--data", str(data), "--png", str(png)]
    assert main([*argv, "--json", str(js)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| im0", "| im1"))]
    assert len(rows) == 2 and "**mean**" in out and "SAM SR" in out
    report = json.loads(js.read_text())
    assert report["profile"] == "percentile:1,99"  # the model card's recipe
    assert len(report["images"]) == 2
    mean_gain = np.mean([im["gain_db"] for im in report["images"]])
    assert report["summary"]["psnr_gain_db"] == pytest.approx(mean_gain, abs=1e-9)
    with PIL.open(png) as fig:
        assert fig.width > fig.height  # 4 columns, 2 rows


@pytest.mark.parametrize(
    "name",
    [
        "bicubic",
        "wald",
        "kspace",
        "gauss-0.4",
        "gauss-0.8",
        "motion",
        "wald+noise",
        "kspace+rician",
    ],
)
def test_evaluate_degradation_takes_the_kinds_and_the_battery_cases(tmp_path, capsys, name):
    """``--degradation`` offered bicubic, wald and kspace: not the battery's Gaussian and
    motion PSFs. A battery case name scores with the battery's settings, a kind with its
    defaults."""
    from sr_domains.train.battery import CASES

    data, weights, js = _pngs(tmp_path / "imgs", n=1), _weights(tmp_path), tmp_path / "s.json"
    argv = ["evaluate", "--weights", str(weights), "--data", str(data), "--json", str(js)]
    assert main([*argv, "--degradation", name]) == 0
    got = [im["psnr_bicubic"] for im in json.loads(js.read_text())["images"]]
    cases = {c.name: c.degradation for c in CASES}
    deg = cases[name] if name in cases else DegradationConfig(kind=name)
    want = evaluate(weights=weights, data=(str(data),), degradation=deg)
    assert got == pytest.approx([s.psnr_bicubic for s in want.scores], abs=1e-9)
    if deg != DegradationConfig(kind=deg.kind):  # the case's settings, not the kind's defaults
        plain = evaluate(
            weights=weights, data=(str(data),), degradation=DegradationConfig(kind=deg.kind)
        )
        assert got != pytest.approx([s.psnr_bicubic for s in plain.scores], abs=1e-3)
    case = next((c for c in CASES if c.name == name), name)  # (the API takes the case too)
    by_case = evaluate(weights=weights, data=(str(data),), degradation=case)
    assert [s.psnr_bicubic for s in by_case.scores] == [s.psnr_bicubic for s in want.scores]
    # the report names what it scored: gauss-0.4 and gauss-0.8 were both "gaussian"
    assert by_case.degradation == name and f"({name} LR" in by_case.table
    assert json.loads(js.read_text())["degradation"] == name
    if name in cases:
        assert want.degradation == describe_degradation(deg) != deg.kind


def test_a_kind_name_in_python_keeps_meaning_the_kind(tmp_path):
    """Review: ``evaluate(degradation="motion")`` silently became the battery's motion case
    (another PSF) once case names were accepted; a kind's name means the kind."""
    from sr_domains.train.battery import CASES

    data, weights = _pngs(tmp_path / "imgs", n=1), _weights(tmp_path)
    kind = evaluate(weights=weights, data=(str(data),), degradation="motion")
    plain = evaluate(weights=weights, data=(str(data),), degradation=DegradationConfig("motion"))
    assert [s.psnr_bicubic for s in kind.scores] == [s.psnr_bicubic for s in plain.scores]
    (case,) = [c for c in CASES if c.name == "gauss-0.4"]
    by_name = evaluate(weights=weights, data=(str(data),), degradation="gauss-0.4")
    assert by_name.degradation == "gauss-0.4"
    assert by_name.summary == evaluate(weights=weights, data=(str(data),), degradation=case).summary
    with pytest.raises(ConfigError, match="gauss-0.4"):
        evaluate(weights=weights, data=(str(data),), degradation="gauss")


def test_evaluate_offers_every_battery_case():
    """A case added to the battery is a ``--degradation`` name too."""
    from sr_domains.train.battery import CASES
    from sr_domains.train.cli import DEGRADATIONS

    assert {c.name for c in CASES} <= set(DEGRADATIONS)


def test_evaluate_json_is_strict_for_a_flat_image(tmp_path, capsys):
    """A flat image (an all-zero slice): bicubic reproduces it exactly, its PSNR is infinite,
    and the JSON holds null there, not the non-standard constant Infinity."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    PIL.fromarray(np.zeros((40, 40), np.uint8)).save(folder / "flat.png")
    js = tmp_path / "scores.json"
    argv = ["evaluate", "--weights", str(_weights(tmp_path)), "--data", str(folder)]
    assert main([*argv, "--json", str(js)]) == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    report = json.loads(js.read_text(), parse_constant=refuse)
    assert report["images"][0]["psnr_bicubic"] is None


def test_evaluate_outputs_never_replace_inputs_or_existing_files(tmp_path, capsys):
    """--png/--json follow the output rules: an input (data or weights) is never replaced,
    even with --overwrite; an existing file only with --overwrite; checked before any work."""
    data = _pngs(tmp_path / "imgs", rgb=True)
    weights = _weights(tmp_path, in_channels=3)
    first = data / "im0.png"
    before = {p: p.read_bytes() for p in (first, weights)}
    base = ["evaluate", "--weights", str(weights), "--data", str(data)]
    for opt in ("--json", "--png"):
        for target in (first, weights):
            assert main([*base, opt, str(target), "--overwrite"]) != 0
            assert "would replace the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    with pytest.raises(UnsafeOutputError, match="would replace the input"):  # the API too
        evaluate(weights=weights, data=[str(data)], png=first, overwrite=True)
    old_json, old_png = tmp_path / "old.json", tmp_path / "old.png"
    old_json.write_text("mine")
    PIL.new("L", (3, 2)).save(old_png)  # a figure of one's own (a text file is never replaced)
    mine = old_png.read_bytes()
    for opt, target in (("--json", old_json), ("--png", old_png)):
        assert main([*base, opt, str(target)]) != 0
        captured = capsys.readouterr()
        assert "output exists" in captured.err
        assert captured.out == ""  # refused before the evaluation ran
    with pytest.raises(OutputExistsError):
        evaluate(weights=weights, data=[str(data)], png=old_png)
    assert old_json.read_text() == "mine" and old_png.read_bytes() == mine
    assert main([*base, "--json", str(old_json), "--png", str(old_png), "--overwrite"]) == 0
    assert json.loads(old_json.read_text())["model"] == "tiny"
    with PIL.open(old_png) as fig:
        assert fig.format == "PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


def test_evaluate_refuses_a_model_with_other_bands(tmp_path):
    data = _pngs(tmp_path / "imgs", rgb=False)
    with pytest.raises(ConfigError, match="3 band"):
        evaluate(weights=_weights(tmp_path, in_channels=3), data=[str(data)])


def test_cli_train_with_overrides(tmp_path, capsys):
    data = _pngs(tmp_path / "imgs", n=2, size=48)
    cfg = {
        "name": "cli",
        "model": {"arch": "srcnn", "in_channels": 1, "options": {"features": [4, 4]}},
        "data": {"paths": [str(data)], "patch_size": 16, "patches_per_epoch": 8},
        "out_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    argv = ["train", "--config", str(path), "--set", "steps=2", "--set", "batch_size=4"]
    assert main([*argv, "--no-progress"]) == 0
    weights = Path(capsys.readouterr().out.splitlines()[0])
    assert weights == tmp_path / "runs" / "cli" / "weights.safetensors" and weights.exists()
    assert main([*argv, "--set", "stpes=3"]) == 2  # a typo is a clear error, not a crash
    assert "did you mean 'steps'" in capsys.readouterr().err


@pytest.mark.parametrize("corpus", ["gray-heldout", "rgb-heldout"])
def test_shipped_x2_weights_beat_bicubic_on_heldout_data(shared_data, corpus):
    from sr_domains.pretrained import list_pretrained

    if not any(e.scale == 2 for e in list_pretrained()):
        pytest.skip("no shipped x2 weights in this checkout")
    report = evaluate(corpus=corpus, scale=2, device="cpu")
    assert len(report.scores) >= 2
    assert report.summary["psnr_gain_db"] >= 0.5, report.table
    assert all(s.gain_db > 0 for s in report.scores), report.table


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["gray-heldout", "rgb-heldout"])
def test_shipped_x4_weights_beat_bicubic_on_heldout_data(shared_data, corpus):
    """Slow (minutes on 2 cores): the x4 weights on every held-out image."""
    from sr_domains.pretrained import list_pretrained

    if not any(e.scale == 4 for e in list_pretrained()):
        pytest.skip("no shipped x4 weights in this checkout")
    report = evaluate(corpus=corpus, scale=4, device="cpu")
    assert len(report.scores) >= 2
    assert report.summary["psnr_gain_db"] >= 0.2, report.table


def test_spectral_metrics_are_computed_in_stored_units():
    """SAM depends on per-band offsets, so it must be computed after inverting the profile."""
    from sr_domains.intensity import IntensityProfile

    rng = np.random.default_rng(1)
    hr = rng.random((3, 32, 30)).astype(np.float32)
    prof = IntensityProfile("percentile:1,99", (0.01, 0.02, 0.005), (-0.5, -0.1, -1.0))
    up = Upscaler(interp_model(2, "nearest", in_channels=3), device="cpu")
    deg = DegradationConfig(kind="bicubic")
    score, _ = score_image(up, "x", hr, None, degradation=deg, profile=prof)
    plain, _ = score_image(up, "x", hr, None, degradation=deg)
    lr = make_lr(hr, 2, deg)
    sr = lr.repeat(2, 1).repeat(2, 2)
    units = prof.denormalize
    assert score.sam == pytest.approx(metrics.sam(units(sr), units(hr)), rel=1e-5)
    assert score.ergas == pytest.approx(metrics.ergas(units(sr), units(hr), scale=2), rel=1e-5)
    assert plain.sam == pytest.approx(metrics.sam(sr, hr), rel=1e-5)
    assert score.sam != pytest.approx(plain.sam, rel=1e-3)
    assert score.psnr == plain.psnr  # PSNR/SSIM stay in normalized units


def test_prepare_sees_no_value_where_the_lr_is_invalid():
    """An engine picked per input (noise gate, --adapt) reads what upscale reads: the LR
    pixels whose HR block touches invalid data carry no value (NaN), the rest are the LR."""
    rng = np.random.default_rng(1)
    hr = rng.random((1, 32, 30)).astype(np.float32)
    valid = np.ones((1, 32, 30), bool)
    valid[:, 5:11, 20:] = False
    up = Upscaler(interp_model(2, "nearest"), device="cpu")
    seen = []
    deg = DegradationConfig(kind="bicubic")
    score_image(up, "x", hr, valid, degradation=deg, seed=2, prepare=lambda a: seen.append(a) or up)
    lr_ok = valid.reshape(1, 16, 2, 15, 2).all(axis=(2, 4))
    (a,) = seen
    assert np.array_equal(np.isnan(a), ~lr_ok)
    filled = np.where(valid, hr, hr[valid].mean())
    np.testing.assert_array_equal(a[lr_ok], make_lr(filled, 2, deg, seed=2)[lr_ok])


def test_an_image_too_small_to_score_is_skipped_by_name_and_alone_is_an_input_error(
    tmp_path, capsys, caplog
):
    """One 12 x 12 image in a folder ended the whole evaluation (after the model had run on
    the others) with an SSIM window error naming no file, exit 2."""
    import logging

    from PIL import Image

    data = _pngs(tmp_path / "imgs")
    Image.fromarray(np.full((12, 12), 90, np.uint8)).save(data / "tiny.png")
    weights = _weights(tmp_path)
    argv = ["evaluate", "--weights", str(weights), "--data"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, str(data)]) == 0
    out = capsys.readouterr().out
    assert "| im0" in out and "| im1" in out and "tiny.png" not in out
    assert "tiny.png: 12 x 12 pixels is too small to score at x2" in caplog.text
    assert main([*argv, str(data / "tiny.png")]) == 1
    err = capsys.readouterr().err
    assert "tiny.png: no image is large enough to score at x2 (at least 16 x 16" in err
    with pytest.raises(ConfigError, match="small: 12 x 12 pixels is too small"):
        score_image(
            Upscaler(create_model("edsr", n_blocks=1, n_feats=8)),
            "small",
            np.zeros((1, 12, 12), np.float32),
            None,
            degradation=DegradationConfig(kind="bicubic"),
        )


@pytest.mark.parametrize("s", [2, 3, 4])
def test_the_smallest_scorable_size_is_the_one_the_errors_state(s):
    from sr_domains.train.scoring import min_scorable, scorable

    n = min_scorable(s)
    assert scorable(n, n, s) and not scorable(n - 1, n - 1, s)


def test_two_band_data_get_the_spectral_metrics_too():
    """docs/training.md: multi-band data get SAM and ERGAS; two bands (VV/VH, red/NIR) got
    neither (the check was three bands or more)."""
    hr = np.random.default_rng(2).random((2, 32, 30)).astype(np.float32) + 0.1
    up = Upscaler(interp_model(2, "nearest", in_channels=2), device="cpu")
    score, _ = score_image(up, "x", hr, None, degradation=DegradationConfig(kind="bicubic"))
    sr = make_lr(hr, 2, DegradationConfig(kind="bicubic")).repeat(2, 1).repeat(2, 2)
    assert score.sam == pytest.approx(metrics.sam(sr, hr), rel=1e-5)
    assert score.ergas is not None and score.ergas_bicubic is not None


def test_sam_and_ergas_do_not_depend_on_how_reflectance_is_stored():
    """Sentinel-2 L2A stores reflectance as DN = refl * 1e4 before processing baseline 04.00
    and DN = (refl + 0.1) * 1e4 since (``s2l2a`` profile): SAM and ERGAS, computed in stored
    units, came out 0.62 against 0.25 degrees (ERGAS 2.01 against 1.23) for one scene."""
    from sr_domains.intensity import profile_from_any

    rng = np.random.default_rng(3)
    refl = np.stack(
        [rng.uniform(lo, hi, (48, 48)) for lo, hi in ((0.03, 0.12), (0.05, 0.15), (0.2, 0.4))]
    ).astype(np.float32)
    up = Upscaler(interp_model(2, "bicubic", in_channels=3), tile=64)
    scores = []
    for recipe, dn in (("reflectance", refl * 1e4), ("s2l2a", (refl + 0.1) * 1e4)):
        prof = profile_from_any(recipe, dn, dtype=np.dtype("uint16"))
        hr = prof.normalize(dn).astype(np.float32)
        kw = {"degradation": DegradationConfig(kind="bicubic"), "profile": prof}
        scores.append(score_image(up, recipe, hr, None, **kw)[0])
    a, b = scores
    assert a.sam == pytest.approx(b.sam, rel=1e-3) and a.ergas == pytest.approx(b.ergas, rel=1e-3)
    assert a.sam_bicubic == pytest.approx(b.sam_bicubic, rel=1e-3)
