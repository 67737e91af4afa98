"""What a weights file is: :func:`inspect_checkpoint` (``sr-domains models --inspect FILE``).

The file is loaded exactly as ``--weights`` would load it (sr_domains' own loaders first, then
spandrel), so what the report says is what ``upscale`` will run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .public_weights import Loaded, load_with_report
from .zoo_notes import GLOBAL_FAMILIES, OWN_LICENCE

if TYPE_CHECKING:
    from .zoo import SpandrelConfig


@dataclass(frozen=True)
class CheckpointReport:
    """What :func:`inspect_checkpoint` found in a weights file."""

    path: str
    loader: str
    family: str
    arch: str
    scale: int
    in_channels: int
    out_channels: int
    n_params: int
    input_range: str
    size_multiple: int
    min_size: int
    receptive_radius: int | None
    tiling: str
    fp16_safe: bool
    bf16_safe: bool
    licence: str
    notes: tuple[str, ...] = ()
    radius_text: str = ""
    bands: tuple[str, ...] = ()
    source_bands: tuple[int, ...] = ()
    modality: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The report as a JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """Aligned ``label: value`` lines, for people."""
        radius = self.radius_text or f"{self.receptive_radius} LR px"
        size = f"multiple of {self.size_multiple}" + (
            f", at least {self.min_size} px (smaller inputs are padded)" if self.min_size else ""
        )
        rows = [
            ("file", self.path),
            ("loader", self.loader),
            ("family", self.family),
            ("arch", f"{self.arch} (provenance name)"),
            ("scale", f"x{self.scale}"),
            ("channels", f"{self.in_channels} in, {self.out_channels} out"),
            *_card_rows(self),
            ("parameters", f"{self.n_params:,}"),
            ("input range", self.input_range),
            ("input size", size),
            ("receptive radius", radius),
            ("tiling", self.tiling),
            ("fp16 / bf16", f"{_yes(self.fp16_safe)} / {_yes(self.bf16_safe)}"),
            ("licence", self.licence),
        ]
        rows += [("note", n) for n in self.notes]
        return "\n".join(f"{k + ':':<18}{v}" for k, v in rows)


def _card_rows(r: CheckpointReport) -> list[tuple[str, str]]:
    """The rows only a model card can fill (what the model was trained on)."""
    rows = [("modality", r.modality)] if r.modality else []
    if r.bands:
        rows.append(("bands", ", ".join(r.bands)))
    if r.source_bands:
        numbers = ",".join(str(b) for b in r.source_bands)
        rows.append(("trained on bands", f"{numbers} of its training files (--bands {numbers})"))
    return rows


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def inspect_checkpoint(
    path: str | PathLike[str], *, extra_arches: bool = False, **options: Any
) -> CheckpointReport:
    """Load a weights file the way ``--weights`` would and describe it.

    Accepts sr_domains ``.safetensors`` (with a model card) and everything
    :func:`~sr_domains.public_weights.load_public_checkpoint` reads; ``options`` are passed to it
    (``arch``, ``scale``, ``in_channels``, config fields).

    Raises:
        CheckpointError: the file cannot be used; the message says why and what is supported.
    """
    from .checkpoint import has_card, load_checkpoint

    path = Path(path)
    if has_card(path):  # (by content: a renamed file is still ours)
        model, card = load_checkpoint(path)
        loaded = Loaded(model, "sr_domains checkpoint (model card)", card.name or card.arch)
        if card.profile:
            loaded.notes.append(f"intensity profile from the card: {card.profile}")
        return dataclasses.replace(
            _report(path, loaded),
            bands=tuple(card.bands),
            source_bands=tuple(card.source_bands),
            modality=card.modality,
        )
    arch, scale, channels = (options.pop(k, None) for k in ("arch", "scale", "in_channels"))
    loaded = load_with_report(path, arch, scale, channels, None, extra_arches, options)
    return _report(path, loaded)


def _report(path: Path, loaded: Loaded) -> CheckpointReport:
    from .inference import resolve_tiling
    from .zoo_notes import licence_note

    m = loaded.model
    info = m.info()
    t = resolve_tiling(m)
    if t.exact:
        tiling = f"exact (overlap {t.overlap} px covers the receptive field)"
    else:
        ramp = t.overlap - 2 * t.margin
        tiling = (
            f"blended: margin {t.margin} px + {ramp} px ramp at the default tile {t.tile}; "
            "tiled output approximates whole-image output (larger --tile/--overlap: closer)"
        )
    cfg = m.config
    min_size = 0
    radius_text = "" if info.receptive_radius is not None else "global (global pooling)"
    if m.arch.startswith("spandrel:"):
        cfg = cast("SpandrelConfig", cfg)  # a spandrel:* arch is a SpandrelSR
        if info.receptive_radius is None:
            radius_text = "unknown (not computed for this family)"
            if cfg.family in GLOBAL_FAMILIES:
                radius_text = f"global ({GLOBAL_FAMILIES[cfg.family]})"
            elif cfg.global_pooling:
                radius_text = "global (the network pools over the whole input)"
        licence = licence_note(cfg.family, cfg.extra_arch)
        min_size = cfg.min_size
        rgb = " (RGB order)" if m.in_channels == 3 else ""
        input_range = f"[0, 1]{rgb}; output not clamped (the value rules clamp in stored units)"
        if cfg.size_multiple > 1:
            loaded.notes.append(
                f"tiles start on a grid of {cfg.size_multiple} px (its attention windows or size "
                "requirement), so tiles see the same windows as the whole image"
            )
        if cfg.tiling != "supported":
            loaded.notes.append(f"spandrel marks tiling for this model as {cfg.tiling}")
    else:
        licence = OWN_LICENCE
        r = getattr(cfg, "pixel_range", 1.0)
        input_range = "[0, 1]" + (
            f" (the model scales it to [0, {r:g}] and subtracts its mean internally)"
            if r != 1.0
            else ""
        )
    return CheckpointReport(
        path=str(path),
        loader=loaded.loader,
        family=loaded.family,
        arch=m.arch,
        scale=info.scale,
        in_channels=info.in_channels,
        out_channels=info.out_channels,
        n_params=info.n_params,
        input_range=input_range,
        size_multiple=info.size_multiple,
        min_size=min_size,
        receptive_radius=info.receptive_radius,
        tiling=tiling,
        fp16_safe=info.fp16_safe,
        bf16_safe=info.bf16_safe,
        licence=licence,
        notes=tuple(loaded.notes),
        radius_text=radius_text,
    )


__all__ = ["CheckpointReport", "inspect_checkpoint"]
