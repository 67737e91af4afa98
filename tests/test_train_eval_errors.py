"""``train`` and ``evaluate`` refuse bad or conflicting options with one clear line, before any
work, and leave nothing behind (no traceback, no empty folder, no output replaced)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sr_domains.checkpoint import ModelCard, save_checkpoint
from sr_domains.cli import main
from sr_domains.errors import CheckpointError
from sr_domains.models import create_model
from sr_domains.train.config import apply_overrides, load_train_config
from sr_domains.train.dist import DistInfo
from sr_domains.train.evaluate import evaluate
from sr_domains.train.trainer import Trainer

PIL = pytest.importorskip("PIL.Image")

from sr_domains.testing.images import make_pngs  # noqa: E402


def _pngs(folder: Path, n: int = 2, size: int = 48, rgb: bool = False) -> Path:
    return make_pngs(folder, n, size, rgb)


def _train_config(tmp_path: Path, arch: str = "edsr", **options: object) -> Path:
    data = _pngs(tmp_path / "imgs")
    opts = options or ({"n_blocks": 1, "n_feats": 8} if arch == "edsr" else {})
    cfg = {
        "name": "run",
        "steps": 4,
        "batch_size": 2,
        "model": {"arch": arch, "in_channels": 1, "options": opts},
        "data": {"paths": [str(data)], "patch_size": 16, "patches_per_epoch": 8},
        "out_dir": str(tmp_path / "runs"),
        "threads": 1,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(path: Path, *args: str) -> int:
    return main(["train", "--config", str(path), "--no-progress", *args])


def _weights(tmp_path: Path, in_channels: int = 1) -> Path:
    model = create_model("edsr", in_channels=in_channels, n_blocks=1, n_feats=8)
    card = ModelCard(name="tiny", profile={"recipe": "percentile:1,99"})
    return save_checkpoint(model, tmp_path / f"tiny{in_channels}.safetensors", card)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_resume_at_another_scale_is_one_clear_error(tmp_path, capsys):
    path = _train_config(tmp_path)
    assert _train(path, "--stop-at", "2") == 0
    capsys.readouterr()
    x4 = ["--set", "scale=4", "--set", "data.patch_size=32"]
    assert _train(path, *x4, "--resume") == 2
    line = _one_line(capsys.readouterr().err)
    assert "last.pt: the run was started at x2, the config now says x4" in line
    # another intensity profile: the network learned the first normalization (it was applied,
    # with a warning, and the card named only the second)
    was = load_train_config(path).data.profile
    assert _train(path, "--set", "data.profile=percentile:2,98", "--resume") == 2
    line = _one_line(capsys.readouterr().err)
    assert f"started with data.profile {was!r}, the config now says 'percentile:2,98'" in line
    # a last.pt whose tensors do not fit the network (no config to compare): names the file
    cfg = load_train_config(path)
    state = torch.load(cfg.run_dir / "last.pt", weights_only=True)
    state["config"] = ""
    other = apply_overrides(cfg, {"model.options.n_feats": 4})
    trainer = Trainer(other, DistInfo(0, 1, 0, torch.device("cpu")), progress=False)
    with pytest.raises(CheckpointError, match=r"last\.pt: does not fit the network"):
        trainer.load_state_dict(state)


def test_a_diverging_run_is_one_line_naming_the_run_and_step(tmp_path, capsys):
    path = _train_config(tmp_path, arch="srcnn", features=[4, 4])
    over = ["--set", "optim.lr=1e30", "--set", "optim.warmup_steps=0", "--set", "steps=20"]
    assert _train(path, *over) == 1
    line = _one_line(capsys.readouterr().err)
    run = str(tmp_path / "runs" / "run")
    assert f"{run}: the loss is not finite at step " in line
    assert "lower the learning rate" in line


def test_stop_at_below_one_and_resume_with_overwrite_are_usage_errors(tmp_path, capsys):
    path = _train_config(tmp_path)
    with pytest.raises(SystemExit) as stop:
        _train(path, "--stop-at", "0")  # it paused "at step 0" and wrote no last.pt
    assert stop.value.code == 2
    assert "step number >= 1" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert _train(path, "--stop-at", "2") == 0
    last = tmp_path / "runs" / "run" / "last.pt"
    before = last.read_bytes()
    capsys.readouterr()
    assert _train(path, "--resume", "--overwrite") == 2  # --overwrite was ignored
    assert "--resume and --overwrite" in _one_line(capsys.readouterr().err)
    assert last.read_bytes() == before


def test_a_failed_start_removes_the_folders_it_created(tmp_path, capsys):
    path = _train_config(tmp_path)
    out = tmp_path / "new" / "deeper"
    bad = ["--set", f"out_dir={out}", "--set", "data.paths=[nonexist]"]
    assert _train(path, *bad) == 1
    assert "nonexist" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"  # a folder that was there is kept
    mine.mkdir()
    assert _train(path, "--set", f"out_dir={mine}", "--set", "data.paths=[nonexist]") == 1
    assert mine.is_dir() and not any(mine.iterdir())


def test_evaluate_refuses_png_and_json_naming_the_same_file(tmp_path, capsys, monkeypatch):
    data = _pngs(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    base = ["evaluate", "--weights", str(_weights(tmp_path)), "--data", str(data)]
    link = tmp_path / "link.out"
    os.symlink(tmp_path / "same.out", link)
    for png, js in (("same.out", "same.out"), ("./same.out", "same.out"), (str(link), "same.out")):
        for extra in ([], ["--overwrite"]):
            assert main([*base, "--png", png, "--json", js, *extra]) == 2
            captured = capsys.readouterr()
            assert "--png and --json name the same file" in _one_line(captured.err)
            assert captured.out == ""
    assert not (tmp_path / "same.out").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_evaluate_max_images_below_one_is_a_usage_error(tmp_path, capsys, value):
    data = _pngs(tmp_path / "imgs")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--weights", str(_weights(tmp_path)), "--data", str(data),
              "--max-images", value])  # fmt: skip
    assert exc.value.code == 2
    assert "--max-images: expected a number >= 1" in capsys.readouterr().err


def test_evaluate_refuses_options_it_would_ignore(tmp_path, capsys):
    """--scale other than the model's, --tile below 8, --max-pixels with --battery: refused
    before any work (exit 2) instead of ignored."""
    data = _pngs(tmp_path / "imgs")
    weights = _weights(tmp_path)
    base = ["evaluate", "--weights", str(weights), "--data", str(data)]
    for extra, message in (
        (["--scale", "4"], f"{weights}: the weights upscale x2 but x4 was requested"),
        (["--tile", "3"], "tile must be >= 8 pixels, got 3"),
    ):
        assert main([*base, *extra]) == 2
        captured = capsys.readouterr()
        assert message in _one_line(captured.err) and captured.out == ""
    for flag, value in (("--max-pixels", "4096"),):
        assert main(["evaluate", "--battery", flag, value]) == 2
        assert f"{flag}: not used by --battery" in _one_line(capsys.readouterr().err)
    assert main([*base, "--scale", "2", "--max-images", "1"]) == 0  # the model's own scale
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith(("| im0", "| im1"))]
    assert len(rows) == 1


def test_evaluate_band_mismatch_names_the_data(tmp_path, capsys):
    data = _pngs(tmp_path / "imgs")
    assert main(["evaluate", "--weights", str(_weights(tmp_path, 3)), "--data", str(data)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{data}: the model takes 3 band(s) but the data has 1" in line


def test_evaluate_feeds_a_joint_model_the_bands_in_its_cards_order(tmp_path, caplog):
    """``upscale`` feeds a blue-first file to a red-green-blue model red first; ``evaluate``
    scored the file's own order, a result no ``upscale`` run gives (--bands 1,2,3 and 3,2,1
    scored differently)."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    model = create_model("edsr", in_channels=3, n_blocks=1, n_feats=8)
    card = ModelCard(name="rgb", bands=["red", "green", "blue"], profile={"recipe": "range:0,255"})
    weights = save_checkpoint(model, tmp_path / "rgb.safetensors", card)
    src = make_geotiff(
        tmp_path / "bgr.tif", width=48, height=48, count=3, colorinterp=["blue", "green", "red"]
    )
    with rasterio.open(src, "r+") as ds:
        ds.write(np.random.default_rng(5).integers(0, 250, (3, 48, 48)).astype(np.uint8))
    runs = {}
    for order in ((1, 2, 3), (3, 2, 1)):
        with caplog.at_level("INFO", logger="sr_domains"):
            report = evaluate(data=[src], weights=weights, bands=order, device="cpu")
        runs[order] = (report.scores[0].psnr, report.scores[0].sam)
    assert "fed to the model as red, green, blue" in caplog.text
    assert runs[(1, 2, 3)] == pytest.approx(runs[(3, 2, 1)], rel=1e-6)
    # files holding the bands in different orders: each in its own, said (the first file's
    # order was given to every file)
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.tif").write_bytes(src.read_bytes())
    rgb = make_geotiff(
        folder / "b.tif", width=48, height=48, count=3, colorinterp=["red", "green", "blue"]
    )
    with rasterio.open(rgb, "r+") as ds:
        ds.write(np.random.default_rng(6).integers(0, 250, (3, 48, 48)).astype(np.uint8))
    alone = evaluate(data=[rgb], weights=weights, device="cpu").scores[0].psnr
    caplog.clear()
    with caplog.at_level("WARNING", logger="sr_domains"):
        both = evaluate(data=[folder], weights=weights, device="cpu")
    assert "hold the model's bands in different orders" in caplog.text
    assert [sc.psnr for sc in both.scores if sc.name.endswith("b.tif")] == [alone]
