"""Score a model against bicubic on whole images: PSNR/SSIM (and SAM/ERGAS for multi-band).

Protocol (the same for validation during training and for ``sr-domains evaluate``): each HR
image, in the normalized space of its intensity profile (fitted once per file), is cropped to
a multiple of the scale and degraded to LR with the configured degradation; the LR goes
through the real inference engine (:class:`~sr_domains.inference.Upscaler`, tiled) and through
MATLAB-style bicubic upsampling; both are compared with the HR over valid pixels, ``scale``
pixels of border excluded. PSNR and SSIM use data range 1.0 in normalized space = the
profile's fitted range in stored units (e.g. the 0.5-99.5 percentile range of the file), never
a guessed 255. SAM and ERGAS (multi-band) are computed in stored units (the profile inverted),
where zero means zero radiance/reflectance: a per-band offset would change spectral angles.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..degrade import DegradationConfig, describe_degradation
from ..errors import ConfigError, InputFileError
from ..inference import Upscaler
from ..models.base import SRModel
from .scoring import (
    ImageScore,
    Panel,
    make_lr,
    min_scorable,
    score_image,
    score_images,
    summarize,
)

if TYPE_CHECKING:
    from .battery import Case

log = logging.getLogger(__name__)


def format_table(scores: Sequence[ImageScore], title: str = "") -> str:
    """A Markdown table: one row per image and the mean; SR vs bicubic."""
    multi = any(s.sam is not None for s in scores)
    head = ["image", "size", "PSNR bicubic", "PSNR SR", "gain dB", "SSIM bicubic", "SSIM SR"]
    if multi:
        head += ["SAM bicubic", "SAM SR", "ERGAS bicubic", "ERGAS SR"]
    rows = [head, ["---"] * len(head)]

    def fmt(v: float | None, nd: int) -> str:
        return "" if v is None else f"{v:.{nd}f}"

    def row(name: str, size: str, d: dict[str, float | None]) -> list[str]:
        r = [name, size, fmt(d["psnr_bicubic"], 2), fmt(d["psnr"], 2)]
        r += [f"{d['psnr'] - d['psnr_bicubic']:+.2f}"]  # type: ignore[operator]
        r += [fmt(d["ssim_bicubic"], 4), fmt(d["ssim"], 4)]
        if multi:
            r += [fmt(d.get("sam_bicubic"), 2), fmt(d.get("sam"), 2)]
            r += [fmt(d.get("ergas_bicubic"), 2), fmt(d.get("ergas"), 2)]
        return r

    for s in scores:
        size = "x".join(str(v) for v in s.shape[1:]) + (f"x{s.shape[0]}" if s.shape[0] > 1 else "")
        rows.append(row(s.name, size, s.__dict__))
    if len(scores) > 1:
        rows.append(row("**mean**", "", summarize(scores)))  # type: ignore[arg-type]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    return (f"{title}\n\n" if title else "") + "\n".join(lines)


def _display(x: np.ndarray) -> np.ndarray:
    """(C, h, w) normalized -> (h, w) or (h, w, 3) in [0, 1] for display (first 3 bands)."""
    img = np.clip(x[:3] if x.shape[0] >= 3 else x[:1], 0.0, 1.0)
    return img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)


def save_comparison(
    path: str | os.PathLike[str],
    panels: Sequence[Panel],
    title: str = "",
    *,
    inputs: Sequence[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Write a PNG grid, one row per image: LR (nearest) | bicubic | SR | HR (atomic write;
    an existing ``path`` only with ``overwrite``, never one of ``inputs``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..io_safety import atomic_output

    path = Path(path)
    n = len(panels)
    fig, axes = plt.subplots(n, 4, figsize=(12, 3.1 * n + 0.4), squeeze=False)
    for r, p in enumerate(panels):
        for c, (label, img) in enumerate(
            (("LR (nearest)", p.lr_nearest), ("bicubic", p.bicubic), ("SR", p.sr), ("HR", p.hr))
        ):
            ax = axes[r][c]
            shown = _display(img)
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(f"{p.name}\n{label}" if c == 0 else f"\n{label}", fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        with atomic_output(path, inputs, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path


@dataclass
class EvalReport:
    """Result of :func:`evaluate`: per-image scores, their summary and the printed table."""

    model: str
    scale: int
    profile: str
    degradation: str
    data: str
    scores: list[ImageScore]
    summary: dict[str, float]
    table: str
    figure: Path | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "scale": self.scale,
            "profile": self.profile,
            "degradation": self.degradation,
            "data": self.data,
            "summary": self.summary,
            "images": [{**s.__dict__, "gain_db": s.gain_db} for s in self.scores],
        }


def report_sources(
    data: Sequence[str | os.PathLike[str]], weights: str | os.PathLike[str] | None
) -> list[Path]:
    """The files a report is made from (data files and weights): its outputs never replace
    them (:mod:`sr_domains.io_safety`)."""
    from .inputs import expand_paths

    return [p for p, _ in expand_paths(data)] + ([Path(weights)] if weights else [])


def _card_order(
    data: Sequence[str | Path], bands: tuple[int, ...] | None, net: SRModel
) -> tuple[int, ...] | None:
    """The selected bands in the order ``upscale`` feeds them to a joint model whose card names
    its bands (:func:`~sr_domains.geo.band_checks.match_bands`: a blue-first file is fed red
    first; a contradiction is warned), when every file of ``data`` is a GeoTIFF and all hold
    them in one order; else None (the files' own order; differing orders are warned)."""
    from .inputs import expand_paths

    files = [p for p, _ in expand_paths(list(data))]
    if not files or any(p.suffix.lower() not in (".tif", ".tiff") for p in files):
        return None
    from ..geo.band_checks import match_bands
    from ..geo.reader import RasterSource

    orders = set()
    for path in files:
        with RasterSource(path, bands) as rs:
            order = match_bands(rs, net)
            orders.add(tuple(rs.indexes) if order is None else tuple(rs.indexes[i] for i in order))
    if len(orders) > 1:
        log.warning(
            "evaluate: the files hold the model's bands in different orders; each is scored in "
            "the order --bands gives (evaluate them one order at a time to match upscale)"
        )
        return None
    return orders.pop()


def evaluate(
    *,
    weights: str | os.PathLike[str] | None = None,
    model: str | None = None,
    data: Sequence[str] = (),
    corpus: str | None = None,
    scale: int | None = None,
    profile: str | None = None,
    bands: tuple[int, ...] | None = None,
    degradation: str | DegradationConfig | Case = "bicubic",
    max_images: int = 50,
    max_pixels: int = 1024 * 1024,
    png: str | os.PathLike[str] | None = None,
    device: str = "auto",
    tile: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> EvalReport:
    """Score weights against bicubic on HR data (see module docs).

    Args:
        weights: a checkpoint; or ``model``: a shipped weights name; neither: the shipped
            default for ``scale`` (default 2) and the data's band count.
        scale: with ``weights``/``model``, checked against the model's scale (a mismatch is a
            :class:`ConfigError`, as in ``upscale``).
        max_images, max_pixels, tile: >= 1, >= 1 and >= 8 (else :class:`ConfigError`).
        data: files, folders or globs; ``corpus``: a built-in offline corpus
            (:mod:`sr_domains.train.corpora`), e.g. ``gray-heldout``.
        profile: intensity recipe (default: the model card's, else ``percentile:0.5,99.5``).
        degradation: a kind with its defaults (``bicubic``, ``wald``, ``kspace``, ``motion``...),
            a quality battery case or its name with its settings (``gauss-0.4``: a
            :data:`sr_domains.train.battery.CASES` item; ``motion`` is the kind: pass the
            case), or a full config; the report names it (a config:
            :func:`~sr_domains.degrade.describe_degradation`).
        png: also write the LR | bicubic | SR | HR figure of the first images; an existing
            file is replaced only with ``overwrite``, a data or weights file never.
    """
    from ..errors import BandMismatchError
    from ..io_safety import preflight
    from ..options import check_tile
    from ..pretrained import resolve_model
    from .data import DataConfig, load_images

    if not data and not corpus:
        raise ConfigError("evaluate: give --data PATHS and/or --corpus NAME")
    if max_images < 1 or max_pixels < 1:
        raise ConfigError(f"max_images and max_pixels must be >= 1, got {max_images}, {max_pixels}")
    check_tile(tile)
    sources = report_sources(data, weights)
    if png:
        preflight(png, sources, overwrite=overwrite)  # before any work
    base = DataConfig(paths=tuple(str(d) for d in data), corpus=corpus, bands=bands)
    # the band count picks the default weights and is checked against the model
    probe = load_images(
        dataclasses.replace(base, profile="identity"), max_pixels=4096, section="evaluate"
    )
    n_bands = probe[0][1].shape[0] if probe else 1
    explicit = weights is not None or model is not None
    try:
        net = resolve_model(
            model, weights, scale=scale if explicit else (scale or 2), n_bands=n_bands
        )
    except BandMismatchError as exc:  # the data it is about: name it
        raise exc.naming(corpus or ", ".join(map(str, data))) from None
    if data and not corpus and net.in_channels > 1:  # the card's band order, as upscale
        bands = _card_order(data, bands, net) or bands
        base = dataclasses.replace(base, bands=bands)
    card = getattr(net, "card", None)
    card_profile = getattr(card, "profile", None) or {}
    recipe = profile or card_profile.get("recipe") or "percentile:0.5,99.5"
    channels = net.in_channels if net.in_channels > 1 else None
    cfg = dataclasses.replace(base, profile=recipe, channels=channels)
    images = load_images(cfg, max_pixels=max_pixels, with_profile=True, section="evaluate")
    images = images[:max_images]
    if not images:
        raise ConfigError(f"evaluate: no images found in {cfg.paths or cfg.corpus}")
    deg, label = _degradation_of(degradation)
    up = Upscaler(net, device=device, tile=tile, amp="off")
    scores, panels = score_images(up, images, degradation=deg, seed=seed, panels=3 if png else 0)
    if not scores:  # every image too small (score_images named each)
        raise InputFileError(
            Path(corpus or ", ".join(map(str, data))),
            f"no image is large enough to score at x{net.scale} (at least "
            f"{min_scorable(net.scale)} x {min_scorable(net.scale)} pixels)",
        )
    name = getattr(card, "name", "") or (str(weights) if weights else str(model or net.arch))
    if net.arch == "resampled":  # (no weights of this scale: the default of another, resampled)
        name = f"{name} resampled to x{net.scale}"
    what = f"{name} x{net.scale} on {corpus or ', '.join(map(str, data))}"
    title = f"{what} ({label} LR, profile {recipe})"
    report = EvalReport(
        model=name,
        scale=net.scale,
        profile=recipe,
        degradation=label,
        data=corpus or ", ".join(map(str, data)),
        scores=scores,
        summary=summarize(scores),
        table=format_table(scores, title),
    )
    if png:
        report.figure = save_comparison(png, panels, title, inputs=sources, overwrite=overwrite)
    return report


def _degradation_of(spec: str | DegradationConfig | Case) -> tuple[DegradationConfig, str]:
    """The degradation ``spec`` names and how the report names it: a kind (its defaults; a
    kind's name means the kind even where a battery case has that name, ``motion``), a
    battery case or its name (its settings), or a config (described)."""
    from ..degrade import KINDS
    from .battery import CASES, Case

    if isinstance(spec, DegradationConfig):
        return spec, describe_degradation(spec)
    if isinstance(spec, Case):
        return spec.degradation, spec.name
    if spec in KINDS:
        return DegradationConfig(kind=spec), spec  # type: ignore[arg-type]
    case = next((c for c in CASES if c.name == spec), None)
    if case is None:
        names = [*KINDS, *(c.name for c in CASES if c.name not in KINDS)]
        raise ConfigError(f"degradation {spec!r} is not one of {names}")
    return case.degradation, spec


__all__ = [
    "EvalReport",
    "ImageScore",
    "Panel",
    "evaluate",
    "format_table",
    "make_lr",
    "report_sources",
    "save_comparison",
    "score_image",
    "score_images",
    "summarize",
]
