"""A small per-user cache of measured values that are costly to measure and never change for a
given software version (e.g. a model's memory per pixel, :mod:`sr_domains.memory`).

Location: ``$SR_DOMAINS_CACHE_DIR``, else ``$XDG_CACHE_HOME/sr_domains``, else
``~/.cache/sr_domains``; ``SR_DOMAINS_CACHE_DIR=off`` turns it off. One JSON file per table,
written to a temporary file and renamed into place (concurrent processes may lose an entry,
never corrupt the file). The cache is an optimisation only: an unreadable, corrupt or
unwritable cache is ignored (logged at debug level) and the value is measured again.
Callers put everything the value depends on (library and torch versions included) in the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV = "SR_DOMAINS_CACHE_DIR"
#: Entries kept per table (the oldest are dropped first).
MAX_ENTRIES = 256
_OFF = {"", "0", "off", "none", "false"}


def cache_dir() -> Path | None:
    """The cache folder, or None when the user turned the cache off."""
    env = os.environ.get(ENV)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base).expanduser() / "sr_domains"
    except (RuntimeError, KeyError, OSError):  # no home directory (some service accounts)
        log.debug("no home directory: disk cache off")
        return None


def make_key(*parts: object) -> str:
    """A short stable key for ``parts`` (their ``str``, joined)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def _path(table: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{table}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.debug("ignoring unreadable cache %s: %s", path, exc)
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def lookup(table: str, key: str) -> Any | None:
    """The cached value of ``key`` in ``table``, or None."""
    path = _path(table)
    return None if path is None else _read(path).get(key)


def remember(table: str, key: str, value: Any) -> None:
    """Store ``value`` (JSON-serializable) under ``key``; failures are logged and ignored."""
    path = _path(table)
    if path is None:
        return
    entries = _read(path)
    entries.pop(key, None)
    entries[key] = value
    entries = dict(list(entries.items())[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{table}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"entries": entries}, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TypeError, ValueError) as exc:
        log.debug("could not write cache %s: %s", path, exc)


__all__ = ["ENV", "cache_dir", "lookup", "make_key", "remember"]
