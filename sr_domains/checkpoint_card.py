"""The model card of an sr_domains checkpoint: :class:`ModelCard`, completing it from a model,
and reading it from a file's safetensors metadata (key :data:`CARD_KEY`) without the weights.

Split from :mod:`sr_domains.checkpoint`, which re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from .config import from_dict, to_dict
from .errors import CheckpointError, ConfigError
from .models.base import SRModel
from .weights_files import read_safetensors, sniff_weights

log = logging.getLogger("sr_domains.checkpoint")  # the name these messages always had

CARD_KEY = "sr_domains.card"
#: Values of :attr:`ModelCard.spectral`.
SPECTRAL_CHOICES = ("model", "bicubic")


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint is: architecture and config, plus what the weights were trained for.

    ``arch``, ``config``, ``scale`` and ``in_channels`` are filled from the model when saving;
    ``sr_domains_version`` and ``created`` (ISO 8601, UTC) too when left empty.

    Attributes:
        name: short name of the weights (defaults to the preset, e.g. ``edsr-lite-ca``, else
            the architecture name).
        bands: input band names in order, e.g. ``["B04", "B03", "B02"]`` or ``["MR"]``.
        source_bands: the 1-based band numbers the model was fed from each training file, in
            order (``data.bands`` of the training config); empty when it took every band.
        modality: what the weights are for: ``"any"``, ``"rgb"``, ``"multispectral"``, ``"mri"``...
        profile: the intensity profile the model expects (see :mod:`sr_domains.intensity`).
        training_data: free-text description of the training data.
        metrics: evaluation results, e.g. ``{"psnr": 31.2}``.
        spectral: what ``--spectral auto`` (the default) does with the model's multi-band
            output: ``"model"`` keeps its own spectra, ``"bicubic"`` gives it bicubic's band
            ratios (:mod:`sr_domains.spectral`; for a joint model trained to keep bicubic's
            colours, whose own spectra measured worse).
    """

    name: str = ""
    arch: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    scale: int = 0
    in_channels: int = 0
    bands: list[str] = field(default_factory=list)
    source_bands: list[int] = field(default_factory=list)
    modality: str = "any"
    profile: dict[str, Any] = field(default_factory=dict)
    training_data: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    spectral: Literal["model", "bicubic"] = "model"
    sr_domains_version: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        if self.spectral not in SPECTRAL_CHOICES:
            raise ConfigError(
                f"model card: spectral must be one of {list(SPECTRAL_CHOICES)}, "
                f"got {self.spectral!r}"
            )

    @classmethod
    def for_model(cls, model: SRModel, **fields: Any) -> ModelCard:
        """A card describing ``model``, with any other ``fields`` set."""
        return _complete_card(model, cls(**fields))

    def to_json(self) -> str:
        """The card as a JSON string."""
        return json.dumps(to_dict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse a card written by :meth:`to_json`; unknown keys (newer versions) are ignored."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ConfigError(f"model card must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            log.warning("ignoring unknown model card field(s): %s", ", ".join(extra))
        data = {k: v for k, v in data.items() if k in known}
        if data.get("spectral", "model") not in SPECTRAL_CHOICES:  # a newer version's choice
            log.warning("model card: unknown spectral %r, using 'model'", data["spectral"])
            data["spectral"] = "model"
        return from_dict(cls, data)


def _with_defaults(model: SRModel, given: dict[str, Any]) -> dict[str, Any]:
    """A card's config as loading it would build it: fields the card predates take their
    defaults (a card written before a config field existed describes the default)."""
    try:
        return to_dict(from_dict(type(model.config), given, where="model card config"))
    except (ConfigError, TypeError, ValueError):
        return given  # unknown or bad fields: reported as a mismatch by the caller


def _complete_card(model: SRModel, card: ModelCard) -> ModelCard:
    config = to_dict(model.config)
    for name, value in (
        ("arch", model.arch),
        ("scale", model.scale),
        ("in_channels", model.in_channels),
        ("config", config),
    ):
        given = getattr(card, name)
        if name == "config" and given:
            given = _with_defaults(model, given)
        if given and given != value:
            raise CheckpointError(
                f"model card {name}={given!r} does not match the model ({value!r})"
            )
    from . import __version__
    from .model_label import preset_name

    return dataclasses.replace(
        card,
        name=card.name or preset_name(model) or model.arch,
        arch=model.arch,
        config=config,
        scale=model.scale,
        in_channels=model.in_channels,
        sr_domains_version=card.sr_domains_version or __version__,
        created=card.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def read_card(path: str | PathLike[str]) -> dict[str, Any]:
    """The model card of an sr_domains checkpoint as a plain dict, without loading the weights."""
    path = Path(path)
    metadata, _ = read_safetensors(path, tensors=False)
    try:
        card = json.loads(_card_json(path, metadata))
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid model card: {exc}") from exc
    if not isinstance(card, dict):
        raise CheckpointError(f"{path}: invalid model card: not a JSON object")
    return card


def _card_json(path: Path, metadata: dict[str, str]) -> str:
    if CARD_KEY not in metadata:
        raise CheckpointError(
            f"{path}: no sr_domains model card (metadata key {CARD_KEY!r}); "
            "for third-party weights use load_public_checkpoint()"
        )
    return metadata[CARD_KEY]


def has_card(path: str | PathLike[str]) -> bool:
    """True when ``path`` is a safetensors file (by content, whatever its name) with an
    sr_domains model card."""
    p = Path(path)
    return sniff_weights(p) == "safetensors" and CARD_KEY in read_safetensors(p, False)[0]


__all__ = ["CARD_KEY", "SPECTRAL_CHOICES", "ModelCard", "has_card", "read_card"]
