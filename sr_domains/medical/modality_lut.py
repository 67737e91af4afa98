"""The Modality LUT of a DICOM file (``ModalityLUTSequence``): stored values to modality units
through a table instead of RescaleSlope/Intercept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError


@dataclass(frozen=True)
class ModalityLut:
    """A Modality LUT (``ModalityLUTSequence``): stored value ``first + i`` means ``table[i]``;
    stored values below ``first`` take the first entry, above the table the last (PS3.3
    C.11.1.1.1, as :func:`pydicom.pixels.apply_modality_lut`). Outputs are integers."""

    first: int
    table: np.ndarray  # int64
    kind: str  # ModalityLUTType (e.g. "HU", "US" = unspecified)

    def apply(self, stored: np.ndarray) -> np.ndarray:
        idx = np.clip(stored.astype(np.int64) - self.first, 0, len(self.table) - 1)
        return self.table[idx]

    def __str__(self) -> str:
        lo, hi = int(self.table.min()), int(self.table.max())
        return (
            f"Modality LUT ({len(self.table)} entries from stored value {self.first}, "
            f"outputs {lo}..{hi} {self.kind})"
        )


def modality_lut(path: Path, ds: Any) -> ModalityLut | None:
    """The Modality LUT of a file (None without ``ModalityLUTSequence``); a malformed one is
    an :class:`InputFileError` naming the file. The table is pydicom's own
    (:func:`pydicom.pixels.apply_modality_lut` on every stored value it maps)."""
    seq = ds.get("ModalityLUTSequence")
    if not seq:
        return None
    from pydicom.pixels import apply_modality_lut

    problem = f"Modality LUT (ModalityLUTSequence) has {len(seq)} items, expected 1"
    if len(seq) == 1:
        try:
            desc = seq[0].LUTDescriptor  # entries (0: 65536; US even where read as SS), first
            n, first = int(desc[0]) % 2**16 or 2**16, int(desc[1])
            table = apply_modality_lut(np.arange(first, first + n, dtype=np.int64), ds)
            return ModalityLut(
                first, table.astype(np.int64), str(seq[0].get("ModalityLUTType", "US"))
            )
        except Exception as exc:  # missing items, data shorter than the descriptor, ...
            problem = f"malformed Modality LUT (ModalityLUTSequence): {exc!r}"
    raise InputFileError(path, problem)


__all__ = ["ModalityLut", "modality_lut"]
