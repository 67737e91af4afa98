"""A readable TIFF with our tags but another size than the output's (a user's clipped copy
of an output, ``gdal_translate -srcwin`` keeping the ``SR_DOMAINS_*`` tags) is not one of
ours cut short: outputs are renamed into place only when complete and truncation does not
change a TIFF's size. A rerun without ``--overwrite`` refuses it untouched (it was "redone");
one of that size whose blocks do not read is still redone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.windows import Window  # noqa: E402

from sr_domains.distributed import upscale_many as dask_many  # noqa: E402
from sr_domains.errors import OutputExistsError  # noqa: E402
from sr_domains.geo import upscale_many as geo_many  # noqa: E402
from sr_domains.geo.resume import batch_check, output_check  # noqa: E402
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


def _clip(path: Path, width: int = 50, height: int = 40) -> None:
    """Replace ``path`` by a window of itself with all of its tags (a user's clipped copy)."""
    window = Window(0, 0, width, height)
    with rasterio.open(path) as ds:
        profile = dict(ds.profile, width=width, height=height)  # (same origin: same transform)
        data, tags = ds.read(window=window), ds.tags()
    clip = path.with_name("clip.tif")
    with rasterio.open(clip, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(**tags)
    clip.replace(path)


def _rerun(runner: str, folder: Path, out: Path) -> list[str]:
    """The outputs a rerun (no overwrite) wrote; a refusal raises or fails the task."""
    model = tiny_model(1, 2)
    if runner == "sequential":
        return sorted(p.name for p in geo_many(folder, out, model=model))
    report = dask_many(folder, out, options=UpscaleOptions(), model=model)
    for r in report.failed:
        raise OutputExistsError(r.task.dst, r.error)
    return sorted(Path(r.task.dst).name for r in report.results if r.status == "ok")


def test_output_check_calls_a_readable_clipped_copy_foreign(tmp_path):
    folder, out = _batch(tmp_path)
    _clip(out / "a.tif")
    status, why = output_check(out / "a.tif", folder / "a.tif", 2)
    assert status == "foreign"
    assert "50x40" in why and "80x60" in why


def _spoil_first_block(path: Path) -> None:
    """Zero the start of the first block's compressed data: the header reads, the block not."""
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_a_clipped_copy_with_our_tags_is_refused_untouched(tmp_path, runner):
    """Refused while it reads whole; once a block of it does not read, it cannot be a whole
    file (ours cut short or damaged, as before): redone without ``--overwrite``."""
    folder, out = _batch(tmp_path)
    with rasterio.open(out / "a.tif") as ds:
        good = ds.read()
    assert recorded_sha(folder / "a.tif", out / "a.tif")  # the manifest records a.tif
    _clip(out / "a.tif")
    mine = (out / "a.tif").read_bytes()
    assert batch_check(out / "a.tif", folder / "a.tif", 2)[0] == "foreign"
    with pytest.raises(OutputExistsError, match="output exists.*50x40"):
        _rerun(runner, folder, out)
    assert (out / "a.tif").read_bytes() == mine
    _spoil_first_block(out / "a.tif")
    assert output_check(out / "a.tif", folder / "a.tif", 2)[0] == "damaged"
    assert _rerun(runner, folder, out) == ["a.tif"]
    with rasterio.open(out / "a.tif") as ds:
        assert np.array_equal(ds.read(), good)


def test_an_unstamped_output_of_an_input_that_changed_size_is_redone(tmp_path):
    """Outputs made before input stamps (0.1.0) cannot say whether their input changed: one of
    another size was redone then ("GeoTIFF caught a size change"), and is again (it was
    refused as a clipped copy)."""
    folder, out = _batch(tmp_path)
    with rasterio.open(out / "a.tif", "r+") as ds:
        ds.update_tags(SR_DOMAINS_SOURCE_STAMP="")  # (as an output of 0.1.0)
    make_geotiff(folder / "a.tif", width=44, height=30, seed=3)  # re-exported, wider
    assert output_check(out / "a.tif", folder / "a.tif", 2)[0] == "damaged"
    assert _rerun("sequential", folder, out) == ["a.tif"]
    with rasterio.open(out / "a.tif") as ds:
        assert (ds.width, ds.height) == (88, 60)
