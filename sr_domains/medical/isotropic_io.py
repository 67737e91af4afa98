""":func:`make_isotropic`: an anisotropic NIfTI file or DICOM series in, an isotropic one out.

The slice axis is super-resolved by a network fitted to the input itself
(:mod:`sr_domains.medical.through_plane`) onto the grid of :func:`plan_isotropic`. Files are
written like every other medical output: atomically (:mod:`sr_domains.io_safety`), header or
tags kept and updated, value rules applied, provenance recorded (fitted slice profile, training
steps and seed, so ``steps=`` and ``seed=`` repeat a run exactly).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .. import __version__
from ..adapt import AxisSR, Budget
from ..adapt.sampler import NoPatchError
from ..errors import ConfigError, InputFileError, TooSmallToAdaptError
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
from .slice_profile import WIDTH_KINDS, SliceProfile, profile_from_spec
from .through_plane import Fusion

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
#: Shipped weights whose body initialises the through-plane network.
WARM_START_WEIGHTS = "sr-lite-gray-x2"
ProfileArg = str | IntensityProfile | dict[str, Any] | None
#: A header's slice thickness, or how to read it (only read when it is used).
HeaderThickness = float | None | Callable[[], float | None]


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
    :meth:`process` turns each 3-D volume (stored units, NaN = invalid) into its output.

    ``source`` (the input) is named by errors about its content; ``thickness_from`` says where
    a header thickness came from (e.g. ``SliceThickness of t2.json``)."""

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
        source: PathLike | None = None,
        thickness_from: str = "header",
    ) -> None:
        from ..inference import resolve_device

        self.plan, self.profile, self.intensity, self.rules = plan, profile, intensity, rules
        self.iso, self.internal, self.weights, self.progress = iso, internal, weights, progress
        self.device = resolve_device(device)
        self.source, self.thickness_from = source, thickness_from
        self.fitted: IsotropicModel | None = None

    def process_first(
        self, volumes: np.ndarray, rules: Sequence[ValueRules | None]
    ) -> tuple[int, np.ndarray]:
        """``(v, output)`` of the first volume ``v`` (last axis of ``volumes``) the model can
        be fitted on: volumes without content (constant, or no finite voxel) are tried last.
        An :class:`InputFileError` naming ``source`` and the volumes when none has content."""
        n = volumes.shape[-1]
        empty = [v for v in range(n) if self.fitted is None and _constant(volumes[..., v])]
        order = [v for v in range(n) if v not in empty] + empty
        failed: list[int] = []
        problem = ""
        for v in order:
            self.rules = rules[v]
            try:
                out = self.process(volumes[..., v])
            except NoPatchError as exc:
                failed.append(v)
                problem = str(exc)
                continue
            if v:
                log.warning(
                    "%s: %s without content: the model is fitted on volume %d",
                    self.source, _listed(list(range(v))), v,
                )  # fmt: skip
            return v, out
        which = (
            "the volume has no content"
            if n == 1
            else f"none of its {n} volumes ({_listed(sorted(failed))}) has content"
        )
        shown = f"{which} to learn the slices from ({problem})"
        raise InputFileError(self.source, shown)

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
        try:
            return fit_isotropic(
                norm,
                self.plan,
                self.profile,
                budget=budget,
                seed=internal.seed,
                warm_start=start,
                progress=self.progress,
                device=self.device,
                source=self.source,
            )
        except TooSmallToAdaptError as exc:  # the file it is about, and where the FWHM came from
            if self.source is None:
                raise
            raise InputFileError(self.source, f"{exc}; {self._profile_origin()}") from None

    def _profile_origin(self) -> str:
        prof = self.profile
        if prof is None:
            return "the profile was estimated from the data (--slice-profile estimate)"
        if prof.source == "user":
            return f"the {prof.fwhm:.3g} mm is the --slice-thickness given"
        if prof.source == "header":
            return (
                f"the {prof.fwhm:.3g} mm is the {self.thickness_from}; pass --slice-thickness MM "
                "if that is wrong"
            )
        return f"the profile's FWHM is from the {prof.source}"

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


def _constant(volume: np.ndarray) -> bool:
    finite = volume[np.isfinite(volume)]
    return finite.size == 0 or bool(finite.min() == finite.max())


def _listed(volumes: list[int]) -> str:
    return "volume " + ", ".join(map(str, volumes[:8])) + (", ..." if len(volumes) > 8 else "")


FIX_THICKNESS = "give the thickness with --slice-thickness MM (slice_thickness=) or fix the header"


def checked_thickness(value: Any, where: PathLike, name: str = "SliceThickness") -> float | None:
    """A header's slice thickness in mm; None when absent (None or empty) or 0, which DICOM
    writes for "unknown" (a Type 2 tag; reformatted and derived series): that is logged,
    naming ``where``, and the slice spacing is used as for no value. A value that is not a
    finite number >= 0 (``true``, ``"abc"``, ``-3``, ``NaN``) is an :class:`InputFileError`
    naming ``where`` and the value: never read as 1 mm or dropped."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    thick = math.nan
    if not isinstance(value, (bool, np.bool_)):
        with contextlib.suppress(TypeError, ValueError):
            thick = float(value)
    if thick == 0:
        log.warning("%s: %s 0 (unknown): using the slice spacing", where, name)
        return None
    if not (math.isfinite(thick) and thick > 0):
        try:
            shown = json.dumps(value)
        except (TypeError, ValueError):
            shown = repr(str(value))
        raise InputFileError(
            where, f"{name} {shown} is not a slice thickness in mm (> 0); {FIX_THICKNESS}"
        )
    return thick


def sidecar_of(path: Path) -> Path:
    """The BIDS/dcm2niix JSON sidecar's path for a NIfTI file (``t2.json`` for ``t2.nii.gz``)."""
    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem
    return path.with_name(stem + ".json")


def thickness_from_sidecar(path: Path) -> float | None:
    """``SliceThickness`` (mm) of a BIDS/dcm2niix JSON sidecar next to a NIfTI file; None
    without a sidecar or without the key. An unreadable sidecar or an invalid value is an
    :class:`InputFileError` naming the sidecar (:func:`checked_thickness`)."""
    side = sidecar_of(path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(side, f"unreadable JSON sidecar ({exc}); {FIX_THICKNESS}") from exc
    if not isinstance(meta, dict):
        raise InputFileError(side, f"a JSON sidecar holds an object, not {type(meta).__name__}")
    return checked_thickness(meta.get("SliceThickness"), side)


def thickness_used(iso: IsotropicOptions) -> bool:
    """Whether the header's thickness is used: no ``slice_thickness`` given and a
    ``gaussian``/``rect`` profile (its FWHM)."""
    spec = iso.slice_profile
    kind = (spec or "gaussian").strip().lower() if isinstance(spec, str) else ""
    return iso.slice_thickness is None and kind in WIDTH_KINDS


def resolve_slice_profile(
    iso: IsotropicOptions, plan: IsotropicPlan, header_thickness: HeaderThickness, where: str
) -> SliceProfile | None:
    """The slice profile to train with (None = estimate it from the data); a callable
    ``header_thickness`` is called only when the thickness is used (:func:`thickness_used`)."""
    dz = plan.spacing[plan.slice_axis]
    thick: float | None
    if iso.slice_thickness is not None:
        thick, src = iso.slice_thickness, "user"
    else:
        header = header_thickness
        if callable(header):
            thick = header() if thickness_used(iso) else None
        else:
            thick = header
        src = "header"
    prof = profile_from_spec(iso.slice_profile, spacing=dz, thickness=thick, thickness_source=src)
    if prof is not None:
        log.info("%s: slice profile %s, slice spacing %.4g mm", where, prof.describe(), dz)
    return prof


__all__ = [
    "HeaderThickness",
    "VolumeJob",
    "checked_thickness",
    "fit_intensity",
    "load_fitted",
    "resolve_slice_profile",
    "sidecar_of",
    "thickness_from_sidecar",
    "thickness_used",
]
