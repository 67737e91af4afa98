"""Checkpoints: safetensors weights with a model card, and third-party ``.pt``/``.pth`` weights.

sr_domains checkpoints are safetensors files whose metadata holds a JSON :class:`ModelCard` under
the key ``"sr_domains.card"``; the card names the architecture and its full config, so
:func:`load_checkpoint` rebuilds the model without being told what it is. Public weights in the
official EDSR/RCAN, BasicSR and ESRGAN layouts are read by
:func:`sr_domains.public_weights.load_public_checkpoint` (key mapping in
:mod:`sr_domains.checkpoint_formats`).

Moved out, and re-exported here: :class:`ModelCard`, :func:`read_card` and :func:`has_card` to
:mod:`sr_domains.checkpoint_card`; the checks of weights against a network
(:func:`load_state_strict`, ``check_card_fits``, ``mismatch_report``) to
:mod:`sr_domains.checkpoint_fit`. Saving and loading stay here.
"""

from __future__ import annotations

import logging
import os
import uuid
from os import PathLike
from pathlib import Path

import torch

from .checkpoint_card import (  # re-exported: the model card lives there
    CARD_KEY,
    SPECTRAL_CHOICES,  # noqa: F401
    ModelCard,
    _card_json,
    _complete_card,
    has_card,
    read_card,
)
from .checkpoint_fit import (  # re-exported: checking weights against a network lives there
    check_card_fits,
    load_state_strict,
    mismatch_report,  # noqa: F401
)
from .config import from_dict
from .errors import CheckpointError, RegistryError
from .models.base import SRModel
from .output_names import name_key
from .weights_files import (  # re-exported: the readers of any weights file live there
    DIGEST_KEY,
    check_tensors,
    read_safetensors,
    read_state_dict,
    sniff_weights,  # noqa: F401
    tensors_digest,
    unpickle_error,
)

log = logging.getLogger(__name__)


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
        card: the card to write (default: the model's own ``model.card``, as
            :func:`load_checkpoint` and the shipped weights set it, so a reloaded copy keeps
            its intensity profile; for weights changed since they were loaded, without the
            card's name, scores and notes); architecture fields are filled (and checked) from
            ``model``.
        overwrite: replace an existing file instead of raising :class:`OutputExistsError`.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    from .output_checks import check_existing

    path = Path(path)
    # (kept, even with overwrite: a text file named .safetensors, a training last.pt, an export)
    check_existing(path, kind="file", overwrite=overwrite, fmt="safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    digest = tensors_digest(tensors)
    card = _complete_card(model, card or _own_card(model, digest))
    path.parent.mkdir(parents=True, exist_ok=True)  # (as the raster and volume writers do)
    metadata = {"format": "pt", CARD_KEY: card.to_json(), DIGEST_KEY: digest}
    data = save(tensors, metadata=metadata)
    # Write a fresh name in the same folder (same file system: os.replace is atomic) with plain
    # open(), so the file gets the usual umask permissions (safetensors' save_file uses 0600).
    tmp = path.with_name(
        f".{name_key(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    )  # (fits NAME_MAX)
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


def _own_card(model: SRModel, digest: str) -> ModelCard:
    """The card ``save_checkpoint`` writes when given none: the model's own (``model.card``)
    while its weights are those the card was loaded with (``model.card_digest``); for changed
    weights (a fine-tune) its profile, bands and spectra, but not its name, scores or notes."""
    import dataclasses

    card = getattr(model, "card", None)
    if not isinstance(card, ModelCard):
        return ModelCard()
    if getattr(model, "card_digest", None) == digest:
        return card
    return dataclasses.replace(
        card,
        name="",
        metrics={},
        training_data="",
        notes=f"derived from {card.name or card.arch} (weights changed since it was loaded)",
    )


def load_checkpoint(
    path: str | PathLike[str], device: str | torch.device = "cpu"
) -> tuple[SRModel, ModelCard]:
    """Rebuild the model described by a checkpoint's card and load its weights strictly.

    Returns:
        ``(model, card)``; the model is in eval mode on ``device`` and carries the card as
        ``model.card`` (its profile is the default of every upscale API).
    """
    path = Path(path)
    metadata, state = read_safetensors(path, tensors=True)
    card_json = _card_json(path, metadata)
    check_tensors(path, state)
    try:
        card = ModelCard.from_json(card_json)
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid model card: {exc}") from exc
    with torch.random.fork_rng(devices=[]):  # (a network's random init: the caller's RNG)
        model = _build_loaded(path, state, card, device)
    for name in ("scale", "in_channels"):  # a hand-edited card must not contradict its network
        said, built = getattr(card, name), getattr(model, name)
        if said and said != built:
            raise CheckpointError(
                f"{path}: the card says {name} {said} but its network has {built}"
            )
    model.source_path = path.resolve()  # what a fine-tuned copy must never replace
    model.card = card
    model.card_digest = metadata.get(DIGEST_KEY) or tensors_digest(state)  # what it describes
    return model.to(device).eval(), card


def _build_loaded(
    path: Path, state: dict[str, torch.Tensor], card: ModelCard, device: str | torch.device
) -> SRModel:
    """The network of ``card`` holding ``state`` (a spandrel one re-detected)."""
    from .models import get_arch

    if card.arch.startswith("spandrel:"):
        return _load_spandrel_checkpoint(path, state, card, device)
    try:
        spec = get_arch(card.arch)
        config = from_dict(spec.config_cls, card.config, where=f"{card.arch} config")
    except (ValueError, RegistryError) as exc:
        raise CheckpointError(f"{path}: invalid model card: {exc}") from exc
    check_card_fits(path, spec, config, state)
    model = spec.model_cls(config)
    load_state_strict(model, state, path)
    return model


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
