"""Loading a NIfTI file and checking its header against the file, naming the file.

* :func:`load_nifti` is ``nibabel.load`` with errors that name the file (a NIfTI pair, another
  image type, an unreadable file refused).
* :func:`check_size` refuses a header that claims more voxel bytes than the file can hold,
  **before anything is allocated**: they must fit in an uncompressed file, and in a gzip file
  they may not exceed what deflate can expand to (:data:`MAX_DEFLATE_RATIO` times the
  compressed size).
* :func:`check_data` reads a gzip stream to its end (checksum and length checked); a truncated
  or corrupt one is an :class:`~sr_domains.errors.InputFileError` naming the file
  (:func:`gzip_errors`).

:func:`~sr_domains.medical.nifti_io.open_source` opens a file with these checks.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError, require

#: zlib's deflate expands at most ~1032:1; anything claiming more is corrupt or hostile.
MAX_DEFLATE_RATIO = 1100


def human_size(n: float) -> str:
    """``n`` bytes in words: ``"512 B"``, ``"1.5 MB"``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def is_gzip(path: Path) -> bool:
    """Whether ``path`` is read as a gzip stream (``.gz``)."""
    return path.name.lower().endswith(".gz")


@contextmanager
def gzip_errors(path: Path) -> Iterator[None]:
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
    offset, claimed = data_layout(img)
    if not is_gzip(p):
        check_size(p, img, offset, claimed)
        return
    total = 0
    with Opener(str(p), "rb") as f, gzip_errors(p):
        while chunk := f.read(2**22):
            total += len(chunk)
    if total < offset + claimed:
        raise InputFileError(
            p,
            f"truncated voxel data: the header claims {_what(img, claimed)} after byte "
            f"{offset} but the data ends at byte {total}",
        )


def data_layout(img: Any) -> tuple[int, int]:
    """``(offset, bytes)`` of the voxel data the header of ``img`` claims."""
    # nibabel keeps the on-disk offset in the array proxy (the loaded header says 0)
    offset = int(getattr(img.dataobj, "offset", 0) or img.header.get_data_offset())
    shape = tuple(int(v) for v in img.shape)
    return offset, int(np.prod(shape, dtype=np.int64)) * img.header.get_data_dtype().itemsize


def _what(img: Any, claimed: int) -> str:
    shape = tuple(int(v) for v in img.shape)
    dtype = img.header.get_data_dtype().name
    return f"{'x'.join(map(str, shape))} {dtype} voxels ({human_size(claimed)})"


def check_size(p: Path, img: Any, offset: int, claimed: int) -> None:
    """Refuse a header that claims more voxel data than the file can hold (module docs)."""
    size = p.stat().st_size
    if is_gzip(p):
        if claimed > MAX_DEFLATE_RATIO * size:
            raise InputFileError(
                p,
                f"the header claims {_what(img, claimed)}, more than a {human_size(size)} gzip "
                "file can hold; the header is corrupt (refused before reading)",
            )
    elif offset + claimed > size:
        raise InputFileError(
            p,
            f"the header claims {_what(img, claimed)} after byte {offset} but the file has "
            f"{human_size(size)}; truncated file or corrupt header",
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


__all__ = [
    "MAX_DEFLATE_RATIO",
    "check_data",
    "check_size",
    "data_layout",
    "gzip_errors",
    "human_size",
    "is_gzip",
    "load_nifti",
    "nibabel_module",
]
