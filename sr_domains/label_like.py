"""Integer images that look like label maps (a segmentation, a mask, a land-cover or scene
classification without a colour table): SR interpolates between their codes and invents
classes that are not there; they want nearest-neighbour resampling. A warning, not a refusal:
a quantized photo or a few-level image may legitimately hold few values."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: An integer image with at most this many distinct values looks like a label map.
LABEL_LIKE_VALUES = 16
#: Fewest valid pixels that can tell: any image of 3x3 pixels holds at most 9 values.
LABEL_LIKE_PIXELS = 4 * LABEL_LIKE_VALUES


def warn_label_like(
    path: Path, sample: np.ndarray, dtype: np.dtype, band: int | None = None
) -> None:
    """Warn when ``sample`` (valid values of an integer image, or of its ``band``) holds only
    a few distinct whole values; a sample of fewer than :data:`LABEL_LIKE_PIXELS` valid
    values (a tiny raster) cannot tell, and is not warned about."""
    if np.dtype(dtype).kind not in "iub":
        return
    valid = sample[np.isfinite(sample)]
    if valid.size < LABEL_LIKE_PIXELS:
        return
    values = np.unique(valid)
    if 1 < values.size <= LABEL_LIKE_VALUES and np.array_equal(values, np.rint(values)):
        shown = ", ".join(f"{v:g}" for v in values[:8]) + (" ..." if values.size > 8 else "")
        which = "" if band is None else f" band {band}"
        log.warning(
            "%s%s holds only %d distinct values (%s): if it is a label map or a mask, SR will "
            "invent labels between them; resample it with nearest neighbour instead",
            path,
            which,
            values.size,
            shown,
        )


__all__ = ["LABEL_LIKE_PIXELS", "LABEL_LIKE_VALUES", "warn_label_like"]
