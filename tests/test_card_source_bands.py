"""The card records which bands of its training files a model was fed (``data.bands``), and
a file of the same product with more bands is refused with the selection to give."""

from __future__ import annotations

import pytest
import torch

from sr_domains.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from sr_domains.cli import main
from sr_domains.models import create_model
from sr_domains.train.dist import DistInfo
from sr_domains.train.run_files import final_card
from sr_domains.train.trainer import build_generator

rasterio = pytest.importorskip("rasterio")
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def test_the_final_card_records_the_training_band_selection(tmp_path):
    from test_train import _config

    from sr_domains.train.config import apply_overrides

    cfg = apply_overrides(_config(tmp_path), {"data.bands": [3, 1], "model.in_channels": 2})
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    card = final_card(cfg, build_generator(cfg), "2 files.", info, {})
    assert card.source_bands == [3, 1]
    weights = save_checkpoint(build_generator(cfg), tmp_path / "w.safetensors", card)
    assert load_checkpoint(weights)[1].source_bands == [3, 1]  # (it round-trips)
    every = final_card(_config(tmp_path), build_generator(_config(tmp_path)), "3.", info, {})
    assert every.source_bands == []


def test_upscale_names_the_training_bands_of_a_file_with_more_bands(tmp_path, capsys):
    net = create_model("edsr", in_channels=2, n_blocks=1, n_feats=8)
    card = ModelCard(name="nir-red", source_bands=[4, 3], profile={"recipe": "range:0,255"})
    weights = save_checkpoint(net, tmp_path / "w.safetensors", card)
    src = make_geotiff(tmp_path / "five.tif", width=24, height=24, count=5)
    out = tmp_path / "out.tif"
    assert main(["upscale", str(src), str(out), "--weights", str(weights), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "five.tif" in err and "--bands 4,3" in err, err
    assert not out.exists()
    argv = ["upscale", str(src), str(out), "--weights", str(weights), "--bands", "4,3"]
    assert main([*argv, "--no-progress"]) == 0
    with rasterio.open(out) as ds:
        assert ds.count == 2 and ds.width == 48
