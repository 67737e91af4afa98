"""Shipped weights and model resolution for the ``upscale`` entry points.

Shipped weights live in ``sr_domains/weights/<name>.safetensors`` with their model card in the
file's metadata; they are found by listing that folder when first asked (no import-time work and
no downloads, ever).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import BandMismatchError, CheckpointError, ConfigError, ModelScaleError
from .models import SRModel
from .options import is_whole

log = logging.getLogger(__name__)
WEIGHTS_DIR = Path(__file__).with_name("weights")
#: A scale without shipped weights of its own -> the scale whose default serves it, resampled
#: (x3: the x2 default, then bicubic x1.5: above bicubic x3 on every battery case, where the
#: x4 default shrunk to x3 fell below it on one; docs/weights.md).
RESAMPLED_FROM = {3: 2}


@dataclass(frozen=True)
class PretrainedEntry:
    """A shipped weights file and the card fields used to choose it."""

    name: str
    path: Path
    arch: str
    scale: int
    in_channels: int
    bands: tuple[str, ...]
    modality: str  # "any", "rgb", "multispectral", "mri", "ct", ...
    card: dict[str, Any]


@cache
def _entries() -> tuple[PretrainedEntry, ...]:
    from .checkpoint import read_card

    out = []
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")):
        try:
            card = read_card(path)
        except CheckpointError as exc:
            log.warning("skipping shipped weights %s: %s", path.name, exc)
            continue
        out.append(
            PretrainedEntry(
                name=path.stem,
                path=path,
                arch=str(card.get("arch")),
                scale=int(card.get("scale", 0)),
                in_channels=int(card.get("in_channels", 0)),
                bands=tuple(card.get("bands") or ()),
                modality=str(card.get("modality") or "any"),
                card=card,
            )
        )
    return tuple(out)


def list_pretrained() -> list[PretrainedEntry]:
    """All shipped weights."""
    return list(_entries())


def load_pretrained(name: str, device: str = "cpu") -> SRModel:
    """Load shipped weights by name; the model card is attached as ``model.card``."""
    from .checkpoint import load_checkpoint

    for e in _entries():
        if e.name == name:
            model, _ = load_checkpoint(e.path, device=device)  # (its card: model.card)
            return model
    names = ", ".join(e.name for e in _entries()) or "none shipped"
    raise ConfigError(f"no shipped weights called {name!r} (available: {names})")


def default_pretrained(scale: int, n_bands: int) -> PretrainedEntry:
    """The shipped weights ``upscale`` uses when no model is named.

    A model whose band count equals the data's wins; otherwise a single-channel model, which
    is applied band by band. Among several, the canonical name wins (the shortest:
    ``sr-lite-gray-x2`` before its variant ``sr-lite-gray-x2-bicubic``). No x3 weights ship:
    for x3 it is the x2 default (:data:`RESAMPLED_FROM`), whose output :func:`resolve_model`
    resamples to x3 (:class:`~sr_domains.models.resampled.ResampledSR`).
    """
    entries = sorted(_entries(), key=lambda e: (len(e.name), e.name))
    for s in (scale, RESAMPLED_FROM.get(scale)):
        same = [e for e in entries if e.scale == s and e.in_channels == n_bands]
        single = [e for e in entries if e.scale == s and e.in_channels == 1]
        for group in (same, single):
            if group:
                return group[0]
    avail = ", ".join(f"{e.name} (x{e.scale}, {e.in_channels} band)" for e in _entries())
    raise ModelScaleError(
        f"no shipped weights for x{scale} with {n_bands} band(s) or a single band "
        f"(shipped: {avail or 'none'}); pass --weights PATH or --model NAME"
    )


def _whole_scale(scale: object) -> int:
    """``scale`` as an int; a bool, a string or a fractional number is refused."""
    if not is_whole(scale):
        raise ConfigError(f"scale must be a whole number (e.g. 2, 3 or 4), got {scale!r}")
    return int(scale)  # type: ignore[call-overload]


def _names_arch(name: str, arch: str) -> bool:
    """``name`` (a ``--model`` given with a weights file) is ``arch`` or one of its presets
    (``srcnn-residual`` for ``srcnn``), or ``spandrel`` for a spandrel card."""
    n, a = name.lower(), arch.lower()
    if a.startswith("spandrel:"):
        return n == "spandrel" or n == a
    return n == a or n.startswith(f"{a}-")


def resolve_model(
    model: SRModel | str | None = None,
    weights: str | PathLike[str] | None = None,
    *,
    scale: int | None,
    n_bands: int | None,
    device: str = "cpu",
) -> SRModel:
    """The model an ``upscale`` call should use.

    Args:
        model: a built model, a shipped weights name, or None for the shipped default. An
            architecture name is accepted only with ``weights`` (it then names the layout of a
            public checkpoint): a model with random weights is never made here; build one with
            :func:`sr_domains.create_model` and pass the object if that is really wanted.
        weights: a checkpoint path: our safetensors, or public weights (``.pt``/``.pth``, or
            safetensors without our card) read by
            :func:`~sr_domains.public_weights.load_public_checkpoint`; overrides ``model``, which
            may then name the layout (``"srcnn-residual"``, ``"spandrel"``).
        scale: requested scale (must match the model's; None accepts the model's own, but
            then a model or weights must be given).
        n_bands: number of bands/channels of the data; None accepts any model (medical
            planes are repeated on every input channel).
    """
    from .checkpoint import has_card, load_checkpoint
    from .public_weights import load_public_checkpoint

    if scale is not None:
        scale = _whole_scale(scale)
    if weights is not None:
        p = Path(weights)
        if has_card(p):  # (by content: a renamed file is still ours)
            m, card = load_checkpoint(p, device=device)  # (its card: m.card)
            if isinstance(model, str) and not _names_arch(model, card.arch):
                raise ConfigError(
                    f"--model {model} contradicts {p}: its model card says {card.arch} "
                    "(a checkpoint with a card needs no --model)"
                )
        else:  # public weights: our exact layouts, then spandrel (the zoo extra)
            arch = model if isinstance(model, str) else None
            m = load_public_checkpoint(p, arch=arch, default_scale=scale)
            m.source_path = p.resolve()  # what a fine-tuned copy must never replace
    elif isinstance(model, SRModel):
        m = model
    elif isinstance(model, str):
        if not any(e.name == model for e in _entries()):
            raise ConfigError(_unknown_model_message(model))
        m = load_pretrained(model, device=device)
    else:
        if scale is None:
            raise ConfigError("choose the scale (or the model) to pick the shipped default weights")
        entry = default_pretrained(scale, n_bands or 1)
        m = load_pretrained(entry.name, device=device)
        if entry.scale != scale:
            from .models.resampled import resampled

            log.info("no shipped x%d weights: %s, resampled to x%d", scale, entry.name, scale)
            m = resampled(m, scale)
    if scale is not None and m.scale != scale:
        hint = (
            f" (no x{scale} weights ship: without --model/--weights, --scale {scale} runs the "
            f"x{RESAMPLED_FROM[scale]} default resampled to x{scale})"
            if scale in RESAMPLED_FROM and isinstance(model, str) and weights is None
            else ""
        )
        from .model_label import model_label

        which = (
            f"{weights}: the weights upscale"
            if weights is not None
            else f"the model {model_label(m)} upscales"
        )
        raise ModelScaleError(f"{which} x{m.scale} but x{scale} was requested{hint}")
    if n_bands is not None and m.in_channels not in (1, n_bands):
        raise BandMismatchError(m.in_channels, n_bands, "the data has {n}" + _trained_on(m))
    return m


def _trained_on(model: SRModel) -> str:
    """``" (it was trained on bands 3,2,1,4 of its training files: --bands 3,2,1,4)"``: the
    band selection the card records (:attr:`~sr_domains.checkpoint.ModelCard.source_bands`),
    as a hint for a file of the same product; empty when the card does not say."""
    card = getattr(model, "card", None)
    given = (
        card.get("source_bands") if isinstance(card, dict) else getattr(card, "source_bands", None)
    )
    try:
        picked = [int(b) for b in given or ()]
    except (TypeError, ValueError):
        return ""
    if len(picked) != model.in_channels:
        return ""
    listed = ",".join(map(str, picked))
    return f" (it was trained on bands {listed} of its training files: --bands {listed})"


def model_scale(model: str | None, weights: str | Path | None) -> int | None:
    """The scale of the named shipped weights or checkpoint file, or None when neither is
    given (the CLI's default for ``--scale``: the model's own)."""
    from .checkpoint import has_card, read_card
    from .public_weights import load_public_checkpoint

    if weights is not None:
        p = Path(weights)
        if p.is_file() and has_card(p):
            return int(read_card(p)["scale"])
        return int(load_public_checkpoint(p).scale)
    if model is not None:
        for e in _entries():
            if e.name == model:
                return e.scale
    return None


def looks_like_path(name: str) -> bool:
    """A model "name" that is a file path (a folder in it, or a weights file's suffix)."""
    suffix = Path(name).suffix.lower()
    return "/" in name or "\\" in name or suffix in (".safetensors", ".pt", ".pth", ".ckpt")


def _unknown_model_message(name: str) -> str:
    from .models import list_models

    shipped = ", ".join(e.name for e in _entries()) or "none"
    if looks_like_path(name):
        return (
            f"{name!r} looks like a weights file, not a model name: pass it as --weights PATH "
            "(Python: weights=PATH)"
        )
    if name in list_models():
        return (
            f"{name!r} is an architecture without weights; pass --weights PATH (Python: "
            f"weights=) or one of the shipped names: {shipped}. For random weights (tests "
            f"only) build the model with sr_domains.create_model({name!r}, ...) and pass it"
        )
    return (
        f"unknown model {name!r}: not a shipped weights name ({shipped}) nor an architecture "
        f"({', '.join(list_models())}); see `sr-domains models`"
    )
