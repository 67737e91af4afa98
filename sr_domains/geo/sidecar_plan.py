"""What a run does with the GDAL sidecars of its GeoTIFF output, decided before any work: those
of a previous output to remove, orphans (sidecars without their output) refused, a COG's
``STEM.IMD`` that an input's occupies refused (:func:`plan_sidecars`). Which files those are:
:mod:`sr_domains.geo.sidecar_names`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SRDomainsError, UnsafeOutputError
from ..folder_listing import FolderListing, fold
from .sidecar_names import (
    another_files,
    hfa_ours,
    hfa_sidecars,
    imd_sidecar,
    output_sidecars,
    sidecar_owner,
)

log = logging.getLogger(__name__)

#: What GDAL takes each sidecar of an output for (an orphan's refusal names it).
_ROLES = {
    ".msk": "mask",
    ".ovr": "overviews",
    ".imd": "IMD metadata",
    ".aux": "pyramids",
    ".rrd": "pyramids",
}


def _read(p: Path, dst: Path) -> bool:
    """Whether ``p`` is there and GDAL reads it as ``dst``'s sidecar (an HFA file only when it
    names ``dst``)."""
    return os.path.lexists(p) and (p not in hfa_sidecars(dst) or hfa_ours(p, dst))


def _candidates(dst: Path, writes: Sequence[Path], listing: FolderListing) -> list[Path]:
    return list(dict.fromkeys([*output_sidecars(dst, listing), *writes]))


def orphan_sidecars(
    dst: Path,
    inputs: Sequence[str | os.PathLike[str]],
    writes: Sequence[Path] = (),
    listing: FolderListing | None = None,
) -> list[Path]:
    """Sidecars of ``dst`` that are there without it (an earlier output deleted or moved
    without them), which GDAL would read as the new output's metadata, mask or overviews:
    none when ``dst`` exists (they are the previous output's). ``listing``: of ``dst``'s
    folder (a batch's, taken once; else listed here)."""
    if os.path.lexists(dst):
        return []
    listing = listing or FolderListing.of(dst.parent)
    found = [
        p
        for p in _candidates(dst, writes, listing)
        if _read(p, dst) and sidecar_owner(p, inputs) is None and not another_files(p, dst, listing)
    ]
    return _distinct(found)


def _distinct(paths: list[Path]) -> list[Path]:
    """``paths`` without a second name of one file (``out.tif.MSK`` is ``out.tif.msk`` on a
    case-insensitive file system)."""
    seen: set[object] = set()
    out = []
    for p in paths:
        try:
            st = os.lstat(p)
            key: object = (st.st_dev, st.st_ino)
        except OSError:
            key = p
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def orphan_problem(orphans: Sequence[Path]) -> str:
    """Why an output with these :func:`orphan_sidecars` is refused, and what to do."""
    listing = ", ".join(f"{p.name} ({_ROLES.get(p.suffix.lower(), 'metadata')})" for p in orphans)
    one = len(orphans) == 1
    it, verb = ("it", "is") if one else ("them", "are")
    return (
        f"{listing} {verb} there without {'its' if one else 'their'} output (left by an earlier "
        f"one?); GDAL would read "
        f"{it} as the new output's: delete {it}, or pass --overwrite (Python: overwrite=True) "
        f"to have the run delete {it}"
    )


def plan_sidecars(
    dst: Path,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    writes: Sequence[Path] = (),
    warn: bool = False,
    overwrite: bool = False,
    listing: FolderListing | None = None,
) -> list[Path]:
    """The sidecars of a previous ``dst`` (being replaced) to remove: never an input's
    (:func:`sidecar_owner`) or another file's (a ``STEM.IMD`` when another file has that
    stem, :func:`~sr_domains.geo.sidecar_names.another_files`), and an ArcGIS / Erdas ``.aux``
    or ``.rrd`` only when it names ``dst`` (:func:`hfa_sidecars`).

    Sidecars of a ``dst`` that is not there (:func:`orphan_sidecars`) are removed as those of
    a previous output with ``overwrite``; without it they raise
    :class:`~sr_domains.errors.UnsafeOutputError` naming them (GDAL would read them as the
    new output's metadata or mask). ``writes``: sidecar paths the new output will have
    (``STEM.IMD`` of a COG); one that is an input's sidecar, or exists and is not the previous
    output's, raises :class:`~sr_domains.errors.UnsafeOutputError` naming both files.
    ``warn``: log the sidecars that stay and that GDAL will read as the new output's metadata.
    ``listing``: of ``dst``'s folder, for the other spellings GDAL reads (a batch's, taken
    once; else listed here).
    """
    listing = listing or FolderListing.of(dst.parent)
    replacing = overwrite or os.path.lexists(dst)
    if not replacing:
        orphans = orphan_sidecars(dst, inputs, writes, listing)
        if orphans:
            raise UnsafeOutputError(dst, orphan_problem(orphans))
    imd_path = imd_sidecar(dst)
    stale = []
    for p in _candidates(dst, writes, listing):
        owner = sidecar_owner(p, inputs)
        read = _read(p, dst)  # (GDAL reads it as dst's)
        ours = replacing and read and owner is None and not another_files(p, dst, listing)
        if p in writes:
            what = f"GDAL keeps {'IMD ' if p == imd_path else ''}metadata of it in {p}, which"
            if owner is not None:
                raise UnsafeOutputError(
                    dst,
                    f"{what} is a sidecar of the input {owner} (GDAL reads it as that file's "
                    "metadata) and is never replaced: choose another output name or folder"
                    + (
                        ", or write a plain GeoTIFF (no --cog), which keeps it inside the file"
                        if p == imd_path
                        else ""
                    ),
                )
            if os.path.lexists(p) and not ours:
                raise UnsafeOutputError(
                    dst,
                    f"{what} exists and is not a sidecar of an output being replaced; it is "
                    "never replaced: move it away or choose another output name or folder",
                )
        if ours:
            stale.append(p)
        elif read and owner is None and warn:
            log.warning(
                "%s exists and is left alone: GDAL will read it as metadata of %s too",
                p,
                dst,
            )
    return stale


def cog_sidecars(dst: Path, ds: Any) -> list[Path]:
    """The sidecars the COG driver will write for ``dst`` with the metadata of ``ds`` (its
    ``IMD`` domain goes to ``STEM.IMD``)."""
    return [imd_sidecar(dst)] if ds.tags(ns="IMD") else []


_Pair = tuple[str | os.PathLike[str], str | os.PathLike[str]]


def refuse_imd_clashes(pairs: Sequence[_Pair]) -> None:
    """Refuse, before any work, a COG batch in which two GeoTIFF outputs of one folder share an
    IMD stem (``out/a.tif`` and ``out/a.tiff``; any case: GDAL reads ``a.IMD`` as ``A.tif``'s)
    and an input of them has an ``IMD`` metadata domain: the COG keeps it in ``out/a.IMD``,
    which GDAL reads as each output's, and a later output replaced the one an earlier one
    wrote (the batch's folder listing predates its outputs: :func:`~sr_domains.geo.
    sidecar_names.another_files`). ``pairs``: ``(input, output)`` of each GeoTIFF task; an
    input that cannot be read writes nothing (it fails on its own). One rule for the
    sequential batch and ``--workers``, as :func:`~sr_domains.batch_tasks.refuse_collisions`.

    Raises:
        ConfigError: naming each shared IMD file, its outputs and their inputs.
    """
    groups: dict[tuple[str, str], list[tuple[Path, Path]]] = {}
    for src, dst in pairs:
        d = Path(dst)
        key = (os.path.normcase(os.path.abspath(d.parent)), fold(d.stem))
        groups.setdefault(key, []).append((Path(src), d))
    clashes = []
    for group in groups.values():
        carrying = [s for s, _ in group if len(group) > 1 and _has_imd(s)]
        if carrying:
            outs = " and ".join(f"{d} ({s})" for s, d in group)
            has = ", ".join(map(str, carrying))
            clashes.append(f"{outs} would share {imd_sidecar(group[0][1])} (IMD metadata of {has})")
    if clashes:
        raise ConfigError(
            f"{'; '.join(clashes)}: a COG keeps its input's IMD metadata beside it in STEM.IMD, "
            "which GDAL reads as the metadata of every output of that stem; rename the "
            "inputs, or write plain GeoTIFFs (no --cog), which keep it inside the file"
        )


def _has_imd(src: Path) -> bool:
    """Whether the input ``src`` has an ``IMD`` metadata domain (a COG of it writes
    ``STEM.IMD``); one that cannot be read: no (its task fails)."""
    from .gdal_paths import open_dataset

    try:
        with open_dataset(src) as ds:
            return bool(ds.tags(ns="IMD"))
    except (SRDomainsError, OSError):
        return False


__all__ = [
    "cog_sidecars",
    "orphan_problem",
    "orphan_sidecars",
    "plan_sidecars",
    "refuse_imd_clashes",
]
