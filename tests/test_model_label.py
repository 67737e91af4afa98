"""The tiling warning names the model the user chose: the preset (``edsr-lite-ca``, was
``edsr``), a checkpoint's card name, or the architecture for its plain defaults."""

from __future__ import annotations

import logging

from sr_domains import create_model, load_checkpoint, save_checkpoint
from sr_domains.checkpoint import ModelCard
from sr_domains.inference import Upscaler

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
