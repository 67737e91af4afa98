"""The keyword APIs (``upscale_geotiff``, ``upscale_nifti``, ``upscale_dicom_series``, ...)
turned into one :class:`~sr_domains.options.UpscaleOptions`, validated as the CLI's are, so
that the engines below them take one object, as the CLI adapters pass it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .options import ON_OFF_FIELDS, AdaptOptions, UpscaleOptions, flag, is_whole, whole
from .value_domain import ValueOptions

#: On/off fields of :class:`~sr_domains.options.UpscaleOptions` a keyword API may pass.
FLAGS = ON_OFF_FIELDS  # checked by UpscaleOptions itself


def adapt_keyword(adapt: object) -> AdaptOptions | None:
    """``adapt=`` as :class:`~sr_domains.options.AdaptOptions` or None (off), as the CLI's
    ``--adapt [STEPS]``: None or False is off, True the default adaptation, a whole number
    >= 1 that many steps, an ``AdaptOptions`` as it is; anything else is refused."""
    if adapt is None or isinstance(adapt, AdaptOptions):
        return adapt
    if isinstance(adapt, (bool, np.bool_)):
        return AdaptOptions() if adapt else None
    if is_whole(adapt) and adapt >= 1:  # type: ignore[operator]
        return AdaptOptions(steps=int(adapt))  # type: ignore[call-overload]
    raise ConfigError(
        f"adapt must be True, a number of steps >= 1 or an AdaptOptions (None or False: off), "
        f"got {adapt!r}"
    )


def keyword_options(
    *,
    scale: int = 2,
    model: object = None,
    weights: str | os.PathLike[str] | None = None,
    profile: object = None,
    values: ValueOptions | None = None,
    adapt: object = None,
    **fields: Any,
) -> tuple[UpscaleOptions, Any, Any]:
    """``(options, model, profile)`` from an API's keywords: a ``model`` or ``profile`` given
    as a name goes into the options; one given as an object (a built model or upscaler, a
    fitted profile) comes back beside them, to be used instead of the options' name.
    ``adapt``: see :func:`adapt_keyword`. ``fields``: the other
    :class:`~sr_domains.options.UpscaleOptions` fields, as they are (the options check them,
    the on/off ones included)."""
    options = UpscaleOptions(
        scale=whole("scale", scale, 1, 16),
        model=model if isinstance(model, str) else None,
        weights=Path(weights) if weights is not None else None,
        profile=profile if isinstance(profile, str) else None,
        values=values if values is not None else ValueOptions(),
        adapt=adapt_keyword(adapt),
        **fields,
    )
    built = None if model is None or isinstance(model, str) else model
    fitted = None if profile is None or isinstance(profile, str) else profile
    return options, built, fitted


__all__ = ["FLAGS", "adapt_keyword", "flag", "keyword_options"]
