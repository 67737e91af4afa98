"""A small float NIfTI volume with a given intent, shared by the intent tests (the library's
and the MONAI path's)."""

from __future__ import annotations

import nibabel as nib
import numpy as np


def save_with_intent(path, intent, shape=(12, 10, 4)):
    """Write a random float32 volume (1 x 1 x 3 mm) with NIfTI intent ``intent`` to ``path``."""
    data = np.random.default_rng(0).random(shape).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([1.0, 1.0, 3.0, 1.0]))
    img.header.set_intent(intent)
    nib.save(img, path)
    return path
