"""VGG19 feature extractor for the perceptual loss, in plain torch (no torchvision).

The layers are built with torchvision's indices, so a torchvision VGG19 state dict
(``features.0.weight`` ... ``features.34.bias``, plus ``classifier.*`` which is ignored) or a bare
``features`` state dict (``0.weight`` ...) loads strictly. Weights are never downloaded: the
caller passes a local file (see docs/losses.md for where to get one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from ..checkpoint import read_state_dict
from ..checkpoint_fit import state_mismatch
from ..errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

# Output channels of each 3x3 convolution, "M" = 2x2 max pooling (VGG "E" configuration).
_VGG19: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
_VGG19 += (512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

# Name of each module of ``features``, by index (convN_M is the convolution output, i.e. before
# the activation; ESRGAN uses conv5_4).
VGG19_LAYER_NAMES: tuple[str, ...] = tuple(
    name
    for block, n_convs in enumerate((2, 2, 4, 4, 4), start=1)
    for name in [
        *(f"{kind}{block}_{i}" for i in range(1, n_convs + 1) for kind in ("conv", "relu")),
        f"pool{block}",
    ]
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features(device: str | torch.device | None = None) -> nn.Sequential:
    """An untrained VGG19 ``features`` stack with torchvision's module indices.

    ReLUs are not in-place, so the outputs of ``convN_M`` layers can be taken before activation.
    ``device="meta"`` builds it without allocating or initialising weights.
    """
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1, device=device), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers)


def load_vgg19_features(path: str | PathLike[str]) -> nn.Sequential:
    """Read VGG19 ``features`` weights from a local ``.pth``/``.pt`` or ``.safetensors`` file.

    Accepted layouts: a torchvision VGG19 state dict (``features.N.*``; ``classifier.*`` keys are
    ignored), a bare features state dict (``N.weight``/``N.bias``), either possibly wrapped in
    ``state_dict``/``params`` or saved from ``DataParallel``. The returned module is frozen
    (``requires_grad=False``) and in eval mode.

    Raises:
        CheckpointError: the file is missing or unreadable, or any key is missing, unexpected or
            has the wrong shape (the message names the file and lists the keys).
    """
    path = Path(path)
    state = read_state_dict(path)
    if not state:
        raise CheckpointError(f"{path}: no tensors in the file")
    features = vgg19_features(device="meta")  # shapes only; the file provides every weight
    own = features.state_dict()
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    if prefix:
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        extra = [k for k in state if not k.startswith((prefix, "classifier."))]
    else:
        picked, extra = dict(state), []
    problems = state_mismatch(own, picked, prefix, extra)
    if problems:
        hint = ""
        if any("running_mean" in k for k in state):
            hint = " (this looks like VGG19-BN; plain VGG19 weights are needed)"
        raise CheckpointError(f"{path}: not VGG19 features weights{hint}: {problems}")
    weights = {k: v.detach().float().contiguous() for k, v in picked.items()}
    features.load_state_dict(weights, strict=True, assign=True)
    features.requires_grad_(False).eval()
    log.info("loaded VGG19 features from %s", path)
    return features


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 returning the named intermediate outputs for RGB input in ``[0, 1]``.

    The input is normalised with the ImageNet mean and std the weights were trained with; the
    stack is cut after the deepest requested layer.

    Args:
        features: a (loaded) :func:`vgg19_features` stack.
        layers: names from :data:`VGG19_LAYER_NAMES`, e.g. ``["conv5_4"]``.
    """

    if TYPE_CHECKING:  # buffers (registered in __init__); not runtime annotations (TorchScript)
        mean: torch.Tensor
        std: torch.Tensor

    def __init__(self, features: nn.Sequential, layers: Iterable[str]) -> None:
        super().__init__()
        self.layers = tuple(layers)
        unknown = [n for n in self.layers if n not in VGG19_LAYER_NAMES]
        if unknown or not self.layers:
            raise ConfigError(
                f"unknown VGG19 layer(s) {unknown or '(none given)'}; "
                f"choose from {', '.join(VGG19_LAYER_NAMES)}"
            )
        last = max(VGG19_LAYER_NAMES.index(n) for n in self.layers)
        self.net = cast(nn.Sequential, features[: last + 1])  # a slice is a Sequential
        self.net.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.train(False)

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """Keep the frozen network in eval mode whatever the parent module does."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of ``x`` (N, 3, H, W) in ``[0, 1]``, keyed by layer name."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"VGG19 needs (N, 3, H, W) input, got {tuple(x.shape)}")
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for name, layer in zip(VGG19_LAYER_NAMES, self.net):
            x = layer(x)
            if name in self.layers:
                out[name] = x
        return out


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_LAYER_NAMES",
    "VGGFeatureExtractor",
    "load_vgg19_features",
    "vgg19_features",
]
