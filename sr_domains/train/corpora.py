"""Offline built-in corpora for the shipped weights, with a strict train / held-out split.

Nothing is downloaded: the files come with installed packages (scikit-image's bundled photos,
pydicom's and nibabel's test files) or with this package (``sr_domains/data/heldout``: three
small held-out samples with their licences, ``LICENSES.md`` there), so ``sr-domains evaluate
--corpus gray-heldout|rgb-heldout`` reproduces the README table from an installed wheel. The
quality battery also reads ``../shared/data`` beside a repository checkout (or
``$SR_DOMAINS_DATA``). Files absent in an installation are skipped with a logged warning; a
corpus left empty raises a clear error.

==============  ========  ===================================================================
corpus          channels  files
==============  ========  ===================================================================
``gray-train``  1         scikit-image grayscale photos (camera, moon, coins, text, page,
                          brick, grass, gravel, cell), luma of its RGB photos (see
                          ``rgb-train``), pydicom MR_small.dcm + CT_small.dcm, nibabel
                          example4d.nii.gz (MR EPI)
``gray-heldout`` 1        pydicom examples_overlay.dcm (MR abdomen, 484 x 300) and
                          J2K_pixelrep_mismatch.dcm (CT head, JPEG 2000, 512 x 512);
                          bundled aniso_vox.nii.gz (oblique MR volume, dipy)
``rgb-train``   3         scikit-image RGB photos: astronaut, chelsea, coffee, rocket,
                          motorcycle_left, hubble_deep_field, retina, ihc
``rgb-heldout`` 3         bundled RGB.byte.tif (Landsat-7 uint8, nodata 0) and rgb.tif
                          (uint16, nodata 0)
==============  ========  ===================================================================

Synthetic or near-duplicate bundled images are left out on purpose (chessboard, phantom, logo,
color, horse silhouette, clock_motion (artificially blurred), motorcycle_right (stereo twin of
motorcycle_left), microaneurysms (102 px crop), multipage TIFFs). ``examples/data/sample.tif`` is
a crop of RGB.byte.tif, so it is held out as well (:func:`heldout_files`), like every file of
the quality battery (:data:`BATTERY_ONLY`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

GRAY_PHOTOS = (
    "camera.png",
    "moon.png",
    "coins.png",
    "text.png",
    "page.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "cell.png",
)
RGB_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
)


@dataclass(frozen=True)
class Corpus:
    """A named file list: ``files`` are ``(location, relative path)`` pairs, where location is
    ``skimage``, ``pydicom``, ``nibabel`` (package data folders), ``bundled`` (this package's
    ``data/heldout``), ``shared`` or ``repo``."""

    name: str
    split: str  # "train" or "heldout"
    channels: int
    description: str
    files: tuple[tuple[str, str], ...]


_CORPORA = {
    c.name: c
    for c in (
        Corpus(
            "gray-train",
            "train",
            1,
            "scikit-image photos (gray, and RGB as luma), pydicom MR/CT, nibabel MR EPI",
            (
                *(("skimage", f) for f in GRAY_PHOTOS + RGB_PHOTOS),
                ("pydicom", "MR_small.dcm"),
                ("pydicom", "CT_small.dcm"),
                ("nibabel", "example4d.nii.gz"),
            ),
        ),
        Corpus(
            "gray-heldout",
            "heldout",
            1,
            "real MR and CT DICOM slices (pydicom) and an anisotropic oblique NIfTI (dipy)",
            (
                ("pydicom", "examples_overlay.dcm"),
                ("pydicom", "J2K_pixelrep_mismatch.dcm"),
                ("bundled", "aniso_vox.nii.gz"),
            ),
        ),
        Corpus(
            "rgb-train",
            "train",
            3,
            "scikit-image RGB photos",
            tuple(("skimage", f) for f in RGB_PHOTOS),
        ),
        Corpus(
            "rgb-heldout",
            "heldout",
            3,
            "Landsat-7 RGB (uint8) and an RGB uint16 GeoTIFF, both with nodata",
            (("bundled", "RGB.byte.tif"), ("bundled", "rgb.tif")),
        ),
    )
}

#: ``(folder, name)`` of the bundled samples inside ``../shared/data`` (the same files).
_SHARED_COPIES = (
    ("geotiff", "RGB.byte.tif"),
    ("geotiff", "rgb.tif"),
    ("nifti", "aniso_vox.nii.gz"),
)

_PACKAGE_DATA = {
    "skimage": ("data",),
    "pydicom": ("data", "test_files"),
    "nibabel": ("tests", "data"),
}


#: Files only the quality battery uses (``sr_domains.train.battery``): held out as well.
BATTERY_ONLY: tuple[tuple[str, str], ...] = (
    ("shared", "dicom/mr_brain_6slice_babymri_dwv"),
    ("shared", "geotiff/615.tif"),
    ("nibabel", "anatomical.nii"),
    ("pydicom", "693_J2KI.dcm"),
)


def bundled_data_dir() -> Path:
    """The held-out samples shipped inside this package (``sr_domains/data/heldout``)."""
    return Path(__file__).resolve().parents[1] / "data" / "heldout"


def repo_root() -> Path:
    """The folder holding the ``sr_domains`` package (a checkout's root)."""
    return Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The held-out sample data: ``$SR_DOMAINS_DATA`` when set (an installed package has no
    checkout beside it), else ``../shared/data`` beside the checkout (may not exist)."""
    env = os.environ.get("SR_DOMAINS_DATA")
    if env:
        return Path(env).expanduser()
    return repo_root().parent / "shared" / "data"


def _package_dir(name: str) -> Path | None:
    """A package's folder without importing it (None when not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _location(where: str) -> Path | None:
    if where == "shared":
        return shared_data_dir()
    if where == "repo":
        return repo_root()
    if where == "bundled":
        return bundled_data_dir()
    base = _package_dir(where)
    return None if base is None else base.joinpath(*_PACKAGE_DATA[where])


def list_corpora() -> list[str]:
    """Names of the built-in corpora."""
    return sorted(_CORPORA)


def get_corpus(name: str) -> Corpus:
    """The corpus ``name``; an unknown name raises ConfigError listing the available ones."""
    if name not in _CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; available: {', '.join(list_corpora())}")
    return _CORPORA[name]


def _resolve(
    entries: tuple[tuple[str, str], ...], what: str, level: int = logging.WARNING
) -> tuple[list[Path], list[str]]:
    found, missing = [], []
    for where, rel in entries:
        base = _location(where)
        path = None if base is None else base / rel
        if path is not None and path.exists():
            found.append(path)
        else:
            missing.append(f"{where}:{rel}")
    if missing:
        log.log(level, "%s: %d file(s) absent here, skipped: %s", what, len(missing), missing)
    return found, missing


def corpus_files(name: str) -> list[Path]:
    """The files (and DICOM folders) of corpus ``name`` present in this installation.

    Raises:
        ConfigError: unknown name. InputFileError: none of its files is present.
    """
    corpus = get_corpus(name)
    found, missing = _resolve(corpus.files, f"corpus {name!r}")
    if not found:
        raise InputFileError(
            None,
            f"corpus {name!r} has no files in this installation (missing: {', '.join(missing)});"
            " install the extras that bring them (train: scikit-image, medical: pydicom and"
            " nibabel, geo: rasterio)",
        )
    return found


def heldout_files() -> list[Path]:
    """Every present file that must never be trained on: the held-out corpora, the battery's
    files (:data:`BATTERY_ONLY`, with ``../shared/data``'s copies of the bundled samples) and
    ``examples/data/sample.tif`` (a crop of RGB.byte.tif)."""
    entries = tuple(e for c in _CORPORA.values() if c.split == "heldout" for e in c.files)
    copies = tuple(("shared", f"{d}/{n}") for d, n in _SHARED_COPIES)
    found, _ = _resolve(
        (*entries, *BATTERY_ONLY, *copies, ("repo", "examples/data/sample.tif")),
        "held-out files",
        logging.INFO,
    )
    return found


__all__ = [
    "BATTERY_ONLY",
    "Corpus",
    "bundled_data_dir",
    "corpus_files",
    "get_corpus",
    "heldout_files",
    "list_corpora",
    "repo_root",
    "shared_data_dir",
]
