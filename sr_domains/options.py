"""Options shared by every ``upscale`` entry point (CLI and domain APIs)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class UpscaleOptions:
    """What the user asked for; domain adapters read the fields that apply to them.

    Domain-specific fields default to None/False; an adapter rejects the ones it does not
    support (see :func:`check_supported`) instead of silently ignoring them.
    """

    scale: int = 2
    model: str | None = None  # architecture/preset name or shipped weights name
    weights: Path | None = None  # our .safetensors or a public .pt/.pth checkpoint
    profile: str | None = None  # intensity recipe, see sr_domains.intensity
    tile: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    amp: str = "auto"
    overwrite: bool = False
    progress: bool = False
    # remote sensing
    bands: tuple[int, ...] | None = None  # 1-based band indexes, as in GDAL/rasterio
    nodata: float | None = None
    cog: bool = False
    # medical
    axes: tuple[int, int] | None = None  # in-plane axes of a NIfTI volume (0-based)
    through_plane: bool = False
    series_uid: str | None = None  # DICOM SeriesInstanceUID when a folder holds several

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ConfigError(f"scale must be 2, 3 or 4, got {self.scale}")


DOMAIN_FIELDS = {"bands", "nodata", "cog", "axes", "through_plane", "series_uid"}


def check_supported(options: UpscaleOptions, domain: str, supported: set[str]) -> None:
    """Raise ConfigError if a domain-specific option is set that ``domain`` does not support."""
    defaults = UpscaleOptions()
    bad = [
        f.name
        for f in fields(options)
        if f.name in DOMAIN_FIELDS - supported
        and getattr(options, f.name) != getattr(defaults, f.name)
    ]
    if bad:
        flags = ", ".join("--" + b.replace("_", "-") for b in bad)
        raise ConfigError(f"option(s) {flags} do not apply to {domain} input")


def inference_kwargs(options: UpscaleOptions) -> dict[str, Any]:
    """The keyword arguments of :class:`~sr_domains.inference.Upscaler` from options."""
    return {
        "tile": options.tile,
        "overlap": options.overlap,
        "batch_size": options.batch_size,
        "device": options.device,
        "amp": options.amp,
        "progress": options.progress,
    }
