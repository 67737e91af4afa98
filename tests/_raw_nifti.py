"""Write a NIfTI header exactly as given (nibabel's own writer replaces a ``pixdim`` of 0 by
1), shared by the unknown-spacing tests of the NIfTI and MONAI paths."""

from __future__ import annotations

import gzip

import numpy as np


def write_raw(path, hdr, data: np.ndarray):
    """Write ``hdr`` (its data shape and type already set) and ``data`` to ``path`` (gzip for
    ``.gz``) without nibabel's header checks; returns ``path``."""
    hdr.set_data_offset(hdr.single_vox_offset)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        hdr.write_to(f)
        f.write(b"\0" * (int(hdr.single_vox_offset) - hdr.sizeof_hdr))
        f.write(data.tobytes(order="F"))
    return path
