"""Scale out on Dask (real LocalCluster with 2 worker processes) and the xarray API."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed")
rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")
rioxarray = pytest.importorskip("rioxarray")

from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import RUN_MANIFEST, plan_tasks, upscale_many  # noqa: E402
from sr_domains.errors import ConfigError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.split import row_bands, upscale_geotiff_split  # noqa: E402
from sr_domains.medical import read_dicom_volume  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402
from sr_domains.testing.models import KillOnceModel  # noqa: E402


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


def _batch(folder: Path) -> Path:
    folder.mkdir()
    for i in range(6):
        make_geotiff(folder / f"scene{i}.tif", width=48, height=40, count=1, seed=i)
    make_nifti(folder / "t1.nii.gz", shape=(16, 12, 4))
    make_dicom_series(folder / "study" / "t2", n_slices=3, rows=10, cols=8)
    (folder / "broken.tif").write_bytes(b"II*\x00 not really a GeoTIFF")
    return folder


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / RUN_MANIFEST).read_text().splitlines()]


def test_plan_covers_every_domain(tmp_path):
    src = _batch(tmp_path / "in")
    (src / "moved.nii.gz").symlink_to(tmp_path / "gone.nii.gz")  # a broken link is a task: it
    (src / ".hidden.tif").write_bytes(b"")  # fails with its own error; hidden names are skipped
    tasks = plan_tasks(src, tmp_path / "out")
    assert sorted(t.domain for t in tasks) == ["dicom"] + ["geotiff"] * 7 + ["nifti"] * 2
    (dicom,) = [t for t in tasks if t.domain == "dicom"]
    assert dicom.dst == str(tmp_path / "out" / "study_t2") and dicom.series_uid


def _why_different(a: str | None, b: str | None) -> str:
    """For a failing byte comparison of two GeoTIFFs: whether pixels, masks, tags and the
    layout differ (seen once under heavy load; this says where to look)."""
    if not a or not b or not a.endswith(".tif"):
        return f"{a} != {b}"
    with rasterio.open(a) as x, rasterio.open(b) as y:
        parts = {
            "pixels": np.array_equal(x.read(), y.read(), equal_nan=True),
            "masks": np.array_equal(x.read_masks(), y.read_masks()),
            "tags": x.tags() == y.tags(),
            "profile": x.profile == y.profile,
        }
        diff = {
            k: (x.tags().get(k), y.tags().get(k))
            for k in x.tags()
            if x.tags()[k] != y.tags().get(k)
        }
    return f"{a} vs {b}: equal {parts}; differing tags {diff}"


def test_batch_on_two_workers_survives_a_killed_worker_and_equals_sequential(tmp_path, client):
    src = _batch(tmp_path / "in")
    marker = tmp_path / "killed-once"
    model = KillOnceModel(BaseSRConfig(in_channels=1, scale=2), str(marker)).eval()
    marker.write_text("reference run: do not kill")
    # an explicit tile: the default one comes from a per-process memory probe, which gave one
    # Dask worker a different tile (4688 vs 5640) in 3 of ~30 loaded full runs; the pixels
    # were equal, only the SR_DOMAINS_TILE tag differed (see _why_different)
    opts = UpscaleOptions(tile=256)
    seq = upscale_many(src, tmp_path / "seq", options=opts, model=model)
    marker.unlink()  # the cluster run kills the first worker that runs the model (by its pid)
    par = upscale_many(src, tmp_path / "par", options=opts, model=model, client=client)
    assert marker.exists() and int(marker.read_text()) > 0  # a worker did die mid-task
    assert [r.status for r in par.results] == [r.status for r in seq.results]
    assert par.count("ok") == 8 and [r.task.src for r in par.failed] == [str(src / "broken.tif")]
    for a, b in zip(seq.results, par.results):
        if a.task.domain != "dicom":  # DICOM outputs get new UIDs and timestamps each run
            assert a.sha256 == b.sha256, _why_different(a.task.dst, b.task.dst)
    va, aa, _ = read_dicom_volume(tmp_path / "seq" / "study_t2")
    vb, ab, _ = read_dicom_volume(tmp_path / "par" / "study_t2")
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_array_equal(aa, ab)
    rows = _manifest(tmp_path / "par")
    assert {r["status"] for r in rows} == {"ok", "failed"}
    bad = next(r for r in rows if r["status"] == "failed")
    assert "broken.tif" in bad["error"] and "not a readable raster" in bad["error"]
    ok = next(r for r in rows if r["domain"] == "geotiff" and r["status"] == "ok")
    assert len(ok["output_sha256"]) == 64 and ok["seconds"] > 0
    again = upscale_many(src, tmp_path / "par", options=opts, model=model, client=client)  # resume
    assert again.count("skipped") == 8 and again.count("ok") == 0


def test_huge_raster_split_equals_single_process(tmp_path, client):
    src = make_geotiff(
        tmp_path / "big.tif", width=150, height=700, count=3, dtype="uint16", nodata=0
    )
    model = tiny_model(3, 3)
    opts = UpscaleOptions(scale=3, tile=64)
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=model, scale=3, tile=64)
    assert len(row_bands(2100, 2, 512)) == 2
    out = upscale_geotiff_split(
        src, tmp_path / "split.tif", client=client, options=opts, model=model
    )
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        assert np.array_equal(a.read(), b.read())  # bit for bit
        assert np.array_equal(a.read_masks(), b.read_masks())
        assert a.tags() == b.tags() and a.transform == b.transform and a.crs == b.crs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif", "ref.tif", "split.tif"]


def test_split_raster_keeps_the_mask_of_nan_pixels_written_as_integers(tmp_path, client):
    """Float data without nodata written with an integer --dtype: the mask that marks its NaN
    pixels invalid is assembled from the parts like a source mask."""
    src = make_geotiff(tmp_path / "f.tif", width=60, height=700, dtype="float32", nan_fraction=0.1)
    model = tiny_model(1, 2)
    opts = UpscaleOptions(scale=2, tile=64, dtype="int16")
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=model, tile=64, dtype="int16")
    out = upscale_geotiff_split(
        src, tmp_path / "split.tif", client=client, options=opts, model=model
    )
    with rasterio.open(src) as s, rasterio.open(ref) as a, rasterio.open(out) as b:
        nan = np.repeat(np.repeat(np.isnan(s.read(1)), 2, 0), 2, 1)
        assert nan.any() and np.array_equal(b.read_masks(1) == 0, nan)
        assert np.array_equal(a.read(), b.read()) and np.array_equal(a.read_masks(), b.read_masks())


def test_cli_with_an_existing_scheduler(tmp_path, client, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        make_geotiff(folder / f"s{i}.tif", width=24, height=24, count=3, seed=i)
    addr = client.scheduler.address
    code = main(
        ["upscale", str(folder), str(tmp_path / "out"), "--scheduler", addr, "--no-progress"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "2 written, 0 already complete, 0 failed" in captured.err
    assert (tmp_path / "out" / RUN_MANIFEST).exists()
    shutil.copy(folder / "s0.tif", folder / "s9.tif")
    (folder / "s1.tif").write_bytes(b"damaged input")
    code = main(
        ["upscale", str(folder), str(tmp_path / "out"), "--scheduler", addr, "--no-progress"]
    )
    assert code == 1  # some files failed, as in a sequential batch (2: usage errors)
    err = capsys.readouterr().err
    assert (
        "failed: " in err and "s1.tif" in err and "1 written, 1 already complete, 1 failed" in err
    )


@pytest.mark.parametrize(
    ("how", "address", "said"),
    [("--scheduler", "notanaddress", "missing port"), ("env", "bogus://x", "unknown address")],
)
def test_a_malformed_scheduler_address_is_a_usage_error(
    tmp_path, capsys, monkeypatch, how, address, said
):
    """It printed a 40-line traceback (a ValueError from distributed), exit 1."""
    import dask
    import dask.array as darr

    before = dask.config.get("scheduler", None)
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "s0.tif", width=24, height=24)
    argv = ["upscale", str(folder), str(tmp_path / "out"), "--no-progress"]
    if how == "env":
        monkeypatch.setenv("SR_DOMAINS_SCHEDULER", address)
    else:
        argv += ["--scheduler", address]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a Dask scheduler address" in err[0] and said in err[0]
    assert "Traceback" not in err[0]
    # distributed's Client sets dask's scheduler before it parses the address: the refused
    # address must not leave every later lazy ``.compute()`` of the process asking for a
    # client that does not exist
    assert dask.config.get("scheduler", None) == before
    assert int(darr.ones(4, chunks=2).sum().compute()) == 4


def test_relative_paths_mean_the_callers_files_on_workers_elsewhere(tmp_path, client, monkeypatch):
    """The workers of an existing cluster run in their own working directory; a batch given
    relative inputs, output folder and weights still reads and writes the caller's files."""
    from sr_domains.checkpoint import save_checkpoint
    from sr_domains.models import create_model

    worker_cwds = set(client.run(os.getcwd).values())
    here = tmp_path / "caller"
    (here / "in").mkdir(parents=True)
    assert str(here) not in worker_cwds
    for i in range(2):
        make_geotiff(here / "in" / f"s{i}.tif", width=24, height=24, count=3, seed=i)
    save_checkpoint(create_model("srcnn", in_channels=3, scale=2), here / "w.safetensors")
    monkeypatch.chdir(here)
    opts = UpscaleOptions(scale=2, weights=Path("w.safetensors"), tile=16)
    report = upscale_many("in", "out", options=opts, client=client)
    assert [r.status for r in report.results] == ["ok", "ok"], [r.error for r in report.results]
    assert sorted(p.name for p in (here / "out").glob("*.tif")) == ["s0.tif", "s1.tif"]
    assert [r.task.src for r in report.results] == [
        str(Path("in") / "s0.tif"),
        str(Path("in") / "s1.tif"),
    ]
    for cwd in worker_cwds:  # nothing was read or written where the workers run
        assert not (Path(cwd) / "out").exists()
    ref = upscale_geotiff(
        here / "in" / "s0.tif", tmp_path / "ref.tif", weights=here / "w.safetensors", tile=16
    )
    split = upscale_geotiff_split(Path("in") / "s0.tif", "split.tif", client=client, options=opts)
    for out in (here / "out" / "s0.tif", here / split):  # one raster split across the workers
        with rasterio.open(ref) as a, rasterio.open(out) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    assert sorted(p.name for p in here.iterdir()) == ["in", "out", "split.tif", "w.safetensors"]


def test_dask_errors_name_outputs_as_the_user_gave_them(tmp_path, client, monkeypatch):
    (tmp_path / "in").mkdir()
    make_nifti(tmp_path / "in" / "t1.nii.gz", shape=(16, 12, 4))
    monkeypatch.chdir(tmp_path)
    first = upscale_many("in", "out", options=UpscaleOptions(scale=2), client=client)
    assert [r.status for r in first.results] == ["ok"]
    report = upscale_many(
        "in", "out", options=UpscaleOptions(scale=2, through_plane=True), client=client
    )
    (r,) = report.results
    assert r.status == "failed" and "made without --through-plane" in r.error
    assert str(Path("out") / "t1.nii.gz") in r.error and str(tmp_path) not in r.error


def test_weights_load_once_per_process_and_again_when_rewritten(tmp_path, monkeypatch):
    """A process (or worker) loads ``--weights`` once for all its tasks; a file rewritten in
    place (a retrained model) is loaded again, and provenance names what was used."""
    import sr_domains.checkpoint as ckpt
    from sr_domains.checkpoint import save_checkpoint
    from sr_domains.geo.output_spec import TAG_PREFIX
    from sr_domains.io_safety import sha256_file
    from sr_domains.models import create_model

    loads = []
    real_load = ckpt.load_checkpoint
    monkeypatch.setattr(
        ckpt, "load_checkpoint", lambda *a, **k: loads.append(a) or real_load(*a, **k)
    )
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / "a.tif", width=24, height=24, count=3)
    make_geotiff(tmp_path / "in" / "b.tif", width=24, height=24, count=3, seed=1)
    w = tmp_path / "w.safetensors"
    save_checkpoint(create_model("srcnn", in_channels=3, scale=2), w)
    opts = UpscaleOptions(scale=2, weights=w, tile=16)
    first = upscale_many(tmp_path / "in", tmp_path / "out1", options=opts)
    assert len(loads) == 1  # two tasks, one load
    sha1 = sha256_file(w)
    other = create_model("srcnn", in_channels=3, scale=2)
    with torch.no_grad():  # other weights, same architecture and file size
        for p in other.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_checkpoint(other, w, overwrite=True)
    second = upscale_many(tmp_path / "in", tmp_path / "out2", options=opts)
    sha2 = sha256_file(w)
    assert sha1 != sha2
    assert len(loads) == 2
    assert [r.weights_sha256 for r in first.results + second.results] == [sha1, sha1, sha2, sha2]
    again = upscale_many(tmp_path / "in", tmp_path / "out1", options=opts)  # made with sha1
    assert [r.status for r in again.results] == ["failed", "failed"]
    assert "made with other weights: an earlier w.safetensors" in again.results[0].error
    ref = upscale_geotiff(src, tmp_path / "ref.tif", weights=w, tile=16)
    with (
        rasterio.open(ref) as r,
        rasterio.open(tmp_path / "out1" / "a.tif") as a,
        rasterio.open(tmp_path / "out2" / "a.tif") as b,
    ):
        np.testing.assert_array_equal(b.read(), r.read())
        assert not np.array_equal(a.read(), b.read())
        assert a.tags()[f"{TAG_PREFIX}WEIGHTS_SHA256"] == sha1
        assert b.tags()[f"{TAG_PREFIX}WEIGHTS_SHA256"] == sha2


# -- xarray ----------------------------------------------------------------------------------------
def test_xarray_equals_upscale_geotiff_and_keeps_coordinates(tmp_path):
    from sr_domains.xarray import upscale

    src = make_geotiff(tmp_path / "a.tif", width=90, height=70, count=3, dtype="uint16", nodata=0)
    model = tiny_model(3, 2)
    ref = upscale_geotiff(src, tmp_path / "ref.tif", model=model, tile=32)
    out = upscale(rioxarray.open_rasterio(src), 2, model=model, tile=32)
    with rasterio.open(ref) as r:
        np.testing.assert_array_equal(out.values, r.read())
        assert out.rio.transform() == r.transform and out.rio.crs == r.crs
        assert out.rio.nodata == r.nodata
        np.testing.assert_allclose(out.x.values, [r.xy(0, i)[0] for i in range(r.width)])
        np.testing.assert_allclose(out.y.values, [r.xy(i, 0)[1] for i in range(r.height)])
    assert out.rio.bounds() == pytest.approx(rioxarray.open_rasterio(src).rio.bounds())


def test_xarray_refuses_masks_complex_and_a_scale_that_is_not_whole():
    import xarray as xr

    from sr_domains.xarray import upscale

    def da(values):
        return xr.DataArray(values, dims=("band", "y", "x"))

    model = tiny_model(1, 2)
    for values, message in [
        (np.ones((1, 6, 6), bool), "boolean"),
        (np.ones((1, 6, 6), np.complex64), "complex"),
        (np.zeros((1, 0, 6), np.float32), "empty"),
    ]:
        with pytest.raises(ConfigError, match=message):
            upscale(da(values), 2, model=model)
        with pytest.raises(ConfigError, match=message):  # lazy: refused before any compute
            upscale(da(values).chunk({"y": 3}), 2, model=model)
    ok = da(np.random.default_rng(0).random((1, 6, 6)).astype(np.float32))
    for scale in ("2", 2.5, True):
        with pytest.raises(ConfigError, match="scale must be a whole number"):
            upscale(ok, scale)
    assert upscale(ok, np.int64(2)).shape == (1, 12, 12)


@pytest.mark.parametrize(
    "decode",
    [{"masked": True}, {"masked": True, "chunks": {"x": 40, "y": 30}}, {"mask_and_scale": True}],
    ids=["masked", "masked-dask", "mask_and_scale"],
)
def test_decoded_integer_raster_stays_on_its_grid_and_writes_back_like_the_input(tmp_path, decode):
    """rioxarray's masked / mask_and_scale reading gives floats with NaN decoded from an int16
    grid (+ scale/offset): the output stays on that grid, equals the integer path's values,
    and ``to_raster`` writes int16, the nodata value and the scale/offset back."""
    from sr_domains.xarray import upscale

    src = make_geotiff(tmp_path / "a.tif", width=90, height=70, dtype="int16", nodata=-32768)
    with rasterio.open(src, "r+") as d:
        d.scales, d.offsets = (0.5,), (-3.0,)
    model = tiny_model(1, 2)
    ref = upscale(rioxarray.open_rasterio(src), 2, model=model, tile=32)  # the stored values
    out = upscale(rioxarray.open_rasterio(src, **decode), 2, model=model, tile=32)
    stored = ref.values.astype(np.float64)
    stored[stored == -32768] = np.nan
    scale, offset = (0.5, -3.0) if "mask_and_scale" in decode else (1.0, 0.0)
    np.testing.assert_allclose(out.values, stored * scale + offset, rtol=1e-6, atol=0)
    out.rio.to_raster(tmp_path / "o.tif")
    with rasterio.open(tmp_path / "o.tif") as o, rasterio.open(src) as i:
        assert o.dtypes == i.dtypes and o.nodata == i.nodata == -32768
        assert o.scales == i.scales and o.offsets == i.offsets
        np.testing.assert_array_equal(o.read(), ref.values)


def test_nodata_override_of_a_decoded_raster_is_written_back_as_stored(tmp_path):
    """``nodata=`` in decoded units marks that stored value invalid, as the integer path's
    ``nodata=`` does, and is written back as the stored nodata value."""
    from sr_domains.xarray import upscale

    src = make_geotiff(tmp_path / "a.tif", width=60, height=50, dtype="int16")  # no nodata
    with rasterio.open(src, "r+") as d:
        d.scales, d.offsets = (0.5,), (-3.0,)
    v = int(np.median(rioxarray.open_rasterio(src).values))  # a stored value that occurs
    model = tiny_model(1, 2)
    ref = upscale(rioxarray.open_rasterio(src), 2, model=model, nodata=v)  # integer path
    out = upscale(
        rioxarray.open_rasterio(src, mask_and_scale=True), 2, model=model, nodata=v * 0.5 - 3
    )
    out.rio.to_raster(tmp_path / "o.tif")
    with rasterio.open(tmp_path / "o.tif") as o:
        assert o.nodata == v
        np.testing.assert_array_equal(o.read(), ref.values)
    with pytest.raises(ConfigError, match="not on the stored grid"):
        upscale(rioxarray.open_rasterio(src, mask_and_scale=True), 2, model=model, nodata=0.25)


def test_decoded_array_with_a_zero_scale_factor_is_refused(tmp_path):
    from sr_domains.xarray import upscale

    src = make_geotiff(tmp_path / "a.tif", width=40, height=30, dtype="int16")
    da = rioxarray.open_rasterio(src, masked=True)
    da.encoding["scale_factor"] = 0.0  # corrupt metadata: every stored value decodes alike
    with pytest.raises(ConfigError, match="scale_factor 0.0"):
        upscale(da, 2, model=tiny_model(1, 2))


def test_chunked_dask_array_equals_the_in_memory_one(tmp_path):
    from sr_domains.xarray import upscale

    src = make_geotiff(tmp_path / "f.tif", width=90, height=70, dtype="float32", nan_fraction=0.05)
    model = tiny_model(1, 2)
    whole = upscale(rioxarray.open_rasterio(src), 2, model=model, tile=32)
    lazy = upscale(rioxarray.open_rasterio(src, chunks={"x": 40, "y": 30}), 2, model=model, tile=32)
    assert hasattr(lazy.data, "dask")  # nothing computed yet
    a, b = whole.values, lazy.values
    ok = np.isfinite(a)
    assert ok.sum() > 0.8 * ok.size and np.array_equal(ok, np.isfinite(b))
    np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=1e-5)
    lazy.rio.to_raster(tmp_path / "streamed.tif")
    with rasterio.open(tmp_path / "streamed.tif") as r:
        assert r.transform == whole.rio.transform() and r.shape == (140, 180)


def test_a_cut_short_geotiff_is_redone_but_a_users_file_is_not(tmp_path, client):
    """An output of ours cut too short to read its tags was "foreign" for ever (each rerun:
    "output exists"); the run manifest's checksum says it is ours. A user's own file in its
    place (not a TIFF) is still refused."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=40, height=36, count=3)
    out = tmp_path / "out"
    opts, model = UpscaleOptions(scale=2), tiny_model(3, 2)
    first = upscale_many(folder, out, options=opts, model=model, client=client)
    good = (out / "a.tif").read_bytes()
    again = upscale_many(folder, out, options=opts, model=model, client=client)
    assert again.count("skipped") == 1  # (the manifest now records the skipped output's sum)
    (out / "a.tif").write_bytes(good[: len(good) // 2])
    wrong = upscale_many(folder, out, options=opts, model=tiny_model(2, 2), client=client)
    assert wrong.count("failed") == 1  # a failed repair (here: a 2-band model) ...
    assert "output exists" not in wrong.failed[0].error
    redo = upscale_many(folder, out, options=opts, model=model, client=client)  # ... is retried
    assert redo.count("ok") == 1 and (out / "a.tif").read_bytes() == good
    (out / "a.tif").write_text("my notes")
    kept = upscale_many(folder, out, options=opts, model=model, client=client)
    assert kept.count("failed") == 1 and (out / "a.tif").read_text() == "my notes"
    assert first.count("ok") == 1


def test_a_recorded_geotiff_is_skipped_in_one_read_and_a_damaged_one_redone(
    tmp_path, client, monkeypatch
):
    """A finished output whose bytes are those the run manifest recorded is skipped without
    decoding its blocks again (its checksum is the one read); without the record, or with other
    bytes (a damaged block behind an intact header), every block is decoded as before."""
    import rasterio.io

    from sr_domains.batch_worker import run_task
    from sr_domains.distributed import Task

    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=64, height=48, count=3)
    out = tmp_path / "out"
    opts, model = UpscaleOptions(scale=2), tiny_model(3, 2)
    assert upscale_many(folder, out, options=opts, model=model, client=client).count("ok") == 1
    good = (out / "a.tif").read_bytes()
    (recorded,) = [r["output_sha256"] for r in _manifest(out)]
    reads = []
    real_read = rasterio.io.DatasetReader.read

    def counting_read(self, *args, **kwargs):
        reads.append(self.name)
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", counting_read)
    task = Task("geotiff", str(folder / "a.tif"), str(out / "a.tif"))
    skipped = run_task(task, opts, model)
    assert skipped.status == "skipped" and skipped.sha256 == recorded and reads == []
    (out / RUN_MANIFEST).rename(tmp_path / "kept.jsonl")  # no record: the blocks are decoded
    assert run_task(task, opts, model).status == "skipped" and len(reads) > 0
    (tmp_path / "kept.jsonl").rename(out / RUN_MANIFEST)
    monkeypatch.setattr(rasterio.io.DatasetReader, "read", real_read)
    with rasterio.open(out / "a.tif") as ds:  # a block in the middle, header left intact
        offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=2))
        size = int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=2))
    damaged = bytearray(good)
    damaged[offset : offset + size] = b"\xff" * size  # not a DEFLATE stream
    (out / "a.tif").write_bytes(bytes(damaged))
    redone = run_task(task, opts, model)
    assert redone.status == "ok" and (out / "a.tif").read_bytes() == good


def test_a_scheduler_that_cannot_be_reached_is_named(tmp_path, capsys):
    """The error said only ``Connection refused`` (after half a minute), not which address."""
    import dask

    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=20)
    address = "tcp://127.0.0.1:1"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["upscale", str(folder), str(tmp_path / "out"), "--scheduler", address, "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler {address} (from --scheduler)" in err
    assert not (tmp_path / "out").exists()
