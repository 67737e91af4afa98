"""Small configurations of every registered architecture, shared by the model tests."""

from __future__ import annotations

from typing import Any

from sr_domains.models import get_arch

# Tiny configs keep the per-arch grids fast; archs not listed fall back to their "small" preset
# (or their defaults), so newly registered archs are still covered.
SMALL: dict[str, dict[str, Any]] = {
    "srcnn": {"features": (8, 4)},
    "edsr": {"n_blocks": 2, "n_feats": 8},
    "rcan": {"n_resgroups": 2, "n_resblocks": 2, "n_feats": 8, "reduction": 4},
    "rrdb": {"num_block": 1, "num_feat": 8, "num_grow_ch": 4},
}


def small(arch: str) -> dict[str, Any]:
    """Small config overrides for ``arch``."""
    if arch in SMALL:
        return dict(SMALL[arch])
    return dict(get_arch(arch).presets.get("small", {}))
