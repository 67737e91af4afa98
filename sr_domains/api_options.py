"""The keyword APIs (``upscale_geotiff``, ``upscale_nifti``, ``upscale_dicom_series``, ...)
turned into one :class:`~sr_domains.options.UpscaleOptions`, validated as the CLI's are, so
that the engines below them take one object, as the CLI adapters pass it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .options import UpscaleOptions, whole
from .value_domain import ValueOptions


def keyword_options(
    *,
    scale: int = 2,
    model: object = None,
    weights: str | os.PathLike[str] | None = None,
    profile: object = None,
    values: ValueOptions | None = None,
    **fields: Any,
) -> tuple[UpscaleOptions, Any, Any]:
    """``(options, model, profile)`` from an API's keywords: a ``model`` or ``profile`` given
    as a name goes into the options; one given as an object (a built model or upscaler, a
    fitted profile) comes back beside them, to be used instead of the options' name.
    ``fields``: the other :class:`~sr_domains.options.UpscaleOptions` fields, as they are."""
    options = UpscaleOptions(
        scale=whole("scale", scale, 1, 16),
        model=model if isinstance(model, str) else None,
        weights=Path(weights) if weights is not None else None,
        profile=profile if isinstance(profile, str) else None,
        values=values if values is not None else ValueOptions(),
        **fields,
    )
    built = None if model is None or isinstance(model, str) else model
    fitted = None if profile is None or isinstance(profile, str) else profile
    return options, built, fitted


__all__ = ["keyword_options"]
