"""Crafted pickles never run: every ``.pt``/``.pth`` reader (upscale weights, evaluate weights,
training resume, VGG perceptual weights) loads weights-only and refuses in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("rasterio")
pytest.importorskip("skimage")

from sr_domains.checkpoint import read_state_dict
from sr_domains.cli import main
from sr_domains.errors import CheckpointError
from sr_domains.public_weights import load_public_checkpoint
from sr_domains.testing.geo import make_geotiff
from sr_domains.train.vgg import load_vgg19_features

REPO = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this calls ``os.mkdir(marker)``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _evil(path: Path, marker: Path, wrap: bool = True) -> Path:
    obj = (
        {"state_dict": {"conv.weight": torch.zeros(1), "x": _Payload(marker)}}
        if wrap
        else _Payload(marker)
    )
    torch.save(obj, path)
    return path


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "a crafted pickle ran code"


def test_no_weights_only_false_anywhere_in_the_library():
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for p in (REPO / "sr_domains").rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "weights_only=False" in line.replace(" ", "")
    ]
    assert hits == []


@pytest.mark.parametrize("wrap", [True, False])
def test_readers_refuse(tmp_path, marker, wrap):
    evil = _evil(tmp_path / "evil.pth", marker, wrap)
    for reader in (read_state_dict, load_public_checkpoint, load_vgg19_features):
        with pytest.raises(CheckpointError, match="refused") as info:
            reader(evil)
        text = str(info.value)
        assert "\n" not in text and "weights_only" not in text and str(evil) in text


def test_upscale_cli_refuses_in_one_line(tmp_path, marker, capsys):
    src = make_geotiff(tmp_path / "in.tif", count=3)
    evil = _evil(tmp_path / "model.pth", marker)
    assert main(["upscale", str(src), str(tmp_path / "o.tif"), "--weights", str(evil)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pickled objects that are not plain tensors" in err[0]
    assert not (tmp_path / "o.tif").exists()


def test_evaluate_cli_refuses(tmp_path, marker, capsys):
    src = make_geotiff(tmp_path / "in.tif", count=3)
    evil = _evil(tmp_path / "model.pth", marker)
    assert main(["evaluate", "--weights", str(evil), "--data", str(src)]) == 1
    assert "refused" in capsys.readouterr().err


def test_resume_refuses_a_crafted_last_pt(tmp_path, marker):
    from test_train import _config

    from sr_domains.train.trainer import train

    cfg = _config(tmp_path, steps=4, **{"val.every": 100})
    train(cfg, progress=False, stop_at=2)
    last = cfg.run_dir / "last.pt"
    state = torch.load(last, weights_only=True)
    state["opt"] = _Payload(marker)
    torch.save(state, last)
    with pytest.raises(CheckpointError, match="refused"):
        train(cfg, resume=True, progress=False)


def test_resume_still_reads_our_own_checkpoints(tmp_path):
    from test_train import _config

    from sr_domains.train.trainer import train

    cfg = _config(tmp_path, steps=4, **{"val.every": 100})
    train(cfg, progress=False, stop_at=2)
    done = train(cfg, resume=True, progress=False)
    assert done.steps == 4 and done.weights is not None


def test_training_name_cannot_escape_out_dir(tmp_path):
    from test_train import _config

    from sr_domains.errors import ConfigError

    with pytest.raises(ConfigError, match="plain folder name"):
        _config(tmp_path, name="../escaped")
