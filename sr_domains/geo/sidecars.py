"""GDAL sidecars of a GeoTIFF output (``NAME.tif.aux.xml``, ``NAME.tif.msk``,
``NAME.tif.ovr``, ``STEM.IMD``, ArcGIS ``STEM.aux`` and ``STEM.rrd``; other spellings too):
which belong to the output being replaced (removed) and which to an input (never touched),
and their replacement around the output's own (:func:`sidecar_swap`).

One name for three modules: :mod:`~sr_domains.geo.sidecar_names` (which files, in which
spellings, whose; they read the folder listing a batch takes once,
:mod:`~sr_domains.folder_listing`), :mod:`~sr_domains.geo.sidecar_plan`
(refused or removed, decided before any work) and :mod:`~sr_domains.geo.sidecar_swap` (set
aside, put back, recovered after a killed run)."""

from __future__ import annotations

from ..folder_listing import FolderListing
from .sidecar_names import (
    hfa_sidecars,
    imd_sidecar,
    imd_sidecars,
    output_sidecars,
    sidecar_owner,
)
from .sidecar_plan import cog_sidecars, orphan_problem, orphan_sidecars, plan_sidecars
from .sidecar_swap import ASIDE_TAG, SidecarSwap, sidecar_swap, temp_sidecars

__all__ = [
    "ASIDE_TAG",
    "FolderListing",
    "SidecarSwap",
    "cog_sidecars",
    "hfa_sidecars",
    "imd_sidecar",
    "imd_sidecars",
    "orphan_problem",
    "orphan_sidecars",
    "output_sidecars",
    "plan_sidecars",
    "sidecar_owner",
    "sidecar_swap",
    "temp_sidecars",
]
