"""The images :func:`~sr_domains.adapt.adapt_model` is given, checked (in the model's intensity
space, channels that fit the model) and turned into :class:`~sr_domains.adapt.PatchSampler`
stacks."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

#: The 1st..99th percentile of what ``adapt_model`` is given must lie within this span: the
#: models work on roughly 0..1 (a profile maps its percentiles there, a little past either end).
NORMALIZED_SPAN = (-1.0, 2.0)


def check_normalized(stacks: list[np.ndarray]) -> None:
    """Refuse images that are not in the model's intensity space (raw 0..255, 0..4095...):
    fitting on them would wreck the model's weights."""
    values = np.concatenate(
        [a[np.isfinite(a)].ravel()[:: max(1, a.size // 100_000)] for a in stacks]
    )
    if values.size == 0:
        raise ConfigError("adapt_model: the images hold no finite values")
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if lo < NORMALIZED_SPAN[0] or hi > NORMALIZED_SPAN[1]:
        raise ConfigError(
            f"adapt_model takes images in the model's intensity space (roughly 0..1, the "
            f"intensity profile applied); these span {lo:.4g}..{hi:.4g} (1st..99th "
            "percentile): normalize them first, e.g. profile_from_any('percentile', "
            "image).normalize(image)"
        )


def sampler_stacks(images: list[np.ndarray], in_channels: int) -> list[np.ndarray]:
    """Normalized ``(C, H, W)`` images -> sampler stacks with the model's channel count."""
    if len(images) == 0:
        raise ConfigError(
            "adapt_model needs at least one image to adapt on (got none); pass normalized "
            "(C, H, W) or (H, W) samples of the input"
        )
    out = []
    for im in images:
        a = np.asarray(im, np.float32)
        a = a[None] if a.ndim == 2 else a
        if a.ndim != 3:
            raise ConfigError(f"adapt takes (C, H, W) images, got shape {a.shape}")
        finite = np.isfinite(a)
        if not finite.all():
            mean = float(a[finite].mean()) if finite.any() else 0.0
            a = np.where(finite, a, np.float32(mean))
        if a.shape[0] == in_channels:
            out.append(a[None])
        elif in_channels == 1:  # band by band, like the engine
            out.append(a[:, None])
        else:
            raise ConfigError(
                f"adapt needs a model whose input bands match the data: the model takes "
                f"{in_channels}, the data has {a.shape[0]}"
            )
    return out


__all__ = ["NORMALIZED_SPAN", "check_normalized", "sampler_stacks"]
