"""Scale-out runs keep the engine settings, split a raster without redoing it, tag it like a
single-process run and leave no lock or temporary files when stopped (real Dask clusters)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed")
rasterio = pytest.importorskip("rasterio")

from sr_domains import distributed as sr_distributed  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import upscale_many  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.job import prepare_job  # noqa: E402
from sr_domains.geo.reader import RasterSource  # noqa: E402
from sr_domains.geo.split import band_work, split_plan, upscale_geotiff_split  # noqa: E402
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.io_safety import LOCK_TAG, TMP_TAG  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.models import ToySR  # noqa: E402

TILE = "SR_DOMAINS_TILE"


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


def _tags(path: Path) -> dict[str, str]:
    with rasterio.open(path) as ds:
        return ds.tags()


def _budget_tile(model: torch.nn.Module, max_memory: str) -> str:
    return str(Upscaler(model, max_memory=max_memory).tiling.tile)


def test_batch_on_workers_uses_the_memory_budget_of_the_options(tmp_path, client):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        make_geotiff(folder / f"s{i}.tif", width=24, height=20, seed=i)
    model = tiny_model(1, 2)
    opts = UpscaleOptions(max_memory="16M")
    seq = upscale_many(folder, tmp_path / "seq", options=opts, model=model)
    par = upscale_many(folder, tmp_path / "par", options=opts, model=model, client=client)
    assert par.count("ok") == seq.count("ok") == 2
    want = _budget_tile(model, "16M")
    assert want != str(Upscaler(model).tiling.tile)  # (the budget does change the tile)
    for name in ("s0.tif", "s1.tif"):
        assert _tags(tmp_path / "seq" / name)[TILE] == want
        assert _tags(tmp_path / "par" / name)[TILE] == want


def test_split_uses_the_memory_budget_of_the_options(tmp_path, client):
    src = make_geotiff(tmp_path / "r.tif", width=24, height=30, count=1)
    model = tiny_model(1, 2)
    opts = UpscaleOptions(scale=2, max_memory="16M")
    out = upscale_geotiff_split(
        src, tmp_path / "split.tif", client=client, options=opts, model=model, parts=1
    )
    assert _tags(out)[TILE] == _budget_tile(model, "16M")


def test_split_of_a_raster_within_one_tile_cuts_the_tile_grid_and_tags_like_single(
    tmp_path, client
):
    """The default tile covers the whole raster: the split caps it so that the bands do not
    each compute the whole image; the output equals a single-process run with that tile,
    tags included (band ratios: a 1-band model runs band by band, so "bicubic")."""
    src = make_geotiff(tmp_path / "r.tif", width=40, height=600, count=3, dtype="uint16")
    model = tiny_model(1, 2)
    opts = UpscaleOptions(scale=2)
    with RasterSource(src) as rs:
        job = prepare_job(rs, opts, model=model)
        whole = band_work(job.up.plan(rs.shape), (0, 1200))
        assert job.up.plan(rs.shape).n_windows == 1
        tile, bands = split_plan(job, rs.shape, 2, job.spec.block, fixed_tile=False)
    assert len(bands) == 2 and tile < 600
    out = upscale_geotiff_split(
        src, tmp_path / "split.tif", client=client, options=opts, model=model
    )
    assert _tags(out)[TILE] == str(tile)
    with RasterSource(src) as rs:
        capped = prepare_job(rs, UpscaleOptions(scale=2, tile=tile), model=model)
        plan = capped.up.plan(rs.shape)
    work = [band_work(plan, b) for b in bands]
    assert max(work) < whole and sum(work) < 1.6 * whole  # not the whole image twice
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=model, scale=2, tile=tile)
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        assert np.array_equal(a.read(), b.read())  # bit for bit
        assert a.tags() == b.tags()
    values = json.loads(_tags(out)["SR_DOMAINS_VALUES"])
    assert values["band_ratios"] == "bicubic"


class _StopHereModel(ToySR):
    """A :class:`ToySR` whose forward says so (Dask event ``sr-started``) and then blocks, as
    a long forward pass does (a task in flight, holding its output's lock and temp file): its
    worker is killed before the task's own cleanup runs."""

    def body(self, x: torch.Tensor) -> torch.Tensor:
        import threading

        distributed.Event("sr-started").set()
        threading.Event().wait(timeout=120)  # (its worker process is killed first)
        return super().body(x)


def test_a_stopped_batch_on_workers_leaves_no_lock_or_temp_files(tmp_path, monkeypatch):
    """Ctrl-C while a worker writes an output (KeyboardInterrupt injected where the runner
    waits for results): the embedded cluster's workers are killed before their own cleanup,
    so the runner removes the lock and temp files of its tasks in flight."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=20)
    model = _StopHereModel(BaseSRConfig(in_channels=1, scale=2)).eval()
    seen: list[str] = []

    def stop_when_started(futures, *args, **kwargs):
        distributed.Event("sr-started").wait(timeout=120)
        seen.extend(sorted(p.name for p in out.iterdir()))
        raise KeyboardInterrupt
        yield  # (a generator, as as_completed)

    monkeypatch.setattr(distributed, "as_completed", stop_when_started)
    with pytest.raises(KeyboardInterrupt):
        upscale_many(folder, out, options=UpscaleOptions(tile=16), model=model, workers=1)
    assert any(LOCK_TAG in n for n in seen) and any(TMP_TAG in n for n in seen)  # in flight
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not [n for n in left if LOCK_TAG in n or TMP_TAG in n], left


def test_leftovers_of_a_live_writer_are_left_alone(tmp_path):
    """Only files no live process holds are removed: a lock held by another run (and its
    temp file) stay."""
    from sr_domains.batch_tasks import Task
    from sr_domains.io_safety import destination_lock, lock_path, temp_name

    dst = tmp_path / "a.tif"
    tmp = temp_name(dst, ".tif")
    with destination_lock(dst):
        tmp.write_bytes(b"being written")
        sr_distributed.remove_leftovers([Task("geotiff", "in.tif", str(dst))])
        assert lock_path(dst).exists() and tmp.exists()
    sr_distributed.remove_leftovers([Task("geotiff", "in.tif", str(dst))])
    assert sorted(tmp_path.iterdir()) == []


def test_split_refuses_an_existing_output_before_starting_a_cluster(tmp_path, monkeypatch, capsys):
    src = make_geotiff(tmp_path / "r.tif", width=16, height=16)
    (tmp_path / "out.tif").write_bytes(b"a user's file")

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(sr_distributed, "cluster_client", no_cluster)
    code = main(["upscale", str(src), str(tmp_path / "out.tif"), "--workers", "2"])
    assert code == 1 and "out.tif" in capsys.readouterr().err
