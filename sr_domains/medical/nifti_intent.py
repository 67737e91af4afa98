"""Which NIfTI intents an intensity SR model may upscale.

A voxel of a scalar intent (none, the statistical maps ZSCORE, TTEST, PVAL, ..., ESTIMATE,
DIMLESS, TIME_SERIES, SHAPE, an FSL topup field in Hz) is one measurement that varies smoothly
in space, so SR applies. Refused, naming the file and the intent:

* labels (LABEL, NEURONAME, NODE_INDEX, CIFTI dense labels): SR would invent labels;
* vectors, matrices and tensors (VECTOR, DISPVECT, SYMMATRIX, GENMATRIX, QUATERNION, RGB/RGBA
  vectors, FSL displacement fields): their components would be upscaled one by one as if they
  were intensities (a rotation of the field is not), and the 5th dimension is not space;
* geometry and coefficients (POINTSET, TRIANGLE, FSL spline/DCT coefficients): not samples on
  the voxel grid;
* CIFTI connectivity matrices (3000-3012): rows and columns are brain-ordinates, not space.

An intent code nibabel does not know is upscaled with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import InputFileError

log = logging.getLogger(__name__)

#: Intent codes of label images (SR would invent labels).
LABEL_INTENTS = frozenset({1002, 1003, 2002, 3007})
#: Intent codes of vector, matrix and tensor voxels.
VECTOR_INTENTS = frozenset({1004, 1005, 1006, 1007, 1010, 2003, 2004, 2006})
#: Intent codes of geometry or coefficients, not samples on the voxel grid.
NOT_SAMPLED_INTENTS = frozenset({1008, 1009, 2007, 2008, 2009, 2016, 2017})
#: CIFTI connectivity intents other than dense labels.
CIFTI_INTENTS = frozenset(range(3000, 3013)) - LABEL_INTENTS


def intent_name(code: int) -> str:
    """``VECTOR`` for 1007 (the NIfTI name without its prefix), else ``code <n>``."""
    from nibabel.nifti1 import intent_codes

    try:
        name = str(intent_codes.niistring[code])
    except KeyError:
        return f"code {code}"
    for prefix in ("NIFTI_INTENT_", "FSL_"):
        name = name.removeprefix(prefix)
    return name


def check_intent(path: str | Path, header: Any) -> None:
    """Raise :class:`InputFileError` naming ``path`` and the intent unless the intent of the
    NIfTI ``header`` is a scalar one (see module docs)."""
    code = int(header.get("intent_code", 0))
    if code in LABEL_INTENTS:
        name = intent_name(code)
        raise InputFileError(path, f"is a label image (intent {name}); SR would invent labels")
    why = (
        "vector/matrix voxels, not intensities; SR would upscale their components one by one"
        if code in VECTOR_INTENTS
        else "geometry or coefficients, not samples on the voxel grid"
        if code in NOT_SAMPLED_INTENTS
        else "a CIFTI connectivity matrix, not an image grid"
        if code in CIFTI_INTENTS
        else None
    )
    if why is not None:
        raise InputFileError(path, f"has intent {intent_name(code)} ({why}); not upscaled")
    if intent_name(code).startswith("code "):
        log.warning("%s: unknown NIfTI intent code %d; upscaled as intensities", path, code)


__all__ = [
    "CIFTI_INTENTS",
    "LABEL_INTENTS",
    "NOT_SAMPLED_INTENTS",
    "VECTOR_INTENTS",
    "check_intent",
    "intent_name",
]
