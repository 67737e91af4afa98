"""Output safety (issue: data loss with --overwrite): real files, real subprocesses, no mocks of
the file system. Every writer goes through sr_domains.io_safety."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains import io_safety  # noqa: E402
from sr_domains.cli import _os_error_text, main  # noqa: E402
from sr_domains.errors import (  # noqa: E402
    OutputBusyError,
    OutputExistsError,
    UnsafeOutputError,
)
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.medical import upscale_dicom_series, upscale_nifti  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series, make_nifti  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _temps(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.rglob(".*") if any(t in p.name for t in (".sr-tmp-", ".sr-old-"))
    )


def _study(tmp_path: Path) -> tuple[Path, Path]:
    """study/series (5 DICOM files) plus an unrelated file in study/."""
    study = tmp_path / "study"
    make_dicom_series(study / "series", n_slices=5, rows=8, cols=8)
    (study / "notes.txt").write_text("radiologist notes")
    return study, study / "series"


# -- output = input, output = parent, output inside input: every domain -------------------------
def test_dicom_output_equal_to_input_is_refused_even_with_overwrite(tmp_path):
    study, series = _study(tmp_path)
    before = _tree(study)
    for dst in (series, study, series / "sr", series / "sr" / "deeper"):
        with pytest.raises(UnsafeOutputError):
            upscale_dicom_series(series, dst, model=interp_model(2), overwrite=True)
        assert _tree(study) == before  # nothing deleted, nothing added
    assert not (series / "sr").exists()


def test_dicom_cli_parent_of_input_keeps_the_whole_study(tmp_path, capsys):
    study, series = _study(tmp_path)
    before = _tree(study)
    assert main(["upscale", str(series), str(study), "--overwrite", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "holds the input" in err and err.count("\n") == 1
    assert _tree(study) == before


def test_nifti_output_equal_to_input_is_refused(tmp_path):
    src = make_nifti(tmp_path / "t1.nii.gz", shape=(8, 8, 3))
    before = src.read_bytes()
    with pytest.raises(UnsafeOutputError, match="replace the input"):
        upscale_nifti(src, src, model=interp_model(2), overwrite=True)
    link = tmp_path / "link.nii.gz"
    link.symlink_to(src)
    with pytest.raises(UnsafeOutputError, match="replace the input"):
        upscale_nifti(link, src, model=interp_model(2), overwrite=True)
    hard = tmp_path / "hard.nii.gz"
    os.link(src, hard)
    with pytest.raises(UnsafeOutputError, match="replace the input"):
        upscale_nifti(src, hard, model=interp_model(2), overwrite=True)
    assert src.read_bytes() == before


def test_geotiff_output_equal_to_input_is_refused_also_through_the_cli(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    src = make_geotiff(tmp_path / "a" / "scene.tif")
    before = src.read_bytes()
    with pytest.raises(UnsafeOutputError):
        upscale_geotiff(
            src, tmp_path / "a" / ".." / "a" / "scene.tif", model=tiny_model(1, 2), overwrite=True
        )
    # a folder as output means "same name inside it": here that is the input itself
    assert main(["upscale", str(src), str(tmp_path / "a"), "--overwrite", "--no-progress"]) == 1
    assert "replace the input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_batch_output_folder_rules(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    files = [make_geotiff(scenes / f"s{i}.tif", seed=i) for i in range(2)]
    before = _tree(tmp_path)
    kw = {"model": tiny_model(1, 2), "overwrite": True}
    for out in (scenes, scenes / "sr", tmp_path):  # = input, inside input, parent of inputs
        with pytest.raises(UnsafeOutputError):
            upscale_many(scenes, out, **kw)
    with pytest.raises(UnsafeOutputError):  # a glob whose files lie in the output folder
        upscale_many(str(scenes / "*.tif"), scenes, **kw)
    assert _tree(tmp_path) == before
    written = upscale_many([str(f) for f in files], tmp_path / "out", **kw)
    assert [p.name for p in written] == ["s0.tif", "s1.tif"]


# -- existing folders ----------------------------------------------------------------------------
def test_existing_unrelated_folder_is_never_replaced(tmp_path):
    _study(tmp_path)
    series = tmp_path / "study" / "series"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(UnsafeOutputError, match="did not write"):
        upscale_dicom_series(series, mine, model=interp_model(2), overwrite=True)
    assert _tree(mine) == {"thesis.docx": b"years of work"}


def test_our_folder_with_a_foreign_file_added_is_not_replaced(tmp_path):
    _study(tmp_path)
    series = tmp_path / "study" / "series"
    out = tmp_path / "sr"
    files = upscale_dicom_series(series, out, model=interp_model(2))
    manifest = json.loads((out / io_safety.MANIFEST).read_text())
    assert manifest["files"] == sorted(f.name for f in files)
    source_uid = pydicom.dcmread(next(series.iterdir())).SeriesInstanceUID
    assert manifest["series_uid"] == source_uid
    assert manifest["sources"] == [str(series)]
    (out / "report.pdf").write_bytes(b"added by the user")
    with pytest.raises(UnsafeOutputError, match="report.pdf"):
        upscale_dicom_series(series, out, model=interp_model(2), overwrite=True)
    assert (out / "report.pdf").exists()
    (out / "report.pdf").unlink()
    again = upscale_dicom_series(series, out, model=interp_model(2), overwrite=True)
    assert sorted(p.name for p in out.glob("*.dcm")) == sorted(p.name for p in again)


def test_dicom_output_onto_a_regular_file(tmp_path, capsys):
    _study(tmp_path)
    target = tmp_path / "out"
    target.write_text("a file")
    code = main(["upscale", str(tmp_path / "study" / "series"), str(target), "--overwrite"])
    assert code == 1
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "a file"


def test_output_folders_honour_the_umask(tmp_path):
    _study(tmp_path)
    old = os.umask(0o022)
    try:
        out = tmp_path / "sr"
        upscale_dicom_series(tmp_path / "study" / "series", out, model=interp_model(2))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755


# -- atomic folder replacement --------------------------------------------------------------------
def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("A")
    (b / "x").write_text("B")
    if not io_safety.exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not supported here")
    assert (a / "x").read_text() == "B" and (b / "x").read_text() == "A"


@pytest.mark.parametrize("use_exchange", [True, False])
def test_failure_between_swap_steps_keeps_the_old_output(tmp_path, monkeypatch, use_exchange):
    _study(tmp_path)
    series = tmp_path / "study" / "series"
    out = tmp_path / "sr"
    upscale_dicom_series(series, out, model=interp_model(2))
    before = _tree(out)
    if not use_exchange:
        monkeypatch.setattr(io_safety, "exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def failing(a, b):
        calls.append((a, b))
        if len(calls) == 2:  # after the old output moved aside, before the new one moves in
            raise OSError(5, "injected failure")
        return real_rename(a, b)

    def failing_exchange(a, b):
        raise OSError(5, "injected failure", str(b))

    if use_exchange:
        monkeypatch.setattr(io_safety, "exchange", failing_exchange)
    else:
        monkeypatch.setattr(io_safety.os, "rename", failing)
    with pytest.raises(OSError, match="injected failure"):
        upscale_dicom_series(series, out, model=interp_model(2), overwrite=True)
    monkeypatch.undo()
    assert _tree(out) == before  # the previous output, complete, under its name
    assert _temps(tmp_path) == []


CRASH = textwrap.dedent(
    """
    import os, sys
    from sr_domains import io_safety
    from sr_domains.medical import upscale_dicom_series
    from sr_domains.testing.medical import interp_model

    io_safety.exchange = lambda a, b: False  # the two-rename fallback
    real, calls = os.rename, []

    def crash(a, b):
        calls.append(b)
        if len(calls) == 2:
            os._exit(9)  # killed between the two renames
        return real(a, b)

    io_safety.os.rename = crash
    upscale_dicom_series(sys.argv[1], sys.argv[2], model=interp_model(2), overwrite=True)
    """
)


def test_crash_between_the_two_renames_is_repaired_by_the_next_run(tmp_path):
    _study(tmp_path)
    series = tmp_path / "study" / "series"
    out = tmp_path / "sr"
    upscale_dicom_series(series, out, model=interp_model(2))
    before = _tree(out)
    r = subprocess.run([sys.executable, "-c", CRASH, str(series), str(out)], cwd=REPO)
    assert r.returncode == 9
    assert not out.exists()  # the crash left the final name missing ...
    assert any(".sr-old-" in n for n in os.listdir(tmp_path))
    with pytest.raises(OutputExistsError):  # ... and the next run restores it first
        upscale_dicom_series(series, out, model=interp_model(2))
    assert _tree(out) == before
    assert _temps(tmp_path) == []


# -- interrupted runs and concurrency ------------------------------------------------------------
SIGTERM_SCRIPT = textwrap.dedent(
    """
    import importlib, os, signal, sys
    from sr_domains.cli import main

    module, owner, name = sys.argv[3:6]
    target = importlib.import_module(module)
    if owner:
        target = getattr(target, owner)
    real = getattr(target, name)

    def kill_self(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would, mid-write
        return real(*args, **kwargs)

    setattr(target, name, kill_self)
    sys.exit(main(["upscale", sys.argv[1], sys.argv[2], "--no-progress", "--tile", "16"]))
    """
)


@pytest.mark.parametrize(
    ("domain", "patch"),
    [
        ("geotiff", ("sr_domains.geo.job", "", "write_block")),
        ("nifti", ("sr_domains.medical.nifti_write", "PlaneWriter", "write")),
        ("dicom", ("sr_domains.medical.dicom_write", "", "save_derived")),
    ],
)
def test_sigterm_leaves_no_temporary_files(tmp_path, domain, patch):
    (tmp_path / "in").mkdir()
    if domain == "geotiff":
        src, dst = make_geotiff(tmp_path / "in" / "a.tif", width=40, height=40), tmp_path / "o.tif"
    elif domain == "nifti":
        src, dst = (
            make_nifti(tmp_path / "in" / "a.nii.gz", shape=(16, 16, 4)),
            tmp_path / "o.nii.gz",
        )
    else:
        make_dicom_series(tmp_path / "in", n_slices=3, rows=8, cols=8)
        src, dst = tmp_path / "in", tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(src), str(dst), *patch],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 143, r.stderr
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no temp, no lock


CONCURRENT = textwrap.dedent(
    """
    import subprocess, sys
    import sr_domains.geo.job as u
    from sr_domains.cli import main

    real, ran = u.write_block, []

    def second_run_meanwhile(*args, **kwargs):
        if not ran:  # we hold the destination's lock now: start a competitor and wait for it
            ran.append(subprocess.run(
                [sys.executable, "-m", "sr_domains", "upscale", sys.argv[1], sys.argv[2],
                 "--no-progress"], capture_output=True, text=True))
        return real(*args, **kwargs)

    u.write_block = second_run_meanwhile
    code = main(["upscale", sys.argv[1], sys.argv[2], "--no-progress"])
    print("OTHER", ran[0].returncode, ran[0].stderr.strip().replace(chr(10), " | "))
    sys.exit(code)
    """
)


def test_two_concurrent_runs_one_wins_the_other_errors(tmp_path):
    src = make_geotiff(tmp_path / "a.tif", width=40, height=40, count=3)
    dst = tmp_path / "out" / "a_x2.tif"
    r = subprocess.run(
        [sys.executable, "-c", CONCURRENT, str(src), str(dst)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    other = r.stdout.strip().splitlines()[-1]
    assert other.startswith("OTHER 1 ")
    assert "another sr-domains run is writing this output" in other
    with rasterio.open(dst) as ds:
        assert ds.shape == (80, 80)
        assert np.isfinite(ds.read().astype(float)).all()
    assert sorted(p.name for p in dst.parent.iterdir()) == ["a_x2.tif"]


def test_lock_is_exclusive_and_released(tmp_path):
    dst = tmp_path / "x.tif"
    with io_safety.destination_lock(dst):
        code = (
            "import sys; from sr_domains import io_safety\n"
            "try:\n"
            "    with io_safety.destination_lock(sys.argv[1]): sys.exit(0)\n"
            "except io_safety.OutputBusyError: sys.exit(3)\n"
        )
        r = subprocess.run([sys.executable, "-c", code, str(dst)], cwd=REPO)
        assert r.returncode == 3
    with io_safety.destination_lock(dst):  # released: can be taken again
        pass
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed_by_the_next_run(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(8, 8, 3))
    dst = tmp_path / "out.nii.gz"
    stale = [tmp_path / ".out.nii.gz.sr-tmp-99999-deadbeef.nii.gz", tmp_path / ".other.sr-tmp-1-x"]
    for p in stale:
        p.write_bytes(b"left by a killed run")
    upscale_nifti(src, dst, model=interp_model(2))
    assert not stale[0].exists()  # ours, for this destination
    assert stale[1].exists()  # another destination's: not touched
    assert nib.load(dst).shape == (16, 16, 3)


def test_busy_error_type():
    assert issubclass(OutputBusyError, BlockingIOError)


# -- full disk and read-only folders (real tmpfs mounts where the test may mount) ----------------
@pytest.fixture
def small_tmpfs(tmp_path):
    def mount(options: str) -> Path:
        mnt = tmp_path / f"mnt-{len(mounted)}"
        mnt.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], capture_output=True
        )
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(mnt)
        return mnt

    mounted: list[Path] = []
    yield mount
    for m in mounted:
        subprocess.run(["umount", str(m)], capture_output=True)


@pytest.mark.parametrize("domain", ["geotiff", "nifti", "dicom"])
def test_full_disk_gives_one_error_line_and_no_file(tmp_path, small_tmpfs, capsys, domain):
    disk = small_tmpfs("size=96k")
    if domain == "geotiff":
        src = make_geotiff(tmp_path / "in.tif", width=160, height=160, count=3, dtype="uint16")
        dst = disk / "o.tif"
    elif domain == "nifti":
        src, dst = (
            make_nifti(tmp_path / "in.nii", shape=(64, 64, 8), dtype="float32"),
            disk / "o.nii",
        )
    else:
        make_dicom_series(tmp_path / "in", n_slices=6, rows=48, cols=48)
        src, dst = tmp_path / "in", disk / "o"
    assert main(["upscale", str(src), str(dst), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"sr-domains: error: {dst}: No space left on device"
    assert [line for line in err if line.startswith("sr-domains")] == err[-1:]
    assert os.listdir(disk) == []


def test_read_only_folder_fails_before_any_work(tmp_path, small_tmpfs, capsys):
    ro = small_tmpfs("ro,size=64k")
    src = make_nifti(tmp_path / "in.nii.gz", shape=(8, 8, 3))
    assert main(["upscale", str(src), str(ro / "o.nii.gz"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == f"sr-domains: error: {ro / 'o.nii.gz'}: cannot write in {ro} (read-only file system)"
    )


# -- hostile and broken inputs -------------------------------------------------------------------
def _hostile_nifti(path: Path, shape=(4000, 4000, 200)) -> Path:
    img = nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4))
    nib.save(img, path)
    raw = bytearray(nib.openers.Opener(str(path)).read())
    hdr = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(raw)))
    hdr.set_data_shape(shape)
    out = __import__("io").BytesIO()
    hdr.write_to(out)
    raw[: len(out.getvalue())] = out.getvalue()
    with nib.openers.Opener(str(path), "wb") as f:
        f.write(bytes(raw))
    return path


@pytest.mark.parametrize("name", ["hostile.nii.gz", "hostile.nii"])
def test_hostile_nifti_header_is_refused_before_allocation(tmp_path, name):
    src = _hostile_nifti(tmp_path / name)
    assert src.stat().st_size < 200_000
    with pytest.raises(Exception, match=r"4000x4000x200 int16 voxels") as info:
        upscale_nifti(src, tmp_path / "o.nii.gz", model=interp_model(2))
    assert str(src) in str(info.value)
    assert not (tmp_path / "o.nii.gz").exists()


def test_cli_validates_options_before_creating_anything(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif")
    out = tmp_path / "new" / "o.tif"
    for extra, msg in (
        (["--tile", "64", "--overlap", "100"], "smaller than the tile"),
        (["--batch-size", "0"], "batch size must be >= 1"),
        (["--tile", "2"], "tile must be >= 8"),
    ):
        assert main(["upscale", str(src), str(out), *extra]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_architecture_name_without_weights_is_an_error(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif")
    assert main(["upscale", str(src), str(tmp_path / "o.tif"), "--model", "edsr"]) == 2
    err = capsys.readouterr().err
    assert "'edsr' is an architecture without weights" in err and "sr-lite-rgb-x2" in err
    assert main(["upscale", str(src), str(tmp_path / "o.tif"), "--model", "nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nonexistent'" in err and "random weights" not in err
    assert list(tmp_path.iterdir()) == [src]


def test_glob_matching_nothing(tmp_path, capsys):
    assert main(["upscale", str(tmp_path / "*.tif"), str(tmp_path / "out")]) == 1
    assert "no file matches this pattern" in capsys.readouterr().err


def test_broken_pipe_is_quiet(tmp_path):
    src = make_geotiff(tmp_path / "in.tif")
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        r = subprocess.run(
            [sys.executable, "-m", "sr_domains", "info", str(src)],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert r.returncode == 141
    assert r.stderr == ""


class _FullDisk:
    """A binary file object that runs out of space after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def write(self, data) -> int:
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)

    def tell(self) -> int:
        return 0

    def seek(self, *args) -> int:
        return 0

    def flush(self) -> None:
        pass


def test_a_full_disk_inside_pydicom_pixel_data_still_names_the_output(tmp_path, capsys):
    # pydicom re-raises an error while writing an element as a bare copy ("With tag (7FE0,0010)
    # got exception: [Errno 28] ...", errno None); the output's error must still be ENOSPC.
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with pytest.raises(OSError) as bare:
        pydicom.dcmwrite(_FullDisk(len(ds.PixelData) // 2 + 2048), ds)
    assert bare.value.errno is None and "7FE0,0010" in str(bare.value)  # what pydicom does

    dst = tmp_path / "o.dcm"
    with pytest.raises(OSError) as info, io_safety.atomic_output(dst, [], kind="file"):
        pydicom.dcmwrite(_FullDisk(len(ds.PixelData) // 2 + 2048), ds)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(dst))
    assert os.listdir(tmp_path) == []
    assert _os_error_text(bare.value) == "No space left on device"


def test_weights_checksum_is_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    """Batches ask for the weights' checksum per task and per existing output: it is read once
    per version of the file, and again once the file is saved anew (atomic rename)."""
    import sr_domains.io_safety as io
    from sr_domains.checkpoint import save_checkpoint
    from sr_domains.models import create_model

    w = tmp_path / "w.safetensors"
    save_checkpoint(create_model("srcnn", in_channels=1, scale=2), w)
    reads = []
    real = io.sha256_file
    monkeypatch.setattr(io, "sha256_file", lambda p: reads.append(p) or real(p))
    first = [io.weights_sha256(w) for _ in range(3)]
    assert first == [real(w)] * 3 and len(reads) == 1
    save_checkpoint(create_model("srcnn", in_channels=1, scale=2), w, overwrite=True)
    assert io.weights_sha256(w) == real(w) != first[0] and len(reads) == 2


def test_an_output_that_is_a_symbolic_link_is_replaced_with_a_warning(tmp_path, caplog):
    """``--overwrite`` onto a link to an output folder of ours replaces the link (never
    writes through it) and says so; the folder it pointed to is left as it was."""
    import logging

    series = tmp_path / "series"
    make_dicom_series(series, n_slices=3, rows=16, cols=16)
    real = tmp_path / "real_out"
    upscale_dicom_series(series, real, model=interp_model(2))
    before = _tree(real)
    link = tmp_path / "link_out"
    link.symlink_to(real)
    with caplog.at_level(logging.WARNING):
        upscale_dicom_series(series, link, model=interp_model(2), overwrite=True)
    assert link.is_dir() and not link.is_symlink()
    assert _tree(real) == before
    assert f"{link}: a symbolic link (to {real})" in caplog.text
