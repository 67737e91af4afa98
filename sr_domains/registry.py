"""A small explicit registry: names are added by code, never by import side effects."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import RegistryError

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """A name -> item mapping with explicit :meth:`add`, "did you mean" on misses and lazily
    loaded third-party entries from an entry-point group.

    Args:
        kind: what the items are, used in error messages ("model", "domain").
        entry_point_group: optional ``importlib.metadata`` group; each entry point must load to an
            item of type ``T``. They are loaded the first time a name is missing or names are
            listed, never at import time.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._entry_points_loaded = entry_point_group is None

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; a duplicate name is an error."""
        key = name.lower()
        if key in self._items:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._items[key] = item
        return item

    def get(self, name: str) -> T:
        """Return the item called ``name`` (case-insensitive)."""
        key = name.lower()
        if key not in self._items:
            self._load_entry_points()
        try:
            return self._items[key]
        except KeyError:
            close = difflib.get_close_matches(key, list(self._items), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name.lower() not in self._items:
            self._load_entry_points()
        return name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):  # type: ignore[arg-type]
            if ep.name.lower() in self._items:
                log.warning(
                    "ignoring entry point %s: %s %r already registered",
                    ep.value,
                    self.kind,
                    ep.name,
                )
                continue
            try:
                self._items[ep.name.lower()] = ep.load()
            except Exception as exc:  # a broken plugin must not break the library
                log.warning(
                    "could not load %s entry point %s (%s): %s", self.kind, ep.name, ep.value, exc
                )
