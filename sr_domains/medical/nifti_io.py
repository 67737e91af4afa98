"""Bounded-memory NIfTI input and output.

* :func:`open_source` checks the header against the file **before anything is allocated**: the
  voxel bytes the header claims must fit in an uncompressed file, and in a gzip file they may not
  exceed what deflate can expand to (:data:`MAX_DEFLATE_RATIO` times the compressed size); a
  lying header is refused at once with a message naming the file and the claimed size.
* :meth:`NiftiSource.planes` reads the file **in file order**, one plane of the first two axes
  at a time (NIfTI stores voxels with the first axis fastest), so memory does not grow with the
  number of slices or volumes; :meth:`NiftiSource.scan` makes one pass for the statistics the
  intensity profile and value checks need (exact min/max, a bounded sample for percentiles),
  :meth:`NiftiSource.scan_volumes` the same pass with the statistics of each volume too. A
  gzip stream is read to its end (its checksum and length checked); a truncated or corrupt one
  is an :class:`~sr_domains.errors.InputFileError` naming the file, as with :func:`check_data`.
* The writer that mirrors it is :class:`~sr_domains.medical.nifti_write.PlaneWriter`.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputFileError, require
from ..intensity import work_dtype
from ..value_facts import ZeroFacts, robust_magnitude

log = logging.getLogger(__name__)

#: zlib's deflate expands at most ~1032:1; anything claiming more is corrupt or hostile.
MAX_DEFLATE_RATIO = 1100
#: Values kept for fitting percentile profiles (a deterministic strided sample beyond it).
SAMPLE_VALUES = 8 * 2**20
#: Planes handed to the model at once while streaming.
CHUNK_PLANES = 16


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


@dataclass
class Scan:
    """One pass over a volume: exact statistics of the finite voxels and a bounded sample."""

    sample: np.ndarray  # float32, finite and non-finite values as read (<= SAMPLE_VALUES)
    vmin: float
    vmax: float
    n_finite: int
    n_nonfinite: int
    n_zero: int
    min_abs: float = float("inf")  # smallest magnitude of the finite values
    #: :func:`~sr_domains.value_facts.robust_magnitude` of the sample, when it was taken during
    #: the pass and the sample dropped (the per-volume scans of :meth:`NiftiSource.scan_volumes`)
    magnitude: float | None = None

    def zero_facts(self, floating: bool) -> ZeroFacts:
        """Zero background and tolerance (:class:`~sr_domains.value_facts.ZeroFacts`);
        ``floating``: float storage (integer storage is exact)."""
        top = max(abs(self.vmin), abs(self.vmax)) if np.isfinite(self.vmin) else None
        mag = self.magnitude
        if floating and mag is None:
            mag = robust_magnitude(self.sample, top)
        return ZeroFacts.from_stats(self.vmin, self.vmax, self.min_abs, floating, mag)


class _Pass:
    """Running statistics of one pass over ``total`` voxels, plane by plane: exact min/max and
    counts of the finite values, and a deterministic strided sample of at most ``max_sample``
    values (every voxel when there are that few). Planes are counted from this pass's own
    first one, so a volume's statistics are those of the volume saved alone."""

    def __init__(self, total: int, max_sample: int) -> None:
        self.total, self.step, self.k = total, max(1, -(-total // max_sample)), 0
        self.parts: list[np.ndarray] = []
        self.vmin, self.vmax, self.min_abs = np.inf, -np.inf, np.inf
        self.n_fin = self.n_zero = 0

    def add(self, flat: np.ndarray, stats: tuple[int, float, float, int, float] | None) -> None:
        """One plane (``flat``, in file order) and its :func:`_plane_stats`."""
        step = self.step
        self.parts.append(flat[(self.k * 7) % step :: step] if step > 1 else flat.copy())
        self.k += 1
        if stats is not None:
            nf, lo, hi, nz, ma = stats
            self.n_fin += nf
            self.vmin, self.vmax = min(self.vmin, lo), max(self.vmax, hi)
            self.n_zero += nz
            self.min_abs = min(self.min_abs, ma)

    def scan(self, keep_sample: bool = True, floating: bool = True) -> Scan:
        """The :class:`Scan`; without ``keep_sample`` the sample's magnitude is taken now
        (``floating`` storage only: integer storage has exact zeros and never asks) and the
        sample dropped (memory stays bounded over many volumes)."""
        sample = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        lo, hi, nf = float(self.vmin), float(self.vmax), self.n_fin
        done = Scan(sample, lo, hi, nf, self.total - nf, self.n_zero, float(self.min_abs))
        if not keep_sample:
            if floating:
                done.magnitude = robust_magnitude(sample, max(-lo, hi) if nf else None)
            done.sample = np.zeros(0, np.float32)
        return done


def _plane_stats(flat: np.ndarray) -> tuple[int, float, float, int, float] | None:
    """``(finite count, min, max, zero count, smallest magnitude)`` of the finite values of a
    plane, or None when it has none."""
    fin = np.isfinite(flat)
    nf = int(fin.sum())
    if not nf:
        return None
    vals = flat[fin] if nf < flat.size else flat
    lo, hi = float(vals.min()), float(vals.max())
    return nf, lo, hi, int(np.count_nonzero(vals == 0)), float(np.abs(vals).min())


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
        with Opener(str(self.path), "rb") as f, _gzip_errors(self.path):
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
            if _is_gzip(self.path):  # to the end: gzip checks its CRC and length there
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
        whole, vol, volumes = _Pass(total, max_sample), None, []
        for k, plane in enumerate(self.planes()):
            flat = plane.ravel(order="F")
            stats = _plane_stats(flat)
            whole.add(flat, stats)
            if per_volume:
                vol = vol if vol is not None else _Pass(per, max_sample)
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


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


@contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    """Turn the errors of a truncated or corrupt gzip stream (``EOFError``, ``zlib.error``,
    ``gzip.BadGzipFile``) into an :class:`InputFileError` naming the file."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputFileError(path, f"truncated or corrupt gzip data: {exc}") from exc


def check_data(path: str | os.PathLike[str]) -> None:
    """Raise an :class:`InputFileError` naming the file unless all the voxel data its header
    claims is there: an uncompressed file is long enough; a gzip file decompresses to the end
    (checksum and length checked) and holds enough bytes. Reads the whole stream of a gzip
    file (``sr-domains info``)."""
    from nibabel.openers import Opener

    p = Path(path)
    img = load_nifti(p)
    offset, claimed = _layout(img)
    if not _is_gzip(p):
        _check_size(p, img, offset, claimed)
        return
    total = 0
    with Opener(str(p), "rb") as f, _gzip_errors(p):
        while chunk := f.read(2**22):
            total += len(chunk)
    if total < offset + claimed:
        raise InputFileError(
            p,
            f"truncated voxel data: the header claims {_what(img, claimed)} after byte "
            f"{offset} but the data ends at byte {total}",
        )


def _layout(img: Any) -> tuple[int, int]:
    """``(offset, bytes)`` of the voxel data the header of ``img`` claims."""
    # nibabel keeps the on-disk offset in the array proxy (the loaded header says 0)
    offset = int(getattr(img.dataobj, "offset", 0) or img.header.get_data_offset())
    shape = tuple(int(v) for v in img.shape)
    return offset, int(np.prod(shape, dtype=np.int64)) * img.header.get_data_dtype().itemsize


def _what(img: Any, claimed: int) -> str:
    shape = tuple(int(v) for v in img.shape)
    return (
        f"{'x'.join(map(str, shape))} {img.header.get_data_dtype().name} voxels ({_human(claimed)})"
    )


def _check_size(p: Path, img: Any, offset: int, claimed: int) -> None:
    """Refuse a header that claims more voxel data than the file can hold (module docs)."""
    size = p.stat().st_size
    if _is_gzip(p):
        if claimed > MAX_DEFLATE_RATIO * size:
            raise InputFileError(
                p,
                f"the header claims {_what(img, claimed)}, more than a {_human(size)} gzip file "
                "can hold; the header is corrupt (refused before reading)",
            )
    elif offset + claimed > size:
        raise InputFileError(
            p,
            f"the header claims {_what(img, claimed)} after byte {offset} but the file has "
            f"{_human(size)}; truncated file or corrupt header",
        )


def nibabel_module() -> Any:
    """nibabel, or a clear error naming the ``medical`` extra."""
    return require("nibabel", "medical", "NIfTI files")


def load_nifti(path: str | os.PathLike[str]) -> Any:
    """``nibabel.load`` with errors that name the file."""
    nib = nibabel_module()
    p = Path(path)
    InputFileError.check_file(p, "a NIfTI file")
    try:
        img = nib.load(p)
    except Exception as exc:  # nibabel raises many types for bad files
        raise InputFileError(p, f"not a readable NIfTI file ({exc})") from exc
    if isinstance(img, (nib.Nifti1Pair, nib.Nifti2Pair)) and not isinstance(
        img, (nib.Nifti1Image, nib.Nifti2Image)
    ):
        raise InputFileError(
            p,
            "a NIfTI pair (.hdr/.img) is not supported; convert it to a single .nii or .nii.gz "
            "file first (e.g. nibabel: nib.save(nib.load(path), 'out.nii.gz'))",
        )
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputFileError(p, f"not a NIfTI image ({type(img).__name__})")
    return img


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
    offset, claimed = _layout(img)
    _check_size(p, img, offset, claimed)
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
            f"{what} needs about {_human(need)} of memory but {_human(avail)} is available"
        )


__all__ = [
    "CHUNK_PLANES",
    "MAX_DEFLATE_RATIO",
    "NiftiSource",
    "Scan",
    "available_memory",
    "check_data",
    "check_memory",
    "load_nifti",
    "nibabel_module",
    "open_source",
]
