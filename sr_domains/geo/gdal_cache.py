"""GDAL's block cache while GeoTIFF jobs run: capped at :data:`GDAL_CACHE_MB`, on any thread.

GDAL has one block cache per process (``GDALSetCacheMax64``), not one per thread, while
``rasterio.Env`` saves and restores ``GDAL_CACHEMAX`` per thread, and reads an integer as
bytes. Jobs that set it through ``rasterio.Env`` ran with a 64-*byte* cache (every block
decoded again for each window, a tag of a block already flushed lost), and jobs entering and
leaving on several threads at once (Dask's threaded scheduler, a user's thread pool) left the
whole process with that cap after they ended. Here a job lowers the cap (never raises it: a
smaller setting of the user's is kept) and the last job to end puts back the value found
before the first (:class:`~sr_domains.process_settings.SharedSetting`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..process_settings import SharedSetting

#: GDAL block cache while upscaling (MiB). Small on purpose: blocks are written whole, in order.
GDAL_CACHE_MB = 64


def cache_bytes() -> int:
    """GDAL's block cache cap now, in bytes (the process's)."""
    from rasterio._env import get_gdal_config

    return int(get_gdal_config("GDAL_CACHEMAX"))


def _cap(n: int) -> None:
    from rasterio._env import set_gdal_config

    set_gdal_config("GDAL_CACHEMAX", n)


_CACHE = SharedSetting(cache_bytes, _cap)


@contextmanager
def capped_block_cache(limit: int = GDAL_CACHE_MB * 2**20) -> Iterator[None]:
    """GDAL's block cache at most ``limit`` bytes while the block runs (module docs)."""
    with _CACHE.override(lambda now: min(now, limit)):
        yield


__all__ = ["GDAL_CACHE_MB", "cache_bytes", "capped_block_cache"]
