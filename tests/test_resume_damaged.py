"""A resumed batch redoes a medical output of ours that was cut short (a copy interrupted, a
full disk), instead of passing it off as complete (DICOM: pydicom reads a file cut inside its
pixel data without an error) or refusing it as somebody else's file (NIfTI: too short for its
header), and so does the sequential GeoTIFF batch with its run manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains import inference  # noqa: E402
from sr_domains.distributed import upscale_many  # noqa: E402
from sr_domains.medical.nifti_upscale import nifti_output_check  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _cut(path: Path, drop: int) -> None:
    """Drop the last ``drop`` bytes, as a copy interrupted there would."""
    data = path.read_bytes()
    path.write_bytes(data[:-drop])


def test_a_dicom_file_cut_short_is_redone_not_skipped(tmp_path):
    make_dicom_series(tmp_path / "in" / "t2", n_slices=4, rows=12, cols=10)
    out, opts, model = tmp_path / "out", UpscaleOptions(), tiny_model(1, 2)
    assert upscale_many(tmp_path / "in", out, options=opts, model=model).count("ok") == 1
    series = next(out.rglob("*.dcm")).parent  # (a batch of one series writes into out/)
    files = sorted(series.glob("*.dcm"))
    good = {f.name: f.read_bytes() for f in files}
    _cut(files[2], 24 * 20 * 2 // 2)  # half the pixel data: preamble and header intact
    cut = pydicom.dcmread(files[2])  # (pydicom reads it without an error, with fewer bytes)
    assert len(cut.PixelData) < cut.Rows * cut.Columns * 2
    again = upscale_many(tmp_path / "in", out, options=opts, model=model)
    assert again.count("ok") == 1 and again.count("skipped") == 0
    for f in sorted(series.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        assert len(ds.PixelData) == ds.Rows * ds.Columns * 2 and ds.Rows == 24
    # the series was written anew (new UIDs); its pixels are those of the first run
    redone = {f.name: pydicom.dcmread(f).pixel_array for f in sorted(series.glob("*.dcm"))}
    for name, data in good.items():
        first = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).pixel_array
        assert np.array_equal(first, redone[name])
    assert upscale_many(tmp_path / "in", out, options=opts, model=model).count("skipped") == 1


@pytest.mark.parametrize("name", ["a.nii", "b.nii.gz"])
def test_a_nifti_output_cut_short_is_redone_and_a_users_file_kept(tmp_path, name):
    folder = tmp_path / "in"
    folder.mkdir()
    make_nifti(folder / name, shape=(14, 12, 5))
    out, opts, model = tmp_path / "out", UpscaleOptions(), tiny_model(1, 2)
    assert upscale_many(folder, out, options=opts, model=model).count("ok") == 1
    good = nib.load(out / name).get_fdata()
    _cut(out / name, 200)  # an uncompressed file now fails the header-vs-size check
    assert nifti_output_check(out / name, folder / name, 2)[0] == "damaged"
    again = upscale_many(folder, out, options=opts, model=model)
    assert again.count("ok") == 1 and np.array_equal(nib.load(out / name).get_fdata(), good)
    mine = tmp_path / ("mine" + name[1:])  # a user's own NIfTI file in its place is not ours
    make_nifti(mine, shape=(6, 6, 3))
    shutil.copyfile(mine, out / name)
    kept = upscale_many(folder, out, options=opts, model=model)
    assert kept.count("failed") == 1 and "output exists" in kept.failed[0].error
    assert (out / name).read_bytes() == mine.read_bytes()


def _records(folder: Path) -> dict[str, dict]:
    lines = (folder / "sr-domains-run.jsonl").read_text().splitlines()
    return {Path(r["output"]).name: r for r in map(json.loads, lines)}


def test_the_sequential_geotiff_batch_keeps_a_run_manifest_and_redoes_a_cut_short_output(
    tmp_path,
):
    """The sequential GeoTIFF batch (the CLI's folder run, ``geo.upscale_many``) records what it
    did in a run manifest, as the batch runner does: a TIFF of its own cut too short for its
    tags is then known as ours (other bytes than recorded) and redone, with the first run's
    pixels; a user's file in its place is still refused untouched."""
    pytest.importorskip("rasterio")
    import rasterio

    from sr_domains.errors import UnsafeOutputError
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.run_manifest import file_sha256
    from sr_domains.testing.geo import make_geotiff

    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=40, height=30, count=1)
    make_geotiff(folder / "b.tif", width=24, height=20, count=1)
    out, model = tmp_path / "out", tiny_model(1, 2)
    assert len(geo_many(folder, out, model=model)) == 2
    first = _records(out)
    assert {n: r["status"] for n, r in first.items()} == {"a.tif": "ok", "b.tif": "ok"}
    assert first["a.tif"]["output_sha256"] == file_sha256([out / "a.tif"])
    assert first["a.tif"]["model"] and first["a.tif"]["domain"] == "geotiff"
    with rasterio.open(out / "a.tif") as ds:
        good = ds.read()
    _cut(out / "a.tif", (out / "a.tif").stat().st_size - 64)  # the TIFF header only
    assert geo_many(folder, out, model=model) == [out / "a.tif"]  # redone; b.tif skipped
    with rasterio.open(out / "a.tif") as ds:
        assert np.array_equal(ds.read(), good)
    again = _records(out)
    assert again["a.tif"]["status"] == "ok" and again["b.tif"]["status"] == "skipped"
    assert again["b.tif"]["output_sha256"] == first["b.tif"]["output_sha256"]
    assert geo_many(folder, out, model=model) == []  # all complete now
    (out / "a.tif").write_text("my notes")  # a user's file (no TIFF): not ours to replace
    with pytest.raises(UnsafeOutputError, match="never replaced, even with --overwrite") as err:
        geo_many(folder, out, model=model)
    assert "cut short" not in str(err.value) and (out / "a.tif").read_text() == "my notes"


def test_unreadable_outputs_are_refused_with_a_hint_only_when_they_look_like_ours(tmp_path):
    """Without a run manifest (outputs of an older version, or a folder copied without it) a
    TIFF cut too short for its tags cannot be told from a user's file: it is refused, untouched,
    and the message says what it may be. A file of another kind gets no such hint (nobody is
    told to delete their notes)."""
    pytest.importorskip("rasterio")
    from sr_domains.errors import OutputExistsError, UnsafeOutputError
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=40, height=30, count=1)
    out, model = tmp_path / "out", tiny_model(1, 2)
    geo_many(folder, out, model=model)
    (out / "sr-domains-run.jsonl").unlink()
    _cut(out / "a.tif", (out / "a.tif").stat().st_size - 64)  # the TIFF header only
    cut = (out / "a.tif").read_bytes()
    with pytest.raises(OutputExistsError, match="a TIFF that cannot be read") as err:
        geo_many(folder, out, model=model)
    assert "earlier output cut short" in str(err.value) and (out / "a.tif").read_bytes() == cut
    (out / "a.tif").write_text("my notes")
    with pytest.raises(UnsafeOutputError, match="never replaced") as err:
        geo_many(folder, out, model=model)
    assert "cut short" not in str(err.value) and (out / "a.tif").read_text() == "my notes"
    # NIfTI, as the batch runner reports it
    make_nifti(tmp_path / "v.nii", shape=(8, 8, 3))
    stub = tmp_path / "v_x2.nii"
    stub.write_bytes((348).to_bytes(4, "little") + bytes(60))
    status, why = nifti_output_check(stub, tmp_path / "v.nii", 2)
    assert status == "foreign" and "earlier output cut short" in why
    stub.write_text("my notes")
    assert nifti_output_check(stub, tmp_path / "v.nii", 2) == ("foreign", "")


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_a_users_file_where_the_run_manifest_goes_is_never_replaced(tmp_path, runner):
    """The run manifest is written next to the outputs: a user's file of that name is refused
    before any work, even with overwrite; a manifest of ours cut short is replaced."""
    pytest.importorskip("rasterio")
    from sr_domains.errors import UnsafeOutputError
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=20, count=1)
    model = tiny_model(1, 2)

    def run(overwrite: bool = False) -> None:
        if runner == "sequential":
            geo_many(folder, out, model=model, overwrite=overwrite)
        else:
            opts = UpscaleOptions(overwrite=overwrite)
            assert upscale_many(folder, out, options=opts, model=model).count("failed") == 0

    mine = out / "sr-domains-run.jsonl"
    for text in ("my notes\n", '{"title": "my own json lines"}\n'):
        mine.write_text(text)
        for overwrite in (False, True):
            with pytest.raises(UnsafeOutputError, match="not a run manifest") as err:
                run(overwrite)
            assert str(mine) in str(err.value) and "--overwrite does not" in str(err.value)
            assert mine.read_text() == text and not (out / "a.tif").exists()
    mine.write_text('{"input": "in/a.tif", "output": "ou')  # ours, cut short
    run()
    assert (out / "a.tif").is_file() and len(_records(out)) == 1
    run()  # and again: the manifest it wrote is ours
    assert _records(out)["a.tif"]["status"] == "skipped"


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_a_run_stopped_part_way_keeps_the_records_of_what_it_wrote(tmp_path, monkeypatch, runner):
    """Each task's record is appended to the run manifest as the task ends: a batch stopped
    part-way (Ctrl-C here; a killed job alike) leaves the checksum of every output it wrote,
    so the next run knows one of them cut short afterwards as its own and redoes it (without
    the record it is refused as a possible user's file), and skips the intact ones."""
    pytest.importorskip("rasterio")
    import rasterio

    from sr_domains import distributed
    from sr_domains.geo import batch as geo_batch
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.run_manifest import file_sha256
    from sr_domains.testing.geo import make_geotiff

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name, w in (("a.tif", 40), ("b.tif", 24), ("c.tif", 32)):
        make_geotiff(folder / name, width=w, height=20, count=1)
    model = tiny_model(1, 2)

    def run() -> list[str]:
        if runner == "sequential":
            return sorted(p.name for p in geo_many(folder, out, model=model))
        report = upscale_many(folder, out, options=UpscaleOptions(), model=model)
        return sorted(Path(r.task.dst).name for r in report.results if r.status == "ok")

    # stop the first run when it reaches c.tif, as Ctrl-C there would
    target, fn = (
        (geo_batch, "write_geotiff") if runner == "sequential" else (distributed, "run_task")
    )
    real = getattr(target, fn)

    def stop_at_c(first, *args, **kwargs):
        src = first if runner == "sequential" else first.src  # write_geotiff(src, ...) / a Task
        if Path(src).name == "c.tif":
            raise KeyboardInterrupt
        return real(first, *args, **kwargs)

    monkeypatch.setattr(target, fn, stop_at_c)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif", "sr-domains-run.jsonl"]
    kept = _records(out)
    assert sorted(kept) == ["a.tif", "b.tif"]
    assert kept["a.tif"]["output_sha256"] == file_sha256([out / "a.tif"])
    with rasterio.open(out / "a.tif") as ds:
        good = ds.read()
    _cut(out / "a.tif", (out / "a.tif").stat().st_size - 64)  # the TIFF header only
    assert run() == ["a.tif", "c.tif"]  # a redone (known by its record), b skipped, c written
    with rasterio.open(out / "a.tif") as ds:
        assert np.array_equal(ds.read(), good)
    final = _records(out)
    assert {n: r["status"] for n, r in final.items()} == {
        "a.tif": "ok",
        "b.tif": "skipped",
        "c.tif": "ok",
    }
    lines = (out / "sr-domains-run.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the end of a run writes the whole manifest again, once per task


def test_a_record_cut_short_by_a_kill_leaves_the_manifest_ours(tmp_path):
    """A run killed while appending a record leaves its last line cut short: the manifest is
    still a run manifest (its folder's series stays ours), the later record of an output wins
    over the earlier one, and a file that is no manifest is not taken for one."""
    from sr_domains.output_checks import is_run_manifest
    from sr_domains.run_manifest import recorded_sha

    m = tmp_path / "sr-domains-run.jsonl"
    rec = '{{"input": "in/a.tif", "output": "out/a.tif", "status": "ok", "output_sha256": "{}"}}'
    m.write_text(rec.format("1" * 64) + "\n" + rec.format("2" * 64) + "\n" + '{"input": "in/b')
    assert is_run_manifest(m)
    assert recorded_sha(Path("in/a.tif"), tmp_path / "a.tif") == "2" * 64
    m.write_text(rec.format("1" * 64) + "\n" + '{"title": "my own json lines"}\n')
    assert not is_run_manifest(m)
    m.write_text(rec.format("1" * 64) + "\n" + "my notes\n")
    assert not is_run_manifest(m)
    m.write_text('{"input": "in/b')
    assert is_run_manifest(m)


def test_a_record_appended_after_one_cut_short_starts_a_line_of_its_own(tmp_path):
    """The next run appends its records after a line a kill cut short: each on its own line,
    so neither is lost and the manifest stays ours."""
    from sr_domains.batch_tasks import Task, TaskResult
    from sr_domains.output_checks import is_run_manifest
    from sr_domains.run_manifest import append_run_record, recorded_sha

    m = tmp_path / "sr-domains-run.jsonl"
    m.write_text('{"input": "in/b.tif", "outp')
    task = Task("geotiff", "in/a.tif", str(tmp_path / "a.tif"))
    append_run_record(tmp_path, TaskResult(task, "ok", sha256="3" * 64))
    append_run_record(tmp_path, TaskResult(task, "ok", sha256="4" * 64))
    lines = m.read_text().splitlines()
    assert lines[0] == '{"input": "in/b.tif", "outp' and len(lines) == 3
    assert is_run_manifest(m) and recorded_sha(Path("in/a.tif"), tmp_path / "a.tif") == "4" * 64
    link = tmp_path / "sub"
    link.mkdir()
    (link / "sr-domains-run.jsonl").symlink_to(tmp_path / "elsewhere.txt")
    append_run_record(link, TaskResult(task, "ok", sha256="5" * 64))  # never through a link
    assert not (tmp_path / "elsewhere.txt").exists()
