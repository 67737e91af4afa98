"""Options shared by every ``upscale`` entry point (CLI and domain APIs)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .value_domain import ValueOptions

#: LR tile size used when the memory probe cannot run (kept here so options can be checked
#: without importing torch); normally the tile comes from the memory budget.
DEFAULT_TILE = 512
#: Network backends of the engine.
BACKENDS = ("torch", "onnxruntime")


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
    values: ValueOptions = field(default_factory=ValueOptions)  # value fidelity, see value_domain
    # remote sensing
    bands: tuple[int, ...] | None = None  # 1-based band indexes, as in GDAL/rasterio
    nodata: float | None = None
    cog: bool = False
    # medical
    axes: tuple[int, int] | None = None  # in-plane axes of a NIfTI volume (0-based)
    through_plane: bool = False
    series_uid: str | None = None  # DICOM SeriesInstanceUID when a folder holds several

    def __post_init__(self) -> None:
        """Validate every numeric option before any file is read or created."""
        if self.scale not in (2, 3, 4):
            raise ConfigError(f"scale must be 2, 3 or 4, got {self.scale}")
        if self.tile is not None and self.tile < 8:
            raise ConfigError(f"tile must be >= 8 pixels, got {self.tile}")
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"overlap must be >= 0, got {self.overlap}")
        if self.overlap is not None and self.overlap >= (self.tile or DEFAULT_TILE):
            raise ConfigError(
                f"overlap ({self.overlap}) must be smaller than the tile "
                f"({self.tile or DEFAULT_TILE}); pass a larger --tile"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise ConfigError(f"bands are 1-based and at least one is needed, got {self.bands}")


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
