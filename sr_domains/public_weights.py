"""Third-party weights: sr_domains' exact loaders first, spandrel second (the ``zoo`` extra).

:func:`load_public_checkpoint` reads ``.pt`` / ``.pth`` files weights-only;
:mod:`sr_domains.weights_report` describes the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, ConfigError
from .models.base import SRModel
from .zoo_notes import NOT_SR, OWN_FAMILIES, SPANDREL_SR_FAMILIES, family_hint

log = logging.getLogger(__name__)
_MEAN_BUFFERS = ("norm_mean_in", "norm_mean_out")
#: (file, note) warnings already given in this process: a file read twice (the CLI reads the
#: scale first, then the model) is reported once
_WARNED: set[tuple[str, str]] = set()


def _warn_once(path: Path, note: str) -> None:
    key = (str(path.resolve()), note)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("%s: %s", path, note)


@dataclass
class Loaded:
    """A loaded public model, which loader read it, the detected family, and notes."""

    model: SRModel
    loader: str
    family: str
    notes: list[str] = field(default_factory=list)


def load_public_checkpoint(
    path: str | PathLike[str],
    arch: str | None = None,
    scale: int | None = None,
    in_channels: int | None = None,
    *,
    default_scale: int | None = None,
    extra_arches: bool = False,
    **config: Any,
) -> SRModel:
    """Load third-party weights (``.pt``/``.pth`` read weights-only, or ``.safetensors``).

    A file of :func:`~sr_domains.checkpoint.save_checkpoint` (with its model card) is read by
    :func:`~sr_domains.checkpoint.load_checkpoint`. Otherwise sr_domains' exact loaders come
    first: official EDSR (EDSR-PyTorch) and RCAN, BasicSR EDSR / RCAN / RRDBNet (including
    Real-ESRGAN's ``params_ema`` files and its x2 pixel-unshuffle variant), BSRGAN-style and
    old ESRGAN (``model.0 ... model.10``) RRDBNets, and plain SRCNN / VDSR-style state dicts
    with the keys of ``srcnn``. Block counts, features, channels and scale are read from the
    tensors. Anything else, or a variant those loaders refuse (ESRGAN
    x1/x8 or ESRGAN+, RCAN with pixel-unshuffle...), goes to spandrel when the ``zoo`` extra is
    installed (:mod:`sr_domains.zoo`). The model gets a ``card`` naming the file and family.

    Args:
        path: the weights file.
        arch: an sr_domains architecture or preset (``"rrdb"``, ``"srcnn-residual"``) to
            require our loaders, ``"spandrel"`` or ``"spandrel:<id>"`` to require spandrel.
        scale, in_channels: checked against the file (or used where it cannot tell).
        default_scale: the scale to assume where the file cannot tell (SRCNN, one-stage RRDB
            x2/x3); unlike ``scale`` it is not an error when the file says otherwise.
        extra_arches: also try ``spandrel_extra_arches`` (restrictive licences; never
            installed by sr_domains).
        config: options the file cannot tell (``pixel_range``, ``res_scale``, ...); our
            architectures only.

    Raises:
        CheckpointError: unreadable file, unknown layout (the message says what the keys look
            like and what is supported), or any missing / unexpected key or shape mismatch.
        MissingDependencyError: ``arch="spandrel..."`` without the ``zoo`` extra.
    """
    return load_with_report(
        Path(path), arch, scale, in_channels, default_scale, extra_arches, config
    ).model


def _own_state_message(path: Path) -> str:
    """Why an sr_domains state dict without a card cannot be loaded here, and what to use."""
    from .weights_files import is_resume_checkpoint

    if is_resume_checkpoint(path):
        return (
            f"{path}: this is a training run's resume checkpoint (read by train --resume); "
            f"use the weights the run writes when it ends, {path.parent / 'weights.safetensors'}"
        )
    return (
        f"{path}: this is a bare sr_domains state dict; save models with save_checkpoint() "
        "and read them with load_checkpoint(), or build the model and load_state_dict()"
    )


def load_with_report(
    path: Path,
    arch: str | None,
    scale: int | None,
    in_channels: int | None,
    default_scale: int | None,
    extra_arches: bool,
    config: dict[str, Any],
) -> Loaded:
    """:func:`load_public_checkpoint` with its arguments spelled out; says how the file was read."""
    from .checkpoint import has_card, read_state_dict

    if has_card(path):  # save_checkpoint's file: its card says how to build it
        return _own_checkpoint(Path(path), arch, scale, in_channels, config)
    state = read_state_dict(path)
    user = dict(config)
    if scale is not None:
        user["scale"] = scale
    if in_channels is not None:
        user["in_channels"] = in_channels
    if arch is not None and arch.lower().split(":")[0] == "spandrel":
        family = arch.split(":", 1)[1] if ":" in arch else None
        return _attach(path, _spandrel(path, state, user, extra_arches, family), [])
    own, preset = _own_arch(arch)
    if "norm_mean_in" in state:
        raise CheckpointError(_own_state_message(Path(path)))
    from .checkpoint_formats import detect_layout

    layout = detect_layout(state)
    if layout is None:
        if own is None and _spandrel_ok():
            from .zoo import detect_spandrel

            if detect_spandrel(state, extra_arches) is not None:
                return _attach(path, _spandrel(path, state, user, extra_arches, None), [])
        raise unrecognised(path, state)
    if own is not None and own != layout.arch:
        raise CheckpointError(f"{path}: asked for arch {arch!r} but the file is {layout.name}")
    try:
        model, notes = _load_own(path, state, layout, user, preset, default_scale)
        return _attach(path, Loaded(model, "sr_domains", layout.name), notes)
    except CheckpointError as exc:
        if own is not None or config:
            raise
        return _attach(path, _fallback(path, state, user, extra_arches, exc, layout.name), [])


def _own_checkpoint(
    path: Path,
    arch: str | None,
    scale: int | None,
    in_channels: int | None,
    config: dict[str, Any],
) -> Loaded:
    """A file of :func:`~sr_domains.checkpoint.save_checkpoint`, read by
    :func:`~sr_domains.checkpoint.load_checkpoint` (its own card kept); ``arch``, ``scale``
    and ``in_channels`` are checked against the card, architecture options refused."""
    from .checkpoint import load_checkpoint

    if config:
        raise CheckpointError(
            f"{path}: an sr_domains checkpoint, whose model card sets the architecture; "
            f"load it without {', '.join(sorted(config))} (or with load_checkpoint())"
        )
    model, card = load_checkpoint(path)
    if arch is not None and not {arch, _own_arch(arch)[0]} & {
        card.arch,
        card.arch.partition(":")[0],
    }:
        raise CheckpointError(f"{path}: asked for arch {arch!r} but the file is {card.arch}")
    for name, want in (("scale", scale), ("in_channels", in_channels)):
        if want is not None and want != getattr(model, name):
            raise CheckpointError(
                f"{path}: {name}={want!r} given, but the file has {getattr(model, name)!r}"
            )
    model.card = card
    log.info("%s: an sr_domains checkpoint; read with load_checkpoint()", path)
    return Loaded(model, "sr_domains", f"sr_domains checkpoint ({card.arch})")


def _spandrel_ok() -> bool:
    from .zoo import spandrel_available

    return spandrel_available()


def _own_arch(arch: str | None) -> tuple[str | None, dict[str, Any]]:
    """``(architecture, preset options)`` for an sr_domains name like ``"srcnn-residual"``."""
    if arch is None:
        return None, {}
    from .models import get_arch, model_registry

    name = arch.lower()
    for base in model_registry().names():
        spec = get_arch(base)
        if name == base:
            return base, {}
        for preset, options in spec.presets.items():
            if name == f"{base}-{preset}":
                return base, dict(options)
    return name.partition("-")[0], {}  # not ours: refused below unless the layout agrees


def _load_own(
    path: Path,
    state: dict[str, torch.Tensor],
    layout: Any,
    user: dict[str, Any],
    preset: dict[str, Any],
    default_scale: int | None,
) -> tuple[SRModel, list[str]]:
    from .checkpoint import mismatch_report
    from .checkpoint_formats import source_key
    from .models import get_arch

    try:
        found, defaults = layout.infer(state, user)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {layout.name}: {exc}") from exc
    for key, value in found.items():
        if key in user and user[key] != value:
            raise CheckpointError(f"{path}: {key}={user[key]!r} given, but the file has {value!r}")
    assumed = {k: v for k, v in defaults.items() if k not in user and k not in preset}
    if default_scale is not None and "scale" not in found:
        defaults["scale"] = default_scale  # the caller's choice (e.g. --scale): not assumed here
        assumed.pop("scale", None)
    try:
        model = get_arch(layout.arch).build(**{**defaults, **preset, **user, **found})
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {layout.name}: {exc}") from exc
    own = model.state_dict()
    rules = layout.rules(model.config)
    mapping = {k: source_key(k, rules) for k in own if k not in _MEAN_BUFFERS}
    wanted = set(mapping.values())
    missing = [src for src in mapping.values() if src not in state]
    unexpected = [k for k in state if k not in wanted and k not in layout.extra]
    shapes = [
        f"{src} {tuple(state[src].shape)} vs {tuple(own[k].shape)}"
        for k, src in mapping.items()
        if src in state and state[src].shape != own[k].shape
    ]
    problems = mismatch_report(missing, unexpected, shapes)
    if problems:
        raise CheckpointError(f"{path}: {layout.name} checkpoint does not match: {problems}")
    new_state = {k: state[src] for k, src in mapping.items()}
    try:
        means = layout.means(state, model.config)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    new_state.update(zip(_MEAN_BUFFERS, means) if means else ((k, own[k]) for k in _MEAN_BUFFERS))
    model.load_state_dict(new_state, strict=True)
    notes = []
    if assumed:
        text = ", ".join(f"{k}={v!r}" for k, v in assumed.items())
        notes.append(f"not stored in the file, assumed: {text} (pass them to override)")
        new = [f"{k}={v!r}" for k, v in assumed.items() if (str(path.resolve()), k) not in _WARNED]
        _WARNED.update((str(path.resolve()), k) for k in assumed)
        if new:  # a wrong guess gives a wrong model: say it (once per file and setting)
            log.warning(
                "%s: not stored in the file, assumed: %s (pass them to override)",
                path,
                ", ".join(new),
            )
    if layout.note:
        notes.append(layout.note)
        _warn_once(path, layout.note)
    log.info("%s: loaded %s weights as %s", path, layout.name, model.info().config)
    return model.eval(), notes


def _spandrel(
    path: Path,
    state: dict[str, torch.Tensor],
    user: dict[str, Any],
    extra_arches: bool,
    family: str | None,
) -> Loaded:
    from .zoo import import_spandrel, load_spandrel

    options = sorted(set(user) - {"scale", "in_channels"})
    if options:
        raise CheckpointError(
            f"{path}: options {options} apply to sr_domains' own architectures; spandrel reads "
            "everything from the file"
        )
    model = load_spandrel(state, path, extra_arches=extra_arches, family=family)
    for key in ("scale", "in_channels"):
        if key in user and user[key] != getattr(model, key):
            raise CheckpointError(
                f"{path}: {key}={user[key]!r} given, but the file has {getattr(model, key)!r}"
            )
    cfg = model.config
    tags = f"; {', '.join(cfg.tags)}" if cfg.tags else ""
    family_text = f"{cfg.family_name} (spandrel id {cfg.family}{tags})"
    return Loaded(model, f"spandrel {import_spandrel().__version__}", family_text)


def _fallback(
    path: Path,
    state: dict[str, torch.Tensor],
    user: dict[str, Any],
    extra_arches: bool,
    own_error: CheckpointError,
    layout_name: str,
) -> Loaded:
    """sr_domains' layout loader refused the file: spandrel may know the variant."""
    why = str(own_error).removeprefix(f"{path}: ")
    if not _spandrel_ok():
        hint = family_hint(state)
        if hint and not any(w in hint for w in NOT_SR):
            raise CheckpointError(
                f"{own_error}; it looks like {hint}, which spandrel reads: install sr-domains[zoo]"
            ) from own_error
        raise own_error
    from .zoo import detect_spandrel

    if detect_spandrel(state, extra_arches) is None:
        raise own_error
    try:
        loaded = _spandrel(path, state, user, extra_arches, None)
    except CheckpointError as exc:
        raise CheckpointError(f"{own_error}; {str(exc).removeprefix(f'{path}: ')}") from exc
    loaded.notes.append(f"sr_domains' {layout_name} loader declined ({why}); spandrel read it")
    log.info(
        "%s: sr_domains' %s loader declined (%s); loaded with spandrel", path, layout_name, why
    )
    return loaded


def _attach(path: Path, loaded: Loaded, notes: list[str]) -> Loaded:
    """Give the model a card naming the file and the detected family (used in provenance)."""
    from .checkpoint import ModelCard

    loaded.notes[:0] = notes
    m = loaded.model
    rgb = m.in_channels == m.out_channels == 3
    m.card = ModelCard.for_model(
        m,
        name=path.stem,
        bands=["red", "green", "blue"] if rgb else [],
        modality="rgb" if rgb else "any",
        notes=f"{loaded.family} weights read by {loaded.loader} from {path.name}",
    )
    return loaded


def unrecognised(path: Path, state: dict[str, torch.Tensor]) -> CheckpointError:
    """One line: what the file is not, what it looks like, and what is supported."""
    keys = ", ".join(list(state)[:6])
    parts = [f"{path}: unrecognised checkpoint layout (first keys: {keys})"]
    hint = family_hint(state)
    available = _spandrel_ok()
    if hint and any(w in hint for w in NOT_SR):
        parts.append(f"it looks like {hint}, which is not a super-resolution model")
    elif hint and not available:
        parts.append(f"it looks like {hint}: install sr-domains[zoo] (spandrel) to load it")
    elif hint:
        parts.append(f"it looks like {hint}, but this spandrel version does not recognise it")
    elif available:
        from .zoo import detect_extra

        extra = detect_extra(state)
        if extra is not None:
            parts.append(
                f"it is {extra.name} from spandrel_extra_arches (restrictive licence, e.g. "
                "non-commercial): pass extra_arches=True (CLI --extra-arches) to use it"
            )
    zoo = "spandrel" if available else "sr-domains[zoo] (spandrel)"
    parts.append(
        f"sr_domains reads {', '.join(OWN_FAMILIES)}; {zoo} adds 40+ families, e.g. "
        f"{', '.join(SPANDREL_SR_FAMILIES[:8])}"
    )
    return CheckpointError("; ".join(parts))


__all__ = ["Loaded", "load_public_checkpoint", "load_with_report", "unrecognised"]
