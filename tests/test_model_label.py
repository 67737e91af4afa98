"""The tiling warning names the model the user chose: the preset (``edsr-lite-ca``, was
``edsr``), a checkpoint's card name, or the architecture for its plain defaults."""

from __future__ import annotations

import logging

from sr_domains import create_model, load_checkpoint, save_checkpoint
from sr_domains.checkpoint import ModelCard
from sr_domains.inference import Upscaler
from sr_domains.model_label import card_name

TAIL = "so tiled output approximates whole-image output"


def _warned(model, caplog) -> list[str]:
    """The tiling warnings of an engine whose 32 px tiles cut the model's receptive field."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_domains.inference"):
        Upscaler(model, tile=32, overlap=4)
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().endswith(TAIL)
    ]


def test_warning_names_the_preset(caplog):
    """A preset by its name; the architecture's own defaults, or a preset changed, by the
    architecture's (not "edsr-baseline", not a preset it no longer is)."""
    cases = [
        ("edsr-lite-ca", {}, "edsr-lite-ca"),
        ("rrdb-small", {}, "rrdb-small"),
        ("edsr", {}, "edsr"),
        ("edsr-lite-ca", {"ca_pool": 7}, "edsr"),
    ]
    for name, options, said in cases:
        model = create_model(name, in_channels=1, scale=2, **options)
        (msg,) = _warned(model, caplog)
        assert msg.startswith(f"{said}: tiles blend over 4 px"), (name, options, msg)


def test_warning_names_the_checkpoint_card(tmp_path, caplog):
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    path = save_checkpoint(model, tmp_path / "w.safetensors", card=ModelCard(name="my-ct-weights"))
    loaded, _ = load_checkpoint(path)
    (msg,) = _warned(loaded, caplog)
    assert msg.startswith("my-ct-weights: ")


def test_a_saved_preset_is_named_by_its_preset(tmp_path):
    """A checkpoint saved without a name is named by its preset, not by its architecture."""
    for preset in ("edsr-lite-ca", "edsr"):
        save_checkpoint(create_model(preset, in_channels=1, scale=2), tmp_path / f"{preset}.pt")
        model, _ = load_checkpoint(tmp_path / f"{preset}.pt")
        assert model.card.name == preset
        assert card_name(model) == preset


def test_card_name_reads_a_card_object_or_a_dict():
    class Holder:
        card: object = None

    h = Holder()
    assert card_name(h) is None
    h.card = {"name": "ours"}
    assert card_name(h) == "ours"
    h.card = {"name": ""}
    assert card_name(h) is None
