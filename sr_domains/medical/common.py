"""Glue shared by the NIfTI and DICOM paths: adaptation and noise gate on a volume's planes,
intensity profile and provenance text (the engine comes from :mod:`sr_domains.engine_build`,
output safety from :mod:`sr_domains.io_safety`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..errors import ConfigError, TooSmallToAdaptError
from ..inference import Upscaler
from ..intensity import IntensityProfile, profile_from_any
from ..made_with import Made, weights_made
from ..models.base import SRModel
from ..options import AdaptOptions, UpscaleOptions
from ..run_recipe import recipe_of

if TYPE_CHECKING:
    from ..adapt.input_adapt import AdaptReport
    from ..noise_gate import NoiseChoice

log = logging.getLogger(__name__)


#: Planes of a volume the model is adapted on (``--adapt``), evenly spread over its middle.
ADAPT_PLANES = 8


def middle_indexes(n: int, k: int = ADAPT_PLANES) -> list[int]:
    """Up to ``k`` distinct indexes evenly spread over the middle 60% of ``range(n)``."""
    lo, hi = int(0.2 * n), max(int(0.2 * n) + 1, int(np.ceil(0.8 * n)))
    return sorted({round(v) for v in np.linspace(lo, hi - 1, min(k, hi - lo))})


def adapt_to_volume(
    up: Upscaler,
    planes: list[np.ndarray],
    profile: IntensityProfile,
    adapt: AdaptOptions,
    progress: bool = False,
) -> tuple[Upscaler, AdaptReport]:
    """Adapt ``up``'s model on 2-D planes of a volume in physical units (NaN = padding)."""
    from ..adapt.input_adapt import adapt_engine

    images = [np.asarray(profile.normalize(p[None].astype(np.float32)), np.float32) for p in planes]
    return adapt_engine(up, images, adapt, progress=progress)


def noise_gate_volume(
    up: Upscaler, planes: list[np.ndarray], profile: IntensityProfile
) -> tuple[Upscaler, NoiseChoice | None]:
    """The noise gate (:mod:`sr_domains.noise_gate`) on 2-D planes of a volume in physical
    units (NaN = padding)."""
    from ..noise_gate import choose_for_noise

    images = [np.asarray(profile.normalize(p[None].astype(np.float32)), np.float32) for p in planes]
    return choose_for_noise(up, images)


@dataclass
class VolumeWeights:
    """The weights one volume is upscaled with: the noise gate's choice and ``--adapt``'s
    fine-tune applied to the resolved model, and what the output records about them."""

    up: Upscaler
    made: Made
    noise: NoiseChoice | None = None
    report: AdaptReport | None = None


def volume_made(
    up: Upscaler,
    options: UpscaleOptions,
    model: object = None,
    profile: object = None,
    **fields: Any,
) -> Made:
    """What a volume run's output is made with (:class:`~sr_domains.made_with.Made`, one band
    in) before the noise gate and ``--adapt``, with the run's recipe (``model``, ``profile``:
    objects given instead of ``options.model``/``options.profile``; ``fields``: ``axes``,
    ``through_plane``)."""
    return weights_made(
        model if model is not None else options.model,
        options.weights,
        up.model,
        options.scale,
        1,
        recipe=recipe_of(options, "medical", profile=profile),
        **fields,
    )


def weights_for_volume(
    up: Upscaler,
    made: Made,
    options: UpscaleOptions,
    *,
    model: object = None,
    planes: Callable[[], list[np.ndarray]],
    profile: IntensityProfile,
    source: str | os.PathLike[str] | None = None,
) -> VolumeWeights:
    """Apply the noise gate (when ``upscale`` picked the weights itself: neither a model nor
    weights named) and ``options.adapt`` to ``up``; ``planes`` reads the 2-D planes both learn
    from (physical units, NaN = padding), once and only when one of them runs; ``made``: the
    resolved weights (:func:`volume_made`); ``model``: an object used instead of
    ``options.model``; ``source``: the input, named by an error about it."""
    from ..noise_gate import chosen_by_default, noise_variant

    named = model if model is not None else options.model
    gate = chosen_by_default(named, options.weights) and noise_variant(up.model) is not None
    adapt = options.adapt
    if not gate and adapt is None:
        return VolumeWeights(up, made)
    images = planes()
    noise = report = None
    if gate:
        up, noise = noise_gate_volume(up, images, profile)
        made = made.blended(noise, up.model)
    if adapt is not None:
        before = up.model
        try:
            up, report = adapt_to_volume(up, images, profile, adapt, progress=options.progress)
        except TooSmallToAdaptError as exc:  # the file it is about
            raise (exc.naming(source) if source is not None else exc) from None
        made = made.adapted(True, up.model is not before, up.model)
    return VolumeWeights(up, made, noise, report)


def card_recipe(model: SRModel) -> str | dict[str, Any] | None:
    """The intensity profile stored with the model card (dict or attribute style), if any."""
    card = getattr(model, "card", None)
    if card is None:
        return None
    prof = card.get("profile") if isinstance(card, dict) else getattr(card, "profile", None)
    if isinstance(prof, dict) and ("recipe" in prof or "scale" in prof):
        return prof
    if isinstance(prof, str) and prof:
        return prof
    return None


def fit_profile(
    spec: str | IntensityProfile | dict[str, Any] | None,
    model: SRModel,
    data: np.ndarray,
    *,
    default: str,
    dtype: np.dtype | None = None,
) -> IntensityProfile:
    """Fit the intensity profile **once** on a whole volume (all slices, all time points).

    Order: ``spec`` given by the user, else the model card's profile, else ``default``
    (``"ct"`` for CT series, ``"mr"`` otherwise). Non-finite voxels are ignored. ``dtype`` is
    the on-disk type, used by the ``dtype`` recipe (the volume itself is float).
    """
    chosen = spec if spec is not None else (card_recipe(model) or default)
    finite = np.isfinite(data) if data.dtype.kind == "f" else None
    prof = profile_from_any(
        chosen,
        data[None],
        dtype=dtype if dtype is not None else data.dtype,
        valid_mask=None if finite is None else finite[None],
    )
    if prof.n_bands != 1:
        raise ConfigError(f"profile {prof.recipe!r} has {prof.n_bands} bands; volumes need one")
    log.info("intensity profile %s: scale %.6g offset %.6g", prof.recipe, *prof.scale, *prof.offset)
    return prof


def describe_profile(profile: IntensityProfile) -> str:
    """``recipe (y = x*scale + offset)`` with the fitted numbers, for provenance."""
    return f"{profile.recipe} (y = x*{profile.scale[0]:.6g} + {profile.offset[0]:.6g})"


def provenance(
    upscaler: Upscaler,
    profile: IntensityProfile,
    factors: tuple[float, ...],
    mode: str,
) -> dict[str, Any]:
    """Machine-readable record of how an output was made."""
    return {
        "software": f"sr_domains {__version__}",
        "model": getattr(upscaler.model, "arch", type(upscaler.model).__name__),
        "weights": _weights_name(upscaler.model),
        "scale": upscaler.scale,
        "factors": [float(f) for f in factors],
        "mode": mode,
        "profile": profile.to_dict(),
    }


def _weights_name(model: SRModel) -> str | None:
    from ..model_label import card_name

    return card_name(model)


def check_through_plane(src: Any, shape: tuple[int, ...], what: str = "volume") -> None:
    """Refuse through-plane SR of a volume with fewer than 2 voxels on one of its first three
    axes (``what``: "volume", or "series" for DICOM's slices x rows x columns)."""
    if min((*shape, 1, 1)[:3]) >= 2:  # (a 2-D file is one slice of a volume)
        return
    from ..errors import InputFileError

    dims = "x".join(str(n) for n in shape)
    order = " (slices x rows x columns)" if what == "series" else ""
    raise InputFileError(
        src,
        f"through-plane SR needs >= 2 voxels on each of 3 axes; the {what} is {dims}{order}: "
        "upscale it without through-plane",
    )


__all__ = [
    "card_recipe",
    "check_through_plane",
    "describe_profile",
    "fit_profile",
    "noise_gate_volume",
    "provenance",
    "volume_made",
    "weights_for_volume",
]
