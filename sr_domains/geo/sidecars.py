"""GDAL sidecars of a GeoTIFF output (``NAME.tif.aux.xml``, ``NAME.tif.msk``,
``NAME.tif.ovr``, ``STEM.IMD``, ArcGIS ``STEM.aux`` and ``STEM.rrd``; upper-case spellings too):
which belong to the output being replaced (removed) and which to an input (never touched),
and their replacement around the output's own (:func:`sidecar_swap`)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UnsafeOutputError
from ..output_names import name_key

log = logging.getLogger(__name__)


#: GDAL sidecars of an output ``NAME.tif`` that a run handles: PAM metadata ``NAME.tif.aux.xml``,
#: an external mask ``NAME.tif.msk`` and external overviews ``NAME.tif.ovr`` (``gdaladdo -ro``,
#: QGIS pyramids; stale ones override the new file's, or show the old image zoomed out), the
#: ArcGIS / Erdas auxiliary files (:func:`hfa_sidecars`), and ``NAME.IMD``, where GDAL keeps an
#: ``IMD`` metadata domain (the COG output keeps GDAL's copy). GDAL finds the mask, overviews
#: and IMD under another case of their suffix too (``NAME.tif.MSK``, ``NAME.tif.OVR`` with its
#: PAM ``NAME.tif.OVR.aux.xml``, ``STEM.imd``) on a case-sensitive file system; the PAM
#: ``NAME.tif.aux.xml`` only so spelled.
def output_sidecars(dst: Path) -> tuple[Path, ...]:
    """``(PAM, masks, overviews and their PAMs, *HFA auxiliaries, IMDs)`` sidecar paths of the
    output ``dst``, each in the spellings GDAL reads (the IMDs last: :func:`imd_sidecars`)."""
    return (
        Path(f"{dst}.aux.xml"),
        Path(f"{dst}.msk"),
        Path(f"{dst}.MSK"),
        Path(f"{dst}.ovr"),
        Path(f"{dst}.ovr.aux.xml"),
        Path(f"{dst}.OVR"),
        Path(f"{dst}.OVR.aux.xml"),
        *hfa_sidecars(dst),
        *imd_sidecars(dst),
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


def _hfa_ours(p: Path, dst: Path) -> bool:
    """Whether the HFA auxiliary ``p`` (:func:`hfa_sidecars`) is ``dst``'s: an ``.aux`` that
    names ``dst`` as its dependent file (GDAL's ``HFA_DEPENDENT_FILE``); an ``.rrd`` whose
    ``.aux`` is (its pyramids: GDAL reads it through that file only). Another file's, or one
    that does not read as HFA (a user's notes), is not."""
    if p.suffix == ".rrd":
        return any(_hfa_ours(p.with_suffix(s), dst) for s in (".aux", ".AUX"))
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
    """``STEM.IMD`` and ``STEM.imd``: the IMD files GDAL reads as ``dst``'s."""
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


def _shares_stem(p: Path, dst: Path) -> bool:
    """Another file beside ``p`` has its stem (``scene.NTF`` beside ``scene.IMD``): ``p`` may
    be that file's sidecar. ``dst`` and its own sidecars (``scene.aux``) do not count."""
    try:
        names = os.listdir(p.parent)
    except OSError:
        return True
    stem = p.stem.lower()
    own = {dst.name, *(s.name for s in output_sidecars(dst))}
    return any(Path(n).stem.lower() == stem for n in names if n not in own)


#: What GDAL takes each sidecar of an output for (an orphan's refusal names it).
_ROLES = {
    ".msk": "mask",
    ".ovr": "overviews",
    ".imd": "IMD metadata",
    ".aux": "pyramids",
    ".rrd": "pyramids",
}


def _read_as_dsts(p: Path, dst: Path, inputs: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether ``p`` exists and GDAL reads it as ``dst``'s sidecar, and it is ``dst``'s to
    remove: no input's (:func:`sidecar_owner`), an HFA file only when it names ``dst``, a
    ``STEM.IMD`` only when no other file has that stem."""
    if not os.path.lexists(p) or sidecar_owner(p, inputs) is not None:
        return False
    if p in hfa_sidecars(dst) and not _hfa_ours(p, dst):
        return False
    return p not in imd_sidecars(dst) or not _shares_stem(p, dst)


def orphan_sidecars(
    dst: Path, inputs: Sequence[str | os.PathLike[str]], writes: Sequence[Path] = ()
) -> list[Path]:
    """Sidecars of ``dst`` that are there without it (an earlier output deleted or moved
    without them), which GDAL would read as the new output's metadata, mask or overviews:
    none when ``dst`` exists (they are the previous output's)."""
    if os.path.lexists(dst):
        return []
    paths = dict.fromkeys([*output_sidecars(dst), *writes])
    return _distinct([p for p in paths if _read_as_dsts(p, dst, inputs)])


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
) -> list[Path]:
    """The sidecars of a previous ``dst`` (being replaced) to remove: never an input's
    (:func:`sidecar_owner`), a ``STEM.IMD`` only when no other file has that stem, and an
    ArcGIS / Erdas ``.aux`` or ``.rrd`` only when it names ``dst`` (:func:`hfa_sidecars`).

    Sidecars of a ``dst`` that is not there (:func:`orphan_sidecars`) are removed as those of
    a previous output with ``overwrite``; without it they raise
    :class:`~sr_domains.errors.UnsafeOutputError` naming them (GDAL would read them as the
    new output's metadata or mask). ``writes``: sidecar paths the new output will have
    (``STEM.IMD`` of a COG); one that is an input's sidecar, or exists and is not the previous
    output's, raises :class:`~sr_domains.errors.UnsafeOutputError` naming both files.
    ``warn``: log the sidecars that stay and that GDAL will read as the new output's metadata.
    """
    replacing = overwrite or os.path.lexists(dst)
    if not replacing:
        orphans = orphan_sidecars(dst, inputs, writes)
        if orphans:
            raise UnsafeOutputError(dst, orphan_problem(orphans))
    imd_path = imd_sidecar(dst)
    stale = []
    for p in dict.fromkeys([*output_sidecars(dst), *writes]):
        owner = sidecar_owner(p, inputs)
        exists = os.path.lexists(p)
        ours = replacing and _read_as_dsts(p, dst, inputs)
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
            if exists and not ours:
                raise UnsafeOutputError(
                    dst,
                    f"{what} exists and is not a sidecar of an output being replaced; it is "
                    "never replaced: move it away or choose another output name or folder",
                )
        read = exists and (p not in hfa_sidecars(dst) or _hfa_ours(p, dst))  # (read for dst)
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


def temp_sidecars(tmp: Path, dst: Path) -> dict[Path, Path]:
    """GDAL's sidecars of the finished temp file ``tmp`` (``STEM.IMD``, ``STEM_RPC.TXT``, ...)
    and the names they have as sidecars of ``dst``; the temp's own PAM is not kept."""
    stem = tmp.name[: -len(tmp.suffix)]
    out = {}
    for p in sorted(tmp.parent.iterdir()):
        if p == tmp or not p.name.startswith((stem + ".", stem + "_")):
            continue
        if p.name.startswith(tmp.name + "."):  # .tif.aux.xml: PAM of the temp, not kept
            continue
        out[p] = dst.with_name(dst.stem + p.name[len(stem) :])
    return out


class SidecarSwap:
    """The sidecars of one output's replacement (:func:`sidecar_swap`)."""

    def __init__(
        self, dst: Path, inputs: Sequence[str | os.PathLike[str]], overwrite: bool = False
    ) -> None:
        self.dst, self.inputs, self.overwrite = dst, inputs, overwrite
        self.aside: list[tuple[Path, Path]] = []  # (a previous dst's sidecar, where it waits)
        self.moved: list[Path] = []  # the new output's sidecars, under dst's names
        self.new: tuple[int, int] | None = None  # (device, inode) of the file dst becomes

    def stage(self, tmp: Path, cog: bool = False) -> list[Path]:
        """Just before the finished ``tmp`` replaces ``dst`` (under its lock): set the sidecars
        of a previous ``dst`` aside (a stale ``.aux.xml`` would override the new file's
        metadata) and, for a COG (``cog``), give GDAL's sidecars of ``tmp`` (metadata kept
        beside the file, such as ``STEM.IMD``) the names of ``dst``'s; returns those. An
        input's sidecar is never touched (:func:`plan_sidecars` raises first)."""
        with open(tmp, "rb") as fh:  # (the longest step before the rename: before, not after)
            os.fsync(fh.fileno())
            st = os.fstat(fh.fileno())
        self.new = (st.st_dev, st.st_ino)
        self._recover_stranded()
        moves = temp_sidecars(tmp, self.dst) if cog else {}
        writes = list(moves.values())
        for p in plan_sidecars(self.dst, self.inputs, writes=writes, overwrite=self.overwrite):
            if os.path.lexists(p):
                aside = f".{name_key(p)}{ASIDE_TAG}-{os.getpid()}-{secrets.token_hex(4)}"
                waits = p.parent / aside
                os.rename(p, waits)
                self.aside.append((p, waits))
        for p, target in moves.items():
            os.replace(p, target)
            self.moved.append(target)
        return list(self.moved)

    def committed(self) -> bool:
        """Whether ``dst`` is the new output (the rename happened)."""
        try:
            st = os.lstat(self.dst)
        except OSError:
            return False
        return self.new is not None and (st.st_dev, st.st_ino) == self.new

    def _recover_stranded(self) -> None:
        """Sidecars a killed run (SIGKILL, power loss) left set aside: put back when ``dst``
        was not replaced after they were set aside (or is not there: an ``--overwrite`` run
        setting aside sidecars without an output), else deleted (an older output's). Only where
        ``dst`` exists or with ``overwrite``: a new output of a batch lists no folder."""
        there = os.path.lexists(self.dst)
        if not there and not self.overwrite:
            return
        try:
            entries = list(os.scandir(self.dst.parent))
        except OSError:
            return
        try:
            dst_changed = os.lstat(self.dst).st_ctime_ns if there else None
        except OSError:
            dst_changed = None
        for p in output_sidecars(self.dst):
            prefix = f".{name_key(p)}{ASIDE_TAG}-"
            for e in entries:
                if not e.name.startswith(prefix) or _alive(e.name[len(prefix) :]):
                    continue
                waits = Path(e.path)
                kept = not there or (
                    dst_changed is not None and dst_changed < waits.lstat().st_ctime_ns
                )
                if kept and not os.path.lexists(p):
                    os.rename(waits, p)
                    log.warning("%s: put back %s, set aside by an interrupted run", self.dst, p)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        waits.unlink()


def _alive(tag: str) -> bool:
    """Whether the process of an aside file's ``PID-hex`` tag runs."""
    try:
        os.kill(int(tag.split("-")[0]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # (another user's process)
        return True
    return True


#: Suffix of a previous output's sidecar while the new output replaces it.
ASIDE_TAG = ".sr-aside"


@contextlib.contextmanager
def sidecar_swap(
    dst: Path, inputs: Sequence[str | os.PathLike[str]], overwrite: bool = False
) -> Iterator[SidecarSwap]:
    """Around the writing and the replacement of ``dst`` (:func:`~sr_domains.io_safety.
    atomic_output` inside it): :meth:`SidecarSwap.stage` sets the previous output's sidecars
    aside; they are deleted once the new output is in place, and put back (the new output's
    removed) when it is not: a failed or interrupted ``--overwrite`` run kept the previous
    output but had already deleted its ``.aux.xml`` or ``.msk``. An exception after the rename
    (Ctrl-C while the folder is synced) still deletes them: the new output has the name.
    ``overwrite``: sidecars without a ``dst`` (:func:`orphan_sidecars`) are set aside too."""
    swap = SidecarSwap(dst, inputs, overwrite)
    try:
        yield swap
    except BaseException:
        if swap.committed():
            _drop(swap.aside)
            raise
        for target in swap.moved:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        for p, waits in swap.aside:
            try:
                os.rename(waits, p)
            except OSError as exc:
                log.warning("%s: could not put back %s (it is %s): %s", dst, p, waits, exc)
        raise
    _drop(swap.aside)


def _drop(aside: list[tuple[Path, Path]]) -> None:
    for _, waits in aside:
        with contextlib.suppress(FileNotFoundError):
            waits.unlink()


__all__ = [
    "ASIDE_TAG",
    "SidecarSwap",
    "cog_sidecars",
    "hfa_sidecars",
    "imd_sidecar",
    "orphan_problem",
    "orphan_sidecars",
    "output_sidecars",
    "plan_sidecars",
    "sidecar_owner",
    "sidecar_swap",
    "temp_sidecars",
]
