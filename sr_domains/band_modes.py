"""How an image's bands meet a model's channels: all at once (a joint model, optionally in the
model's band order) or one by one through a single-channel model, and what that means for the
output's bands and spectra. Used by :class:`sr_domains.inference.Upscaler`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .errors import ConfigError
from .models.base import SRModel


def band_mode(model: SRModel, n_bands: int) -> str:
    """``"joint"`` when the model takes all bands, ``"per_band"`` for a 1-channel model."""
    if n_bands == model.in_channels:
        return "joint"
    if model.in_channels == 1:
        return "per_band"
    raise ConfigError(
        f"the model takes {model.in_channels} bands but the data has {n_bands}; "
        "select bands to match, or use a single-channel model (applied band by band)"
    )


def auto_spectral(model: SRModel, n_bands: int) -> bool:
    """Whether ``--spectral auto`` gives multi-band output bicubic's band ratios: for a
    single-band model run band by band, and for a joint model whose card asks for it
    (:attr:`~sr_domains.checkpoint.ModelCard.spectral`)."""
    if band_mode(model, n_bands) == "per_band":
        return True
    return getattr(getattr(model, "card", None), "spectral", "model") == "bicubic"


def out_channels(model: SRModel, n_bands: int) -> int:
    """Bands of the output for ``n_bands`` input bands."""
    return n_bands if band_mode(model, n_bands) == "per_band" else model.out_channels


def band_runner(
    runner: Callable[[np.ndarray], np.ndarray],
    model: SRModel,
    n_bands: int,
    band_order: Sequence[int] | None,
    batch_size: int,
) -> Callable[[np.ndarray], np.ndarray]:
    """``runner`` (a batch ``(B, C, h, w)`` -> HR batch) fitted to the data's bands: as it is, with
    the bands fed in ``band_order`` (output back in the input's order), or band by band
    (``batch_size`` planes per call)."""
    if band_mode(model, n_bands) == "joint":
        order = list(band_order) if band_order is not None else None
        if order is None or order == list(range(n_bands)):
            return runner
        if model.out_channels != n_bands or sorted(order) != list(range(n_bands)):
            raise ConfigError(f"band order {order} does not fit {n_bands} bands")
        back = np.argsort(order)
        return lambda batch: runner(batch[:, order])[:, back]

    def per_band(batch: np.ndarray) -> np.ndarray:
        b, c, h, w = batch.shape
        flat = batch.reshape(b * c, 1, h, w)
        outs = [runner(flat[i : i + batch_size]) for i in range(0, b * c, batch_size)]
        y = np.concatenate(outs, axis=0)
        return y.reshape(b, c, y.shape[-2], y.shape[-1])

    return per_band


__all__ = ["auto_spectral", "band_mode", "band_runner", "out_channels"]
