"""DICOM series in ``--workers`` / ``--scheduler`` batches land where the sequential
``sr-domains upscale`` puts them (one series: into OUTPUT itself, not OUTPUT/<folder>), and such
an output resumes. Real pydicom files, a real Dask cluster, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")
rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import RUN_MANIFEST, plan_tasks  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import read_dicom_volume  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402

FAST = ["--device", "cpu", "--tile", "64", "--no-progress"]


@pytest.fixture(scope="module")
def scheduler(dask_client):
    return dask_client.scheduler.address


@pytest.fixture(autouse=True)
def _no_scheduler_env(monkeypatch):
    monkeypatch.delenv("SR_DOMAINS_SCHEDULER", raising=False)


def _series(folder: Path, seed: int = 0) -> str:
    files = make_dicom_series(folder, n_slices=3, rows=16, cols=16, seed=seed)
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)


def _tree(out: Path) -> list[str]:
    """The files of an output folder (the batch's own run manifest left out)."""
    return sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != RUN_MANIFEST
    )


def _upscale(src: Path, out: Path, *extra: str) -> int:
    return main(["upscale", str(src), str(out), *FAST, *extra])


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / RUN_MANIFEST).read_text().splitlines()]


def _same_as_sequential(src: Path, tmp_path: Path, *cluster: str, extra: tuple = ()) -> Path:
    seq, par = tmp_path / "seq", tmp_path / "par"
    assert _upscale(src, seq, *extra) == 0
    assert _upscale(src, par, *cluster, *extra) == 0
    assert _tree(par) == _tree(seq) and any(n.endswith(".dcm") for n in _tree(seq))
    va, aa, _ = read_dicom_volume(seq)
    vb, ab, _ = read_dicom_volume(par)
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_array_equal(aa, ab)
    return par


def test_series_folder_with_workers_writes_like_the_sequential_run(tmp_path):
    """`upscale study/t2 out --workers 2` wrote out/t2/IM*.dcm; sequentially out/IM*.dcm."""
    uid = _series(tmp_path / "study" / "t2")
    par = _same_as_sequential(tmp_path / "study" / "t2", tmp_path, "--workers", "2")
    (row,) = _manifest(par)
    assert row["output"] == str(par) and row["series_uid"] == uid and row["status"] == "ok"
    assert row["input"] == str(tmp_path / "study" / "t2")


def test_study_folder_with_one_series_writes_like_the_sequential_run(tmp_path, scheduler):
    _series(tmp_path / "study" / "t2")
    _same_as_sequential(tmp_path / "study", tmp_path, "--scheduler", scheduler)


def test_one_dicom_file_writes_like_the_sequential_run(tmp_path, scheduler):
    """A single DICOM file: sequentially a one-slice series in OUTPUT; the batch planner
    raised ValueError (relative_to of the file's folder)."""
    _series(tmp_path / "t2")
    _same_as_sequential(tmp_path / "t2" / "slice_001.dcm", tmp_path, "--scheduler", scheduler)


def test_series_option_picks_one_series_as_the_sequential_run_does(tmp_path, scheduler):
    """Two series: sequentially refused without --series, and --series UID writes that one
    into OUTPUT; the batch ignored --series (both series, in subfolders)."""
    study = tmp_path / "study"
    _series(study / "t1", seed=1)
    uid = _series(study / "t2", seed=2)
    assert _upscale(study, tmp_path / "refused") == 1
    par = _same_as_sequential(study, tmp_path, "--scheduler", scheduler, extra=("--series", uid))
    (row,) = _manifest(par)
    assert row["series_uid"] == uid and row["output"] == str(par)
    other = tmp_path / "nowhere"
    assert _upscale(study, other, "--scheduler", scheduler, "--series", "1.2.3") == 1
    assert not other.exists()


def test_several_series_keep_one_folder_each_named_after_theirs(tmp_path, scheduler):
    """(The sequential run refuses this folder: a batch of its own.) The manifest names each
    series' own folder as its input, not the study folder."""
    study = tmp_path / "study"
    uids = {_series(study / "t1", seed=1): "t1", _series(study / "t2", seed=2): "t2"}
    out = tmp_path / "out"
    assert _upscale(study, out, "--scheduler", scheduler) == 0
    assert {Path(n).parts[0] for n in _tree(out)} == {"t1", "t2"}
    for row in _manifest(out):
        name = uids[row["series_uid"]]
        assert row["input"] == str(study / name) and row["output"] == str(out / name)
        assert read_dicom_volume(out / name)[0].shape == (3, 32, 32)


def test_series_beside_other_inputs_gets_its_own_folder(tmp_path, scheduler):
    """A series beside NIfTI/GeoTIFF inputs cannot be OUTPUT itself (they are written into
    it): it keeps a folder named after its own. (Sequentially such a folder is refused with
    a GeoTIFF in it; with only a NIfTI beside it, the sequential run takes the series alone.)"""
    study = tmp_path / "study"
    _series(study / "t2")
    make_nifti(study / "vol.nii.gz", shape=(16, 12, 4))
    make_geotiff(study / "f.tif", width=16, height=16, count=1)
    out = tmp_path / "out"
    assert _upscale(study, out, "--scheduler", scheduler) == 0
    tree = _tree(out)
    assert "f.tif" in tree and "vol.nii.gz" in tree and "t2/IM00001.dcm" in tree


def test_domain_picks_the_inputs_of_a_batch_as_it_does_sequentially(tmp_path, scheduler):
    """``--domain`` was ignored with ``--workers``/``--scheduler``: every domain was run. Now
    the batch takes only that domain's inputs; ``--domain dicom`` on the folder writes its
    series into OUTPUT like the sequential ``--domain dicom`` run."""
    study = tmp_path / "study"
    _series(study / "t2")
    make_nifti(study / "vol.nii.gz", shape=(16, 12, 4))
    make_geotiff(study / "f.tif", width=16, height=16, count=1)
    cluster = ("--scheduler", scheduler)
    assert _upscale(study, tmp_path / "n", *cluster, "--domain", "nifti") == 0
    assert _tree(tmp_path / "n") == ["vol.nii.gz"]
    _same_as_sequential(study, tmp_path, *cluster, extra=("--domain", "dicom"))
    with pytest.raises(InputFileError, match="no DICOM input found"):
        plan_tasks(tmp_path / "n", tmp_path / "o", domain="dicom")


def test_a_series_written_into_output_resumes(tmp_path, scheduler):
    """OUTPUT is the series folder and holds the run manifest too: a rerun skips it, a
    damaged one (a slice gone) is redone, --overwrite replaces it, and a run manifest left by
    a run that failed does not make OUTPUT someone else's folder."""
    src = tmp_path / "t2"
    _series(src)
    out = tmp_path / "out"
    cluster = ("--scheduler", scheduler)
    (out).mkdir()
    failed = {"input": str(src), "output": str(out), "status": "failed", "error": "x"}
    (out / RUN_MANIFEST).write_text(json.dumps(failed) + "\n")  # (a failed earlier run's)
    assert _upscale(src, out, *cluster) == 0
    files = _tree(out)
    assert "IM00001.dcm" in files
    assert _upscale(src, out, *cluster) == 0
    assert [r["status"] for r in _manifest(out)] == ["skipped"]
    (out / "IM00002.dcm").unlink()
    assert _upscale(src, out, *cluster) == 0
    assert [r["status"] for r in _manifest(out)] == ["ok"] and _tree(out) == files
    assert _upscale(src, out, *cluster, "--overwrite") == 0
    assert [r["status"] for r in _manifest(out)] == ["ok"] and _tree(out) == files
    # a sequential --overwrite takes the batch's run manifest for ours, not a user's file
    assert _upscale(src, out, "--overwrite") == 0
    assert _tree(out) == files and not (out / RUN_MANIFEST).exists()
    (out / "notes.txt").write_text("mine")  # a user's file still makes the folder theirs
    assert _upscale(src, out, "--overwrite") != 0
    assert (out / "notes.txt").read_text() == "mine"


def test_plan_of_one_series_is_the_output_folder(tmp_path):
    study = tmp_path / "study"
    uid = _series(study / "t2")
    (task,) = plan_tasks(study, tmp_path / "out", "_x2")
    assert (task.dst, task.src, task.series_uid) == (str(tmp_path / "out"), str(study), uid)
    other = _series(study / "t1", seed=1)
    assert [t.dst for t in plan_tasks(study, tmp_path / "out", series_uid=other)] == [
        str(tmp_path / "out")
    ]
    with pytest.raises(InputFileError, match="no DICOM series"):
        plan_tasks(study, tmp_path / "out", series_uid="1.2.3")


def test_an_unreadable_file_fails_only_its_folder_and_sidecars_are_no_tasks(tmp_path, scheduler):
    """One unreadable file made every series under the batch input one failing task; now the
    healthy series runs. Files named by a glob that are not DICOM (world files, notes) are no
    tasks (they failed as "not a valid DICOM file")."""
    root = tmp_path / "in"
    _series(root / "study" / "t1", seed=1)
    files = make_dicom_series(root / "study" / "t2", n_slices=3, rows=16, cols=16)
    (root / "study" / "t2" / "broken.dcm").write_bytes(files[0].read_bytes()[:300])
    tasks = plan_tasks(root, tmp_path / "o")
    assert sorted(Path(t.dst).name for t in tasks) == ["study_t1", "study_t2"]
    out = tmp_path / "out"
    assert _upscale(root, out, "--scheduler", scheduler) != 0
    rows = {Path(r["output"]).name: r for r in _manifest(out)}
    assert rows["study_t1"]["status"] == "ok" and rows["study_t2"]["status"] == "failed"
    assert "broken.dcm" in rows["study_t2"]["error"]
    side = tmp_path / "side"
    side.mkdir()
    make_geotiff(side / "a.tif", width=16, height=16, count=1)
    (side / "a.tfw").write_text("1\n0\n0\n-1\n0\n0\n")
    (side / "notes.txt").write_text("mine")
    assert [t.domain for t in plan_tasks(str(side / "*"), tmp_path / "o2")] == ["geotiff"]


def test_a_series_directly_in_dot_is_named_after_the_folder(tmp_path, monkeypatch):
    here = tmp_path / "here"
    _series(here)
    make_nifti(here / "vol.nii.gz", shape=(16, 12, 4))
    monkeypatch.chdir(here)
    dsts = sorted(Path(t.dst).name for t in plan_tasks(".", tmp_path / "out"))
    assert dsts == ["here", "vol.nii.gz"]


def test_an_unreadable_dicom_file_fails_its_task_instead_of_vanishing(tmp_path, scheduler):
    """A truncated DICOM file under a batch folder made every series of that folder vanish from
    the plan: the run exited 0 with the NIfTI done and no word about the series. Now the
    series' task fails with the file's error, recorded in the run manifest."""
    root = tmp_path / "in"
    files = make_dicom_series(root / "study" / "t2", n_slices=3, rows=16, cols=16)
    (root / "study" / "t2" / "broken.dcm").write_bytes(files[0].read_bytes()[:300])
    make_nifti(root / "vol.nii.gz")
    out = tmp_path / "out"
    assert _upscale(root, out, "--scheduler", scheduler) != 0
    rows = {r["domain"]: r for r in _manifest(out)}
    assert rows["nifti"]["status"] == "ok"
    assert rows["dicom"]["status"] == "failed" and "broken.dcm" in rows["dicom"]["error"]


def test_dry_run_of_a_batch_honours_series(tmp_path, capsys):
    """``--dry-run --series UID --workers 2`` on a study of two series planned both series and
    failed on the other one; it now plans the chosen series, as the batch runs it."""
    study = tmp_path / "study"
    uid = _series(study / "t1", seed=1)
    _series(study / "t2")
    out = tmp_path / "out"
    args = ["--dry-run", "--series", uid]
    assert main(["upscale", str(study), str(out), *FAST, *args, "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert f"dicom: {study} -> {out} [would write]" in text and "1 output(s)" in text
    assert not out.exists()


def test_files_of_one_series_named_by_a_glob_are_refused(tmp_path):
    """``upscale 's/*.dcm' out --workers 2`` made every slice a derived series of its own."""
    from sr_domains.errors import ConfigError

    _series(tmp_path / "s")
    with pytest.raises(ConfigError, match="named one by one"):
        plan_tasks(str(tmp_path / "s" / "*.dcm"), tmp_path / "out")
    (one,) = plan_tasks(str(sorted((tmp_path / "s").glob("*.dcm"))[0]), tmp_path / "out")
    assert one.domain == "dicom"  # (one file alone is still its own input)
