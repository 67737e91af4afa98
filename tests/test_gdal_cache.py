"""GDAL's block cache while GeoTIFF jobs run (sr_domains.geo.gdal_cache): capped at 64 MiB, not
64 bytes, and put back when the last job of the process ends, whatever threads they ran on."""

from __future__ import annotations

import threading

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.gdal_cache import GDAL_CACHE_MB, cache_bytes, capped_block_cache  # noqa: E402
from sr_domains.geo.job import gdal_env  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

CAP = GDAL_CACHE_MB * 2**20


@pytest.fixture
def big_cache():
    """The process's GDAL cache at 512 MiB for the test (put back after it)."""
    from rasterio._env import set_gdal_config

    before = cache_bytes()
    set_gdal_config("GDAL_CACHEMAX", 512 * 2**20)
    yield 512 * 2**20
    set_gdal_config("GDAL_CACHEMAX", before)


def test_a_job_runs_with_a_64_mib_cache_and_puts_the_process_s_back(big_cache):
    with gdal_env():
        assert cache_bytes() == CAP  # (rasterio.Env(GDAL_CACHEMAX=64) gave 64 bytes)
        with gdal_env():  # (a job inside a job: one count)
            assert cache_bytes() == CAP
        assert cache_bytes() == CAP
    assert cache_bytes() == big_cache


def test_a_smaller_cache_of_the_user_s_is_kept(big_cache):
    from rasterio._env import set_gdal_config

    set_gdal_config("GDAL_CACHEMAX", 8 * 2**20)
    with gdal_env():
        assert cache_bytes() == 8 * 2**20
    assert cache_bytes() == 8 * 2**20


@pytest.mark.parametrize("last", ["first", "second"])
def test_jobs_on_two_threads_leave_the_process_s_cache_as_they_found_it(big_cache, last):
    # the first thread in, then the second; one of them leaves first. Per-thread
    # rasterio.Env(GDAL_CACHEMAX=...) left the second thread's "found" value (the cap) in
    # place for good when the first left first
    second_in, first_out, done = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with capped_block_cache():
                second_in.set()
                if last == "second":
                    assert first_out.wait(60)
                seen.append(cache_bytes())
        except BaseException as exc:  # (reported below)
            errors.append(exc)
        finally:
            second_in.set()
            done.set()

    t = threading.Thread(target=second)
    with capped_block_cache():
        t.start()
        assert second_in.wait(60)
        if last == "first":
            assert done.wait(60)
        seen.append(cache_bytes())
    first_out.set()
    t.join(60)
    assert not errors and not t.is_alive()
    assert seen == [CAP, CAP]
    assert cache_bytes() == big_cache


def test_an_alpha_band_set_after_the_pixels_is_kept_inside_a_job(tmp_path, big_cache):
    # with a 64-byte cache GDAL flushed each block at once, and the alpha band's
    # ExtraSamples tag, set after them, was lost: the file read back with no alpha
    path = tmp_path / "rgbna.tif"
    with (
        gdal_env(),
        rasterio.open(
            path, "w", driver="GTiff", width=48, height=40, count=5, dtype="uint8",
            crs="EPSG:32633", transform=rasterio.transform.from_origin(5e5, 4e6, 5, 5),
        ) as dst,
    ):  # fmt: skip
        dst.write(np.full((4, 40, 48), 100, np.uint8), indexes=[1, 2, 3, 4])
        dst.write(np.full((40, 48), 255, np.uint8), 5)  # (the blocks wait in the cache)
        dst.colorinterp = [*dst.colorinterp[:-1], rasterio.enums.ColorInterp.alpha]
    with rasterio.open(path) as ds:
        assert ds.colorinterp[-1] == rasterio.enums.ColorInterp.alpha


def test_upscale_geotiff_leaves_the_process_s_cache_unchanged(tmp_path, big_cache):
    src = make_geotiff(tmp_path / "in.tif", width=40, height=32, count=1, dtype="uint16")
    upscale_geotiff(src, tmp_path / "out.tif", model="sr-lite-gray-x2")
    assert cache_bytes() == big_cache
