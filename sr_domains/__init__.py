"""sr_domains: super-resolution for remote sensing and medical imaging that keeps geometry right.

The top level exposes the domain-independent core; names are imported on first use, so
``import sr_domains`` is cheap. Domain APIs live in ``sr_domains.geo``, ``sr_domains.medical``
and ``sr_domains.monai`` (optional extras).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SRDomainsError": "errors",
    "SpatialRef": "image",
    "Image": "image",
    "IntensityProfile": "intensity",
    "profile_from_any": "intensity",
    "SRModel": "models",
    "create_model": "models",
    "list_models": "models",
    "Upscaler": "inference",
    "upscale_array": "array_api",
    "ModelCard": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_public_checkpoint": "public_weights",
    "list_pretrained": "pretrained",
    "load_pretrained": "pretrained",
}

__all__ = [  # noqa: RUF022 - grouped by topic
    "__version__",
    "SRDomainsError",
    "SpatialRef",
    "Image",
    "IntensityProfile",
    "profile_from_any",
    "SRModel",
    "create_model",
    "list_models",
    "Upscaler",
    "upscale_array",
    "ModelCard",
    "save_checkpoint",
    "load_checkpoint",
    "load_public_checkpoint",
    "list_pretrained",
    "load_pretrained",
]

if TYPE_CHECKING:  # pragma: no cover
    from .array_api import upscale_array
    from .checkpoint import ModelCard, load_checkpoint, save_checkpoint
    from .errors import SRDomainsError
    from .image import Image, SpatialRef
    from .inference import Upscaler
    from .intensity import IntensityProfile, profile_from_any
    from .models import SRModel, create_model, list_models
    from .pretrained import list_pretrained, load_pretrained
    from .public_weights import load_public_checkpoint


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
