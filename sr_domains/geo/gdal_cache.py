"""GDAL's block cache while GeoTIFF jobs run: capped at :data:`GDAL_CACHE_MB`, counted over the
process.

GDAL has one block cache per process (``GDALSetCacheMax64``), not one per thread, while
``rasterio.Env`` saves and restores ``GDAL_CACHEMAX`` per thread, and reads an integer as
bytes. Jobs that set it through ``rasterio.Env`` ran with a 64-*byte* cache (every block
decoded again for each window, a tag of a block already flushed lost), and jobs entering and
leaving on several threads at once (Dask's threaded scheduler, a user's thread pool) left the
whole process with that cap after they ended. Here the first job to start lowers the cap (never
raises it: a smaller setting of the user's is kept) and the last to end puts back the value it
found, unless someone changed it meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: GDAL block cache while upscaling (MiB). Small on purpose: blocks are written whole, in order.
GDAL_CACHE_MB = 64

_lock = threading.Lock()
_jobs = 0
_found: int | None = None  # the cap when the first running job started
_set: int | None = None  # the cap it set (None: it kept the one it found)


def cache_bytes() -> int:
    """GDAL's block cache cap now, in bytes (the process's)."""
    from rasterio._env import get_gdal_config

    return int(get_gdal_config("GDAL_CACHEMAX"))


def _cap(n: int) -> None:
    from rasterio._env import set_gdal_config

    set_gdal_config("GDAL_CACHEMAX", n)


@contextmanager
def capped_block_cache(limit: int = GDAL_CACHE_MB * 2**20) -> Iterator[None]:
    """GDAL's block cache at most ``limit`` bytes while the block runs (module docs)."""
    global _jobs, _found, _set
    with _lock:
        if _jobs == 0:
            _found = cache_bytes()
            _set = limit if _found > limit else None
            if _set is not None:
                _cap(_set)
        _jobs += 1
    try:
        yield
    finally:
        with _lock:
            _jobs -= 1
            if _jobs == 0:
                if _set is not None and _found is not None and cache_bytes() == _set:
                    _cap(_found)
                _found = _set = None


__all__ = ["GDAL_CACHE_MB", "cache_bytes", "capped_block_cache"]
