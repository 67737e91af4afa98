"""A batch on Dask leaves the caller's Dask state alone: a client the caller made without
making it the default works, and a run on an embedded cluster leaves no default client and
no ``scheduler`` setting behind (real clusters; no module-wide default client here)."""

from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("rasterio")

import dask  # noqa: E402
import dask.array as darr  # noqa: E402

from sr_domains.distributed import upscale_many  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def _folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        make_geotiff(folder / f"s{i}.tif", width=24, height=20, seed=i)
    return folder


def _no_default_client() -> bool:
    try:
        distributed.default_client()
    except ValueError:  # "No clients found"
        return True
    return False


def test_a_client_that_is_not_the_default_runs_the_batch(tmp_path):
    """It failed with "No clients found": the results were awaited on the default client."""
    folder = _folder(tmp_path)
    assert _no_default_client()
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as mine,
    ):
        report = upscale_many(folder, tmp_path / "out", model=tiny_model(1, 2), client=mine)
    assert report.count("ok") == 2, report.failures()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == ["s0.tif", "s1.tif"]


def test_an_embedded_cluster_leaves_no_default_client_or_scheduler_setting(tmp_path):
    folder = _folder(tmp_path)
    before = dask.config.get("scheduler", None)
    report = upscale_many(folder, tmp_path / "out", model=tiny_model(1, 2), workers=1)
    assert report.count("ok") == 2, report.failures()
    assert dask.config.get("scheduler", None) == before
    assert _no_default_client()
    assert int(darr.ones(4, chunks=2).sum().compute()) == 4  # the local scheduler, as before
