"""The name a user knows a model by, for messages: its card's name, else its preset, else its
architecture (``sr-lite-gray-x2``, ``edsr-lite-ca``, ``edsr``)."""

from __future__ import annotations

import dataclasses

from .errors import SRDomainsError
from .models.base import BaseSRConfig, SRModel


def card_name(model: object) -> str | None:
    """The name on ``model``'s card (a :class:`~sr_domains.checkpoint.ModelCard` or a plain
    dict), or None when it has no card or the card no name."""
    card = getattr(model, "card", None)
    name = card.get("name") if isinstance(card, dict) else getattr(card, "name", None)
    return str(name) if name else None


def model_label(model: SRModel) -> str:
    """The model the user chose, by name: the card's name (shipped weights, a checkpoint,
    public weights: the file's stem), else the preset its config is exactly
    (``create_model("edsr-lite-ca")``), else the ``network_name`` of a wrapper (the class of
    a plain network given to the MONAI transforms, ``UNetSR``), else its architecture."""
    wrapped = getattr(model, "network_name", None)
    return card_name(model) or preset_name(model) or str(wrapped or model.arch)


def preset_name(model: SRModel) -> str | None:
    """``"arch-preset"`` when ``model``'s config is that preset's (bands, scale and range
    aside); None for the architecture's defaults, a config of no preset, or a foreign model."""
    from .models import get_arch

    config = getattr(model, "config", None)
    try:
        spec = get_arch(str(model.arch))
        if type(config) is not spec.config_cls:
            return None
        io = {f.name: getattr(config, f.name) for f in dataclasses.fields(BaseSRConfig)}
        if spec.config_cls(**io) == config:
            return None  # the plain architecture ("edsr", not "edsr-baseline")
        for preset, options in spec.presets.items():
            if spec.config_cls(**{**options, **io}) == config:
                return f"{spec.name}-{preset}"
    except (SRDomainsError, TypeError, ValueError):
        return None
    return None
