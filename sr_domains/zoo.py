"""Public checkpoints through spandrel (the optional ``zoo`` extra), as :class:`SRModel`\\ s.

spandrel (MIT, the loader behind chaiNNer and ComfyUI) recognises 40+ architectures from a state
dict. :func:`load_spandrel` wraps what it finds in :class:`SpandrelSR`, which keeps the
:class:`~sr_domains.models.SRModel` contract (scale, channels, size multiple, receptive radius or
None, fp16/bf16 flags), so the GeoTIFF, NIfTI, DICOM and MONAI paths run it unchanged.
:func:`sr_domains.public_weights.load_public_checkpoint` calls it after sr_domains' own exact
loaders. Only spandrel's main registry (permissive licences) is used, unless the caller asks for
``spandrel_extra_arches`` (restrictive licences, e.g. non-commercial) or installed them into
spandrel's registry itself.

spandrel is imported lazily by :func:`~sr_domains.zoo_import.import_spandrel` (also where
torchvision's C++ operators cannot load; see :mod:`sr_domains.zoo_import`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .errors import CheckpointError, ConfigError
from .models.base import BaseSRConfig, SRModel
from .zoo_import import import_spandrel, spandrel_available
from .zoo_notes import SPANDREL_RADIUS, licence_note

log = logging.getLogger(__name__)

#: spandrel purposes sr_domains runs: upscaling, and same-size restoration (scale 1).
PURPOSES = ("SR", "Restoration")


# -- the SRModel wrapper --------------------------------------------------------------------------
@dataclass(frozen=True)
class SpandrelConfig(BaseSRConfig):
    """What spandrel detected. ``scale`` may be 1 (restoration) to 16.

    Attributes:
        family: spandrel's architecture id (``"Compact"``, ``"SwinIR"``, ``"ESRGAN"``...).
        family_name: its display name (``"RealESRGAN Compact"``).
        purpose: ``"SR"`` or ``"Restoration"`` (scale 1).
        tags: spandrel's size/variant tags (``"64nf"``, ``"unshuffle"``...).
        size_multiple: spandrel's multiple-of requirement, times the attention-window grid
            (:func:`window_alignment`): tiles start on it.
        min_size: smallest input side; smaller inputs are padded (reflect, then edge).
        square: the input must be square (padded to it).
        tiling: spandrel's advice: ``"supported"``, ``"discouraged"`` or ``"internal"``.
        hyperparameters: the architecture's constructor arguments (JSON-safe ones).
        extra_arch: from ``spandrel_extra_arches`` (restrictive licence).
        global_pooling: the network has a global pooling layer (channel attention): every
            output pixel depends on the whole input, so tiling can only approximate.
    """

    family: str = ""
    family_name: str = ""
    purpose: str = "SR"
    tags: tuple[str, ...] = ()
    size_multiple: int = 1
    min_size: int = 0
    square: bool = False
    tiling: str = "supported"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    extra_arch: bool = False
    global_pooling: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.scale <= 16:
            raise ConfigError(f"scale must be 1..16, got {self.scale}")
        if self.in_channels < 1 or self.n_out < 1:
            raise ConfigError(f"channels must be >= 1, got {self.in_channels} -> {self.n_out}")
        if self.size_multiple < 1 or self.min_size < 0:
            raise ConfigError(f"bad size requirements {self.size_multiple}, {self.min_size}")


def _plain_call(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


def _json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    def ok(v: Any) -> bool:
        if isinstance(v, (list, tuple)):
            return all(ok(i) for i in v)
        return v is None or isinstance(v, (bool, int, float, str))

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if ok(v)}


class SpandrelSR(SRModel):
    """A spandrel model behind the :class:`SRModel` contract.

    Input: ``(N, C, H, W)`` in ``[0, 1]`` (what spandrel's models were trained on; the
    intensity profile maps the data there). Inputs that break the model's size requirements
    (multiple-of, minimum, square) are padded as spandrel pads them and the output is cropped.
    The output is *not* clamped to ``[0, 1]`` (spandrel's call API clamps): sr_domains' value
    rules clamp once, in the data's physical units.
    """

    arch = "spandrel"  # instances: "spandrel:<family>"
    config: SpandrelConfig

    def __init__(self, descriptor: Any, config: SpandrelConfig) -> None:
        super().__init__(config)
        self.net = descriptor.model
        self.arch = f"spandrel:{config.family}"  # type: ignore[misc]
        self.size_multiple = config.size_multiple  # type: ignore[misc]
        self.fp16_safe = bool(descriptor.supports_half)  # type: ignore[misc]
        self.bf16_safe = bool(descriptor.supports_bfloat16)  # type: ignore[misc]
        self._requirements = descriptor.size_requirements
        self._call: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] = (
            getattr(descriptor, "_call_fn", None) or _plain_call
        )
        radius = SPANDREL_RADIUS.get(config.family)
        self._radius = None if radius is None else int(radius(self.net))

    def receptive_radius(self) -> int | None:
        """Exact for the purely convolutional families in
        :data:`~sr_domains.zoo_notes.SPANDREL_RADIUS`; None (unknown: blended tiling) else."""
        return self._radius

    def body(self, x: torch.Tensor) -> torch.Tensor:
        # SRModel.forward may hand over the caller's tensor itself (identity mean shift), and
        # some spandrel networks scale their input in place (RCAN): work on a copy.
        h, w = x.shape[-2:]
        pad_w, pad_h = self._requirements.get_padding(w, h)
        if not (pad_w or pad_h):
            x = x.clone()
        if pad_w or pad_h:  # as spandrel.ImageModelDescriptor: reflect as far as it can, then edge
            rw, rh = min(pad_w, w - 1), min(pad_h, h - 1)
            x = F.pad(x, (0, rw, 0, rh), mode="reflect")
            x = F.pad(x, (0, pad_w - rw, 0, pad_h - rh), mode="replicate")
        y = self._call(self.net, x)
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"{self.arch}: the network returned {type(y).__name__}, not a tensor")
        s = self.scale
        return y[..., : h * s, : w * s] if pad_w or pad_h else y


# -- detection and loading ------------------------------------------------------------------------
def _registry(extra_arches: bool) -> Any:
    spandrel = import_spandrel()
    if not extra_arches:
        return spandrel.MAIN_REGISTRY
    try:
        import spandrel_extra_arches
    except ImportError as exc:
        raise ConfigError(
            "extra_arches=True needs spandrel_extra_arches, which sr-domains never installs "
            "(its architectures have restrictive licences, e.g. non-commercial); install it "
            "yourself after checking them: pip install spandrel_extra_arches"
        ) from exc
    registry = spandrel.MAIN_REGISTRY.copy()
    registry.add(*spandrel_extra_arches.EXTRA_REGISTRY, ignore_duplicates=True)
    return registry


def is_extra_arch(architecture: Any) -> bool:
    """True when a spandrel architecture comes from ``spandrel_extra_arches``."""
    return type(architecture).__module__.startswith("spandrel_extra_arches")


@dataclass(frozen=True)
class Detected:
    """A spandrel architecture that recognised a state dict."""

    id: str
    name: str
    extra: bool
    support: Any = field(repr=False)


def detect_spandrel(
    state: Mapping[str, torch.Tensor], extra_arches: bool = False
) -> Detected | None:
    """The spandrel architecture that recognises ``state`` (detection order), or None."""
    spandrel = import_spandrel()
    state = spandrel.canonicalize_state_dict(dict(state))
    for support in _registry(extra_arches).architectures("detection"):
        if support.detect(state):
            arch = support.architecture
            return Detected(str(arch.id), str(arch.name), is_extra_arch(arch), support)
    return None


def detect_extra(state: Mapping[str, torch.Tensor]) -> Detected | None:
    """The ``spandrel_extra_arches`` architecture recognising ``state`` when that package is
    installed (it is never used without ``extra_arches=True``), else None."""
    try:
        import spandrel_extra_arches
    except ImportError:
        return None
    state = import_spandrel().canonicalize_state_dict(dict(state))
    for support in spandrel_extra_arches.EXTRA_REGISTRY.architectures("detection"):
        if support.detect(state):
            arch = support.architecture
            return Detected(str(arch.id), str(arch.name), True, support)
    return None


def load_spandrel(
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    extra_arches: bool = False,
    family: str | None = None,
) -> SpandrelSR:
    """Detect and load ``state`` with spandrel and wrap it as a :class:`SpandrelSR`.

    Args:
        state: the file's tensors (already read weights-only).
        path: the file, for messages.
        extra_arches: also try ``spandrel_extra_arches`` (must be installed by the user).
        family: require this spandrel architecture id.

    Raises:
        CheckpointError: not recognised, not loadable, or not an image-to-image model with
            the same channels in and out (face restoration, inpainting, colourisation...).
    """
    spandrel = import_spandrel()
    found = detect_spandrel(state, extra_arches)
    if found is None:
        raise CheckpointError(f"{path}: spandrel {spandrel.__version__} does not recognise it")
    if family is not None and found.id.lower() != family.lower():
        raise CheckpointError(f"{path}: asked for {family!r} but spandrel detected {found.id}")
    try:
        with warnings.catch_warnings():  # architecture code calls torch.meshgrid without indexing
            warnings.filterwarnings("ignore", message=".*meshgrid", category=UserWarning)
            desc = found.support.architecture.load(spandrel.canonicalize_state_dict(dict(state)))
    except Exception as exc:  # spandrel raises KeyError/AssertionError/RuntimeError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"{path}: spandrel detected {found.name} but cannot load it ({first})"
        ) from exc
    _check_supported(desc, found, path)
    req = desc.size_requirements
    tiling = getattr(desc.tiling, "name", str(desc.tiling)).lower()
    config = SpandrelConfig(
        in_channels=int(desc.input_channels),
        out_channels=int(desc.output_channels),
        scale=int(desc.scale),
        family=found.id,
        family_name=found.name,
        purpose=str(desc.purpose),
        tags=tuple(str(t) for t in desc.tags),
        size_multiple=math.lcm(int(req.multiple_of), window_alignment(desc.model)),
        min_size=int(req.minimum),
        square=bool(req.square),
        tiling=tiling,
        hyperparameters=_json_safe(getattr(desc.model, "hyperparameters", {}) or {}),
        extra_arch=found.extra,
        global_pooling=_has_global_pooling(desc.model),
    )
    model = SpandrelSR(desc, config).eval()
    if found.extra:
        log.warning("%s: %s", path, licence_note(found.id, extra=True))
    if tiling == "discouraged" and model.receptive_radius() is None:
        log.info(
            "%s: spandrel discourages tiling %s; use a tile as large as memory allows "
            "(--tile) to keep blending seams away",
            path,
            found.name,
        )
    log.info("%s: loaded with spandrel as %s x%d (%s)", path, found.name, config.scale, config.tags)
    return model


#: Attributes that name the attention-window grid of a network (SwinIR, HAT, DAT, OmniSR...).
WINDOW_ATTRIBUTES = ("window_size", "split_size", "win_size", "pad_size")


def window_alignment(net: torch.nn.Module) -> int:
    """The least common multiple of the network's attention-window sizes (1 when none).

    Window attention partitions its input from the input's top-left corner, so a tile gives
    the same values as the whole image only when it starts on that grid; as ``size_multiple``
    this makes the engine align window starts (and pad) to it.
    """
    sizes: list[int] = []
    for name in WINDOW_ATTRIBUTES:
        value = getattr(net, name, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        sizes += [
            int(v) for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0
        ]
    return math.lcm(*sizes) if sizes else 1


def _has_global_pooling(net: torch.nn.Module) -> bool:
    pools = (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d)
    return any(isinstance(m, pools) and m.output_size in (1, (1, 1), [1, 1]) for m in net.modules())


def _check_supported(desc: Any, found: Detected, path: str | Path) -> None:
    spandrel = import_spandrel()
    what = f"{path}: spandrel detected {found.name}"
    if not isinstance(desc, spandrel.ImageModelDescriptor):
        raise CheckpointError(
            f"{what}, a {desc.purpose} model (it needs a mask): not a super-resolution model"
        )
    if desc.purpose not in PURPOSES:
        kind = {"FaceSR": "face restoration (aligned face crops)"}.get(desc.purpose, desc.purpose)
        raise CheckpointError(f"{what}, a {kind} model: sr_domains runs SR and x1 restoration")
    if desc.input_channels != desc.output_channels:
        raise CheckpointError(
            f"{what}, which maps {desc.input_channels} channel(s) to {desc.output_channels}: "
            "sr_domains needs the same channels in and out"
        )


def read_net_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The spandrel network's tensors inside a saved :class:`SpandrelSR` state dict."""
    return {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}


__all__ = [
    "PURPOSES",
    "Detected",
    "SpandrelConfig",
    "SpandrelSR",
    "detect_extra",
    "detect_spandrel",
    "import_spandrel",
    "is_extra_arch",
    "load_spandrel",
    "read_net_state",
    "spandrel_available",
    "window_alignment",
]
