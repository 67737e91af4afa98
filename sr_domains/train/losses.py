"""Training losses: pixel losses, perceptual loss (VGG19 or a no-download fallback), RaGAN.

Every pixel and perceptual loss takes an optional validity ``mask`` (``(N, 1, H, W)`` or
``(N, C, H, W)``, bool or float weights in ``[0, 1]``): the loss is then the (weighted) mean over
valid elements only, and the values of invalid pixels, NaN included, cannot change the loss or
its gradient (they are replaced by 0 before anything is computed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

log = logging.getLogger(__name__)

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")
_RANGES = {"0-1": (1.0, 0.0), "-1-1": (0.5, 0.5), "0-255": (1 / 255, 0.0)}  # unit = x * a + b
ESRGAN_LAYERS: Mapping[str, float] = MappingProxyType({"conv5_4": 1.0})


def mask_weights(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` as float32 weights expanded to ``like``'s shape (invalid = 0).

    Raises:
        ConfigError: the mask is not 4-D, or its batch, channel or spatial size does not fit.
    """
    n, c = like.shape[:2]
    if (
        mask.ndim != like.ndim
        or mask.shape[0] not in (1, n)
        or mask.shape[1] not in (1, c)
        or mask.shape[2:] != like.shape[2:]
    ):
        raise ConfigError(
            f"mask of shape {tuple(mask.shape)} does not fit input {tuple(like.shape)}; "
            "use (N, 1, H, W) or (N, C, H, W)"
        )
    return mask.to(device=like.device, dtype=torch.float32).expand_as(like)


def _blank(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``x`` with invalid elements set to 0 (no NaN or gradient leaks from them)."""
    return torch.where(weights > 0, x, torch.zeros((), dtype=x.dtype, device=x.device))


def _reduce(values: torch.Tensor, weights: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if weights is None:
        if reduction == "none":
            return values
        return values.mean() if reduction == "mean" else values.sum()
    values = values * weights
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    return values.sum() / weights.sum().clamp_min(torch.finfo(torch.float32).tiny)


class _PixelLoss(nn.Module):
    """Element-wise loss of ``pred - target`` with mean/sum/none reduction and a valid mask."""

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ConfigError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Loss of ``pred`` against ``target`` (same shape), over valid pixels of ``mask``."""
        if pred.shape != target.shape:
            raise ConfigError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        weights = None if mask is None else mask_weights(mask, pred)
        diff = pred - target
        if weights is not None:
            diff = _blank(diff, weights)
        return _reduce(self.elementwise(diff), weights, self.reduction)


class L1Loss(_PixelLoss):
    """Mean absolute error ``|pred - target|``."""

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class L2Loss(_PixelLoss):
    """Mean squared error ``(pred - target)^2``."""

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.square()


class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss ``sqrt((pred - target)^2 + eps^2)``: a smooth L1 (LapSRN, Lai et al. 2017).

    ``eps`` sets where it turns from quadratic to linear; a perfect prediction scores ``eps``,
    not 0. (BasicSR writes ``sqrt(d^2 + eps)`` with ``eps=1e-12``; here ``eps`` is squared.)

    Args:
        eps: smoothing constant, > 0.
        reduction: ``"mean"`` (over valid elements), ``"sum"`` or ``"none"``.
    """

    def __init__(self, eps: float = 1e-3, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        if not eps > 0:
            raise ConfigError(f"Charbonnier eps must be > 0, got {eps}")
        self.eps = float(eps)

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(diff.square() + self.eps**2)


_PIXEL_LOSSES: dict[str, type[_PixelLoss]] = {
    "l1": L1Loss,
    "l2": L2Loss,
    "mse": L2Loss,
    "charbonnier": CharbonnierLoss,
}


def pixel_loss(name: Literal["l1", "l2", "charbonnier"], **kw: object) -> nn.Module:
    """A pixel loss by name (``"l1"``, ``"l2"`` (alias ``"mse"``), ``"charbonnier"``).

    Keyword arguments go to the loss (``reduction``; ``eps`` for Charbonnier).
    """
    cls = _PIXEL_LOSSES.get(str(name).lower())
    if cls is None:
        raise ConfigError(f"unknown pixel loss {name!r}; choose from l1, l2, charbonnier")
    try:
        return cls(**kw)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"pixel loss {name!r}: {exc}") from exc


class SpectralAngleLoss(nn.Module):
    """``1 - cos`` of the angle between predicted and target band vectors, averaged over valid
    pixels (a differentiable SAM: colour/spectral shifts cost, brightness changes do not).
    Pixels whose target vector is near zero are ignored."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        dot = (pred * target).sum(dim=1)
        norm = pred.norm(dim=1) * target.norm(dim=1)
        ok = target.norm(dim=1) > 1e-3
        if mask is not None:
            ok = ok & mask.bool().all(dim=1) if mask.ndim == 4 else ok & mask.bool()
        cos = dot / (norm + self.eps)
        w = ok.to(pred.dtype)
        return ((1.0 - cos) * w).sum() / w.sum().clamp(min=1.0)


def _min_pool(weights: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    return -F.max_pool2d(-weights, size, stride)


class GradientPyramidLoss(nn.Module):
    """Edge loss used when no VGG19 weights are available (never downloads anything).

    At ``levels`` scales (each a 2x2 average pooling of the previous one) it takes the L1
    distance between the horizontal and vertical finite differences and between the 3x3
    Laplacians of ``pred`` and ``target``, and averages over scales. Blurred or misplaced edges
    cost; flat offsets do not (the pixel loss handles those). Masked: a difference or Laplacian
    counts only where all the pixels it uses are valid.

    Args:
        levels: number of scales (coarser ones are skipped when the image gets below 3x3).
        laplacian_weight: weight of the Laplacian terms relative to the gradient terms.
    """

    if TYPE_CHECKING:  # buffers (registered in __init__); not runtime annotations (TorchScript)
        laplacian: torch.Tensor

    def __init__(self, levels: int = 3, laplacian_weight: float = 1.0) -> None:
        super().__init__()
        if levels < 1:
            raise ConfigError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        self.laplacian_weight = float(laplacian_weight)
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.register_buffer("laplacian", lap.view(1, 1, 3, 3), persistent=False)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Multi-scale gradient + Laplacian distance of ``pred`` (N, C, H, W) to ``target``."""
        if pred.shape != target.shape or pred.ndim != 4 or min(pred.shape[-2:]) < 3:
            raise ConfigError(
                f"need equal (N, C, H, W) shapes of at least 3x3, got {tuple(pred.shape)}, "
                f"{tuple(target.shape)}"
            )
        w = None
        if mask is not None:
            w = mask_weights(mask, pred).contiguous()
            pred, target = _blank(pred, w), _blank(target, w)
        diff = pred - target  # every term below is linear in the image
        total, used = diff.new_zeros((), dtype=torch.float32), 0
        for level in range(self.levels):
            if level:
                if min(diff.shape[-2:]) < 6:
                    break
                diff = F.avg_pool2d(diff, 2)
                w = None if w is None else _min_pool(w, 2, 2)
            total = total + self._level(diff, w)
            used += 1
        return total / used

    def _level(self, d: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        dx, dy = d[..., :, 1:] - d[..., :, :-1], d[..., 1:, :] - d[..., :-1, :]
        wx = wy = None
        if w is not None:
            wx = torch.minimum(w[..., :, 1:], w[..., :, :-1])
            wy = torch.minimum(w[..., 1:, :], w[..., :-1, :])
        out = _reduce(dx.abs(), wx, "mean") + _reduce(dy.abs(), wy, "mean")
        if self.laplacian_weight:
            c = d.shape[1]
            lap = F.conv2d(d, self.laplacian.to(d.dtype).expand(c, 1, 3, 3), groups=c)
            wl = None if w is None else _min_pool(w, 3, 1)
            out = out + self.laplacian_weight * _reduce(lap.abs(), wl, "mean")
        return out.float()


class PerceptualLoss(nn.Module):
    """Perceptual loss: distance of VGG19 features, or a documented fallback without weights.

    With ``vgg_weights`` (a local torchvision-layout VGG19 file, see
    :func:`sr_domains.train.vgg.load_vgg19_features`) the loss is
    ``sum(weight * criterion(vgg_l(pred), vgg_l(target)))`` over ``layers`` (ESRGAN: ``conv5_4``,
    before the activation). Channels: 3-channel input is taken as RGB; any other count (1 for
    MRI, 4-13 bands) is fed band by band, each band replicated to 3 channels, and the feature
    losses are averaged over bands (``channel_mode="per_band"`` forces this for 3 channels too).
    The target branch runs without gradients. With a mask, invalid pixels are set to 0 in both
    images before VGG and the feature distance is weighted by the mask's valid fraction at
    each feature resolution.

    Without weights (``vgg_weights=None``) nothing is downloaded: ``fallback="gradient"`` uses
    :class:`GradientPyramidLoss`; ``fallback="none"`` gives a constant zero (``enabled=False``).

    Attributes:
        uses_vgg: whether VGG19 features are used.
        enabled: ``False`` for the zero loss of ``fallback="none"``.
    """

    def __init__(
        self,
        vgg_weights: str | PathLike[str] | None,
        layers: Mapping[str, float] = ESRGAN_LAYERS,
        *,
        criterion: Literal["l1", "l2", "charbonnier"] = "l1",
        input_range: Literal["0-1", "-1-1", "0-255"] = "0-1",
        fallback: Literal["gradient", "none"] = "gradient",
        channel_mode: Literal["auto", "per_band"] = "auto",
    ) -> None:
        super().__init__()
        if input_range not in _RANGES:
            raise ConfigError(f"input_range must be one of {list(_RANGES)}, got {input_range!r}")
        if channel_mode not in ("auto", "per_band"):
            raise ConfigError(f"channel_mode must be 'auto' or 'per_band', got {channel_mode!r}")
        if fallback not in ("gradient", "none"):
            raise ConfigError(f"fallback must be 'gradient' or 'none', got {fallback!r}")
        self.layers = dict(layers)
        self.input_range = input_range
        self.channel_mode = channel_mode
        self.criterion = pixel_loss(criterion)
        self.extractor: nn.Module | None = None
        self.fallback: GradientPyramidLoss | None = None
        self.uses_vgg = vgg_weights is not None
        self.enabled = self.uses_vgg or fallback != "none"
        if vgg_weights is not None:
            from .vgg import VGGFeatureExtractor, load_vgg19_features

            features = load_vgg19_features(Path(vgg_weights))
            self.extractor = VGGFeatureExtractor(features, self.layers)
            log.info("perceptual loss: VGG19 %s from %s", self.layers, vgg_weights)
        elif fallback == "gradient":
            self.fallback = GradientPyramidLoss()
            log.info(
                "perceptual loss: no VGG19 weights given; using the multi-scale gradient + "
                "Laplacian fallback (GradientPyramidLoss), see docs/losses.md"
            )
        else:
            log.info("perceptual loss: disabled (no VGG19 weights, fallback='none')")

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Perceptual distance of ``pred`` to ``target`` (N, C, H, W), over valid pixels."""
        if pred.shape != target.shape or pred.ndim != 4:
            raise ConfigError(f"need equal (N, C, H, W) shapes, got {pred.shape}, {target.shape}")
        if self.extractor is None and self.fallback is None:
            return pred.new_zeros((), dtype=torch.float32)
        a, b = _RANGES[self.input_range]
        x, y = pred * a + b, target.detach() * a + b
        if self.fallback is not None:
            return self.fallback(x, y, mask)
        assert self.extractor is not None  # neither fallback nor zero loss: VGG19 features
        w = None
        if mask is not None:
            w = mask_weights(mask, pred)
            x, y = _blank(x, w), _blank(y, w)
        x, y, w = self._to_rgb(x, y, w)
        fx = self.extractor(x)
        with torch.no_grad():
            fy = self.extractor(y)
        total = pred.new_zeros((), dtype=torch.float32)
        for name, weight in self.layers.items():
            fw = None if w is None else F.adaptive_avg_pool2d(w, fx[name].shape[-2:])
            total = total + weight * self.criterion(fx[name], fy[name], fw)
        return total

    def _to_rgb(
        self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        n, c, h, width = x.shape
        if c == 3 and self.channel_mode == "auto":
            return x, y, None if w is None else w.amin(dim=1, keepdim=True)

        def bands(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n * c, 1, h, width)

        x3, y3 = bands(x).expand(-1, 3, -1, -1), bands(y).expand(-1, 3, -1, -1)
        return x3, y3, None if w is None else bands(w.contiguous())


class RelativisticAverageGANLoss:
    """Relativistic average GAN loss (Jolicoeur-Martineau 2018) as used by ESRGAN.

    With ``D_ra(a, b) = a - mean(b)`` on raw logits and BCE-with-logits:

    * discriminator: ``(BCE(D_ra(real, fake), 1) + BCE(D_ra(fake, real), 0)) / 2``
    * generator: ``(BCE(D_ra(real, fake), 0) + BCE(D_ra(fake, real), 1)) / 2``

    Means are over all logits (image-level or per-pixel U-Net logits alike). Gradients flow
    through both terms in :meth:`discriminator_loss` (the caller passes fake logits computed
    from a detached generator output); :meth:`generator_loss` detaches the real logits.
    """

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> torch.Tensor:
        """Loss the discriminator minimises (real judged more real than the average fake)."""
        real_rel = real_logits - fake_logits.mean()
        fake_rel = fake_logits - real_logits.mean()
        return 0.5 * (_bce(real_rel, 1.0) + _bce(fake_rel, 0.0))

    def generator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Loss the generator minimises (the mirror image of the discriminator's)."""
        real_logits = real_logits.detach()
        real_rel = real_logits - fake_logits.mean()
        fake_rel = fake_logits - real_logits.mean()
        return 0.5 * (_bce(real_rel, 0.0) + _bce(fake_rel, 1.0))


def _bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


__all__ = [
    "ESRGAN_LAYERS",
    "CharbonnierLoss",
    "GradientPyramidLoss",
    "L1Loss",
    "L2Loss",
    "PerceptualLoss",
    "RelativisticAverageGANLoss",
    "SpectralAngleLoss",
    "mask_weights",
    "pixel_loss",
]
