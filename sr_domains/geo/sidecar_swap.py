"""The replacement of a GeoTIFF output's GDAL sidecars around the output's own
(:func:`sidecar_swap`): a previous output's set aside, deleted once the new output is in place
and put back when it is not; those a killed run left set aside found again."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..folder_listing import FolderListing
from ..output_names import name_key
from .sidecar_names import output_sidecars
from .sidecar_plan import plan_sidecars

log = logging.getLogger(__name__)

#: Tag of a previous output's sidecar while the new output replaces it
#: (``.NAME.sr-aside-PID-XXXXXXXX``; ``NAME``: :func:`~sr_domains.output_names.name_key`).
ASIDE_TAG = ".sr-aside"


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
    """The sidecars of one output's replacement (:func:`sidecar_swap`). ``listing``: of the
    output's folder, taken once by a batch (else here, once)."""

    def __init__(
        self,
        dst: Path,
        inputs: Sequence[str | os.PathLike[str]],
        overwrite: bool = False,
        listing: FolderListing | None = None,
    ) -> None:
        self.dst, self.inputs, self.overwrite = dst, inputs, overwrite
        self.listing = listing
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
        listing = self._recover_stranded(self.listing or FolderListing.of(self.dst.parent))
        moves = temp_sidecars(tmp, self.dst) if cog else {}
        writes = list(moves.values())
        for p in plan_sidecars(
            self.dst, self.inputs, writes=writes, overwrite=self.overwrite, listing=listing
        ):
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

    def _recover_stranded(self, listing: FolderListing) -> FolderListing:
        """Sidecars a killed run (SIGKILL, power loss) left set aside (found in ``listing``):
        put back when ``dst`` was not replaced after they were set aside (or is not there: an
        ``--overwrite`` run setting aside sidecars without an output), else deleted (an older
        output's). Only where ``dst`` exists or with ``overwrite``. Returns ``listing`` with
        the sidecars put back; listed again when a sidecar it has is gone (set aside since it
        was taken: a Dask retry after its worker was killed carries the batch's listing)."""
        there = os.path.lexists(self.dst)
        if listing.names is None or (not there and not self.overwrite):
            return listing
        names = listing.names
        if any(
            p.name in names and not os.path.lexists(p) for p in output_sidecars(self.dst, listing)
        ):
            listing = FolderListing.of(self.dst.parent)
            if listing.names is None:
                return listing
        try:
            dst_changed = os.lstat(self.dst).st_ctime_ns if there else None
        except OSError:
            dst_changed = None
        put_back = []
        tag = ASIDE_TAG + "-"
        asides = [n for n in listing.near(self.dst).names or () if n[:1] == "." and tag in n]
        keys = [n[1 : n.rfind(tag)] for n in asides]  # (k.tif.Ovr: no longer listed as such)
        for p in output_sidecars(self.dst, listing.plus(keys)):
            prefix = f".{name_key(p)}{tag}"
            for name in asides:
                if not name.startswith(prefix) or _alive(name[len(prefix) :]):
                    continue
                waits = p.parent / name
                try:
                    kept = not there or (
                        dst_changed is not None and dst_changed < waits.lstat().st_ctime_ns
                    )
                    if kept and not os.path.lexists(p):
                        os.rename(waits, p)
                        put_back.append(p.name)
                        log.warning("%s: put back %s, set aside by an interrupted run", self.dst, p)
                    else:
                        waits.unlink()
                except FileNotFoundError:  # (gone since the listing: another run's recovery)
                    continue
        return listing.plus(put_back)


def _alive(tag: str) -> bool:
    """Whether the process of an aside file's ``PID-hex`` tag runs."""
    try:
        os.kill(int(tag.split("-")[0]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # (another user's process)
        return True
    return True


@contextlib.contextmanager
def sidecar_swap(
    dst: Path,
    inputs: Sequence[str | os.PathLike[str]],
    overwrite: bool = False,
    listing: FolderListing | None = None,
) -> Iterator[SidecarSwap]:
    """Around the writing and the replacement of ``dst`` (:func:`~sr_domains.io_safety.
    atomic_output` inside it): :meth:`SidecarSwap.stage` sets the previous output's sidecars
    aside; they are deleted once the new output is in place, and put back (the new output's
    removed) when it is not: a failed or interrupted ``--overwrite`` run kept the previous
    output but had already deleted its ``.aux.xml`` or ``.msk``. An exception after the rename
    (Ctrl-C while the folder is synced) still deletes them: the new output has the name.
    ``overwrite``: sidecars without a ``dst`` (:func:`~sr_domains.geo.sidecar_plan.
    orphan_sidecars`) are set aside too. ``listing``: of ``dst``'s folder (a batch's)."""
    swap = SidecarSwap(dst, inputs, overwrite, listing)
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


__all__ = ["ASIDE_TAG", "SidecarSwap", "sidecar_swap", "temp_sidecars"]
