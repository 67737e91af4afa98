"""Options shared by every ``upscale`` entry point (CLI and domain APIs)."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .value_domain import ValueOptions

#: LR tile size used when the memory probe cannot run (kept here so options can be checked
#: without importing torch); normally the tile comes from the memory budget.
DEFAULT_TILE = 512
#: Network backends of the engine.
BACKENDS = ("torch", "onnxruntime")
#: Formats of ``sr-domains export`` (see sr_domains.export).
EXPORT_FORMATS = ("onnx", "torchscript", "exported-program")


def is_whole(value: object) -> bool:
    """An integer (Python or NumPy) or an integral float; never a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or float(value).is_integer()


def whole(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (:func:`is_whole`); anything else is
    refused, naming ``name``."""
    bound = f"{low}..{high}" if high is not None else f">= {low}"
    if not is_whole(value):
        raise ConfigError(f"{name} must be an integer {bound}, got {value!r}")
    if value < low or (high is not None and value > high):
        kind = "an integer " if high is not None else ""
        raise ConfigError(f"{name} must be {kind}{bound}, got {int(value)}")
    return int(value)


def flag(name: str, value: object) -> bool:
    """An on/off option as a bool; anything but a bool (``"yes"``, 1) is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_tile(tile: int | None) -> None:
    """Refuse a tile below 8 LR pixels (``upscale`` and ``evaluate``: too small to score)."""
    if tile is None:
        return
    if is_whole(tile) and tile < 8:  # (one minimum named for 0 and for 2 alike)
        raise ConfigError(f"tile must be >= 8 pixels, got {int(tile)}")
    whole("tile", tile, 8)


#: Default budget of per-input (self-supervised) learning, in minutes.
DEFAULT_BUDGET_MINUTES = 4.0


@dataclass(frozen=True)
class InternalOptions:
    """Per-input (self-supervised) learning: how long, how reproducible, what to keep.

    Shared by every learner that trains on the input itself (``--isotropic``; a later
    ``--adapt``); see :mod:`sr_domains.adapt`.

    Attributes:
        budget_minutes: wall-clock budget of the fit.
        steps: exact number of steps instead (reproduces a run bit for bit with ``seed``).
        seed: seed of the initialisation and of the training batches.
        save_model: write the fitted model here (``.safetensors`` with its card).
        warm_start: start from the shipped weights where the layouts match.
    """

    budget_minutes: float = DEFAULT_BUDGET_MINUTES
    steps: int | None = None
    seed: int = 0
    save_model: Path | None = None
    warm_start: bool = True

    def __post_init__(self) -> None:
        if not (self.budget_minutes >= 0):
            raise ConfigError(f"budget must be >= 0 minutes, got {self.budget_minutes}")
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        object.__setattr__(self, "warm_start", flag("warm_start", self.warm_start))


@dataclass(frozen=True)
class IsotropicOptions:
    """``--isotropic``: self-supervised through-plane SR to an isotropic grid (medical).

    Attributes:
        target_spacing: output spacing in mm (default: the finest in-plane spacing).
        slice_profile: ``gaussian`` (default) or ``rect`` with FWHM = the slice thickness,
            ``estimate`` (fitted from the data), or a profile file (offset mm, weight).
        slice_thickness: slice thickness in mm (default: the header's: DICOM SliceThickness,
            a BIDS sidecar's ``SliceThickness``; else the slice spacing).
        fusion: how the two orthogonal estimates are fused: ``mean`` or ``fba``.
    """

    target_spacing: float | None = None
    slice_profile: str = "gaussian"
    slice_thickness: float | None = None
    fusion: str = "mean"

    def __post_init__(self) -> None:
        for name in ("target_spacing", "slice_thickness"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be > 0 mm, got {v}")
        if self.fusion not in ("mean", "fba"):
            raise ConfigError(f"fusion must be 'mean' or 'fba', got {self.fusion!r}")


#: Default number of fine-tuning steps of ``--adapt``.
DEFAULT_ADAPT_STEPS = 200


@dataclass(frozen=True)
class AdaptOptions:
    """How to adapt a model to one input.

    Attributes:
        steps: fine-tuning steps (exact; with ``seed``, the same run twice gives the same model).
        psf: ``"estimate"`` (Gaussian width fitted from the input), ``"bicubic"`` (MATLAB
            bicubic) or a Gaussian PSF sigma in pixels of the input (+ area decimation).
        noise: ``"estimate"`` or a noise standard deviation in normalized units added to the
            degraded patches (0: none).
        lr: peak learning rate (Adam).
        batch_size: patches per step.
        patch: patch size in input pixels (the high-resolution side of a pair).
        max_minutes: hard wall-clock limit of the fit (the run stops early, and is then no longer
            repeatable bit for bit).
        seed: seed of the patch draws and noise.
        keep_if_worse: keep the adapted weights even when self-validation got worse.
        save_model: also save the adapted model here (``.safetensors`` with its card).
        overwrite: replace an existing ``save_model`` file.
    """

    steps: int = DEFAULT_ADAPT_STEPS
    psf: str | float = "estimate"
    noise: str | float = "estimate"
    lr: float = 1e-4
    batch_size: int = 16
    patch: int = 64
    max_minutes: float = 4.0
    seed: int = 0
    keep_if_worse: bool = False
    save_model: Path | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"adapt steps must be >= 1, got {self.steps}")
        if isinstance(self.psf, str) and self.psf not in ("estimate", "bicubic"):
            try:
                object.__setattr__(self, "psf", float(self.psf))
            except ValueError:
                raise ConfigError(
                    "adapt PSF must be 'estimate', 'bicubic' or a sigma in pixels, "
                    f"got {self.psf!r}"
                ) from None
        if not isinstance(self.psf, str) and not 0 <= float(self.psf) <= 4:
            raise ConfigError(f"adapt PSF sigma must be in [0, 4] pixels, got {self.psf}")
        if isinstance(self.noise, str) and self.noise != "estimate":
            try:
                object.__setattr__(self, "noise", float(self.noise))
            except ValueError:
                raise ConfigError(
                    f"adapt noise must be 'estimate' or a number, got {self.noise!r}"
                ) from None
        if not isinstance(self.noise, str) and not float(self.noise) >= 0:
            raise ConfigError(f"adapt noise must be >= 0, got {self.noise}")
        if not self.lr > 0 or self.batch_size < 1 or self.patch < 8:
            raise ConfigError("adapt needs lr > 0, batch size >= 1 and patch >= 8")
        if not self.max_minutes > 0:
            raise ConfigError(f"adapt time limit must be > 0 minutes, got {self.max_minutes}")


#: The on/off fields of :class:`UpscaleOptions`: True or False only (never ``"false"``).
ON_OFF_FIELDS = ("through_plane", "overwrite", "progress", "cog")


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
    # engine (see sr_domains.engine_config): None = the engine's default
    backend: str | None = None  # "torch" or "onnxruntime"
    threads: int | None = None  # CPU threads of the network
    max_memory: str | None = None  # memory budget of one forward batch ("4G"); sets the tile
    # remote sensing
    bands: tuple[int, ...] | None = None  # 1-based band indexes, as in GDAL/rasterio
    nodata: float | None = None
    cog: bool = False
    dtype: str | None = None  # output data type (GeoTIFF; default: the input's)
    creation_options: tuple[tuple[str, str], ...] = ()  # GDAL creation options (--co)
    # medical
    axes: tuple[int, int] | None = None  # in-plane axes of a NIfTI volume (0-based)
    through_plane: bool = False
    series_uid: str | None = None  # DICOM SeriesInstanceUID when a folder holds several
    isotropic: IsotropicOptions | None = None  # self-supervised through-plane SR (medical)
    internal: InternalOptions = field(default_factory=InternalOptions)  # per-input learning
    adapt: AdaptOptions | None = None  # fine-tune the model on each input first (--adapt)
    suffix: str = ""  # batch outputs: NAME + suffix + extension (e.g. "_x2")

    def __post_init__(self) -> None:
        """Validate every numeric option before any file is read or created (integer options
        take NumPy integers and integral floats, stored as ``int``; the overlap is checked
        against a default tile when the engine picks the tile)."""
        object.__setattr__(self, "scale", whole("scale", self.scale, 1, 16))
        check_tile(self.tile)
        for name, low in (("tile", 8), ("overlap", 0), ("batch_size", 1), ("threads", 1)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, whole(name.replace("_", " "), value, low))
        if self.tile is not None and self.overlap is not None and self.overlap >= self.tile:
            raise ConfigError(
                f"overlap ({self.overlap}) must be smaller than the tile ({self.tile}); pass a "
                "larger --tile"
            )
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.max_memory is not None:
            parse_bytes(self.max_memory)
        for name in ON_OFF_FIELDS:  # ("false" is truthy)
            object.__setattr__(self, name, flag(name, getattr(self, name)))
        if self.weights is not None and not isinstance(self.weights, Path):
            object.__setattr__(self, "weights", Path(self.weights))
        if self.bands is not None:  # (numbers out of range: the reader names the file's range)
            if isinstance(self.bands, (str, bytes)) or not all(map(is_whole, self.bands or [""])):
                raise ConfigError(f"bands must be 1-based band numbers, got {self.bands!r}")
            object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))


def output_name(name: str, suffix: str) -> str:
    """A batch output's file or folder name: ``suffix`` before the extension (``a.tif`` ->
    ``a_x2.tif``, ``t1.nii.gz`` -> ``t1_x2.nii.gz``, ``series`` -> ``series_x2``)."""
    if not suffix:
        return name
    from .output_names import control_characters

    if "/" in suffix or "\\" in suffix or suffix in (".", "..") or control_characters(suffix):
        raise ConfigError(f"--suffix must be part of a file name, got {suffix!r}")
    for ext in (".nii.gz", ".tiff", ".tif", ".nii"):
        if name.lower().endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)] + suffix + name[-len(ext) :]
    return name + suffix


_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(value: int | float | str) -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``2048MB`` or a plain number of bytes (binary units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(?:i?b)?\s*", str(value).lower())
        if not m:
            raise ConfigError(f"max memory must be like 4G, 512M or a byte count, got {value!r}")
        n = float(m.group(1)) * _UNITS[m.group(2)]
    if not n >= 16 * 2**20:
        raise ConfigError(f"max memory must be at least 16M, got {value!r}")
    return int(n)


def engine_fields(options: UpscaleOptions) -> dict[str, Any]:
    """The run-wide engine fields (``backend``, ``threads``, ``max_memory``) of ``options``,
    as keyword arguments of :class:`~sr_domains.engine_config.EngineSettings`."""
    return {
        "backend": options.backend,
        "threads": options.threads,
        "max_memory": options.max_memory,
    }


DOMAIN_FIELDS = {
    "bands",
    "nodata",
    "cog",
    "dtype",
    "creation_options",
    "axes",
    "through_plane",
    "series_uid",
    "isotropic",
}


#: CLI flags of the domain fields whose name is not the field's (``--flag-name`` otherwise).
FLAGS = {"series_uid": "--series", "creation_options": "--co"}


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
        flags = ", ".join(
            f"{FLAGS[b]} ({b}=)" if b in FLAGS else "--" + b.replace("_", "-") for b in bad
        )
        raise ConfigError(f"option(s) {flags} do not apply to {domain} input")
    check_internal(options)


def check_internal(options: UpscaleOptions) -> None:
    """Per-input learning options (``--budget``, ``--steps``, ``--seed``, ``--save-model``) only
    apply to a mode that learns from the input (``--isotropic``); ``--isotropic`` excludes
    ``--through-plane`` and ``--scale``."""
    if options.adapt is not None and options.isotropic is not None:
        raise ConfigError("--adapt and --isotropic exclude each other (--isotropic learns anyway)")
    if options.isotropic is None:
        if options.internal != InternalOptions():
            raise ConfigError(
                "--budget, --steps, --seed and --save-model apply to --isotropic or --adapt only"
            )
        return
    if options.through_plane:
        raise ConfigError("--isotropic and --through-plane exclude each other")
    if options.scale != 2:
        raise ConfigError("--scale does not apply to --isotropic (use --target-spacing)")


def saved_model_path(options: UpscaleOptions) -> Path | None:
    """Where ``--save-model`` saves the model fitted to the input (``--adapt`` or
    ``--isotropic``), or None."""
    if options.adapt is not None and options.adapt.save_model is not None:
        return options.adapt.save_model
    return options.internal.save_model if options.isotropic is not None else None


def check_save_model_batch(save_model: Path | None, n_inputs: int) -> None:
    """``--save-model`` saves the model fitted to one input; a batch of several is refused
    before any work (each input would replace the file, or fail on it as an existing output)."""
    if save_model is not None and n_inputs > 1:
        raise ConfigError(
            f"--save-model {save_model}: saves the model fitted to one input, and this batch has "
            f"{n_inputs} inputs; save it from one input, then pass the file to the batch as "
            "--weights"
        )
