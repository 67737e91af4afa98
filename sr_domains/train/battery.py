"""The quality battery: every shipped model against bicubic and Lanczos under the degradations
real data comes with, on held-out real data of both domains.

Data (nothing trained on it; all offline): medical gray images (the MR series of
``../shared/data``, the bundled oblique NIfTI, nibabel's ``anatomical.nii``, pydicom's lossy CT
``693_J2KI.dcm`` and the two clean clinical slices of ``gray-heldout``: MR abdomen
``examples_overlay.dcm`` and CT head ``J2K_pixelrep_mismatch.dcm``),
satellite single bands (the red-edge and NIR bands of the drone raster ``615.tif``) and
satellite RGB (Landsat-7 ``RGB.byte.tif``, ``rgb.tif`` and the R, G, B bands of ``615.tif``).

Degradations (five per domain, :data:`CASES`): MATLAB bicubic; Gaussian PSF of 0.4 and 0.8 LR
pixels with area decimation (sensor-like, two widths); Wald MTF + sensor noise (satellite);
k-space truncation + Rician noise (MRI); an anisotropic, motion-like PSF. Scores are computed
as in :mod:`sr_domains.train.evaluate` (normalized units of each file's profile, data range 1,
``scale`` border pixels cropped) with the models run as ``upscale`` runs them (default value
rules: the local-range envelope).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..adapt.input_adapt import adapt_engine
from ..degrade import DegradationConfig
from ..errors import InputFileError
from ..inference import Upscaler
from ..nodata_fill import fill_invalid
from ..noise_gate import choose_for_noise, noise_variant
from ..options import AdaptOptions
from ..value_domain import ValueOptions
from .corpora import _location
from .data import DataConfig, load_images
from .scoring import ImageScore, score_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    """One degradation of the battery and the image sets it applies to."""

    name: str
    description: str
    degradation: DegradationConfig
    sets: tuple[str, ...]


MEDICAL, SAT_GRAY, SAT_RGB = "medical", "satellite-gray", "satellite-rgb"
CASES = (
    Case(
        "bicubic",
        "MATLAB bicubic (the classic protocol)",
        DegradationConfig(),
        (MEDICAL, SAT_GRAY, SAT_RGB),
    ),
    Case(
        "gauss-0.4",
        "Gaussian PSF sigma 0.4 LR px + area decimation",
        DegradationConfig(kind="gaussian", psf_sigma=0.4),
        (MEDICAL, SAT_GRAY, SAT_RGB),
    ),
    Case(
        "gauss-0.8",
        "Gaussian PSF sigma 0.8 LR px + area decimation",
        DegradationConfig(kind="gaussian", psf_sigma=0.8),
        (MEDICAL, SAT_GRAY, SAT_RGB),
    ),
    Case(
        "wald+noise",
        "Wald MTF 0.3 at Nyquist + Gaussian sensor noise sigma 0.01",
        DegradationConfig(kind="wald", gaussian_noise=0.01),
        (SAT_GRAY, SAT_RGB),
    ),
    Case(
        "kspace+rician",
        "MRI k-space truncation + Rician noise sigma 0.02",
        DegradationConfig(kind="kspace", rician_noise=0.02),
        (MEDICAL,),
    ),
    Case(
        "motion",
        "anisotropic PSF 1.0 x 0.25 LR px at 30 deg + area decimation",
        DegradationConfig(kind="motion", psf_sigma=1.0, psf_sigma_minor=0.25, psf_angle=30.0),
        (MEDICAL, SAT_GRAY, SAT_RGB),
    ),
)

#: ``set -> [(location, path, bands)]`` (see :mod:`sr_domains.train.corpora` locations).
SETS: dict[str, list[tuple[str, str, tuple[int, ...] | None]]] = {
    MEDICAL: [
        ("shared", "dicom/mr_brain_6slice_babymri_dwv", None),
        ("bundled", "aniso_vox.nii.gz", None),
        ("nibabel", "anatomical.nii", None),
        ("pydicom", "693_J2KI.dcm", None),
        ("pydicom", "examples_overlay.dcm", None),
        ("pydicom", "J2K_pixelrep_mismatch.dcm", None),
    ],
    SAT_GRAY: [("shared", "geotiff/615.tif", (4,)), ("shared", "geotiff/615.tif", (5,))],
    SAT_RGB: [
        ("bundled", "RGB.byte.tif", None),
        ("bundled", "rgb.tif", None),
        ("shared", "geotiff/615.tif", (3, 2, 1)),
    ],
}
SET_CHANNELS = {MEDICAL: 1, SAT_GRAY: 1, SAT_RGB: 3}


@dataclass
class Row:
    """Mean scores of one model x degradation x image set."""

    model: str
    scale: int
    case: str
    image_set: str
    n_images: int
    psnr: float
    psnr_bicubic: float
    psnr_lanczos: float
    ssim: float
    ssim_bicubic: float
    ssim_lanczos: float
    sam: float | None = None
    sam_bicubic: float | None = None
    ergas: float | None = None
    ergas_bicubic: float | None = None
    psnr_adapted: float | None = None  # with --adapt: the model adapted to each image
    adapt_seconds: float | None = None  # mean adaptation time per image

    @property
    def gain_db(self) -> float:
        return self.psnr - self.psnr_bicubic

    @property
    def adapt_gain_db(self) -> float | None:
        """Adapted minus non-adapted PSNR (dB)."""
        return None if self.psnr_adapted is None else self.psnr_adapted - self.psnr


@dataclass
class BatteryReport:
    rows: list[Row] = field(default_factory=list)

    def table(self) -> str:
        adapted = any(r.psnr_adapted is not None for r in self.rows)
        head = (
            "| model | x | image set | degradation | n | PSNR bicubic | PSNR Lanczos | PSNR model "
            "| gain dB | SSIM bicubic | SSIM model | SAM bicubic / model (deg) |"
            + (" PSNR adapted | adapt gain dB | adapt s |" if adapted else "")
            + "\n|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
            + ("---:|---:|---:|" if adapted else "")
        )
        lines = [head]
        for r in self.rows:
            sam = "" if r.sam is None else f"{r.sam_bicubic:.2f} / {r.sam:.2f}"
            line = (
                f"| {r.model} | {r.scale} | {r.image_set} | {r.case} | {r.n_images} | "
                f"{r.psnr_bicubic:.2f} | {r.psnr_lanczos:.2f} | {r.psnr:.2f} | "
                f"{r.gain_db:+.2f} | {r.ssim_bicubic:.3f} | {r.ssim:.3f} | {sam} |"
            )
            if adapted and r.psnr_adapted is not None:
                line += f" {r.psnr_adapted:.2f} | {r.adapt_gain_db:+.2f} | {r.adapt_seconds:.0f} |"
            lines.append(line)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dataclasses.asdict(r) | {"gain_db": r.gain_db} for r in self.rows]}


def load_set(name: str, profile: str, max_pixels: int = 384 * 384) -> list[tuple[Any, ...]]:
    """The images of one battery set (files absent here are skipped with a warning)."""
    images: list[tuple[Any, ...]] = []
    for where, rel, bands in SETS[name]:
        base = _location(where)
        path = None if base is None else base / rel
        if path is None or not Path(path).exists():
            log.warning("battery: %s:%s is absent here, skipped", where, rel)
            continue
        cfg = DataConfig(
            paths=(str(path),), bands=bands, channels=SET_CHANNELS[name], profile=profile
        )
        try:
            items = load_images(cfg, max_pixels=max_pixels, with_profile=True, section="battery")
        except InputFileError as exc:
            log.warning("battery: %s skipped (%s)", path, exc)
            continue
        suffix = f" bands {','.join(map(str, bands))}" if bands else ""
        images.extend((f"{n}{suffix}", *rest) for n, *rest in items)
    return images


def _adapter(
    up: Upscaler, adapt: AdaptOptions, gate: Callable[[np.ndarray], Upscaler] | None = None
) -> Callable[[np.ndarray], Upscaler]:
    """``prepare`` of :func:`score_image`: the engine adapted to the LR image (after the noise
    gate, when given, as ``upscale`` does)."""
    return lambda lr: adapt_engine(gate(lr) if gate else up, [_filled(lr)], adapt)[0]


def _filled(lr: np.ndarray) -> np.ndarray:
    """An LR image with NaN where invalid, filled as the engine fills it (the GeoTIFF path
    adapts on such a window)."""
    bad = ~np.isfinite(lr)
    return fill_invalid(lr, bad) if bad.any() else lr


def _gated(up: Upscaler) -> Callable[[np.ndarray], Upscaler]:
    """``prepare`` of :func:`score_image`: the engine the noise gate picks for the LR image
    (:mod:`sr_domains.noise_gate`), as ``upscale`` does when no model is named."""
    return lambda lr: choose_for_noise(up, [lr])[0]


def _mean(scores: list[ImageScore], key: str) -> float | None:
    vals = [getattr(s, key) for s in scores if getattr(s, key) is not None]
    return float(np.mean(vals)) if vals else None


def run_battery(
    models: list[tuple[str, Any]],
    *,
    cases: tuple[Case, ...] = CASES,
    values: ValueOptions | None = None,
    device: str = "cpu",
    max_pixels: int = 384 * 384,
    seed: int = 0,
    adapt: AdaptOptions | None = None,
    max_images: int | None = None,
    noise_gate: bool = True,
) -> BatteryReport:
    """Score each ``(name, model)`` on every case of the sets matching its band count; with
    ``adapt``, also the model adapted to each degraded image (:mod:`sr_domains.adapt`). A
    shipped default with a ``-robust`` variant is scored as ``upscale`` runs it when no model
    is named: through the noise gate (:mod:`sr_domains.noise_gate`; ``noise_gate=False``:
    its weights as they are)."""
    values = values if values is not None else ValueOptions()
    report = BatteryReport()
    cache: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for name, net in models:
        card = getattr(net, "card", None)
        recipe = (getattr(card, "profile", None) or {}).get("recipe") or "percentile:0.5,99.5"
        up = Upscaler(net, device=device, amp="off", tile=512)
        gate = _gated(up) if noise_gate and noise_variant(net) is not None else None
        sets = [s for s, c in SET_CHANNELS.items() if c == net.in_channels]
        for case in cases:
            for set_name in sets:
                if set_name not in case.sets:
                    continue
                key = (set_name, recipe)
                if key not in cache:
                    cache[key] = load_set(set_name, recipe, max_pixels)
                images = cache[key][:max_images] if max_images else cache[key]
                if not images:
                    continue
                scores, adapted, seconds = [], [], []
                for i, (img, hr, valid, prof) in enumerate(images):
                    sc, _ = score_image(
                        up,
                        img,
                        hr,
                        valid,
                        degradation=case.degradation,
                        seed=seed + i,
                        profile=prof,
                        values=values,
                        lanczos=True,
                        prepare=gate,
                    )
                    scores.append(sc)
                    if adapt is not None:
                        t0 = time.perf_counter()
                        sc_a, _ = score_image(
                            up,
                            img,
                            hr,
                            valid,
                            degradation=case.degradation,
                            seed=seed + i,
                            profile=prof,
                            values=values,
                            prepare=_adapter(up, adapt, gate),
                        )
                        adapted.append(sc_a.psnr)
                        seconds.append(time.perf_counter() - t0)
                report.rows.append(
                    Row(
                        model=name,
                        scale=net.scale,
                        case=case.name,
                        image_set=set_name,
                        n_images=len(scores),
                        psnr=_mean(scores, "psnr") or 0.0,
                        psnr_bicubic=_mean(scores, "psnr_bicubic") or 0.0,
                        psnr_lanczos=_mean(scores, "psnr_lanczos") or 0.0,
                        ssim=_mean(scores, "ssim") or 0.0,
                        ssim_bicubic=_mean(scores, "ssim_bicubic") or 0.0,
                        ssim_lanczos=_mean(scores, "ssim_lanczos") or 0.0,
                        sam=_mean(scores, "sam"),
                        sam_bicubic=_mean(scores, "sam_bicubic"),
                        ergas=_mean(scores, "ergas"),
                        ergas_bicubic=_mean(scores, "ergas_bicubic"),
                        psnr_adapted=float(np.mean(adapted)) if adapted else None,
                        adapt_seconds=float(np.mean(seconds)) if seconds else None,
                    )
                )
                log.info(
                    "%s x%d %s %s: %+.2f dB",
                    name,
                    net.scale,
                    set_name,
                    case.name,
                    report.rows[-1].gain_db,
                )
    return report


__all__ = ["CASES", "SETS", "BatteryReport", "Case", "Row", "load_set", "run_battery"]
