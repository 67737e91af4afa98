"""What an adaptation did (:class:`AdaptReport`, recorded in every output's provenance) and the
adapted model saved with a card that says so (:func:`save_adapted`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.base import SRModel
from ..strict_json import finite_json
from .estimate import DegradationEstimate


@dataclass
class AdaptReport:
    """What :func:`adapt_model` did (recorded in provenance).

    Attributes:
        degradation: the pair degradation used (``gaussian sigma=... px`` or ``bicubic``).
        estimate: the blind estimate (None when the user gave the PSF and the noise).
        noise: noise standard deviation added to the degraded patches.
        fit: :meth:`~sr_domains.adapt.FitReport.to_dict` of the fine-tuning.
        psnr_bicubic, psnr_before, psnr_after: self-validation PSNR (dB) of bicubic, the model
            before and after fine-tuning.
        kept: ``"adapted"`` or ``"original"`` (self-validation got worse, or nothing to
            adapt to).
        reason: why the original was kept.
        seconds: wall time of the whole adaptation.
    """

    degradation: str
    estimate: DegradationEstimate | None
    noise: float
    fit: dict[str, Any] = field(default_factory=dict)
    psnr_bicubic: float = float("nan")
    psnr_before: float = float("nan")
    psnr_after: float = float("nan")
    kept: str = "adapted"
    reason: str = ""
    seconds: float = 0.0

    @property
    def gain_db(self) -> float:
        """Self-validation gain of the kept model over the original (0 when kept original)."""
        return self.psnr_after - self.psnr_before if self.kept == "adapted" else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as strict JSON values: a score never computed (NaN: the adaptation was
        skipped) or not finite is None (JSON ``null``), never ``NaN``."""
        return {
            "degradation": self.degradation,
            "estimate": None if self.estimate is None else finite_json(self.estimate.to_dict()),
            "noise": _number(self.noise, 6),
            "fit": finite_json(self.fit),
            "self_validation_psnr": {
                "bicubic": _number(self.psnr_bicubic, 3),
                "before": _number(self.psnr_before, 3),
                "after": _number(self.psnr_after, 3),
            },
            "kept": self.kept,
            **({"reason": self.reason} if self.reason else {}),
            "seconds": _number(self.seconds, 2),
        }

    def describe(self) -> str:
        """One line for logs and DICOM DerivationDescription."""
        if self.reason:
            return f"not adapted: {self.reason}"
        return (
            f"adapted to the input ({self.degradation}, noise {self.noise:.3g}; "
            f"{self.fit.get('steps', 0)} steps; self-validation PSNR {self.psnr_before:.2f} -> "
            f"{self.psnr_after:.2f} dB, bicubic {self.psnr_bicubic:.2f}; kept {self.kept})"
        )


def _number(value: float, digits: int) -> float | None:
    """``value`` rounded to ``digits``, or None when it is NaN or infinite."""
    return round(float(value), digits) if math.isfinite(value) else None


def save_adapted(
    model: SRModel, report: AdaptReport, path: Path, *, overwrite: bool = False
) -> Path:
    """Save an adapted model with a card that says what it was adapted with (an existing
    ``path`` is replaced only with ``overwrite``)."""
    import dataclasses
    import json

    from ..checkpoint import ModelCard, save_checkpoint

    card = getattr(model, "card", None)
    base = card if isinstance(card, ModelCard) else ModelCard(name=Path(path).stem)
    note = "adapted to one input: " + json.dumps(report.to_dict(), allow_nan=False)
    card = dataclasses.replace(
        base, name=Path(path).stem, notes=(base.notes + " " if base.notes else "") + note
    )
    return save_checkpoint(model, path, card, overwrite=overwrite)


__all__ = ["AdaptReport", "save_adapted"]
