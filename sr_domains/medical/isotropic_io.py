""":func:`make_isotropic`: an anisotropic NIfTI file or DICOM series in, an isotropic one out.

The slice axis is super-resolved by a network fitted to the input itself
(:mod:`sr_domains.medical.through_plane`) onto the grid of :func:`plan_isotropic`. Files are
written like every other medical output: atomically (:mod:`sr_domains.io_safety`), header or
tags kept and updated, value rules applied, provenance recorded (fitted slice profile, training
steps and seed, so ``steps=`` and ``seed=`` repeat a run exactly).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .. import __version__
from ..adapt import AxisSR, Budget
from ..errors import ConfigError
from ..intensity import IntensityProfile, profile_from_any, work_dtype
from ..made_with import MADE_KEY, Made
from ..options import InternalOptions, IsotropicOptions
from ..value_domain import ValueRules
from .isotropic import (
    IsotropicModel,
    IsotropicPlan,
    apply_isotropic,
    apply_rules,
    fit_isotropic,
    nearest_source,
    prepare_in_plane,
)
from .slice_profile import SliceProfile, profile_from_spec
from .through_plane import Fusion

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
#: Shipped weights whose body initialises the through-plane network.
WARM_START_WEIGHTS = "sr-lite-gray-x2"
ProfileArg = str | IntensityProfile | dict[str, Any] | None


def fit_intensity(spec: ProfileArg, data: np.ndarray, dtype: np.dtype) -> IntensityProfile:
    """The intensity profile (default ``mr``), fitted once on the finite values of ``data``."""
    finite = np.isfinite(data)
    prof = profile_from_any(
        spec if spec is not None else "mr", data[None], dtype=dtype, valid_mask=finite[None]
    )
    if prof.n_bands != 1:
        raise ConfigError(f"profile {prof.recipe!r} has {prof.n_bands} bands; volumes need one")
    return prof


def load_fitted(path: PathLike) -> AxisSR:
    """A through-plane model saved by ``save_model=`` (``--save-model``)."""
    from ..adapt.axis_sr import load_axis_sr

    return load_axis_sr(path)


def _warm_start(weights: PathLike | None, internal: InternalOptions) -> torch.nn.Module | None:
    if weights is not None:
        return load_fitted(weights)
    if not internal.warm_start:
        return None
    from ..pretrained import load_pretrained

    try:
        return load_pretrained(WARM_START_WEIGHTS)
    except (ConfigError, OSError, ValueError) as exc:  # a trimmed install: train from scratch
        log.warning("no warm start (%s); training from scratch", exc)
        return None


class VolumeJob:
    """One input's isotropic run: plan, intensity profile, rules and the (lazily) fitted model;
    :meth:`process` turns each 3-D volume (stored units, NaN = invalid) into its output."""

    def __init__(
        self,
        plan: IsotropicPlan,
        profile: SliceProfile | None,
        intensity: IntensityProfile,
        rules: ValueRules | None,
        *,
        iso: IsotropicOptions,
        internal: InternalOptions,
        weights: PathLike | None,
        progress: bool,
        device: str | torch.device = "auto",
    ) -> None:
        from ..inference import resolve_device

        self.plan, self.profile, self.intensity, self.rules = plan, profile, intensity, rules
        self.iso, self.internal, self.weights, self.progress = iso, internal, weights, progress
        self.device = resolve_device(device)
        self.fitted: IsotropicModel | None = None

    def process(self, volume: np.ndarray) -> np.ndarray:
        plan = self.plan
        finite = np.isfinite(volume)
        grid = prepare_in_plane(np.where(finite, volume, 0.0), plan)
        norm = self.intensity.normalize(grid[None])[0]
        if self.fitted is None:
            self.fitted = self._fit(norm)
        out = apply_isotropic(
            self.fitted,
            norm,
            plan,
            fusion=cast(Fusion, self.iso.fusion),  # checked by IsotropicOptions
            progress=self.progress,
        )
        out = self.intensity.denormalize(out[None], dtype=work_dtype(volume.dtype))[0]
        apply_rules(out, np.where(finite, volume, np.nan), plan, self.rules)
        if not finite.all():  # invalid voxels come back as they were, over their footprint
            idx = np.ix_(
                *(
                    nearest_source(n, m, f)
                    for n, m, f in zip(plan.shape, plan.out_shape, plan.factors)
                )
            )
            bad = ~finite[idx]
            out[bad] = volume[idx][bad]
        return out

    def _fit(self, norm: np.ndarray) -> IsotropicModel:
        internal = self.internal
        start = _warm_start(self.weights, internal)
        budget = Budget.minutes(internal.budget_minutes, internal.steps)
        if isinstance(start, AxisSR) and abs(start.factor - self.plan.slice_factor) > 1e-6:
            raise ConfigError(
                f"{self.weights}: fitted for x{start.factor:.6g} slices, this volume needs "
                f"x{self.plan.slice_factor:.6g}"
            )
        if isinstance(start, AxisSR) and not budget.steps and internal.budget_minutes == 0:
            return IsotropicModel(start.to(self.device), self.profile)  # applied as it is
        return fit_isotropic(
            norm,
            self.plan,
            self.profile,
            budget=budget,
            seed=internal.seed,
            warm_start=start,
            progress=self.progress,
            device=self.device,
        )

    def provenance(self, source: str, recipe: str = "") -> dict[str, Any]:
        """The provenance record; ``recipe``: the run's other options (see
        :func:`~sr_domains.made_with.recipe`)."""
        assert self.fitted is not None
        return {
            "software": f"sr_domains {__version__}",
            "mode": f"isotropic {self.plan.target:.4g}mm",
            "scale": round(self.plan.slice_factor, 4),
            "factors": [float(f) for f in self.plan.factors],
            "grid": self.plan.to_dict(),
            "profile": self.intensity.to_dict(),
            "fusion": self.iso.fusion,
            "source": source,
            **self.fitted.provenance(),
            # what a resumed batch compares (sr_domains.made_with)
            MADE_KEY: Made(
                isotropic=round(self.plan.target, 4), fusion=self.iso.fusion, recipe=recipe
            ).to_dict(),
        }

    def save_model(self, path: Path, overwrite: bool, source: str) -> None:
        from ..checkpoint import ModelCard, save_checkpoint

        assert self.fitted is not None
        card = ModelCard(
            name=f"axis-sr x{self.plan.slice_factor:.4g}",
            bands=["MR"],
            modality="mri",
            profile=self.intensity.to_dict(),
            training_data=f"self-supervised on {source}",
            notes=json.dumps(self.fitted.provenance()),
        )
        save_checkpoint(self.fitted.model, path, card, overwrite=overwrite)


def thickness_from_sidecar(path: Path) -> float | None:
    """``SliceThickness`` (mm) of a BIDS/dcm2niix JSON sidecar next to a NIfTI file, if any."""
    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem
    side = path.with_name(stem + ".json")
    if not side.is_file():
        return None
    try:
        value = json.loads(side.read_text(encoding="utf-8")).get("SliceThickness")
        return float(value) if value is not None and float(value) > 0 else None
    except (OSError, ValueError, TypeError, AttributeError):
        log.warning("%s: unreadable sidecar, slice thickness not taken from it", side)
        return None


def resolve_slice_profile(
    iso: IsotropicOptions, plan: IsotropicPlan, header_thickness: float | None, where: str
) -> SliceProfile | None:
    """The slice profile to train with (None = estimate it from the data)."""
    dz = plan.spacing[plan.slice_axis]
    thick: float | None
    if iso.slice_thickness is not None:
        thick, src = iso.slice_thickness, "user"
    else:
        thick, src = header_thickness, "header"
    prof = profile_from_spec(iso.slice_profile, spacing=dz, thickness=thick, thickness_source=src)
    if prof is not None:
        log.info("%s: slice profile %s, slice spacing %.4g mm", where, prof.describe(), dz)
    return prof


__all__ = [
    "VolumeJob",
    "fit_intensity",
    "load_fitted",
    "resolve_slice_profile",
    "thickness_from_sidecar",
]
