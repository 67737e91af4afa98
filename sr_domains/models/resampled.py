"""A network run at another scale than its own: its output resampled by bicubic interpolation.

No x3 weights ship (docs/weights.md, "x3"): ``--scale 3`` without a model runs the shipped x2
default through :class:`ResampledSR`, x2 then bicubic x1.5 (:data:`~sr_domains.pretrained.
RESAMPLED_FROM`). On the quality battery that beats bicubic x3 on every case, and keeps
bicubic's spectral angle on RGB (docs/weights.md); a network trained for x3 does better still.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import BaseSRConfig, SRModel

#: LR pixels the resampling adds to the network's receptive radius (bicubic from scale ``k``
#: to ``s`` reaches two of the network's output pixels, ``2 max(1, k / s)`` when shrinking with
#: antialiasing: at most one LR pixel for the scales 2 to 4; one more for rounding).
RESAMPLE_RADIUS = 2


class ResampledSR(SRModel):
    """``base`` (scale ``k``) as a model of another ``scale``: ``base(x)`` resampled to
    ``scale x`` the input size by bicubic interpolation (PyTorch's antialiased kernel: Keys'
    a = -0.5, as MATLAB's ``imresize``, widened when shrinking; pixel centres aligned, as the
    GeoTIFF, NIfTI and DICOM writers place them). Its parameters are ``base``'s (``--adapt``
    fine-tunes them through the resampling); its provenance, model card and noise-gate
    variant are those of ``base``'s weights."""

    arch = "resampled"
    cpu_channels_last = True  # (as every built-in architecture; the resampling does not mind)

    def __init__(self, base: SRModel, scale: int) -> None:
        if scale < 1 or scale == base.scale:
            raise ValueError(f"resample x{base.scale} to another scale, not x{scale}")
        super().__init__(
            BaseSRConfig(in_channels=base.in_channels, out_channels=base.out_channels, scale=scale)
        )
        self.base = base
        for name in ("card", "source_path", "weights_source", "weights_sha256"):
            if hasattr(base, name):  # what the weights are: provenance, the noise gate
                setattr(self, name, getattr(base, name))

    def receptive_radius(self) -> int | None:
        r = self.base.receptive_radius()
        return None if r is None else r + RESAMPLE_RADIUS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(self.base(x))

    def resample(self, y: torch.Tensor) -> torch.Tensor:
        """``base``'s output (its scale) at this model's scale. ONNX has no antialiased bicubic:
        the onnxruntime backend runs ``base`` there and this step in PyTorch."""
        h, w = y.shape[-2] // self.base.scale, y.shape[-1] // self.base.scale
        size = (h * self.scale, w * self.scale)
        return F.interpolate(y, size=size, mode="bicubic", align_corners=False, antialias=True)


def resampled(base: SRModel, scale: int) -> SRModel:
    """``base`` itself at its own scale, else :class:`ResampledSR`."""
    return base if base.scale == scale else ResampledSR(base, scale)


__all__ = ["RESAMPLE_RADIUS", "ResampledSR", "resampled"]
