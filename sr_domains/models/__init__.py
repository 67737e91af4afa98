"""Model core: an explicit registry of architectures and ``create_model``.

>>> from sr_domains.models import create_model, list_models
>>> model = create_model("edsr", in_channels=4, scale=2)          # EDSR baseline, 4 bands
>>> model = create_model("edsr-full", in_channels=1, scale=4)     # preset "full"
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from ..errors import RegistryError
from ..registry import Registry
from .base import ArchSpec, BaseSRConfig, ModelInfo, SRModel

ENTRY_POINT_GROUP = "sr_domains.models"


@cache
def model_registry() -> Registry[ArchSpec]:
    """The architecture registry (built on first use; third parties add via entry points)."""
    from . import edsr, rcan, rrdb, srcnn

    reg: Registry[ArchSpec] = Registry("model", ENTRY_POINT_GROUP)
    for spec in (srcnn.SPEC, edsr.SPEC, rcan.SPEC, rrdb.SPEC):
        reg.add(spec.name, spec)
    return reg


def _resolve(name: str) -> tuple[ArchSpec, dict[str, Any]]:
    reg = model_registry()
    if name in reg:
        return reg.get(name), {}
    # Presets may contain hyphens ("edsr-lite-ca"), so try every split point, shortest arch first.
    for i, char in enumerate(name):
        if char != "-" or name[:i] not in reg:
            continue
        arch, preset = name[:i], name[i + 1 :]
        spec = reg.get(arch)
        if preset in spec.presets:
            return spec, dict(spec.presets[preset])
        close = difflib.get_close_matches(preset, list(spec.presets), n=1)
        hint = f"; did you mean '{arch}-{close[0]}'?" if close else ""
        raise RegistryError(
            f"model {arch!r} has no preset {preset!r}{hint} (presets: {', '.join(spec.presets)})"
        )
    reg.get(name)  # raises with "did you mean"
    raise AssertionError("unreachable")


def create_model(name: str, **overrides: Any) -> SRModel:
    """Build an architecture by name (``"edsr"``) or ``"arch-preset"`` (``"edsr-full"``).

    Keyword arguments override config fields (``in_channels``, ``scale``, ...); unknown ones are
    an error. The model is in eval mode on the CPU with freshly initialised weights.
    """
    spec, preset = _resolve(name)
    model = spec.build(**{**preset, **overrides})
    return model.eval()


def get_arch(name: str) -> ArchSpec:
    """The :class:`ArchSpec` registered under ``name``."""
    return model_registry().get(name)


def list_models() -> list[str]:
    """Registered architecture names and their presets (``"edsr"``, ``"edsr-full"``, ...)."""
    out: list[str] = []
    for name in model_registry().names():
        out.append(name)
        out.extend(f"{name}-{p}" for p in model_registry().get(name).presets)
    return out


__all__ = [
    "ArchSpec",
    "BaseSRConfig",
    "ModelInfo",
    "SRModel",
    "create_model",
    "get_arch",
    "list_models",
    "model_registry",
]
