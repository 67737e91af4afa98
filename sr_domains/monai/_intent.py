"""The NIfTI intent check of :mod:`sr_domains.medical.nifti_intent` on MONAI metadata.

MONAI's ``LoadImage`` (NibabelReader) copies the NIfTI header fields into ``MetaTensor.meta``:
``intent_code`` is a 0-d NumPy array (``array(1002, dtype=int16)``), and after
``list_data_collate`` a ``(B,)`` tensor beside a list of ``filename_or_obj``. Label and
non-scalar images (LABEL, VECTOR, SYMMATRIX, ...) are refused naming the file, as the file
readers refuse them; metadata without ``intent_code`` (DICOM, ITK, arrays) is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..medical.nifti_intent import check_intent


def _values(v: Any) -> list[Any]:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v).reshape(-1).tolist()


def check_meta_intent(meta: Mapping[str, Any] | None, what: str = "the image") -> None:
    """Raise :class:`~sr_domains.errors.InputFileError` naming ``meta["filename_or_obj"]``
    (else ``what``) when the ``intent_code`` of one image (or of each item of a collated
    batch) is not a scalar intent (see module docs)."""
    if not meta or meta.get("intent_code") is None:
        return
    codes = _values(meta["intent_code"])
    names = meta.get("filename_or_obj")
    if not isinstance(names, (list, tuple)):
        names = [names] * len(codes)
    for i, code in enumerate(codes):
        name = names[i] if i < len(names) and names[i] else None
        label = what if len(codes) == 1 else f"{what} (batch item {i})"
        check_intent(str(name) if name else label, {"intent_code": int(code)})


__all__ = ["check_meta_intent"]
