"""Crafted model cards, export option checks and a trainer's resume checkpoint given as weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import sr_domains
from sr_domains.checkpoint import CARD_KEY, load_checkpoint, save_checkpoint
from sr_domains.cli import main
from sr_domains.errors import CheckpointError
from sr_domains.export import onnx_bytes
from sr_domains.models import create_model

SHIPPED = Path(sr_domains.__file__).parent / "weights" / "sr-lite-gray-x2.safetensors"


def _recarded(tmp_path, **config):
    """A small EDSR checkpoint whose card config is overwritten with ``config``."""
    src = save_checkpoint(
        create_model("edsr", in_channels=1, scale=2, n_blocks=1, n_feats=4),
        tmp_path / "src.safetensors",
    )
    with safe_open(str(src), "pt") as fh:
        card = json.loads(fh.metadata()[CARD_KEY])
    card["config"].update(config)
    dst = tmp_path / "crafted.safetensors"
    save_file(load_file(src), str(dst), metadata={"format": "pt", CARD_KEY: json.dumps(card)})
    return dst


@pytest.mark.parametrize(
    "config",
    [{"n_feats": 1_000_000}, {"n_feats": 1, "n_blocks": 10_000_000}],
    ids=["wide", "deep"],
)
def test_a_card_claiming_a_huge_network_is_refused_before_building_it(tmp_path, config):
    path = _recarded(tmp_path, **config)
    with pytest.raises(CheckpointError, match="the model card says edsr with over") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "but the weights hold" in str(info.value)


def test_a_card_for_another_network_names_the_difference(tmp_path):
    path = _recarded(tmp_path, in_channels=3)
    with pytest.raises(
        CheckpointError, match=r"conv_first\.weight \(4, 1, 3, 3\) vs \(4, 3, 3, 3\)"
    ):
        load_checkpoint(path)


def test_cli_refuses_a_huge_card_in_one_line(tmp_path, capsys):
    path = _recarded(tmp_path, n_feats=1_000_000)
    assert main(["models", "--inspect", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the model card says edsr" in err[0]


def test_cards_that_fit_still_load(tmp_path):
    model = create_model("rrdb", in_channels=1, scale=4, num_block=1, num_feat=8, num_grow_ch=4)
    loaded, card = load_checkpoint(save_checkpoint(model, tmp_path / "r.safetensors"))
    assert card.arch == "rrdb"
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert load_checkpoint(_recarded(tmp_path))[1].arch == "edsr"


def test_cli_refuses_an_opset_the_exporter_cannot_write_in_one_line(tmp_path, capsys):
    out = tmp_path / "o.onnx"
    assert main(["export", "--weights", "sr-lite-gray-x2", str(out), "--opset", "8"]) == 2
    captured = capsys.readouterr()
    assert "opset must be 9.." in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and not captured.out
    assert not out.exists()


def test_a_failed_torchscript_onnx_export_prints_no_graph_dump(capfd):
    pytest.importorskip("onnx")
    model, _ = load_checkpoint(SHIPPED)
    with pytest.raises(Exception, match="opset 7"):  # its arange needs opset 9
        onnx_bytes(model, opset=7)
    out, err = capfd.readouterr()
    assert "Torch IR graph" not in out + err
    assert not torch._C._jit_is_onnx_log_enabled()


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_cli_refuses_dynamo_for_other_formats(tmp_path, capsys, suffix):
    out = tmp_path / f"m{suffix}"
    assert main(["export", "--weights", "sr-lite-gray-x2", str(out), "--dynamo"]) == 2
    assert "dynamo applies to ONNX export" in capsys.readouterr().err
    assert not out.exists()


def test_export_of_a_resume_checkpoint_points_to_the_run_weights(tmp_path, capsys):
    model = create_model("edsr", in_channels=1, scale=2, n_blocks=1, n_feats=4)
    run = tmp_path / "run"
    run.mkdir()
    resume = {"step": 2, "model": model.state_dict(), "opt": {"state": {}, "param_groups": []}}
    torch.save(resume, run / "last.pt")
    assert main(["export", "--weights", str(run / "last.pt"), str(tmp_path / "o.onnx")]) == 1
    err = capsys.readouterr().err
    assert "resume checkpoint" in err and "bare" not in err
    assert str(run / "weights.safetensors") in err
