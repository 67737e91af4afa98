"""Messages a probe found wanting: a model of another scale (or no shipped weights for the
scale) named neither the file nor the model; ``--dtype int8`` said "a int8 value"; every tiny
integer raster (3x3 pixels hold at most 9 values) was warned about as a label map."""

from __future__ import annotations

import logging

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")

from affine import Affine  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.label_like import LABEL_LIKE_VALUES, warn_label_like  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_nifti  # noqa: E402


def _uint8(path, data, nodata=None):
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1)
    profile.update(dtype="uint8", crs="EPSG:32633", transform=Affine(1, 0, 0, 0, -1, 100))
    with rasterio.open(path, "w", nodata=nodata, **profile) as ds:
        ds.write(data, 1)
    return path


@pytest.mark.parametrize("kind", ["geotiff", "nifti"])
def test_a_model_of_another_scale_is_named_with_the_file(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    if kind == "geotiff":
        src, out = make_geotiff(tmp_path / "g.tif", width=24, height=20).name, "o.tif"
    else:
        src, out = make_nifti(tmp_path / "t1.nii.gz", shape=(12, 10, 3)).name, "o.nii.gz"
    assert main(["upscale", src, out, "--model", "sr-lite-gray-x4", "--scale", "2"]) == 2
    err = capsys.readouterr().err
    assert f"error: {src}: the model sr-lite-gray-x4 upscales x4 but x2 was requested" in err
    assert main(["upscale", src, out, "--scale", "5"]) == 2
    assert f"error: {src}: no shipped weights for x5 " in capsys.readouterr().err


def test_a_batch_names_each_file_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    make_geotiff(tmp_path / "in" / "g.tif", width=24, height=20)
    assert main(["upscale", "in/", "out/", "--model", "sr-lite-gray-x4", "--scale", "2"]) == 1
    err = capsys.readouterr().err
    assert "failed: in/g.tif: the model sr-lite-gray-x4 upscales x4 but x2 was requested" in err


def test_an_int8_value_takes_an(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = (np.arange(400).reshape(20, 20) % 200).astype(np.uint8)
    data[0, 0] = 255
    _uint8(tmp_path / "n.tif", data, nodata=255)
    assert main(["upscale", "n.tif", "o.tif", "--dtype", "int8"]) == 2
    err = capsys.readouterr().err
    assert "an int8 value outside the data" in err and "a int8" not in err


def test_a_tiny_raster_is_not_taken_for_a_label_map(tmp_path, caplog):
    src = _uint8(tmp_path / "tiny.tif", np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]]))
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(1, 2))
    assert "distinct values" not in caplog.text


def test_a_label_map_of_enough_pixels_is_still_warned(caplog):
    codes = np.array([1, 2, 7], np.uint8)
    few = np.resize(codes, 4 * LABEL_LIKE_VALUES - 1)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        warn_label_like("few.tif", few, few.dtype)
    assert "distinct values" not in caplog.text
    enough = np.resize(codes, 4 * LABEL_LIKE_VALUES)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        warn_label_like("seg.tif", enough, enough.dtype)
    assert "seg.tif holds only 3 distinct values (1, 2, 7)" in caplog.text
