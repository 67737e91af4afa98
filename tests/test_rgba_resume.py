"""A rerun of a batch holding an RGBA raster skips its finished output: the default band
selection a resume compares is the one the writer records (all bands but alpha:
``SR_DOMAINS_SOURCE_BANDS=1,2,3``). It was the band count with alpha (``1,2,3,4``), so the
rerun refused the output ("made from bands 1,2,3, not 1,2,3,4") and, ``--bands 1,2,3,4``
being refused too (band 4 is alpha), the whole batch could not be resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import upscale_many as dask_upscale_many  # noqa: E402
from sr_domains.geo import upscale_many  # noqa: E402
from sr_domains.geo.resume import output_check  # noqa: E402
from sr_domains.made_with import Requested  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def _inputs(folder: Path) -> Path:
    """An RGBA scene (an alpha band after R, G, B) and a gray one."""
    folder.mkdir()
    make_geotiff(folder / "rgba.tif", width=24, height=20, count=3, mask="alpha")
    make_geotiff(folder / "gray.tif", width=24, height=20, seed=1)
    with rasterio.open(folder / "rgba.tif") as ds:
        assert ds.count == 4 and ds.colorinterp[3].name == "alpha"
    return folder


def test_a_rerun_of_a_batch_skips_a_finished_rgba_output(tmp_path):
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    first = upscale_many(src, out, scale=2)
    assert first.report.count("ok") == 2
    with rasterio.open(out / "rgba.tif") as ds:
        assert ds.tags()["SR_DOMAINS_SOURCE_BANDS"] == "1,2,3" and ds.count == 4
    before = (out / "rgba.tif").stat().st_mtime_ns
    again = upscale_many(src, out, scale=2)  # raised: output exists (... not 1,2,3,4)
    assert again.report.count("skipped") == 2 and again.report.count("failed") == 0
    assert (out / "rgba.tif").stat().st_mtime_ns == before
    status, why = output_check(out / "rgba.tif", src / "rgba.tif", 2, Requested())
    assert (status, why) == ("complete", "")
    # other bands are still told apart
    status, why = output_check(out / "rgba.tif", src / "rgba.tif", 2, Requested(bands=(3, 2, 1)))
    assert status == "other" and why == "made from bands 1,2,3, not 3,2,1"


def test_the_cli_and_the_task_runner_resume_it_too(tmp_path, capsys):
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    assert main(["upscale", str(src / "*.tif"), str(out) + "/"]) == 0
    capsys.readouterr()
    assert main(["upscale", str(src / "*.tif"), str(out) + "/"]) == 0  # was exit 1
    said = capsys.readouterr()
    assert "0 written, 2 already complete, 0 failed" in said.out + said.err
    # the Dask runner's task status (run here in this process: the same per-task code)
    report = dask_upscale_many(src, out, options=UpscaleOptions(scale=2))
    assert report.count("skipped") == 2 and not report.failed
    # a single file's existing output is refused without --overwrite (docs/output_safety.md)
    assert main(["upscale", str(src / "rgba.tif"), str(out / "rgba.tif")]) == 1
    err = capsys.readouterr().err
    assert "rgba.tif: output exists; pass --overwrite" in err and "bands" not in err
