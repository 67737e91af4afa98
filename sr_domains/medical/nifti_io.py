"""Bounded-memory NIfTI input: a file opened for plane-by-plane reading.

* :func:`open_source` checks the header against the file **before anything is allocated**
  (:mod:`sr_domains.medical.nifti_load`: the voxel bytes the header claims must fit in an
  uncompressed file, and in a gzip file they may not exceed what deflate can expand to,
  :data:`MAX_DEFLATE_RATIO` times the compressed size); a lying header is refused at once with
  a message naming the file and the claimed size.
* :meth:`NiftiSource.planes` reads the file **in file order**, one plane of the first two axes
  at a time (NIfTI stores voxels with the first axis fastest), so memory does not grow with the
  number of slices or volumes; :meth:`NiftiSource.scan` makes one pass for the statistics the
  intensity profile and value checks need (exact min/max, a bounded sample for percentiles;
  :mod:`sr_domains.medical.nifti_scan`), :meth:`NiftiSource.scan_volumes` the same pass with
  the statistics of each volume too. A gzip stream is read to its end (its checksum and length
  checked); a truncated or corrupt one is an :class:`~sr_domains.errors.InputFileError` naming
  the file, as with :func:`check_data`.
* :func:`check_memory` refuses an in-memory step that cannot fit.
* The writer that mirrors it is :class:`~sr_domains.medical.nifti_write.PlaneWriter`.

``load_nifti``, ``nibabel_module``, ``check_data``, ``MAX_DEFLATE_RATIO`` (from
:mod:`~sr_domains.medical.nifti_load`), ``Scan`` and ``SAMPLE_VALUES`` (from
:mod:`~sr_domains.medical.nifti_scan`) are re-exported here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputFileError
from ..intensity import work_dtype
from .nifti_load import (
    MAX_DEFLATE_RATIO,
    check_data,
    check_size,
    data_layout,
    gzip_errors,
    human_size,
    is_gzip,
    load_nifti,
    nibabel_module,
)
from .nifti_scan import SAMPLE_VALUES, Scan, ScanPass, plane_stats

log = logging.getLogger(__name__)

#: Planes handed to the model at once while streaming.
CHUNK_PLANES = 16


@dataclass
class NiftiSource:
    """A NIfTI file opened for plane-by-plane reading (no voxel data loaded).

    Attributes:
        path: the file.
        image: the nibabel image (its header and class are used when writing).
        shape: the full data shape, at least 3-D (a 2-D file gets a trailing axis of 1).
        dtype: on-disk dtype (byte order included).
        slope, inter: on-disk scaling (1, 0 when unscaled).
        offset: byte offset of the voxel data.
    """

    path: Path
    image: Any
    shape: tuple[int, ...]
    dtype: np.dtype
    slope: float
    inter: float
    offset: int

    @property
    def header(self) -> Any:
        return self.image.header

    @property
    def affine(self) -> np.ndarray:
        return np.asarray(self.image.affine, np.float64)

    @property
    def n_volumes(self) -> int:
        return int(np.prod(self.shape[3:], dtype=np.int64)) if len(self.shape) > 3 else 1

    @property
    def n_planes(self) -> int:
        return self.shape[2] * self.n_volumes

    @property
    def work_dtype(self) -> np.dtype:
        """What voxels are read as: float32, or float64 where float32 cannot hold the stored
        values (float64, 32/64-bit integers), so value rules and pinned values stay exact."""
        return work_dtype(self.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def planes(self) -> Iterator[np.ndarray]:
        """Every ``(X, Y)`` plane in physical units (scaling applied), in file order: slices of
        the first volume, then of the next one. float32, or float64 for float64 and 32-bit
        integer data (:attr:`work_dtype`)."""
        from nibabel.openers import Opener

        x, y = self.shape[:2]
        n = x * y * self.dtype.itemsize
        scaled = (self.slope, self.inter) != (1.0, 0.0)
        work = self.work_dtype
        with Opener(str(self.path), "rb") as f, gzip_errors(self.path):
            f.seek(self.offset)
            for k in range(self.n_planes):
                buf = f.read(n)
                if len(buf) != n:
                    raise InputFileError(
                        self.path,
                        f"truncated voxel data: plane {k + 1} of {self.n_planes} is incomplete "
                        f"(the header claims {'x'.join(map(str, self.shape))} {self.dtype.name})",
                    )
                raw = np.frombuffer(buf, self.dtype).reshape((x, y), order="F")
                if scaled:
                    yield (raw.astype(np.float64) * self.slope + self.inter).astype(work)
                else:
                    yield raw.astype(work)
            if is_gzip(self.path):  # to the end: gzip checks its CRC and length there
                while f.read(2**22):
                    pass

    def scan(self, max_sample: int = SAMPLE_VALUES) -> Scan:
        """One pass: min/max/counts of finite values and a deterministic sample of at most
        ``max_sample`` values (every voxel when the volume is that small)."""
        return self._scan(max_sample, per_volume=False)[0]

    def scan_volumes(self, max_sample: int = SAMPLE_VALUES) -> tuple[Scan, list[Scan]]:
        """One pass: the whole-file :meth:`scan` and a :class:`Scan` of each volume (the 4th
        and later axes flattened in file order, :attr:`n_volumes`): exactly what :meth:`scan`
        of that volume saved alone as a 3-D file finds, with its sample's magnitude taken at
        the end of the volume and the sample dropped (:attr:`Scan.magnitude`: memory holds
        at most one volume's sample besides the whole file's). A 3-D file's one volume is
        the whole-file scan itself."""
        whole, volumes = self._scan(max_sample, per_volume=self.n_volumes > 1)
        return whole, volumes or [whole]

    def _scan(self, max_sample: int, per_volume: bool) -> tuple[Scan, list[Scan]]:
        total = int(np.prod(self.shape, dtype=np.int64))
        per = int(np.prod(self.shape[:3], dtype=np.int64))
        z = self.shape[2]
        whole, vol, volumes = ScanPass(total, max_sample), None, []
        for k, plane in enumerate(self.planes()):
            flat = plane.ravel(order="F")
            stats = plane_stats(flat)
            whole.add(flat, stats)
            if per_volume:
                vol = vol if vol is not None else ScanPass(per, max_sample)
                vol.add(flat, stats)
                if (k + 1) % z == 0:  # the last plane of a volume
                    volumes.append(vol.scan(keep_sample=False, floating=self.dtype.kind == "f"))
                    vol = None
        return whole.scan(), volumes

    def read_all(self) -> np.ndarray:
        """The whole volume, ``shape``, dtype :attr:`work_dtype` (checks that it fits in memory
        first)."""
        work = self.work_dtype
        n = int(np.prod(self.shape, dtype=np.int64))
        check_memory(n * work.itemsize, f"{self.path}: the volume")
        x, y, z = self.shape[:3]
        out = np.empty((x, y, z, self.n_volumes), work, order="F")
        for k, plane in enumerate(self.planes()):
            out[:, :, k % z, k // z] = plane
        return out.reshape(self.shape, order="F")


def open_source(path: str | os.PathLike[str]) -> NiftiSource:
    """Open a NIfTI file for reading after checking its header against the file (module docs).

    Raises:
        InputFileError: missing/unreadable file, unsupported voxel type, or a header that claims
            more voxel data than the file can hold.
    """
    p = Path(path)
    img = load_nifti(p)
    hdr = img.header
    dt = hdr.get_data_dtype()
    if dt.kind not in "uif" or dt.names is not None:
        raise InputFileError(p, f"unsupported voxel type {dt} (only real scalar voxels)")
    shape = tuple(int(v) for v in img.shape)
    if len(shape) < 2 or min(shape) < 1:
        raise InputFileError(p, f"expected an image of >= 2 non-empty dimensions, got {shape}")
    if len(shape) == 2:
        shape = (*shape, 1)
    offset, claimed = data_layout(img)
    check_size(p, img, offset, claimed)
    slope = float(getattr(img.dataobj, "slope", 1.0))  # nibabel moves scl_* to the proxy
    inter = float(getattr(img.dataobj, "inter", 0.0))
    return NiftiSource(p, img, shape, dt, slope, inter, offset)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(need: int, what: str) -> None:
    """Refuse an in-memory step that cannot fit (instead of swapping or being killed)."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise ConfigError(
            f"{what} needs about {human_size(need)} of memory but {human_size(avail)} is available"
        )


__all__ = [
    "CHUNK_PLANES",
    "MAX_DEFLATE_RATIO",
    "SAMPLE_VALUES",
    "NiftiSource",
    "Scan",
    "available_memory",
    "check_data",
    "check_memory",
    "load_nifti",
    "nibabel_module",
    "open_source",
]
