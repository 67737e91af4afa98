"""Odd things at an output's name, single file and batch, sequential and on Dask:

* a named pipe (FIFO) is refused by its ``stat``, never opened (a run opening it waited for a
  writer for ever) and never replaced, ``--overwrite`` included;
* a folder named like a batch output (``out/a.tif/``) is refused (with ``--overwrite`` the
  Dask runner wrote ``out/a.tif/a.tif`` and reported success), never removed or written into;
  a single file upscaled into a folder it is given still goes inside it (documented);
* an existing output that cannot be read fails that file in one line in the sequential CLI
  batch, and the others run (it stopped the whole batch)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("rasterio")

from sr_domains.cli import main
from sr_domains.distributed import upscale_many as run_batch
from sr_domains.errors import UnsafeOutputError
from sr_domains.geo.batch import upscale_many
from sr_domains.geo.upscale import upscale_geotiff
from sr_domains.options import UpscaleOptions
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff

pytestmark = pytest.mark.usefixtures("one_thread")

FIFO_SAYS = "is a named pipe (FIFO), not a file; it is never opened or replaced"
FOLDER_SAYS = "is a folder where the batch writes an output file; it is never replaced"


class Fifo:
    """A named pipe whose opening is seen: a thread waits to write into it, so a run that
    opens it for reading gets an empty stream at once (not a hang), each time, and ``opened``
    is set."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path, self.ino = path, os.stat(path).st_ino
        self.opened, self._stop = threading.Event(), threading.Event()
        self._writer = threading.Thread(target=self._wait_for_readers, daemon=True)
        self._writer.start()

    def _wait_for_readers(self) -> None:
        while not self._stop.is_set():
            fd = os.open(self.path, os.O_WRONLY)  # (blocks until somebody opens it to read)
            if not self._stop.is_set():
                self.opened.set()
            os.close(fd)

    def check_untouched(self) -> None:
        """Still this FIFO, never opened by the run."""
        assert stat.S_ISFIFO(os.lstat(self.path).st_mode)
        assert os.lstat(self.path).st_ino == self.ino
        assert not self.opened.is_set(), f"the run opened {self.path}"

    def release(self) -> None:
        self._stop.set()
        if os.path.exists(self.path) and os.stat(self.path).st_ino == self.ino:
            os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))  # (wakes the writer)
        self._writer.join(timeout=5)


@pytest.fixture
def fifo() -> Iterator[Callable[[Path], Fifo]]:
    made: list[Fifo] = []

    def make(path: Path) -> Fifo:
        made.append(Fifo(path))
        return made[-1]

    yield make
    for f in made:
        f.release()


def _scenes(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        make_geotiff(folder / f"s{i}.tif", width=16, height=12, count=1, seed=i)
    return folder


def _volumes(folder: Path, n: int = 2) -> Path:
    from sr_domains.testing.medical import make_nifti

    folder.mkdir()
    for i in range(n):
        make_nifti(folder / f"v{i}.nii.gz", shape=(12, 10, 3))
    return folder


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_fifo_at_a_single_output_is_refused_unopened(tmp_path, fifo, overwrite):
    src = make_geotiff(tmp_path / "in.tif", width=16, height=12, count=1)
    pipe = fifo(tmp_path / "out.tif")
    with pytest.raises(UnsafeOutputError, match=re.escape(FIFO_SAYS)):
        upscale_geotiff(src, pipe.path, model=tiny_model(1, 2), overwrite=overwrite)
    pipe.check_untouched()


def test_a_fifo_at_a_nifti_output_is_refused_unopened(tmp_path, fifo):
    pytest.importorskip("nibabel")
    from sr_domains.medical.nifti_upscale import upscale_nifti

    (src,) = _volumes(tmp_path / "in", 1).iterdir()
    pipe = fifo(tmp_path / "out.nii.gz")
    for overwrite in (False, True):
        with pytest.raises(UnsafeOutputError, match=re.escape(FIFO_SAYS)):
            upscale_nifti(src, pipe.path, overwrite=overwrite)
    pipe.check_untouched()


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_fifo_in_a_sequential_geotiff_batch_stops_it_before_any_work(tmp_path, fifo, overwrite):
    src, out = _scenes(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    pipe = fifo(out / "s0.tif")
    said = "s0.tif: a named pipe (FIFO); never replaced, even with --overwrite"
    with pytest.raises(UnsafeOutputError, match=re.escape(said)):
        upscale_many(src, out, model=tiny_model(1, 2), overwrite=overwrite)
    pipe.check_untouched()
    assert sorted(p.name for p in out.iterdir()) == ["s0.tif"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_fifo_fails_its_own_task_of_the_batch_runner(tmp_path, fifo, overwrite):
    """The batch runner in this process (NIfTI folders from the CLI; Dask's task function)."""
    pytest.importorskip("nibabel")
    src, out = _volumes(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    pipe = fifo(out / "v0.nii.gz")
    options = UpscaleOptions(scale=2, overwrite=overwrite)
    report = run_batch(src, out, options=options, model=tiny_model(1, 2))
    by_name = {Path(r.task.dst).name: r for r in report.results}
    assert by_name["v0.nii.gz"].status == "failed"
    assert by_name["v0.nii.gz"].error == f"{pipe.path}: {FIFO_SAYS}, even with --overwrite " + (
        "(outputs are renamed into place): remove it yourself or choose another name"
    )
    assert by_name["v1.nii.gz"].status == "ok"
    pipe.check_untouched()


def test_a_fifo_fails_its_own_task_on_dask(tmp_path, fifo):
    distributed = pytest.importorskip("distributed")
    src, out = _scenes(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    pipe = fifo(out / "s1.tif")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        report = run_batch(src, out, model=tiny_model(1, 2), client=client)
    assert [r.status for r in report.results] == ["ok", "failed"]
    assert FIFO_SAYS in report.results[1].error
    pipe.check_untouched()


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_named_like_a_batch_output_is_refused_and_kept(tmp_path, overwrite):
    src, out = _scenes(tmp_path / "in"), tmp_path / "out"
    (out / "s0.tif").mkdir(parents=True)
    (out / "s0.tif" / "notes.txt").write_text("mine")
    # the batch runner (Dask's task function, in this process): that task fails, with
    # --overwrite too (it wrote out/s0.tif/s0.tif and said "ok")
    options = UpscaleOptions(scale=2, overwrite=overwrite)
    report = run_batch(src, out, options=options, model=tiny_model(1, 2))
    assert [(Path(r.task.dst).name, r.status) for r in report.results] == [
        ("s0.tif", "failed"),
        ("s1.tif", "ok"),
    ]
    assert report.results[0].error.startswith(f"{out / 's0.tif'}: {FOLDER_SAYS}")
    assert sorted(os.listdir(out / "s0.tif")) == ["notes.txt"]
    # the sequential GeoTIFF batch: refused before any work, as a file of another format is
    (out / "s1.tif").unlink()
    said = "s0.tif: a folder; never replaced, even with --overwrite"
    with pytest.raises(UnsafeOutputError, match=said):
        upscale_many(src, out, model=tiny_model(1, 2), overwrite=overwrite)
    assert sorted(os.listdir(out / "s0.tif")) == ["notes.txt"]
    assert not (out / "s1.tif").exists()


def test_a_nifti_batch_refuses_a_folder_at_an_output_name(tmp_path):
    pytest.importorskip("nibabel")
    src, out = _volumes(tmp_path / "in"), tmp_path / "out"
    (out / "v1.nii.gz").mkdir(parents=True)
    options = UpscaleOptions(scale=2, overwrite=True)
    report = run_batch(src, out, options=options, model=tiny_model(1, 2))
    assert [r.status for r in report.results] == ["ok", "failed"]
    assert FOLDER_SAYS in report.results[1].error
    assert os.listdir(out / "v1.nii.gz") == []


def test_a_single_file_into_a_folder_it_is_given_still_goes_inside(tmp_path, capsys):
    """docs/output_safety.md: an existing folder as a single file's output means "the same
    file name inside it"."""
    src = make_geotiff(tmp_path / "in.tif", width=16, height=12, count=1)
    (tmp_path / "out").mkdir()
    argv = ["upscale", str(src), str(tmp_path / "out"), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    assert (tmp_path / "out" / "in.tif").is_file()


_CAPS = "-dac_override,-dac_read_search"


def _without_root_powers(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("root without setpriv cannot make a file unreadable")
    probe = subprocess.run(
        ["setpriv", "--bounding-set", _CAPS, "--inh-caps", _CAPS, "--", "true"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr!r}")
    return ["setpriv", "--bounding-set", _CAPS, "--inh-caps", _CAPS, "--", *cmd]


def test_an_unreadable_output_fails_only_its_file_in_the_cli_batch(tmp_path):
    """``sr-domains upscale in out`` stopped the whole batch at ``out/s0.tif: Permission
    denied``; it now fails that file (its record kept) and writes the others, exit status 1
    (docs/cli.md: in a batch, some files failed)."""
    src, out = _scenes(tmp_path / "in", 3), tmp_path / "out"
    argv = ["upscale", str(src), str(out), "--no-progress", "--device", "cpu", "-q"]
    assert main(argv) == 0
    manifest = out / "sr-domains-run.jsonl"
    recorded = [json.loads(line) for line in manifest.read_text().splitlines()]
    (out / "s2.tif").unlink()
    os.chmod(out / "s0.tif", 0)
    code = "import sys; from sr_domains.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = _without_root_powers([sys.executable, "-c", code, *argv])
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert f"sr-domains: failed: {src / 's0.tif'}: {out / 's0.tif'}: Permission denied" in (
        run.stderr
    )
    assert run.stdout.split() == [str(out / "s2.tif")]  # (s1.tif: complete, skipped)
    os.chmod(out / "s0.tif", 0o644)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    s0 = [r for r in records if Path(r["output"]).name == "s0.tif"]
    assert [r["output_sha256"] for r in s0] == [
        r["output_sha256"] for r in recorded if Path(r["output"]).name == "s0.tif"
    ]
