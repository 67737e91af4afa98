"""Checkpoints: safetensors weights with a model card, and third-party ``.pt``/``.pth`` weights.

sr_domains checkpoints are safetensors files whose metadata holds a JSON :class:`ModelCard` under
the key ``"sr_domains.card"``; the card names the architecture and its full config, so
:func:`load_checkpoint` rebuilds the model without being told what it is. Public weights in the
official EDSR/RCAN, BasicSR and ESRGAN layouts are read by
:func:`sr_domains.public_weights.load_public_checkpoint` (key mapping in
:mod:`sr_domains.checkpoint_formats`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import torch
from torch.overrides import TorchFunctionMode

from .config import from_dict, to_dict
from .errors import CheckpointError, ConfigError, RegistryError
from .models.base import ArchSpec, BaseSRConfig, SRModel
from .weights_files import (  # re-exported: the readers of any weights file live there
    DIGEST_KEY,
    check_tensors,
    read_safetensors,
    read_state_dict,
    sniff_weights,
    tensors_digest,
    unpickle_error,
)

log = logging.getLogger(__name__)

CARD_KEY = "sr_domains.card"
#: Values of :attr:`ModelCard.spectral`.
SPECTRAL_CHOICES = ("model", "bicubic")


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint is: architecture and config, plus what the weights were trained for.

    ``arch``, ``config``, ``scale`` and ``in_channels`` are filled from the model when saving;
    ``sr_domains_version`` and ``created`` (ISO 8601, UTC) too when left empty.

    Attributes:
        name: short name of the weights (defaults to the architecture name).
        bands: input band names in order, e.g. ``["B04", "B03", "B02"]`` or ``["MR"]``.
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

    return dataclasses.replace(
        card,
        name=card.name or model.arch,
        arch=model.arch,
        config=config,
        scale=model.scale,
        in_channels=model.in_channels,
        sr_domains_version=card.sr_domains_version or __version__,
        created=card.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def save_checkpoint(
    model: SRModel,
    path: str | PathLike[str],
    card: ModelCard | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model``'s weights and card to a safetensors file, atomically.

    The file is written to a temporary name in the same folder and moved into place, so a
    crash never leaves a half-written checkpoint at ``path``.

    Args:
        model: the model to save.
        path: destination ``.safetensors`` file.
        card: optional card; architecture fields are filled (and checked) from ``model``.
        overwrite: replace an existing file instead of raising :class:`OutputExistsError`.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    from .output_checks import check_existing

    path = Path(path)
    check_existing(
        path, kind="file", overwrite=overwrite
    )  # (a user's text file named .safetensors: kept)
    card = _complete_card(model, card or ModelCard())
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", CARD_KEY: card.to_json(), DIGEST_KEY: tensors_digest(tensors)}
    data = save(tensors, metadata=metadata)
    # Write a fresh name in the same folder (same file system: os.replace is atomic) with plain
    # open(), so the file gets the usual umask permissions (safetensors' save_file uses 0600).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("saved %s checkpoint to %s", model.arch, path)
    return path


def load_checkpoint(
    path: str | PathLike[str], device: str | torch.device = "cpu"
) -> tuple[SRModel, ModelCard]:
    """Rebuild the model described by a checkpoint's card and load its weights strictly.

    Returns:
        ``(model, card)``; the model is in eval mode on ``device``.
    """
    from .models import get_arch

    path = Path(path)
    metadata, state = read_safetensors(path, tensors=True)
    card_json = _card_json(path, metadata)
    check_tensors(path, state)
    try:
        card = ModelCard.from_json(card_json)
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid model card: {exc}") from exc
    if card.arch.startswith("spandrel:"):
        model = _load_spandrel_checkpoint(path, state, card, device)
    else:
        try:
            spec = get_arch(card.arch)
            config = from_dict(spec.config_cls, card.config, where=f"{card.arch} config")
        except (ValueError, RegistryError) as exc:
            raise CheckpointError(f"{path}: invalid model card: {exc}") from exc
        check_card_fits(path, spec, config, state)
        model = spec.model_cls(config)
        load_state_strict(model, state, path)
    for name in ("scale", "in_channels"):  # a hand-edited card must not contradict its network
        said, built = getattr(card, name), getattr(model, name)
        if said and said != built:
            raise CheckpointError(
                f"{path}: the card says {name} {said} but its network has {built}"
            )
    model.source_path = path.resolve()  # what a fine-tuned copy must never replace
    return model.to(device).eval(), card


class _OversizeCard(Exception):
    """Raised inside a meta-device build once it far outgrows the file's tensors."""


class _SkipInit(TorchFunctionMode):
    """Skips in-place ops (weight init) on meta tensors: they only cost time, and torch's meta
    ``normal_`` imports ``torch._dynamo`` (seconds) on first use."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__"):
            first = next(
                (v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)), None
            )
            if first is not None and first.is_meta:
                return first
        return func(*args, **kwargs)


def check_card_fits(
    path: Path, spec: ArchSpec, config: BaseSRConfig, state: dict[str, torch.Tensor]
) -> None:
    """Refuse a card whose network would not hold as many values as the file's tensors.

    The network is built on the ``meta`` device (no memory), and the build stops once it has
    more parameter tensors than the file or twice its values, so a card claiming a huge network
    (``n_feats=1000000``, ``n_blocks=10000000``) costs nothing. With equal counts the real
    network is no larger than the file, and :func:`load_state_strict` reports any key or shape
    difference.
    """
    held = sum(t.numel() for t in state.values())
    built = [0, 0]  # parameter tensors, values

    def count(_module: torch.nn.Module, _name: str, param: Any) -> None:
        if param is not None and param.device.type == "meta":
            built[0] += 1
            built[1] += param.numel()
            if built[0] > len(state) or built[1] > 2 * held:
                raise _OversizeCard

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(count)
    try:
        with torch.device("meta"), _SkipInit():
            own = spec.model_cls(config).state_dict()
    except _OversizeCard:
        says = (
            f"over {len(state)} weight tensors"
            if built[0] > len(state)
            else f"over {2 * held:,} weight values"
        )
        raise CheckpointError(
            f"{path}: the model card says {spec.name} with {says} but the weights hold "
            f"{len(state)} tensors of {held:,} values"
        ) from None
    except (RuntimeError, NotImplementedError):  # a third-party network that needs real tensors
        return
    finally:
        handle.remove()
    total = sum(v.numel() for v in own.values())
    if total == held:
        return
    problems = mismatch_report(
        [k for k in own if k not in state],
        [k for k in state if k not in own],
        [
            f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
            for k, v in own.items()
            if k in state and state[k].shape != v.shape
        ],
        limit=3,
    )
    raise CheckpointError(
        f"{path}: the model card says {spec.name} with {total:,} weight values but the "
        f"weights hold {held:,} ({problems})"
    )


def _load_spandrel_checkpoint(
    path: Path, state: dict[str, torch.Tensor], card: ModelCard, device: str | torch.device
) -> SRModel:
    """A saved :class:`~sr_domains.zoo.SpandrelSR`: spandrel re-detects the network from its
    tensors, which must be the family the card names."""
    from .zoo import load_spandrel, read_net_state

    model = load_spandrel(read_net_state(state), path, family=card.arch.partition(":")[2])
    load_state_strict(model, state, path)
    model.card = card
    return model.to(device).eval()


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


def load_state_strict(
    model: SRModel, state: dict[str, torch.Tensor], path: str | PathLike[str]
) -> None:
    """``model.load_state_dict(state, strict=True)``, raising :class:`CheckpointError` that
    lists missing and unexpected keys and shape mismatches (truncated) and names ``path``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = mismatch_report(missing, unexpected, shapes)
    if problems:
        raise CheckpointError(f"{path}: weights do not match {model.arch}: {problems}")
    model.load_state_dict(state, strict=True)


def mismatch_report(
    missing: list[str], unexpected: list[str], shapes: list[str], limit: int = 8
) -> str:
    """Human-readable summary of key mismatches, empty when there are none."""
    parts = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches (file vs model)", shapes),
    ):
        if items:
            shown = ", ".join(items[:limit])
            more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {label}: {shown}{more}")
    return "; ".join(parts)


def has_card(path: str | PathLike[str]) -> bool:
    """True when ``path`` is a safetensors file (by content, whatever its name) with an
    sr_domains model card."""
    p = Path(path)
    return sniff_weights(p) == "safetensors" and CARD_KEY in read_safetensors(p, False)[0]


__all__ = [
    "CARD_KEY",
    "ModelCard",
    "has_card",
    "load_checkpoint",
    "load_state_strict",
    "read_card",
    "read_state_dict",
    "save_checkpoint",
    "unpickle_error",
]
