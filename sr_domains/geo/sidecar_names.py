"""Which files GDAL reads as the sidecars of a GeoTIFF output, in which spellings, and whose
they are (an input's, another file's, the output's own); the folder listing those rules read,
taken once per batch (:class:`~sr_domains.folder_listing.FolderListing`). What a run does with them:
:mod:`sr_domains.geo.sidecar_plan` and :mod:`sr_domains.geo.sidecar_swap`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..folder_listing import FolderListing, fold


#: GDAL sidecars of an output ``NAME.tif`` that a run handles: PAM metadata ``NAME.tif.aux.xml``,
#: an external mask ``NAME.tif.msk`` and external overviews ``NAME.tif.ovr`` (``gdaladdo -ro``,
#: QGIS pyramids; stale ones override the new file's, or show the old image zoomed out), the
#: ArcGIS / Erdas auxiliary files (:func:`hfa_sidecars`), and ``NAME.IMD``, where GDAL keeps an
#: ``IMD`` metadata domain (the COG output keeps GDAL's copy). GDAL (3.10, Linux) finds the
#: mask, overviews and IMD under any case of their whole name (``NAME.tif.MSK``, ``k.tif.Msk``,
#: ``K.TIF.ovr``, ``k.Imd`` for ``k.tif``): it compares the names of the folder's files
#: case-insensitively, and without that listing (``GDAL_DISABLE_READDIR_ON_OPEN``, a folder of
#: more than ``GDAL_READDIR_LIMIT_ON_OPEN`` files) tries ``.MSK``, ``.OVR`` and ``.imd`` too.
#: The PAM ``NAME.tif.aux.xml`` (and the overviews' ``OVR_NAME.aux.xml``) only so spelled.
def output_sidecars(dst: Path, listing: FolderListing | None = None) -> tuple[Path, ...]:
    """``(PAM, masks, overviews and their PAMs, *HFA auxiliaries, IMDs)`` sidecar paths of the
    output ``dst``, each in the spellings GDAL reads (the IMDs last): the fixed ones, and the
    other spellings of the mask, overviews and IMD that ``listing`` (of ``dst``'s folder) has."""

    def more(name: str, known: tuple[Path, ...]) -> list[Path]:
        if listing is None:
            return []
        return [dst.with_name(n) for n in listing.spellings(name) if dst.with_name(n) not in known]

    masks = (Path(f"{dst}.msk"), Path(f"{dst}.MSK"))
    ovrs = (Path(f"{dst}.ovr"), Path(f"{dst}.OVR"))
    imds = imd_sidecars(dst)
    other_ovrs = more(f"{dst.name}.ovr", ovrs)
    return (
        Path(f"{dst}.aux.xml"),
        *masks,
        *more(f"{dst.name}.msk", masks),
        *(q for o in ovrs + tuple(other_ovrs) for q in (o, Path(f"{o}.aux.xml"))),
        *hfa_sidecars(dst),
        *imds,
        *more(f"{dst.stem}.imd", imds),
    )


def hfa_sidecars(dst: Path) -> tuple[Path, ...]:
    """The Erdas Imagine (HFA) auxiliary files GDAL reads for ``dst``: ``STEM.aux`` (else
    ``STEM.AUX``), then ``NAME.aux`` (``NAME.AUX``), each used only when it names ``dst`` as
    its dependent file (overviews of ``gdaladdo --config USE_RRD YES``, ArcGIS pyramids and
    statistics), and the ``.rrd`` reduced-resolution file of each (``STEM.rrd``,
    ``NAME.rrd``: ArcGIS pyramids, which GDAL reads through that ``.aux``)."""
    stem, name = dst.with_suffix(""), str(dst)
    return (
        Path(f"{stem}.aux"),
        Path(f"{stem}.AUX"),
        Path(f"{stem}.rrd"),
        Path(f"{name}.aux"),
        Path(f"{name}.AUX"),
        Path(f"{name}.rrd"),
    )


def hfa_ours(p: Path, dst: Path) -> bool:
    """Whether the HFA auxiliary ``p`` (:func:`hfa_sidecars`) is ``dst``'s: an ``.aux`` that
    names ``dst`` as its dependent file (GDAL's ``HFA_DEPENDENT_FILE``); an ``.rrd`` whose
    ``.aux`` is (its pyramids: GDAL reads it through that file only). Another file's, or one
    that does not read as HFA (a user's notes), is not."""
    if p.suffix == ".rrd":
        return any(hfa_ours(p.with_suffix(s), dst) for s in (".aux", ".AUX"))
    if not os.path.isfile(p):
        return False
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():  # (an .aux has no georeferencing of its own)
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(p, driver="HFA") as ds:
                dependent = ds.tags(ns="HFA").get("HFA_DEPENDENT_FILE", "")
    except (RasterioError, OSError):
        return False
    return dependent.lower() == dst.name.lower()


def imd_sidecar(dst: Path) -> Path:
    """``STEM.IMD``: where GDAL keeps the ``IMD`` metadata domain of ``dst``."""
    return dst.with_suffix(".IMD")


def imd_sidecars(dst: Path) -> tuple[Path, Path]:
    """``STEM.IMD`` and ``STEM.imd``: the IMD files GDAL reads as ``dst``'s without listing
    its folder (with it: any spelling, :func:`output_sidecars`)."""
    return imd_sidecar(dst), dst.with_suffix(".imd")


def _folder(p: Path) -> str:
    return os.path.normcase(os.path.realpath(p.parent))


def sidecar_owner(path: Path, inputs: Sequence[str | os.PathLike[str]]) -> Path | None:
    """The input that GDAL may read ``path`` as a sidecar of, else None: an input in the same
    folder that ``path`` is, whose stem it has (``scene.IMD``, ``scene.RPB`` of ``scene.tiff``),
    whose name it extends (``scene.tiff.aux.xml``), or ``STEM_RPC.TXT`` of; names compared
    case-insensitively. Inputs given through a link count under both names."""
    folder, name = _folder(path), path.name.lower()
    for src in inputs:
        for s in dict.fromkeys((Path(src), Path(os.path.realpath(src)))):
            if _folder(s) != folder:
                continue
            full = s.name.lower()
            stem = Path(full).stem
            if (
                name == full
                or name.startswith(full + ".")
                or Path(name).stem == stem
                or name == stem + "_rpc.txt"
            ):
                return Path(src)
    return None


def another_files(p: Path, dst: Path, listing: FolderListing | None = None) -> bool:
    """Whether ``p``, a sidecar of ``dst`` (:func:`output_sidecars`), may be another file's
    beside it: an IMD when another file has its stem (``scene.NTF`` beside ``scene.IMD``;
    ``dst`` and its own sidecars do not count; an unreadable folder: it may be); a mask or
    overviews spelled for another file there (``K.TIF.msk`` beside ``K.TIF``, for ``k.tif``;
    not where ``K.TIF`` is ``dst`` itself, :func:`_one_entry`). ``listing``: of ``dst``'s
    folder (else listed here), not listed again: a batch's predates its outputs, and two
    outputs of one batch that share an IMD stem are refused before any work
    (:func:`~sr_domains.geo.sidecar_plan.refuse_imd_clashes`)."""
    if fold(p.name) == fold(f"{dst.stem}.imd"):
        return _shares_stem(p, dst, listing or FolderListing.of(p.parent))
    base = p.name[: len(dst.name)]
    other = p.parent / base
    return (
        base != dst.name
        and fold(base) == fold(dst.name)
        and os.path.lexists(other)
        and not _one_entry(other, dst, listing)
    )


def _one_entry(other: Path, dst: Path, listing: FolderListing | None) -> bool:
    """Whether ``other`` (``K.TIF``) is ``dst`` (``k.tif``) under another spelling of one
    folder entry (a case-insensitive file system: the folder lists one of the names, and
    both are one file), not a file of its own (a hard link lists both names)."""
    try:
        a, b = os.lstat(other), os.lstat(dst)
    except OSError:
        return False
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        return False
    names = (listing or FolderListing.of(dst.parent)).names
    return names is not None and not {other.name, dst.name} <= names


def _shares_stem(p: Path, dst: Path, listing: FolderListing) -> bool:
    """Whether a file of ``listing`` other than ``dst`` and its own sidecars has the stem of
    ``p`` (an unreadable folder: it may have)."""
    names = listing.names
    if names is None:
        return True
    stem = p.stem.lower()
    own = {dst.name, *(s.name for s in output_sidecars(dst, listing))}
    return any(Path(n).stem.lower() == stem for n in names if n not in own)


__all__ = [
    "another_files",
    "hfa_ours",
    "hfa_sidecars",
    "imd_sidecar",
    "imd_sidecars",
    "output_sidecars",
    "sidecar_owner",
]
