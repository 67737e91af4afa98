"""Self-supervised through-plane SR of one volume (SMORE/ECLARE-style), arrays in and out.

The volume's slice axis ``k`` is sampled every ``dz`` mm with a slice profile; its two in-plane
axes every ``h`` mm. Nothing but the volume itself is needed:

1. **Pairs.** In-plane slices (as they are, and transposed, so both in-plane directions are
   used) are cut into strips; each strip is degraded along its rows with the slice profile
   sampled at the slice spacing (:func:`~sr_domains.medical.slice_profile.degradation_matrix`):
   the result looks like the through-plane content; the strip itself is the target. Flips
   augment. Patches are drawn where there is structure (:class:`~sr_domains.adapt.PatchSampler`).
2. **Fit.** An :class:`~sr_domains.adapt.AxisSR` for ``f = dz / h`` (any real factor) is trained
   on them within a budget (:func:`sr_domains.adapt.fit`), optionally warm-started from the
   shipped gray in-plane weights.
3. **Apply.** The planes containing the slice axis (the two orthogonal stacks: along in-plane
   axis ``a`` and along ``b``) go through the model with the slice axis as rows; the two
   estimates are fused (``mean``, or ``fba``: Fourier burst accumulation, SMORE's choice).

Values are in the model's normalized range (the caller applies the intensity profile).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import torch

from ..adapt import AxisSR, Budget, FitReport, InternalPairs, PatchSampler, RowDegradation, fit
from ..adapt.axis_sr import axis_sr, warm_start_from
from ..errors import ConfigError, TooSmallToAdaptError
from ..image import resampled_size
from ..rng import seeded
from .slice_profile import SliceProfile, degradation_matrix

log = logging.getLogger(__name__)

Fusion = Literal["mean", "fba"]

#: LR rows per training strip and columns per patch.
PATCH_LR_ROWS = 12
PATCH_COLS = 48
#: Planes per forward pass when applying the model.
APPLY_BATCH = 8


@dataclass(frozen=True)
class TrainingSetup:
    """How training strips relate to the slice geometry (all in fine-grid samples).

    A strip of ``patch_rows`` rows gives ``n_lr`` LR samples (the first one's first edge
    ``margin`` rows in) whose target is the ``rows_out`` rows after the margin; the margin
    holds the profile's tails so every LR sample sees its whole profile."""

    factor: float
    n_lr: int
    rows_out: int
    margin: int
    patch_rows: int
    patch_cols: int

    @classmethod
    def for_profile(
        cls, factor: float, profile: SliceProfile, spacing: float, size: tuple[int, int]
    ) -> TrainingSetup:
        """The largest strips up to :data:`PATCH_LR_ROWS` LR rows that fit in-plane ``size``
        (:class:`~sr_domains.errors.TooSmallToAdaptError` when not even 3 do)."""
        rows, cols = size
        margin = math.ceil(profile.support / spacing) + 1
        n_lr = min(PATCH_LR_ROWS, math.floor((rows - 2 * margin) / factor))
        if n_lr < 3:  # small images: keep the profile core, lose its far tails
            margin = math.ceil(profile.fwhm / spacing)
            n_lr = math.floor((rows - 2 * margin) / factor)
        if n_lr < 3:
            raise TooSmallToAdaptError(
                f"in-plane size {rows} x {cols} is too small to learn x{factor:.3g} slices with "
                f"a {profile.fwhm:.3g} mm profile (needs >= {3 * factor + 2 * margin:.0f} voxels)"
            )
        m = resampled_size(n_lr, factor)
        return cls(factor, n_lr, m, margin, m + 2 * margin, min(PATCH_COLS, cols))


def make_pairs(
    slices: np.ndarray,
    spacing: float,
    slice_spacing: float,
    profile: SliceProfile,
    *,
    batch_size: int = 16,
    foreground: float | None = 0.02,
) -> InternalPairs:
    """Training pairs from in-plane ``slices`` ``(N, A, B)`` of spacing ``spacing``: strips along
    both in-plane axes (module docs)."""
    f = slice_spacing / spacing
    size = (max(slices.shape[1:]), min(slices.shape[1:]))
    setup = TrainingSetup.for_profile(f, profile, spacing, size)
    w = degradation_matrix(
        setup.patch_rows, spacing, slice_spacing, profile, n_lr=setup.n_lr, offset=setup.margin
    )
    deg = RowDegradation(w, (setup.margin, setup.rows_out))
    stacks = [slices, np.swapaxes(slices, 1, 2)]
    sampler = PatchSampler(stacks, (setup.patch_rows, setup.patch_cols), foreground=foreground)
    return InternalPairs(sampler, deg, deg.target, batch_size=batch_size)


def build_model(factor: float, seed: int, warm_start: AxisSR | torch.nn.Module | None) -> AxisSR:
    """A fresh :class:`AxisSR` (initialised from ``seed``), warm-started when given weights."""
    with seeded(int(seed)):  # (built on the CPU)
        model = axis_sr(factor)
    if isinstance(warm_start, AxisSR):
        model.load_state_dict(warm_start.state_dict())
    elif warm_start is not None:
        copied = warm_start_from(model, warm_start)  # type: ignore[arg-type]
        log.info("warm start: %d tensors from %s", len(copied), type(warm_start).__name__)
    return model


def fit_through_plane(
    volume: np.ndarray,
    slice_axis: int,
    spacing: float,
    slice_spacing: float,
    profile: SliceProfile,
    *,
    budget: Budget,
    seed: int = 0,
    warm_start: torch.nn.Module | None = None,
    progress: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[AxisSR, FitReport]:
    """Fit an :class:`AxisSR` to ``volume`` (normalized, 3-D, isotropic in-plane ``spacing``)
    on ``device``."""
    if volume.ndim != 3:
        raise ConfigError(f"expected a 3-D volume, got shape {volume.shape}")
    f = slice_spacing / spacing
    model = build_model(f, seed, warm_start).to(device)
    if budget.steps == 0:  # nothing to learn: the (warm-started) network as it is
        return model.eval(), FitReport(seed=seed)
    slices = np.ascontiguousarray(np.moveaxis(volume, slice_axis, 0), dtype=np.float32)
    pairs = make_pairs(slices, spacing, slice_spacing, profile)
    report = fit(
        model, pairs, budget, seed=seed, progress=progress, desc=f"learning x{f:.3g} slices"
    )
    return model, report


@torch.inference_mode()
def apply_stack(model: AxisSR, planes: np.ndarray, progress_bar: object = None) -> np.ndarray:
    """``model`` over planes ``(N, n, W)`` (rows = coarse axis) -> ``(N, m, W)`` float32."""
    n_planes, n, w = planes.shape
    out = np.empty((n_planes, model.out_rows(n), w), np.float32)
    device = next(model.parameters()).device
    for i in range(0, n_planes, APPLY_BATCH):
        x = torch.from_numpy(np.ascontiguousarray(planes[i : i + APPLY_BATCH], np.float32))
        out[i : i + len(x)] = model(x[:, None].to(device))[:, 0].cpu().numpy()
        if progress_bar is not None:
            progress_bar.update(len(x))  # type: ignore[attr-defined]
    return out


def apply_through_plane(
    model: AxisSR,
    volume: np.ndarray,
    slice_axis: int,
    *,
    fusion: Fusion = "mean",
    progress: bool = False,
) -> np.ndarray:
    """Super-resolve the slice axis of ``volume`` with ``model`` (both stacks, fused)."""
    a, b = (ax for ax in range(3) if ax != slice_axis)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=volume.shape[a] + volume.shape[b], desc="applying", unit="plane")
    estimates = []
    try:
        for along, other in ((a, b), (b, a)):
            planes = np.transpose(volume, (along, slice_axis, other))  # (N, n, W)
            sr = apply_stack(model, planes, bar)
            estimates.append(np.moveaxis(sr, (0, 1, 2), (along, slice_axis, other)))
    finally:
        if bar is not None:
            bar.close()
    return fuse(estimates, fusion)


def fuse(estimates: list[np.ndarray], fusion: Fusion = "mean") -> np.ndarray:
    """Fuse estimates of one volume: their mean, or Fourier burst accumulation (``fba``:
    every 3-D frequency is the average of the estimates weighted by their magnitude squared,
    so the sharper estimate wins where the other one is blurred)."""
    if fusion == "mean":
        out = estimates[0].astype(np.float32, copy=True)
        for e in estimates[1:]:
            out += e
        return out / len(estimates)
    if fusion != "fba":
        raise ConfigError(f"fusion must be 'mean' or 'fba', got {fusion!r}")
    specs = [np.fft.rfftn(e) for e in estimates]
    weights = [np.abs(s) ** 2 for s in specs]
    total = cast(np.ndarray, sum(weights))
    total[total == 0] = 1.0
    acc = sum(w * s for w, s in zip(weights, specs)) / total
    return np.fft.irfftn(acc, s=estimates[0].shape).astype(np.float32)


__all__ = [
    "Fusion",
    "TrainingSetup",
    "apply_stack",
    "apply_through_plane",
    "build_model",
    "fit_through_plane",
    "fuse",
    "make_pairs",
]
