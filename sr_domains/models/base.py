"""What every sr_domains architecture is: a frozen config, an ``nn.Module`` and a descriptor.

All models take ``(N, in_channels, H, W)`` float tensors in the *normalized* intensity space
(see :mod:`sr_domains.intensity`, roughly ``[0, 1]``) and return
``(N, out_channels, H * scale, W * scale)`` in the same space. Architecture-specific input
scaling (e.g. the official EDSR/RCAN weights expect ``[0, 255]`` minus a mean) is handled inside
the model by :class:`SRModel` with the ``pixel_range`` config value and the ``norm_mean_in`` /
``norm_mean_out`` buffers, so callers never need to know about it.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from ..checkpoint import ModelCard

SCALES = (2, 3, 4)


@dataclass(frozen=True)
class BaseSRConfig:
    """Fields every architecture config has. Subclasses add their own (all with defaults)."""

    in_channels: int = 3
    out_channels: int | None = None  # None -> same as in_channels
    scale: int = 2
    pixel_range: float = 1.0  # model-internal input multiplier (255 for official EDSR/RCAN weights)

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {self.in_channels!r}")
        if self.out_channels is not None and self.out_channels < 1:
            raise ConfigError(f"out_channels must be >= 1, got {self.out_channels!r}")
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if not self.pixel_range > 0:
            raise ConfigError(f"pixel_range must be > 0, got {self.pixel_range!r}")

    @property
    def n_out(self) -> int:
        """Resolved number of output channels."""
        return self.in_channels if self.out_channels is None else self.out_channels


@dataclass(frozen=True)
class ModelInfo:
    """Typed descriptor of a built model (what tiling, AMP and the CLI need to know)."""

    arch: str
    scale: int
    in_channels: int
    out_channels: int
    receptive_radius: int | None  # LR pixels each side; None = global (e.g. global pooling)
    size_multiple: int  # input H and W must be multiples of this (padding is automatic)
    fp16_safe: bool
    bf16_safe: bool
    n_params: int
    config: dict[str, Any] = field(default_factory=dict)


class SRModel(nn.Module):
    """Base class of all architectures.

    Subclasses set ``arch``, build layers in ``__init__(config)``, implement
    :meth:`forward_body` (the network on the mean-subtracted, ``pixel_range``-scaled input) and
    :meth:`receptive_radius`. Older subclasses that define a ``body(x)`` method instead keep
    working (:meth:`forward_body` calls it); the built-in architectures use the name ``body``
    for their trunk submodule (BasicSR's key layout), never for a method, so they script and
    export cleanly.

    The mean shift and ``pixel_range`` scaling around :meth:`forward_body` are skipped when they
    are the identity (zero means, range 1: all our own weights), saving four full-resolution
    passes per forward.
    """

    arch: ClassVar[str] = ""
    size_multiple: ClassVar[int] = 1
    fp16_safe: ClassVar[bool] = True
    bf16_safe: ClassVar[bool] = True
    #: channels-last is faster on the CPU for this architecture (measured per architecture by
    #: benchmarks/speed.py); off by default, as a foreign network may ``view`` its tensors.
    cpu_channels_last: ClassVar[bool] = False
    # TorchScript: the config dataclass and the descriptor properties are Python-only.
    __jit_ignored_attributes__: ClassVar[list[str]] = ["config"]
    __jit_unused_properties__: ClassVar[list[str]] = [
        "scale",
        "in_channels",
        "out_channels",
        "trunk",
        "size_multiple",
    ]
    if TYPE_CHECKING:  # declarations for mypy only, not runtime annotations (TorchScript)
        # buffers (registered in __init__)
        norm_mean_in: torch.Tensor
        norm_mean_out: torch.Tensor
        # provenance attached by the loaders, absent otherwise: read with getattr(m, name, None)
        card: ModelCard  # sr_domains.checkpoint / pretrained / public_weights
        weights_source: tuple[str, str]  # (name, path) of the weights (sr_domains.distributed)
        weights_sha256: str  # checksum of that file when it was loaded (sr_domains.distributed)
        source_path: Path  # the weights file it was loaded from (checkpoint, pretrained)
        card_digest: str  # tensors digest of the weights its card describes (checkpoint)
        chosen_by_default: bool  # no model was named (sr_domains.distributed, noise_gate)

    def __init__(self, config: BaseSRConfig) -> None:
        super().__init__()
        self.config = config
        # plain copies for TorchScript / torch.export (which cannot read the dataclass)
        self.n_in = int(config.in_channels)
        self.arch_name = str(self.arch)
        self.pixel_range = float(config.pixel_range)
        self.static_io: bool | None = None  # set while exporting: skip the mean shift or not
        self.register_buffer("norm_mean_in", torch.zeros(config.in_channels))
        self.register_buffer("norm_mean_out", torch.zeros(config.n_out))

    # -- descriptor -----------------------------------------------------------------------
    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.n_out

    def receptive_radius(self) -> int | None:
        """Exact receptive-field radius in LR pixels (how far an output depends on inputs), or
        None if some output depends on the whole input (global pooling)."""
        raise NotImplementedError

    def info(self) -> ModelInfo:
        """Describe this model (see :class:`ModelInfo`)."""
        from ..config import to_dict

        return ModelInfo(
            arch=self.arch,
            scale=self.scale,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            receptive_radius=self.receptive_radius(),
            size_multiple=self.size_multiple,
            fp16_safe=self.fp16_safe,
            bf16_safe=self.bf16_safe,
            n_params=sum(p.numel() for p in self.parameters()),
            config=to_dict(self.config),
        )

    # -- forward --------------------------------------------------------------------------
    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        """The network proper, on ``(x - norm_mean_in) * pixel_range``."""
        legacy = getattr(type(self), "body", None)
        if not callable(legacy):
            raise NotImplementedError(f"{type(self).__name__} must implement forward_body()")
        return legacy(self, x)

    def io_is_identity(self) -> bool:
        """True when the mean shift and range scaling do nothing (zero means, range 1)."""
        if self.norm_mean_in.is_meta:  # shape-only copies (memory probes)
            return True
        return (
            self.pixel_range == 1.0
            and not bool(self.norm_mean_in.any())
            and not bool(self.norm_mean_out.any())
        )

    def _skip_io(self) -> bool:
        if torch.jit.is_scripting():
            return False  # a scripted model keeps the general (always correct) path
        return self._skip_io_python()

    @torch.jit.unused
    def _skip_io_python(self) -> bool:
        if self._tracing():
            return bool(self.static_io)  # exporters decide once (sr_domains.export)
        return self.io_is_identity()

    @torch.jit.unused
    def _tracing(self) -> bool:
        """True under torch.jit.trace, torch.export, torch.compile and the ONNX exporters."""
        # torch.compiler.is_compiling() would import torch._dynamo (seconds) on first use
        compiling = "torch._dynamo" in sys.modules and torch.compiler.is_compiling()
        return compiling or torch.jit.is_tracing()

    def eager_inference(self) -> bool:
        """True for a plain eager forward without autograd (shape-dependent Python shortcuts
        such as EDSR's banded tail are allowed); False when scripted, traced or exported."""
        if torch.jit.is_scripting() or torch.is_grad_enabled():
            return False
        return not self._tracing()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.n_in:
            raise ValueError(
                f"{self.arch_name}: expected input (N, {self.n_in}, H, W), got {list(x.shape)}"
            )
        if self._skip_io():
            return self.forward_body(x)
        r = self.pixel_range
        mean_in = self.norm_mean_in.view(1, -1, 1, 1).to(x.dtype)
        mean_out = self.norm_mean_out.view(1, -1, 1, 1).to(x.dtype)
        y = self.forward_body((x - mean_in) * r)
        return y / r + mean_out


@dataclass(frozen=True)
class ArchSpec:
    """Registry entry: how to build one architecture, and its named presets."""

    name: str
    config_cls: type[BaseSRConfig]
    model_cls: type[SRModel]
    description: str
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def build(self, **overrides: Any) -> SRModel:
        """Build the model from the config defaults updated with ``overrides``."""
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            import difflib

            said = [
                repr(k) + (f" (did you mean {close[0]!r}?)" if close else "")
                for k in unknown
                for close in [difflib.get_close_matches(k, sorted(names), n=1)]
            ]
            raise ConfigError(
                f"{self.name}: unknown option(s) {', '.join(said)}; allowed: {sorted(names)}"
            )
        return self.model_cls(self.config_cls(**overrides))
