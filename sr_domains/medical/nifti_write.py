"""Write a NIfTI file plane by plane in file order (the reader's mirror,
:mod:`sr_domains.medical.nifti_io`): a header, then ``(X, Y)`` planes quantized to the output
dtype with the header's ``scl_slope``/``scl_inter`` (integer value grid kept), with provenance
known only at the end (how many values were clamped) filled into a placeholder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..strict_json import provenance_json
from ..value_ops import safe_cast

#: Placeholder for facts known only after the voxels are written (see :class:`PlaneWriter`).
PENDING_TOKEN = "@@sr_domains:pending@@"
PENDING = PENDING_TOKEN + " " * 2000
#: Room per volume added to the placeholder of a 4-D file (its per-volume value rules).
PENDING_PER_VOLUME = 40


def pending_slot(n_volumes: int = 1) -> str:
    """The placeholder for a file of ``n_volumes`` volumes: :data:`PENDING`, with room for a
    record that lists its volumes (:func:`~sr_domains.medical.nifti_rules.values_record`)."""
    return PENDING + " " * (PENDING_PER_VOLUME * max(0, n_volumes - 1))


class PlaneWriter:
    """Write a NIfTI file: the header, then ``(X, Y)`` planes in file order (module docs).

    Integer outputs are rounded and clipped to the dtype with the header's scaling (the
    source's, unchanged); the number of clipped voxels is counted in :attr:`clipped`.

    A header extension may hold the JSON string :func:`pending_slot` as a placeholder; set
    :attr:`pending` before closing and it is replaced by that JSON value (padded with spaces to
    the same length). For that, ``.nii.gz`` outputs are written uncompressed beside ``path``
    first and compressed when complete.
    """

    def __init__(self, path: Path, header: Any, n_planes: int) -> None:
        self.path = Path(path)
        self.header = header
        self.dtype = header.get_data_dtype()
        slope, inter = header.get_slope_inter()
        self.slope = 1.0 if slope is None else float(slope)
        self.inter = 0.0 if inter is None else float(inter)
        self.n_planes = n_planes
        self.written = 0
        self.clipped = 0
        self.pending: Any = None
        self.gz = self.path.name.lower().endswith(".gz")
        self.raw = self.path.with_name(self.path.name + ".raw.nii") if self.gz else self.path
        header.set_data_offset(0)  # recomputed from the extensions by write_to
        self._file = open(self.raw, "wb")  # noqa: SIM115 - closed by close()
        try:
            header.write_to(self._file)
            pad = header.get_data_offset() - self._file.tell()
            if pad > 0:
                self._file.write(b"\x00" * pad)
        except BaseException:
            self._abort()
            raise

    def _stored(self, values: np.ndarray) -> np.ndarray:
        dt = self.dtype
        if dt.kind == "f":
            return values.astype(dt)
        info = np.iinfo(dt)
        v = np.rint((values.astype(np.float64) - self.inter) / self.slope)
        bad = (v < info.min) | (v > info.max)
        self.clipped += int(np.count_nonzero(bad))
        return safe_cast(v, dt)  # (clipped: also at the limits float64 rounds, int64/uint64)

    def write(self, planes: np.ndarray) -> None:
        """Write a stack ``(n, X, Y)`` of planes (physical units) in file order."""
        if self.written + len(planes) > self.n_planes:
            raise RuntimeError("more planes written than the header declares")
        for plane in planes:
            self._file.write(self._stored(plane).tobytes(order="F"))
        self.written += len(planes)

    def _patch(self) -> None:
        size = int(self.header.get_data_offset())
        with open(self.raw, "r+b") as f:
            head = f.read(size)
            # ours is the last extension: an input that is an earlier output cut short keeps
            # its own placeholder before it (of any length: pending_slot)
            at = head.rfind(f'"{PENDING_TOKEN}'.encode())
            end = head.find(b'"', at + 1) + 1 if at >= 0 else 0
            if at < 0 or end <= 0:
                raise RuntimeError("no pending placeholder in the header")
            text = provenance_json(self.pending).encode()
            if len(text) > end - at:
                raise RuntimeError("pending value too long for its placeholder")
            f.seek(at)
            f.write(text.ljust(end - at))

    def close(self) -> None:
        """Finish the file (patch the placeholder, compress); raises if planes are missing."""
        self._file.close()
        if self.written != self.n_planes:
            raise RuntimeError(f"{self.written} of {self.n_planes} planes were written")
        if self.pending is not None:
            self._patch()
        if self.gz:
            from nibabel.openers import Opener

            with open(self.raw, "rb") as src, Opener(str(self.path), "wb") as dst:
                shutil.copyfileobj(src, dst, 2**22)
            self.raw.unlink()

    def _abort(self) -> None:
        self._file.close()
        if self.gz:
            self.raw.unlink(missing_ok=True)

    def __enter__(self) -> PlaneWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._abort()


__all__ = ["PENDING", "PENDING_TOKEN", "PlaneWriter"]
