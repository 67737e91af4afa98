"""Expand training inputs (files, folders, globs) into typed inputs, sniffing each file's kind.

Rule for ``kind="auto"`` (by name, then content; see ``docs/training_data.md``):

============================  ===================================================================
``.nii`` / ``.nii.gz``        NIfTI volume (nibabel)
``.dcm`` or ``DICM`` at 128   DICOM; files are grouped into series by SeriesInstanceUID, one input
                              per series (a folder may hold several)
``.tif`` / ``.tiff``          raster, read with rasterio in windows (georeferenced or not: a plain
                              TIFF is a raster without CRS); ``kind="image"`` reads TIFFs with
                              Pillow instead
``.png .jpg .jpeg .bmp``      image (Pillow)
``.webp``
============================  ===================================================================

Folders are walked recursively (sorted, hidden entries skipped); files of no known kind inside a
folder are ignored, but a file named explicitly must be of a known kind. Globs (``*``, ``?``,
``[``) are expanded recursively (``**``). An explicit ``kind`` forces that reader for every file
(folders then contribute only the files with that kind's suffixes).
"""

from __future__ import annotations

import glob
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from ..errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

KINDS = ("auto", "geotiff", "nifti", "dicom", "image")
RASTER_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm",)


@dataclass(frozen=True)
class InputSpec:
    """One training input: a file, or the files of one DICOM series.

    Attributes:
        kind: ``"geotiff"``, ``"nifti"``, ``"dicom"`` or ``"image"``.
        path: the file (DICOM: the series' folder, or the file of a one-file series).
        files: DICOM only: the series' files.
        series_uid: DICOM only: the SeriesInstanceUID ("" when the file has none).
        label: display name (default: the file or folder name).
    """

    kind: str
    path: Path
    files: tuple[Path, ...] = ()
    series_uid: str | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.path.name


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _has_dicm(path: Path) -> bool:
    from ..medical.dicom_read import has_dicm_preamble

    return has_dicm_preamble(path)


def sniff_kind(path: Path, kind: str = "auto", *, explicit: bool = False) -> str | None:
    """The reader for ``path`` under ``kind`` (module rule), or None to ignore the file.

    Raises:
        InputFileError: an explicitly named file whose kind cannot be told.
    """
    suf = _suffix(path)
    if kind != "auto":
        wanted = {
            "geotiff": RASTER_SUFFIXES,
            "nifti": NIFTI_SUFFIXES,
            "dicom": DICOM_SUFFIXES,
            "image": IMAGE_SUFFIXES + RASTER_SUFFIXES,
        }[kind]
        if explicit or suf in wanted or (kind == "dicom" and _has_dicm(path)):
            return kind
        return None
    if suf in NIFTI_SUFFIXES:
        return "nifti"
    if suf in DICOM_SUFFIXES:
        return "dicom"
    if suf in RASTER_SUFFIXES:
        return "geotiff"
    if suf in IMAGE_SUFFIXES:
        return "image"
    if _has_dicm(path):
        return "dicom"
    if explicit:
        raise InputFileError(
            path,
            "cannot tell what kind of file this is (known: .tif/.tiff rasters, .nii/.nii.gz, "
            "DICOM, .png/.jpg/.jpeg/.bmp/.webp images); set kind: geotiff|nifti|dicom|image",
        )
    return None


def _walk(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return out


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """``[(file, explicit), ...]`` for files, folders (recursive) and globs, in order, without
    duplicates; ``explicit`` is True for a file named directly.

    Raises:
        InputFileError: a path that does not exist or a glob that matches nothing.
    """
    out: list[tuple[Path, bool]] = []
    seen: set[Path] = set()

    def add(p: Path, explicit: bool) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append((p, explicit))

    for entry in paths:
        text = os.fspath(entry)
        if any(c in text for c in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise InputFileError(text, "the pattern matches no files")
            for m in matches:
                mp = Path(m)
                for f in _walk(mp) if mp.is_dir() else [mp]:
                    add(f, False)
            continue
        p = Path(text)
        if p.is_dir():
            for f in _walk(p):
                add(f, False)
        elif p.is_file():
            add(p, True)
        else:
            raise InputFileError(p, "no such file or folder")
    return out


def find_inputs(paths: Sequence[str | os.PathLike[str]], kind: str = "auto") -> list[InputSpec]:
    """Typed inputs for ``paths`` (module rule); DICOM files are grouped by series and the
    series placed where its first file was found. Unreadable DICOM headers raise
    :class:`~sr_domains.errors.InputFileError` naming the file."""
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r} is not one of {list(KINDS)}")
    items: list[InputSpec | str] = []  # str: placeholder for a DICOM group
    groups: dict[str, list[Path]] = {}
    for path, explicit in expand_paths(paths):
        k = sniff_kind(path, kind, explicit=explicit)
        if k is None:
            log.debug("%s: not a training input kind, ignored", path)
            continue
        if k != "dicom":
            items.append(InputSpec(k, path))
            continue
        from ..medical.dicom_read import read_header

        ds = read_header(path)
        if ds is None:
            log.debug("%s: DICOM without pixel data, ignored", path)
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        key = uid or f"file:{path}"
        if key not in groups:
            groups[key] = []
            items.append(key)
        groups[key].append(path)
    out: list[InputSpec] = []
    for item in items:
        if isinstance(item, InputSpec):
            out.append(item)
            continue
        files = tuple(groups[item])
        parents = {str(f.parent) for f in files}
        where = files[0] if len(files) == 1 else Path(os.path.commonpath(sorted(parents)))
        out.append(InputSpec("dicom", where, files, "" if item.startswith("file:") else item))
    names = Counter(s.path for s in out if s.kind == "dicom")
    return [  # several series under one folder: name them by their UID's tail
        replace(s, label=f"{s.path.name}[{cast(str, s.series_uid)[-12:]}]")
        if names[s.path] > 1
        else s
        for s in out
    ]


__all__ = ["KINDS", "InputSpec", "expand_paths", "find_inputs", "sniff_kind"]
