"""An embedded cluster starts no more worker processes than there are tasks."""

from __future__ import annotations

import logging

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("rasterio")

from sr_domains.distributed import upscale_many  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def test_more_workers_than_files_starts_one_per_file(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=20)
    started: list[int] = []

    class CountingCluster(distributed.LocalCluster):  # the real cluster, its size noted
        def __init__(self, *args, **kwargs):
            started.append(kwargs["n_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", CountingCluster)
    with caplog.at_level(logging.INFO, logger="sr_domains"):
        report = upscale_many(
            folder, tmp_path / "out", options=UpscaleOptions(tile=16), model=tiny_model(1, 2),
            workers=3,
        )  # fmt: skip
    assert report.count("ok") == 1
    assert started == [1]
    assert "3 worker(s) asked for, 1 started" in caplog.text
