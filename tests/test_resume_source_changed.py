"""A rerun redoes an output whose input changed since it was made (same name, same size, other
bytes), says why, and then skips it again; a copy of the input with a new time and the same
bytes is no change. GeoTIFF (the sequential batch), NIfTI and DICOM (the batch runner)."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_domains import inference
from sr_domains.options import UpscaleOptions
from sr_domains.source_stamp import INPUT_CHANGED, input_changed, stamp_of
from sr_domains.testing import tiny_model

REDO = f"{INPUT_CHANGED}: redoing it"


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _touch_later(paths: list[Path]) -> None:
    """A copy of each file in its place: the same bytes, a newer modification time."""
    for p in paths:
        copy = p.with_name(p.name + ".copy")
        shutil.copy(p, copy)
        shutil.copy(copy, p)
        copy.unlink()
        t = p.stat().st_mtime_ns + 5_000_000_000
        os.utime(p, ns=(t, t))


def _redone(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().endswith(REDO)]


def test_stamp_compares_size_then_time_then_bytes(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abcd")
    stamp = stamp_of([f])
    assert stamp["size"] == 4 and len(stamp["sha256"]) == 64
    assert not input_changed(stamp, [f])
    assert not input_changed(None, [f]) and not input_changed({"size": 1}, [f])
    _touch_later([f])
    assert not input_changed(stamp, [f])  # a copy: read, same bytes
    f.write_bytes(b"abce")
    os.utime(f, ns=(stamp["mtime_ns"], stamp["mtime_ns"]))
    assert not input_changed(stamp, [f])  # same size and time: trusted without reading
    os.utime(f, ns=(stamp["mtime_ns"] + 10**9, stamp["mtime_ns"] + 10**9))
    assert input_changed(stamp, [f])
    f.write_bytes(b"abcdef")
    assert input_changed(stamp, [f])


def test_geotiff_output_of_a_changed_input_is_redone(tmp_path, caplog):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    src, out, model = tmp_path / "in", tmp_path / "out", tiny_model(1, 2)
    src.mkdir()
    tif = make_geotiff(src / "s.tif", width=16, height=16, compress=None, seed=0)
    size = tif.stat().st_size
    (done,) = geo_many(src, out, scale=2, model=model)
    with rasterio.open(done) as ds:
        first = ds.read()
        assert "SR_DOMAINS_SOURCE_STAMP" in ds.tags()
    make_geotiff(tif, width=16, height=16, compress=None, seed=1)  # same name, size, bytes
    assert tif.stat().st_size == size
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(tif, fresh / "s.tif")
    (want,) = geo_many(fresh, tmp_path / "want", scale=2, model=model)
    with caplog.at_level(logging.WARNING):
        assert geo_many(src, out, scale=2, model=model) == [done]
    assert _redone(caplog) == [f"{done}: {REDO}"]
    with rasterio.open(done) as ds, rasterio.open(want) as w:
        redone = ds.read()
        assert np.array_equal(redone, w.read()) and not np.array_equal(redone, first)
    assert geo_many(src, out, scale=2, model=model) == []  # complete: skipped
    sha = done.read_bytes()
    _touch_later([tif])
    assert geo_many(src, out, scale=2, model=model) == []  # a copy: no change
    assert done.read_bytes() == sha


def test_nifti_output_of_a_changed_input_is_redone(tmp_path, caplog):
    nib = pytest.importorskip("nibabel")
    from sr_domains.distributed import upscale_many
    from sr_domains.dry_run import dry_run
    from sr_domains.testing.medical import make_nifti

    folder, out, opts, model = tmp_path / "in", tmp_path / "out", UpscaleOptions(), tiny_model(1, 2)
    folder.mkdir()
    src = make_nifti(folder / "t1.nii", shape=(14, 12, 4))
    make_nifti(folder / "t2.nii", shape=(14, 12, 4))
    assert upscale_many(folder, out, options=opts, model=model).count("ok") == 2
    first = np.asarray(nib.load(out / "t1.nii").dataobj)
    img = nib.load(src)
    changed = np.ascontiguousarray(np.asarray(img.dataobj)[::-1])  # same shape, other values
    size = src.stat().st_size
    nib.save(nib.Nifti1Image(changed, img.affine, img.header), src)
    assert src.stat().st_size == size
    assert f"[would redo: {INPUT_CHANGED}]" in dry_run(folder, out, opts, domain="nifti")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(src, fresh / "t1.nii")
    assert upscale_many(fresh, tmp_path / "want", options=opts, model=model).count("ok") == 1
    want = np.asarray(nib.load(tmp_path / "want" / "t1.nii").dataobj)
    with caplog.at_level(logging.WARNING):
        again = upscale_many(folder, out, options=opts, model=model)
    assert again.count("ok") == 1 and again.count("skipped") == 1
    assert _redone(caplog) == [f"{out / 't1.nii'}: {REDO}"]
    redone = np.asarray(nib.load(out / "t1.nii").dataobj)
    assert np.array_equal(redone, want) and not np.array_equal(redone, first)
    assert upscale_many(folder, out, options=opts, model=model).count("skipped") == 2
    sha = (out / "t1.nii").read_bytes()
    _touch_later([src])
    assert upscale_many(folder, out, options=opts, model=model).count("skipped") == 2
    assert (out / "t1.nii").read_bytes() == sha


def test_dicom_output_of_a_changed_series_is_redone(tmp_path, caplog):
    pydicom = pytest.importorskip("pydicom")
    from _dicom_files import edit_files

    from sr_domains.distributed import upscale_many
    from sr_domains.testing.medical import make_dicom_series

    files = make_dicom_series(tmp_path / "in" / "t2", n_slices=3, rows=12, cols=10)
    out, opts, model = tmp_path / "out", UpscaleOptions(), tiny_model(1, 2)
    assert upscale_many(tmp_path / "in", out, options=opts, model=model).count("ok") == 1
    series = next(out.rglob("*.dcm")).parent

    def pixels() -> dict[str, np.ndarray]:
        return {f.name: pydicom.dcmread(f).pixel_array for f in sorted(series.glob("*.dcm"))}

    first = pixels()
    sizes = [f.stat().st_size for f in files]

    def flip(ds, i):  # same names, UIDs and sizes; other pixel values
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[::-1]).tobytes()

    edit_files(files[1:2], flip)
    assert [f.stat().st_size for f in files] == sizes
    with caplog.at_level(logging.WARNING):
        again = upscale_many(tmp_path / "in", out, options=opts, model=model)
    assert again.count("ok") == 1 and again.count("skipped") == 0
    assert len(_redone(caplog)) == 1
    redone = pixels()
    assert redone.keys() == first.keys()
    assert any(not np.array_equal(first[k], redone[k]) for k in first)
    want_dir = tmp_path / "want"
    shutil.copytree(tmp_path / "in", tmp_path / "fresh")
    assert upscale_many(tmp_path / "fresh", want_dir, options=opts, model=model).count("ok") == 1
    want = {f.name: pydicom.dcmread(f).pixel_array for f in sorted(want_dir.rglob("*.dcm"))}
    assert all(np.array_equal(want[k], redone[k]) for k in redone)
    assert upscale_many(tmp_path / "in", out, options=opts, model=model).count("skipped") == 1
    shas = {f.name: f.read_bytes() for f in sorted(series.glob("*.dcm"))}
    _touch_later(files)
    assert upscale_many(tmp_path / "in", out, options=opts, model=model).count("skipped") == 1
    assert {f.name: f.read_bytes() for f in sorted(series.glob("*.dcm"))} == shas


def test_a_vrt_of_vrts_is_redone_when_the_raster_two_levels_down_changes(tmp_path, caplog):
    """Only a VRT's own sources were stamped: a VRT of a VRT kept its stale output."""
    pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.geo.gdal_paths import raster_inputs
    from sr_domains.testing.geo import make_geotiff

    (tmp_path / "src").mkdir()
    tif = make_geotiff(tmp_path / "src" / "s.tif", width=16, height=16, compress=None, seed=0)

    def vrt(path: Path, source: Path) -> Path:
        band = (
            '<VRTRasterBand dataType="UInt16" band="1"><SimpleSource>'
            f"<SourceFilename>{source}</SourceFilename><SourceBand>1</SourceBand>"
            "</SimpleSource></VRTRasterBand>"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'<VRTDataset rasterXSize="16" rasterYSize="16">{band}</VRTDataset>')
        return path

    inner = vrt(tmp_path / "in" / "a.vrt", tif)
    outer = vrt(tmp_path / "in2" / "n.vrt", inner)
    assert raster_inputs(outer) == [outer, inner, tif]
    model, out = tiny_model(1, 2), tmp_path / "out"
    (done,) = geo_many(tmp_path / "in2", out, scale=2, model=model)
    make_geotiff(tif, width=16, height=16, compress=None, seed=1)
    with caplog.at_level(logging.WARNING):
        assert geo_many(tmp_path / "in2", out, scale=2, model=model) == [done]
    assert _redone(caplog) == [f"{done}: {REDO}"]


def test_an_output_of_another_input_of_the_same_name_is_not_replaced(tmp_path):
    """``a/s.tif`` then ``b/s.tif`` into one folder without --overwrite: the second batch took
    the first one's output for its own with a changed input and replaced it (exit 0, "its
    input changed since it was made: redoing it"). A moved input with the same bytes is still
    the same input: skipped."""
    pytest.importorskip("rasterio")
    from sr_domains.errors import OutputExistsError
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.source_stamp import OTHER_INPUT
    from sr_domains.testing.geo import make_geotiff

    out, model = tmp_path / "out", tiny_model(1, 2)
    for name, seed in (("a", 0), ("b", 1)):
        (tmp_path / name).mkdir()
        make_geotiff(tmp_path / name / "s.tif", width=16, height=16, compress=None, seed=seed)
    (done,) = geo_many(tmp_path / "a", out, scale=2, model=model)
    first = done.read_bytes()
    with pytest.raises(OutputExistsError, match=re.escape(OTHER_INPUT)):
        geo_many(tmp_path / "b", out, scale=2, model=model)
    assert done.read_bytes() == first
    (tmp_path / "a").rename(tmp_path / "moved")  # the same bytes elsewhere: complete
    assert geo_many(tmp_path / "moved", out, scale=2, model=model) == []  # (none written)
    assert done.read_bytes() == first
    geo_many(tmp_path / "b", out, scale=2, model=model, overwrite=True)
    assert done.read_bytes() != first


def test_a_nifti_output_of_another_input_of_the_same_name_is_not_replaced(tmp_path):
    pytest.importorskip("nibabel")
    from sr_domains.distributed import upscale_many
    from sr_domains.source_stamp import OTHER_INPUT
    from sr_domains.testing.medical import make_nifti

    out, opts, model = tmp_path / "out", UpscaleOptions(), tiny_model(1, 2)
    for name, seed in (("a", 0), ("b", 1)):
        (tmp_path / name).mkdir()
        make_nifti(tmp_path / name / "t1.nii", shape=(14, 12, 4), oblique=bool(seed))
    assert upscale_many(tmp_path / "a", out, options=opts, model=model).count("ok") == 1
    first = (out / "t1.nii").read_bytes()
    again = upscale_many(tmp_path / "b", out, options=opts, model=model)
    assert again.count("failed") == 1 and OTHER_INPUT in again.results[0].error
    assert (out / "t1.nii").read_bytes() == first


def test_an_annexed_input_edited_in_place_is_redone_not_refused(tmp_path, caplog):
    """git-annex / DataLad / DVC keep each input as a link to an object named by its content:
    an edit changes the link's target, not its path. Hashing real paths only took that for
    another input and refused the rerun."""
    pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    objects, data, out = tmp_path / ".objects", tmp_path / "data", tmp_path / "out"
    objects.mkdir()
    data.mkdir()
    model = tiny_model(1, 2)
    make_geotiff(objects / "v1", width=16, height=16, compress=None, seed=0)
    make_geotiff(objects / "v2", width=16, height=16, compress=None, seed=1)
    (data / "s.tif").symlink_to(objects / "v1")
    (done,) = geo_many(data, out, scale=2, model=model)
    first = done.read_bytes()
    (data / "s.tif").unlink()
    (data / "s.tif").symlink_to(objects / "v2")  # (the edit, as git annex stores it)
    with caplog.at_level(logging.WARNING):
        assert geo_many(data, out, scale=2, model=model) == [done]
    assert _redone(caplog) == [f"{done}: {REDO}"] and done.read_bytes() != first


def test_a_vrt_edited_to_read_another_source_is_redone_not_refused(tmp_path, caplog):
    """The input's identity hashed every file a VRT reads: a VRT edited in place to read
    another source (or one more tile) was taken for another input of the same name and the
    rerun refused (exit 1, "pass --overwrite"). It is this input, changed: redone."""
    pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    (tmp_path / "src").mkdir()
    a = make_geotiff(tmp_path / "src" / "a.tif", width=16, height=16, compress=None, seed=0)
    b = make_geotiff(tmp_path / "src" / "b.tif", width=16, height=16, compress=None, seed=1)
    scene = tmp_path / "in" / "scene.vrt"
    scene.parent.mkdir()

    def point_at(source: Path) -> None:
        scene.write_text(
            '<VRTDataset rasterXSize="16" rasterYSize="16">'
            '<VRTRasterBand dataType="UInt16" band="1"><SimpleSource>'
            f"<SourceFilename>{source}</SourceFilename><SourceBand>1</SourceBand>"
            "</SimpleSource></VRTRasterBand></VRTDataset>"
        )

    point_at(a)
    model, out = tiny_model(1, 2), tmp_path / "out"
    (done,) = geo_many(tmp_path / "in", out, scale=2, model=model)
    first = done.read_bytes()
    point_at(b)
    with caplog.at_level(logging.WARNING):
        assert geo_many(tmp_path / "in", out, scale=2, model=model) == [done]
    assert _redone(caplog) == [f"{done}: {REDO}"] and done.read_bytes() != first


def test_a_dicom_series_is_known_by_its_folder_not_its_first_slice(tmp_path):
    """The stamp's input ids (which input made an output) hashed the path of the series'
    first slice: whichever file sorts first, which changes with the series."""
    pytest.importorskip("pydicom")
    from sr_domains.distributed import upscale_many
    from sr_domains.io_safety import read_manifest
    from sr_domains.medical import upscale_dicom_series
    from sr_domains.source_stamp import SOURCE_STAMP_KEY, input_ids
    from sr_domains.testing.medical import make_dicom_series

    folder = tmp_path / "in" / "t2"
    files = make_dicom_series(folder, n_slices=3, rows=12, cols=10)
    upscale_dicom_series(folder, tmp_path / "one", model=tiny_model(1, 2))
    opts, model = UpscaleOptions(), tiny_model(1, 2)
    assert (
        upscale_many(tmp_path / "in", tmp_path / "many", options=opts, model=model).count("ok") == 1
    )
    made = [tmp_path / "one", next((tmp_path / "many").rglob("*.dcm")).parent]
    for out in made:
        ids = read_manifest(out)[SOURCE_STAMP_KEY]["input_ids"]
        assert ids == input_ids([folder]) and not set(ids) & set(input_ids([files[0]]))
