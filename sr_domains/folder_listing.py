"""One folder's entry names, listed once (:class:`FolderListing`): a batch lists each output
folder once and hands the listing (to a worker, the part near one output: :meth:`near`) to the
rules that ask what is there, such as the GDAL sidecars of a GeoTIFF output
(:mod:`sr_domains.geo.sidecars`), instead of listing the folder again for every output."""

from __future__ import annotations

import bisect
import os
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(name: str) -> str:
    """``name`` as GDAL compares the names of a file's siblings: ASCII letters in any case."""
    return name.translate(_LOWER)


@dataclass(frozen=True)
class FolderListing:
    """The entry names of ``folder`` when it was listed; ``names`` is None when it could not
    be (a missing folder lists as empty). Existence is still asked of the file system: the
    listing says which names to ask about (a spelling, a set-aside file)."""

    folder: Path
    names: frozenset[str] | None

    @classmethod
    def of(cls, folder: str | os.PathLike[str]) -> FolderListing:
        """The listing of ``folder`` now (one ``os.listdir``)."""
        try:
            names: frozenset[str] | None = frozenset(os.listdir(folder))
        except FileNotFoundError:
            names = frozenset()
        except OSError:
            names = None
        return cls(Path(folder), names)

    def plus(self, names: Iterable[str]) -> FolderListing:
        """This listing with ``names`` added (files put back since it was taken)."""
        if self.names is None:
            return self
        return FolderListing(self.folder, self.names | frozenset(names))

    def near(self, path: str | os.PathLike[str]) -> FolderListing:
        """The names that start as ``path``'s stem does (its first 8 characters, any case),
        or with a dot and them: its sidecars, other files of its stem, its hidden temporary
        and set-aside files. What a task of one output carries to its worker."""
        if self.names is None:
            return self
        head = Path(path).stem[:8]
        return FolderListing(
            self.folder, frozenset((*self.starting(head), *self.starting(f".{head}")))
        )

    @cached_property
    def _sorted(self) -> list[tuple[str, str]]:
        return sorted((fold(n), n) for n in self.names or ())

    def starting(self, prefix: str) -> tuple[str, ...]:
        """The names that start with ``prefix`` in any case (:func:`fold`), in folded order."""
        key, found = fold(prefix), []
        index = self._sorted
        for folded, name in index[bisect.bisect_left(index, (key, "")) :]:
            if not folded.startswith(key):
                break
            found.append(name)
        return tuple(found)

    def spellings(self, name: str) -> tuple[str, ...]:
        """The names here that GDAL takes for ``name`` (:func:`fold`)."""
        key = fold(name)
        return tuple(n for n in self.starting(name) if fold(n) == key)


def listings(paths: Iterable[str]) -> dict[str, FolderListing]:
    """The listing of each path's folder, each folder listed once: a batch's, by output."""
    by_folder: dict[str, FolderListing] = {}
    out = {}
    for p in paths:
        folder = os.path.dirname(os.path.abspath(p))
        if folder not in by_folder:
            by_folder[folder] = FolderListing.of(folder)
        out[p] = by_folder[folder]
    return out


__all__ = ["FolderListing", "fold", "listings"]
