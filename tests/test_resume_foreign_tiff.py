"""A readable GeoTIFF of the user's, saved under the name of an output that the run manifest
records, is somebody's own raster: a rerun without ``--overwrite`` refuses it untouched (it was
"redone" as an incomplete output of ours, the user's raster lost). A TIFF of ours that lost only
its tail (it opens, but the tags GDAL keeps at the end of the file are gone) is still redone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains.distributed import upscale_many as dask_many  # noqa: E402
from sr_domains.errors import OutputExistsError  # noqa: E402
from sr_domains.geo import upscale_many as geo_many  # noqa: E402
from sr_domains.geo.resume import batch_check  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.run_manifest import recorded_sha  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def _batch(tmp_path: Path) -> tuple[Path, Path]:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=40, height=30, seed=1)
    make_geotiff(folder / "b.tif", width=24, height=20, seed=2)
    geo_many(folder, out, model=tiny_model(1, 2))
    return folder, out


def _rerun(runner: str, folder: Path, out: Path) -> list[str]:
    """The outputs a rerun (no overwrite) wrote; a refusal raises or fails the task."""
    model = tiny_model(1, 2)
    if runner == "sequential":
        return sorted(p.name for p in geo_many(folder, out, model=model))
    report = dask_many(folder, out, options=UpscaleOptions(), model=model)
    for r in report.failed:
        raise OutputExistsError(r.task.dst, r.error)
    return sorted(Path(r.task.dst).name for r in report.results if r.status == "ok")


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_a_users_readable_tiff_under_a_recorded_output_name_is_refused(tmp_path, runner):
    folder, out = _batch(tmp_path)
    assert recorded_sha(folder / "a.tif", out / "a.tif")  # the manifest records a.tif
    make_geotiff(out / "a.tif", width=80, height=60, seed=7, tags={"NOTE": "my edited raster"})
    mine = (out / "a.tif").read_bytes()
    assert batch_check(out / "a.tif", folder / "a.tif", 2)[0] == "foreign"
    with pytest.raises(OutputExistsError, match="output exists"):
        _rerun(runner, folder, out)
    assert (out / "a.tif").read_bytes() == mine
    assert recorded_sha(folder / "a.tif", out / "a.tif")  # its record left as it was


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_an_output_of_ours_without_its_tail_is_still_redone(tmp_path, runner):
    """A copy of ours cut 64 bytes short opens and reads, but the ``SR_DOMAINS_*`` tags GDAL
    keeps at the file's end are gone (its writer tag names sr_domains): ours, cut short, not a
    user's raster. (Cut before its header's end it does not open: tests/test_resume_damaged.)"""
    folder, out = _batch(tmp_path)
    with rasterio.open(out / "a.tif") as ds:
        good = ds.read()
    data = (out / "a.tif").read_bytes()
    (out / "a.tif").write_bytes(data[: len(data) - 64])
    with rasterio.open(out / "a.tif") as ds:
        assert not any(k.startswith("SR_DOMAINS_") for k in ds.tags())
        assert ds.tags()["TIFFTAG_SOFTWARE"].startswith("sr_domains ")
        assert np.array_equal(ds.read(), good)
    assert _rerun(runner, folder, out) == ["a.tif"]
    with rasterio.open(out / "a.tif") as ds:
        assert np.array_equal(ds.read(), good) and ds.tags()["SR_DOMAINS_SYNTHETIC"]
