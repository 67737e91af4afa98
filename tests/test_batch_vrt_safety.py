"""A batch never writes an output over a file one of its own tasks reads: a VRT input whose
source raster lies in the output folder under another task's output name (the user's raster was
replaced with ``--overwrite``, exit 0), a source named there that does not exist yet, and a hard
link of an input. Refused before any work, naming the output, the file and the input reading
it; in this process (``geo.upscale_many``) and on Dask (``distributed.upscale_many``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("rasterio")

from sr_domains.distributed import upscale_many as dask_many
from sr_domains.errors import UnsafeOutputError
from sr_domains.geo import upscale_many as geo_many
from sr_domains.options import UpscaleOptions
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff

RUNNERS = ["sequential", "dask"]


def _vrt(path: Path, source: str, width: int = 24, height: int = 20) -> None:
    """A one-band VRT reading ``source`` (relative to the VRT's folder)."""
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
        "<GeoTransform>500000, 10, 0, 4000000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="1">{source}</SourceFilename>'
        "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )


def _run(runner: str, inputs: Path, out: Path, overwrite: bool = True) -> object:
    model = tiny_model(1, 2)
    if runner == "sequential":
        return geo_many(inputs, out, model=model, overwrite=overwrite)
    # (refused while planning, before a cluster starts; without the check it runs on Dask)
    opts = UpscaleOptions(overwrite=overwrite)
    return dask_many(inputs, out, options=opts, model=model, workers=2)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    vin, out = tmp_path / "vin", tmp_path / "ov"
    vin.mkdir()
    out.mkdir()
    return vin, out


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_output_a_vrt_of_the_batch_reads_is_refused_before_any_work(folders, runner):
    vin, out = folders
    make_geotiff(vin / "a.tif", width=24, height=20, seed=1)  # task: vin/a.tif -> ov/a.tif
    make_geotiff(out / "a.tif", width=24, height=20, seed=2)  # the user's raster
    _vrt(vin / "c.vrt", "../ov/a.tif")  # task: vin/c.vrt -> ov/c.tif, reading ov/a.tif
    mine = (out / "a.tif").read_bytes()
    with pytest.raises(UnsafeOutputError) as err:
        _run(runner, vin, out)
    msg = str(err.value)
    assert str(out / "a.tif") in msg and str(vin / "a.tif") in msg and str(vin / "c.vrt") in msg
    assert "would replace" in msg
    assert (out / "a.tif").read_bytes() == mine  # untouched, and nothing else written
    assert sorted(p.name for p in out.iterdir()) == ["a.tif"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_vrt_source_missing_now_that_a_task_would_write_is_refused(folders, runner):
    """Read after the task writing it ran, or failing before: either way the VRT would read
    an output of the batch, not the raster the user meant."""
    vin, out = folders
    make_geotiff(vin / "a.tif", width=24, height=20)
    _vrt(vin / "c.vrt", "../ov/a.tif")  # (ov/a.tif does not exist yet)
    with pytest.raises(UnsafeOutputError, match="would replace") as err:
        _run(runner, vin, out, overwrite=False)
    assert str(vin / "c.vrt") in str(err.value)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_output_hard_linked_to_an_input_of_the_batch_is_refused(tmp_path, runner):
    vin, out = tmp_path / "in", tmp_path / "out"
    vin.mkdir()
    out.mkdir()
    make_geotiff(vin / "a.tif", width=24, height=20, seed=1)
    make_geotiff(vin / "b.tif", width=24, height=20, seed=2)
    os.link(vin / "b.tif", out / "a.tif")  # the output of a.tif is the input b.tif
    with pytest.raises(UnsafeOutputError, match="would replace the input") as err:
        _run(runner, vin, out)
    assert str(vin / "b.tif") in str(err.value) and str(out / "a.tif") in str(err.value)
    assert os.path.samefile(vin / "b.tif", out / "a.tif")


def test_every_clash_is_named_at_once(folders):
    vin, out = folders
    for name in ("a", "b"):
        make_geotiff(vin / f"{name}.tif", width=24, height=20)
        make_geotiff(out / f"{name}.tif", width=24, height=20, seed=3)
        _vrt(vin / f"{name}_mosaic.vrt", f"../ov/{name}.tif")
    with pytest.raises(UnsafeOutputError, match="2 outputs would replace files") as err:
        _run("sequential", vin, out)
    assert str(vin / "a_mosaic.vrt") in str(err.value)
    assert str(vin / "b_mosaic.vrt") in str(err.value)


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_vrt_source_in_the_output_folder_that_no_task_writes_is_read(folders, runner):
    """Only an output that a task reads is refused: a source raster beside the outputs under a
    name no task writes is no clash."""
    if runner == "dask":  # (this one runs its tasks: the cluster is needed)
        pytest.importorskip("distributed")
    vin, out = folders
    make_geotiff(out / "base.tif", width=24, height=20)  # the user's, read by the VRT
    _vrt(vin / "c.vrt", "../ov/base.tif")
    kept = (out / "base.tif").read_bytes()
    _run(runner, vin, out, overwrite=False)
    assert (out / "c.tif").is_file() and (out / "base.tif").read_bytes() == kept
