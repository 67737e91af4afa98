"""scripts/train_default_weights.py: the weight-space blends the shipped defaults are made of."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from sr_domains.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from sr_domains.models import create_model
from sr_domains.train.config import load_train_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    path = REPO / "scripts" / "train_default_weights.py"
    spec = importlib.util.spec_from_file_location("train_default_weights", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _saved(tmp_path: Path, name: str, seed: int) -> Path:
    torch.manual_seed(seed)
    model = create_model("edsr-lite-ca", in_channels=1)
    return save_checkpoint(model, tmp_path / f"{name}.safetensors", ModelCard(name=name))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_blend_is_the_weight_space_interpolation(script, tmp_path, alpha):
    a, b = _saved(tmp_path, "a", 0), _saved(tmp_path, "b", 1)
    out = script.blend_weights(a, b, alpha, tmp_path / "blend.safetensors")
    (ma, _), (mb, _), (mo, card) = (load_checkpoint(p) for p in (a, b, out))
    sa, sb, so = ma.state_dict(), mb.state_dict(), mo.state_dict()
    assert set(so) == set(sb)
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)  # the inputs differ
    for k, v in so.items():
        want = ((1 - alpha) * sa[k].double() + alpha * sb[k].double()).to(v.dtype)
        torch.testing.assert_close(v, want, rtol=0, atol=1e-7)
    assert card.name == "b"  # the card of the second model


def test_every_single_band_default_has_its_recipe(script):
    assert set(script.STAGE3) == set(script.MID_BLEND) == set(script.FINAL_BLEND)
    for key in script.STAGE3:
        assert (REPO / "configs" / "default" / f"{key}_stage3.yaml").is_file()
        assert 0 < script.MID_BLEND[key] < 1 and 0 < script.FINAL_BLEND[key] <= 1
        notes = script.variant_notes("sr-lite-gray-x2", "default", key)
        assert "sr-lite-gray-x2-bicubic" in notes and "sr-lite-gray-x2-robust" in notes
    for key in script.NOISY:  # the noisy fine-tune of stage 2 is the shipped -robust variant
        cfg = load_train_config(REPO / "configs" / "default" / f"{key}_noisy.yaml")
        stage2 = load_train_config(REPO / "configs" / "default" / f"{key}.yaml")
        assert cfg.degradation.noise_prob == 1.0 and cfg.scale == stage2.scale
        assert Path(cfg.model.init_from).parent.name == stage2.name
        assert script.ORDER.index(f"{key}_noisy") < script.ORDER.index(f"{key}_stage3")
        assert "noise on every sample" in script.variant_notes("n", "robust", f"{key}_noisy")


def test_the_gpu_family_is_planned_only_when_named(script):
    """The larger RGB family (docs/weights.md, "The GPU route") never runs in the default CPU
    recipe; named, it brings its stage 1 first, and stage 2 starts from that stage's run."""
    default = script.plan(None)
    assert not any(k.startswith("rgb_x2_base") for k in default)
    assert "rgb_x2" in default and "rgb_x2_stage1" in default
    assert script.plan(["rgb_x2_base"]) == ["rgb_x2_base_stage1", "rgb_x2_base"]
    stage1, stage2 = (
        load_train_config(REPO / "configs" / "default" / f"{k}.yaml")
        for k in ("rgb_x2_base_stage1", "rgb_x2_base")
    )
    assert Path(stage2.model.init_from).parent.name == stage1.name
    same = {k: v for k, v in stage2.model.options.items() if k != "shared_detail"}
    assert same == stage1.model.options and stage2.model.options["shared_detail"] is True
    model = create_model(stage1.model.arch, in_channels=3, scale=2, **stage1.model.options)
    lite = create_model("edsr-lite-ca", in_channels=3, scale=2)
    n = sum(p.numel() for p in model.parameters())
    assert n > 5 * sum(p.numel() for p in lite.parameters())  # the larger capacity it is for
    assert 0 < script.RGB_BLEND["rgb_x2_base"] <= 1
    assert script.BASE_NOTE.startswith("Larger") and stage2.card.spectral == "bicubic"


def test_a_rescore_names_the_heldout_corpus_once(script):
    """--evaluate-only re-scores a card that already ends with the held-out note: the shipped
    x2/x4 bicubic cards said it twice."""
    once = script.scored_note("20 inputs.", "gray-heldout")
    assert once.count("gray-heldout") == 1
    assert script.scored_note(once, "gray-heldout") == once
