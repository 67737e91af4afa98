"""ArcGIS / Erdas auxiliary files of a GeoTIFF output (``STEM.aux`` or ``NAME.aux`` naming the
output as their dependent file, and their ``.rrd`` pyramids) are replaced with it by
``--overwrite``: GDAL read the old image's overviews from a stale one. Those of another file
(an input's, another raster's) and a user's file of that name stay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.enums import Resampling  # noqa: E402

from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


def _rrd_overviews(path: Path) -> None:
    """``gdaladdo --config USE_RRD YES``: overviews of ``path`` in ``STEM.aux`` (HFA)."""
    with rasterio.Env(USE_RRD="YES"), rasterio.open(path, "r+") as ds:
        ds.build_overviews([2], Resampling.average)
    assert path.with_suffix(".aux").is_file()


def _output(tmp_path: Path) -> tuple[Path, Path]:
    src = make_geotiff(tmp_path / "in.tif", width=40, height=32, seed=1)
    dst = upscale_geotiff(src, tmp_path / "out" / "o.tif", model=tiny_model(1, 2))
    return src, dst


@pytest.mark.parametrize("aux", ["o.aux", "o.tif.aux"])
def test_the_outputs_aux_and_rrd_are_replaced_with_it(tmp_path, aux):
    src, dst = _output(tmp_path)
    _rrd_overviews(dst)
    if aux != "o.aux":
        (dst.parent / "o.aux").rename(dst.parent / aux)
    rrd = dst.parent / (aux[: -len(".aux")] + ".rrd")
    rrd.write_bytes(b"EHFA_HEADER_TAG\0" + bytes(64))  # (ArcGIS pyramids beside their .aux)
    (dst.parent / "o.IMD").write_text("BEGIN_GROUP = IMAGE_1\nEND_GROUP = IMAGE_1\nEND;\n")
    with rasterio.open(dst) as ds:
        assert ds.overviews(1) == [2]  # (read from the .aux)
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["o.tif"]
    with rasterio.open(dst) as ds:
        assert ds.overviews(1) == []


def _own_name_aux(dst: Path) -> None:
    """``NAME.aux`` naming ``dst`` (GDAL's ``STEM.aux``, renamed) and its ``NAME.rrd``."""
    _rrd_overviews(dst)
    dst.with_suffix(".aux").rename(f"{dst}.aux")
    Path(f"{dst}.rrd").write_bytes(b"EHFA_HEADER_TAG\0" + bytes(64))


def test_an_aux_of_another_file_or_a_users_file_stays(tmp_path):
    src, dst = _output(tmp_path)
    _own_name_aux(dst)  # (the output's: removed)
    other = make_geotiff(dst.parent / "o.tiff", width=20, height=16, seed=3)  # not an input
    _rrd_overviews(other)  # o.aux: names o.tiff (GDAL reads it for that file only)
    (dst.parent / "o.rrd").write_bytes(b"EHFA_HEADER_TAG\0" + bytes(64))
    (dst.parent / "o.AUX").write_text("my notes")  # not an HFA file
    before = {p.name: p.read_bytes() for p in dst.parent.iterdir() if p != dst}
    del before["o.tif.aux"], before["o.tif.rrd"]
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    after = {p.name: p.read_bytes() for p in dst.parent.iterdir() if p != dst}
    assert after == before
    with rasterio.open(other) as ds:
        assert ds.overviews(1) == [2]
    with rasterio.open(dst) as ds:
        assert ds.overviews(1) == []


def test_an_inputs_aux_is_never_touched(tmp_path):
    """Input ``d/o.tiff`` and output ``d/o.tif`` share ``o.aux`` by name: it is the input's;
    the output's own ``o.tif.aux`` goes."""
    folder = tmp_path / "d"
    folder.mkdir()
    src = make_geotiff(folder / "o.tiff", width=40, height=32, seed=1)
    dst = upscale_geotiff(src, folder / "o.tif", model=tiny_model(1, 2))
    _own_name_aux(dst)
    _rrd_overviews(src)
    shutil.copyfile(folder / "o.aux", tmp_path / "kept.aux")
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert (folder / "o.aux").read_bytes() == (tmp_path / "kept.aux").read_bytes()
    assert not Path(f"{dst}.aux").exists() and not Path(f"{dst}.rrd").exists()
    with rasterio.open(src) as ds:
        assert ds.overviews(1) == [2]
