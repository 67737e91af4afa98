"""Build the engine (:class:`~sr_domains.inference.Upscaler`) for a model given as an engine,
a built model, a shipped weights or architecture name, or None (the shipped default): one
builder for the NIfTI, DICOM, MONAI and xarray entry points."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import ConfigError, ModelScaleError
from .inference import Upscaler
from .models.base import SRModel
from .options import UpscaleOptions
from .pretrained import resolve_model

if TYPE_CHECKING:
    import torch


def resolve_network(
    model: SRModel | str | None,
    weights: str | os.PathLike[str] | None,
    *,
    scale: int,
    n_bands: int | None = None,
) -> SRModel:
    """The network to run: a given :class:`SRModel` (of scale ``scale``), else
    :func:`sr_domains.pretrained.resolve_model` (shipped weights, a checkpoint or an
    architecture name, for ``n_bands`` bands); a model module missing from this installation
    is a :class:`ConfigError`, a model of another scale a :class:`ModelScaleError` naming it
    (:func:`scale_error`)."""
    if isinstance(model, SRModel) and weights is None:  # (no checkpoint module imported)
        if model.scale != scale:
            raise scale_error(model, scale)
        return model
    try:
        return resolve_model(model, weights, scale=scale, n_bands=n_bands)
    except ModuleNotFoundError as exc:  # model loading lives in modules that may be absent
        if exc.name and exc.name.startswith("sr_domains"):
            raise ConfigError(
                f"cannot load weights: {exc.name} is not available in this installation; "
                "pass a built model (API) instead"
            ) from exc
        raise


def scale_error(model: SRModel | torch.nn.Module, scale: int, what: str = "") -> ModelScaleError:
    """``the model sr-lite-gray-x4 (weights /w/x4.safetensors) upscales x4 but x2 was
    requested``: the model by the name its user knows it by
    (:func:`~sr_domains.model_label.model_label`; a plain network that declares a ``scale``:
    its class name), and the file it was loaded from when known (``what``: words before "the
    model", e.g. "the upscaler of ")."""
    from .model_label import model_label

    label = model_label(model) if isinstance(model, SRModel) else type(model).__name__
    source = getattr(model, "source_path", None) or getattr(model, "weights_source", ("", ""))[1]
    weights = f" (weights {source})" if source else ""
    return ModelScaleError(
        f"{what}the model {label}{weights} upscales x{getattr(model, 'scale', '?')} but "
        f"x{scale} was requested"
    )


def build_upscaler(
    model: SRModel | Upscaler | str | None,
    weights: str | os.PathLike[str] | None,
    *,
    scale: int,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = "auto",
    amp: str | bool | None = "auto",
    progress: bool = False,
    n_bands: int | None = None,
) -> Upscaler:
    """An :class:`Upscaler` for images of ``n_bands`` channels (None: medical planes, which
    are repeated on every input channel of a multi-channel model).

    ``model`` may already be an ``Upscaler`` (reused as is), a built model, a shipped weights or
    architecture name, or None for the shipped default (see :func:`sr_domains.pretrained.
    resolve_model`).
    """
    if isinstance(model, Upscaler):
        if model.scale != scale:
            raise scale_error(model.model, scale, "the upscaler of ")
        return model
    m = resolve_network(model, weights, scale=scale, n_bands=n_bands)
    return Upscaler(
        m,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        amp=amp,
        progress=progress,
    )


def upscaler_of(
    options: UpscaleOptions,
    model: SRModel | Upscaler | None = None,
    *,
    progress: bool = True,
    n_bands: int | None = None,
) -> Upscaler:
    """:func:`build_upscaler` for ``options`` (``model``: a built model or upscaler used
    instead of ``options.model``; ``progress``: False keeps the tile bar off even when
    ``options.progress`` asks for bars, for callers that show their own; ``n_bands``: as in
    :func:`build_upscaler`)."""
    return build_upscaler(
        model if model is not None else options.model,
        options.weights,
        scale=options.scale,
        tile=options.tile,
        overlap=options.overlap,
        batch_size=options.batch_size,
        device=options.device,
        amp=options.amp,
        progress=options.progress and progress,
        n_bands=n_bands,
    )


__all__ = ["build_upscaler", "resolve_network", "scale_error", "upscaler_of"]
