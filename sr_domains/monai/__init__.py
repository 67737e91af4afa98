"""sr_domains inside MONAI: transforms, an inferer, LR/HR pair transforms and their
post-processing, all getting the geometry right (the ``monai`` extra).

>>> from sr_domains.monai import SuperResolutiond, SRInferer, SRInvertd  # doctest: +SKIP

Importing this package needs nothing beyond sr_domains itself; MONAI is imported when a name
is first used, and a missing MONAI raises :class:`~sr_domains.errors.MissingDependencyError`
naming the extra (``pip install "sr-domains[monai]"``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import require

_EXPORTS = {
    "SuperResolution": "transforms",
    "SuperResolutiond": "transforms",
    "SRInferer": "inferer",
    "SRInvert": "invert",
    "SRInvertd": "invert",
    "MakeLowResolution": "pairs",
    "MakeLowResolutiond": "pairs",
    "RandMakeLowResolution": "pairs",
    "RandMakeLowResolutiond": "pairs",
    "SRPrepareBatch": "engines",
    "MakeIsotropic": "isotropic",
    "MakeIsotropicd": "isotropic",
}

__all__ = [
    "MakeIsotropic",
    "MakeIsotropicd",
    "MakeLowResolution",
    "MakeLowResolutiond",
    "RandMakeLowResolution",
    "RandMakeLowResolutiond",
    "SRInferer",
    "SRInvert",
    "SRInvertd",
    "SRPrepareBatch",
    "SuperResolution",
    "SuperResolutiond",
]

if TYPE_CHECKING:  # pragma: no cover
    from .engines import SRPrepareBatch
    from .inferer import SRInferer
    from .invert import SRInvert, SRInvertd
    from .isotropic import MakeIsotropic, MakeIsotropicd
    from .pairs import (
        MakeLowResolution,
        MakeLowResolutiond,
        RandMakeLowResolution,
        RandMakeLowResolutiond,
    )
    from .transforms import SuperResolution, SuperResolutiond


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sr_domains.monai' has no attribute {name!r}")
    require("monai", "monai", feature=f"sr_domains.monai.{name}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
