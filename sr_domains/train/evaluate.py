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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .. import metrics
from ..degrade import DegradationConfig, degrade, imresize
from ..errors import ConfigError
from ..inference import Upscaler
from ..intensity import IntensityProfile
from ..nodata_fill import fill_invalid
from ..psf import lanczos_upsample
from ..value_domain import ValueOptions, ValueRules, band_minimum

log = logging.getLogger(__name__)

IDENTITY = IntensityProfile("identity", (1.0,), (0.0,))
ImageItem = tuple[Any, ...]
"""``(name, hr, valid)`` or ``(name, hr, valid, profile)`` (see ``load_images``)."""


@dataclass(frozen=True)
class ImageScore:
    """Metrics of one image for the SR output and the bicubic baseline."""

    name: str
    shape: tuple[int, ...]
    psnr: float
    psnr_bicubic: float
    ssim: float
    ssim_bicubic: float
    sam: float | None = None
    sam_bicubic: float | None = None
    ergas: float | None = None
    ergas_bicubic: float | None = None
    psnr_lanczos: float | None = None
    ssim_lanczos: float | None = None
    sam_lanczos: float | None = None

    @property
    def gain_db(self) -> float:
        return self.psnr - self.psnr_bicubic


@dataclass(frozen=True)
class Panel:
    """Crops for the comparison figure, normalized units ``(C, h, w)`` at HR size."""

    name: str
    lr_nearest: np.ndarray
    bicubic: np.ndarray
    sr: np.ndarray
    hr: np.ndarray


def make_lr(
    hr: np.ndarray, scale: int, degradation: DegradationConfig, seed: int = 0
) -> np.ndarray:
    """Degrade one ``(C, H, W)`` HR image (H, W multiples of ``scale``) deterministically."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.from_numpy(np.ascontiguousarray(hr, np.float32))[None]
    return degrade(t, scale, degradation, generator=gen)[0].numpy()


def _lr_valid(valid: np.ndarray | None, scale: int) -> np.ndarray | None:
    """An LR pixel is valid when its whole HR block is."""
    if valid is None:
        return None
    v = np.asarray(valid, bool)
    *lead, h, w = v.shape
    return cast(
        np.ndarray, v.reshape(*lead, h // scale, scale, w // scale, scale).all(axis=(-3, -1))
    )


def score_image(
    upscaler: Upscaler,
    name: str,
    hr: np.ndarray,
    valid: np.ndarray | None,
    *,
    degradation: DegradationConfig,
    seed: int = 0,
    panel_size: int = 0,
    profile: IntensityProfile | None = None,
    values: ValueOptions | None = None,
    lanczos: bool = False,
    prepare: Callable[[np.ndarray], Upscaler] | None = None,
) -> tuple[ImageScore, Panel | None]:
    """Score one normalized HR image (see module docs); optionally return figure crops.

    ``profile`` is the image's fitted profile: SAM and ERGAS are computed after inverting it
    (stored units); without it they are computed on the normalized values. ``values``: apply
    the envelope of these value options to the SR output (as the upscale paths do by default;
    the physical domain is not inferred in normalized units); ``lanczos``: also score Lanczos-3;
    ``prepare``: called with the LR image (NaN where invalid), returns the engine to run
    instead of ``upscaler`` (e.g. one adapted to it).
    """
    s = upscaler.scale
    c, h, w = hr.shape
    h, w = h - h % s, w - w % s
    hr = np.ascontiguousarray(hr[:, :h, :w], np.float32)
    filled = hr
    if valid is not None:  # (1 | C, H, W); invalid pixels get the valid mean before degrading
        valid = np.asarray(valid, bool)[..., :h, :w]
        filled = np.where(valid, hr, np.float32(hr[np.broadcast_to(valid, hr.shape)].mean()))
    lr = make_lr(filled, s, degradation, seed)
    lr_valid = _lr_valid(valid, s)
    rules = None
    units = profile if profile is not None and c >= 2 else None  # band ratios: stored units
    lr_units = units.denormalize(lr) if units is not None else None
    if values is not None and values.clamp:
        # the scene's domain decides (a file of non-negative values), as the input file's
        # does in the upscale paths; a degraded LR may dip below zero where the file cannot
        ratios = (
            units is not None
            and values.spectral != "model"
            and bool((band_minimum(units.denormalize(hr), valid) >= 0).all())
        )
        if values.envelope is not None or ratios:
            rules = ValueRules(
                envelope=values.envelope,
                radius=values.envelope_radius,
                spectral=(None if values.spectral == "auto" else True) if ratios else False,
            )
    if prepare is not None:  # it sees what upscale sees: no value where the LR is invalid
        seen = lr if lr_valid is None else np.where(np.broadcast_to(lr_valid, lr.shape), lr, np.nan)
        upscaler = prepare(seen.astype(np.float32, copy=False))
    if rules is not None and rules.spectral is not False and units and lr_units is not None:
        sr_units = upscaler.upscale(lr_units, profile=units, valid_mask=lr_valid, rules=rules)
        sr = units.normalize(sr_units).astype(np.float32, copy=False)
    else:
        sr = upscaler.upscale(lr, profile=IDENTITY, valid_mask=lr_valid, rules=rules)
    base = lr  # the baselines interpolate what the model is given: no value where LR is invalid
    if lr_valid is not None and not lr_valid.all():
        base = fill_invalid(lr, ~lr_valid)  # far value: each band's valid mean
    bic = imresize(base, float(s))
    lan = lanczos_upsample(base, s) if lanczos else None
    mask = None
    if lr_valid is not None:
        mask = lr_valid.repeat(s, axis=-2).repeat(s, axis=-1)
    kw: dict[str, Any] = {"data_range": 1.0, "mask": mask, "crop_border": s}
    multi = c >= 3
    if multi:
        to_units = profile.denormalize if profile is not None else (lambda a: a)
        sr_u, bic_u, hr_u = to_units(sr), to_units(bic), to_units(hr)
        spectral = {
            "sam": metrics.sam(sr_u, hr_u, mask=mask),
            "sam_bicubic": metrics.sam(bic_u, hr_u, mask=mask),
            "ergas": metrics.ergas(sr_u, hr_u, scale=s, mask=mask),
            "ergas_bicubic": metrics.ergas(bic_u, hr_u, scale=s, mask=mask),
        }
        if lan is not None:
            spectral["sam_lanczos"] = metrics.sam(to_units(lan), hr_u, mask=mask)
    else:
        spectral = {}
    if lan is not None:
        spectral["psnr_lanczos"] = metrics.psnr(lan, hr, **kw)
        spectral["ssim_lanczos"] = metrics.ssim(lan, hr, **kw)
    score = ImageScore(
        name=name,
        shape=tuple(hr.shape),
        psnr=metrics.psnr(sr, hr, **kw),
        psnr_bicubic=metrics.psnr(bic, hr, **kw),
        ssim=metrics.ssim(sr, hr, **kw),
        ssim_bicubic=metrics.ssim(bic, hr, **kw),
        **spectral,
    )
    panel = None
    if panel_size:
        size = min(panel_size - panel_size % s, h, w)
        y0, x0 = (h - size) // 2 // s * s, (w - size) // 2 // s * s
        crop = (slice(None), slice(y0, y0 + size), slice(x0, x0 + size))
        nearest = lr.repeat(s, axis=-2).repeat(s, axis=-1)
        panel = Panel(name, nearest[crop], bic[crop], sr[crop], hr[crop])
    return score, panel


def score_images(
    upscaler: Upscaler,
    images: Iterable[ImageItem],
    *,
    degradation: DegradationConfig,
    seed: int = 0,
    panels: int = 0,
    panel_size: int = 128,
) -> tuple[list[ImageScore], list[Panel]]:
    """:func:`score_image` over ``(name, hr, valid)`` items; crops for the first ``panels``."""
    scores, figs = [], []
    for i, (name, hr, valid, *rest) in enumerate(images):
        score, panel = score_image(
            upscaler,
            name,
            hr,
            valid,
            degradation=degradation,
            seed=seed + i,
            panel_size=panel_size if i < panels else 0,
            profile=rest[0] if rest else None,
        )
        scores.append(score)
        if panel is not None:
            figs.append(panel)
        log.info("%s: SR %.2f dB, bicubic %.2f dB", name, score.psnr, score.psnr_bicubic)
    return scores, figs


def summarize(scores: Sequence[ImageScore]) -> dict[str, float]:
    """Means over images (``psnr``, ``psnr_bicubic``, ``psnr_gain_db``, ``ssim``, ...)."""
    if not scores:
        return {}
    out: dict[str, float] = {}
    for key in ("psnr", "psnr_bicubic", "ssim", "ssim_bicubic"):
        out[key] = float(np.mean([getattr(s, key) for s in scores]))
    out["psnr_gain_db"] = out["psnr"] - out["psnr_bicubic"]
    for key in ("sam", "sam_bicubic", "ergas", "ergas_bicubic"):
        vals = [getattr(s, key) for s in scores if getattr(s, key) is not None]
        if vals:
            out[key] = float(np.mean(vals))
    return out


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


def evaluate(
    *,
    weights: str | os.PathLike[str] | None = None,
    model: str | None = None,
    data: Sequence[str] = (),
    corpus: str | None = None,
    scale: int = 2,
    profile: str | None = None,
    bands: tuple[int, ...] | None = None,
    degradation: str | DegradationConfig = "bicubic",
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
            default for ``scale`` and the data's band count.
        data: files, folders or globs; ``corpus``: a built-in offline corpus
            (:mod:`sr_domains.train.corpora`), e.g. ``gray-heldout``.
        profile: intensity recipe (default: the model card's, else ``percentile:0.5,99.5``).
        degradation: ``bicubic``, ``wald``, ``kspace`` or a full config.
        png: also write the LR | bicubic | SR | HR figure of the first images; an existing
            file is replaced only with ``overwrite``, a data or weights file never.
    """
    from ..io_safety import preflight
    from ..pretrained import resolve_model
    from .data import DataConfig, load_images

    if not data and not corpus:
        raise ConfigError("evaluate: give --data PATHS and/or --corpus NAME")
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
    net = resolve_model(model, weights, scale=None if explicit else scale, n_bands=n_bands)
    card = getattr(net, "card", None)
    card_profile = getattr(card, "profile", None) or {}
    recipe = profile or card_profile.get("recipe") or "percentile:0.5,99.5"
    channels = net.in_channels if net.in_channels > 1 else None
    cfg = dataclasses.replace(base, profile=recipe, channels=channels)
    images = load_images(cfg, max_pixels=max_pixels, with_profile=True, section="evaluate")
    images = images[:max_images]
    if not images:
        raise ConfigError(f"evaluate: no images found in {cfg.paths or cfg.corpus}")
    deg = degradation
    if not isinstance(deg, DegradationConfig):
        deg = DegradationConfig(kind=deg)  # type: ignore[arg-type]
    up = Upscaler(net, device=device, tile=tile, amp="off")
    scores, panels = score_images(up, images, degradation=deg, seed=seed, panels=3 if png else 0)
    name = getattr(card, "name", "") or (str(weights) if weights else str(model or net.arch))
    what = f"{name} x{net.scale} on {corpus or ', '.join(map(str, data))}"
    title = f"{what} ({deg.kind} LR, profile {recipe})"
    report = EvalReport(
        model=name,
        scale=net.scale,
        profile=recipe,
        degradation=deg.kind,
        data=corpus or ", ".join(map(str, data)),
        scores=scores,
        summary=summarize(scores),
        table=format_table(scores, title),
    )
    if png:
        report.figure = save_comparison(png, panels, title, inputs=sources, overwrite=overwrite)
    return report


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
