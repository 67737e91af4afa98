"""A batch stopped part-way says what it wrote: Ctrl-C or SIGTERM on a Dask batch (outputs its
running tasks finish after the stop are recorded and printed, not left unreported, and Ctrl-C
to the process group prints no Dask tracebacks), an error that ends a sequential batch (a full
disk) still prints the outputs written before it, and a run that wrote nothing into a user's
folder leaves no run manifest there."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import RUN_MANIFEST, cluster_client, upscale_many  # noqa: E402
from sr_domains.io_safety import TMP_TAG  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_dicom_series  # noqa: E402


def _scenes(folder: Path, n: int, size: int = 24) -> None:
    folder.mkdir()
    for i in range(n):
        make_geotiff(folder / f"s{i}.tif", width=size, height=size, count=1, seed=i)


def _recorded_ok(out: Path) -> list[str]:
    lines = (out / RUN_MANIFEST).read_text().splitlines() if (out / RUN_MANIFEST).exists() else []
    return [Path(r["output"]).name for r in map(json.loads, lines) if r["status"] == "ok"]


def _wait_for(check, what: str, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"no {what} after {timeout} s"
        time.sleep(0.02)


# -- F3: a stopped --workers batch ---------------------------------------------------------------
def test_an_output_a_stopped_task_wrote_is_recorded_and_printed(tmp_path, capsys, monkeypatch):
    """Ctrl-C while a task's result is on its way (its output renamed into place, its result
    never read: Dask's cancel does not stop a running task, and the embedded cluster lets it
    finish while it closes): the output is in the run manifest and on stdout, as every
    output there is when the command exits."""
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 2)

    def stop_once_written(futures, *args, **kwargs):
        _wait_for(lambda: (out / "s0.tif").exists(), "output")
        raise KeyboardInterrupt
        yield  # (a generator, as as_completed)

    monkeypatch.setattr(distributed, "as_completed", stop_once_written)
    argv = ["upscale", str(src), str(out), "--workers", "1", "--device", "cpu", "--no-progress"]
    with pytest.raises(KeyboardInterrupt):  # (a program calling main() stops too)
        main(argv)
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == "sr-domains: interrupted", captured.err
    printed = [Path(p).name for p in captured.out.split()]
    there = sorted(p.name for p in out.glob("*.tif"))
    assert not [n for n in os.listdir(out) if TMP_TAG in n]
    assert "s0.tif" in there
    assert sorted(printed) == there
    assert sorted(_recorded_ok(out)) == there
    record = json.loads((out / RUN_MANIFEST).read_text().splitlines()[0])
    assert record["model"] and len(record["output_sha256"]) == 64  # (as a worker's record)
    # the rerun knows them as complete
    assert main([*argv[:3], "--device", "cpu", "--no-progress"]) == 0
    assert f"{len(there)} already complete" in capsys.readouterr().err


def test_the_embedded_clusters_workers_leave_ctrl_c_to_the_run():
    """Ctrl-C in a terminal reaches the whole process group: each worker process died with a
    KeyboardInterrupt traceback while the run was stopping them anyway."""
    with cluster_client(None, 1, None) as c:
        ignored = c.run(lambda: signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
    assert list(ignored.values()) == [True]


def test_ctrl_c_to_the_process_group_stops_quietly_and_says_what_it_wrote(tmp_path):
    """The whole process group gets SIGINT while a worker writes an output: exit status 130,
    no traceback, and every output there is printed and recorded."""
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 3, size=192)
    out.mkdir()
    argv = [sys.executable, "-m", "sr_domains", "upscale", str(src), str(out), "--workers", "1"]
    p = subprocess.Popen(
        [*argv, "--threads", "1", "--device", "cpu", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: p.poll() is not None or any(TMP_TAG in n for n in os.listdir(out)), "write"
        )
        assert p.poll() is None, p.communicate()
        os.killpg(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "sr-domains: interrupted", stderr
    there = sorted(p.name for p in out.glob("*.tif"))
    assert sorted(Path(s).name for s in stdout.split()) == there
    assert sorted(_recorded_ok(out)) == there
    assert not [n for n in os.listdir(out) if TMP_TAG in n]


# -- F4: an error that ends a sequential batch ---------------------------------------------------
def test_a_full_disk_mid_batch_prints_what_was_written_before(tmp_path, capsys, monkeypatch):
    from sr_domains.geo import batch

    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 3)
    real, calls = batch.write_geotiff, []

    def full_at_third(f, dst, *args, **kwargs):
        calls.append(f)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(f, dst, *args, **kwargs)

    monkeypatch.setattr(batch, "write_geotiff", full_at_third)
    assert main(["upscale", str(src), str(out), "--device", "cpu", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out / "s0.tif"), str(out / "s1.tif")]
    err = captured.err.strip().splitlines()
    assert err[-2:] == [
        "sr-domains: stopped by the error below after 2 written, 0 already complete, 0 failed",
        f"sr-domains: error: {out / 's2.tif'}: No space left on device",
    ]
    assert sorted(_recorded_ok(out)) == ["s0.tif", "s1.tif"]


def test_a_real_full_disk_mid_batch(tmp_path, capsys):
    """The same on a small tmpfs (root only; skipped elsewhere): the third output does not fit."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        src, out = tmp_path / "in", disk / "out"
        src.mkdir()
        for i, size in enumerate((16, 16, 512)):
            make_geotiff(
                src / f"s{i}.tif", width=size, height=size, count=3, dtype="uint16", seed=i
            )
        assert main(["upscale", str(src), str(out), "--device", "cpu", "--no-progress"]) == 1
        captured = capsys.readouterr()
        assert captured.out.split() == [str(out / "s0.tif"), str(out / "s1.tif")]
        assert captured.err.strip().splitlines()[-2:] == [
            "sr-domains: stopped by the error below after 2 written, 0 already complete, 0 failed",
            f"sr-domains: error: {out / 's2.tif'}: No space left on device",
        ]
        assert sorted(_recorded_ok(out)) == ["s0.tif", "s1.tif"]
        assert sorted(p.name for p in out.iterdir()) == ["s0.tif", "s1.tif", RUN_MANIFEST]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_an_error_before_any_output_adds_no_line(tmp_path, capsys, monkeypatch):
    from sr_domains.geo import batch

    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 2)

    def full(f, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(batch, "write_geotiff", full)
    assert main(["upscale", str(src), str(out), "--device", "cpu", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"sr-domains: error: {out / 's0.tif'}: No space left on device"
    ]


# -- F5e: nothing written, no manifest ----------------------------------------------------------
def test_a_refused_series_leaves_no_run_manifest_in_the_users_folder(tmp_path):
    make_dicom_series(tmp_path / "series", n_slices=3, rows=16, cols=16)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    report = upscale_many(tmp_path / "series", user, model=tiny_model(1, 2))
    assert report.count("failed") == 1 and "output exists" in report.failed[0].error
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    assert report.manifest is None
    assert report.summary().endswith("1 failed; no manifest (no output)")


def test_a_batch_whose_every_input_fails_starts_no_manifest(tmp_path):
    """Not even as the failures are appended one by one; with a manifest there already, the
    failures are recorded in it as ever."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.tif", "b.tif"):
        (src / name).write_bytes(b"not a tiff")
    out.mkdir()
    report = upscale_many(src, out, model=tiny_model(1, 2))
    assert report.count("failed") == 2 and report.manifest is None
    assert list(out.iterdir()) == []
    (out / RUN_MANIFEST).write_text("")
    report = upscale_many(src, out, model=tiny_model(1, 2))
    assert report.manifest == out / RUN_MANIFEST
    lines = (out / RUN_MANIFEST).read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["failed", "failed"]


def test_another_runs_records_are_not_printed_as_this_runs(tmp_path, capsys, monkeypatch):
    """A batch ended by an error printed every record appended to the shared run manifest
    since it started: another run finishing into the folder meanwhile had its outputs printed
    and counted as this run's ("4 written" for one)."""
    from sr_domains.geo import batch

    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 2)
    real, calls = batch.write_geotiff, []

    def other_run_then_full(f, dst, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:  # another process's run appends its record, then the disk is full
            other = {"input": "x/y.tif", "output": str(out / "y.tif"), "status": "ok",
                     "pid": os.getpid() + 1}  # fmt: skip
            with open(out / RUN_MANIFEST, "a") as fh:
                fh.write(json.dumps(other) + "\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(f, dst, *args, **kwargs)

    monkeypatch.setattr(batch, "write_geotiff", other_run_then_full)
    assert main(["upscale", str(src), str(out), "--device", "cpu", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out / "s0.tif")]
    assert "after 1 written, 0 already complete, 0 failed" in captured.err


def test_a_nifti_file_on_dask_may_name_a_folder_with_a_slash(tmp_path):
    """On Dask a single NIfTI file is a batch written into a folder: ``out/`` was refused."""
    from sr_domains.cli_inputs import check_folder_output
    from sr_domains.errors import ConfigError
    from sr_domains.testing.medical import make_nifti

    src = make_nifti(tmp_path / "v.nii.gz", shape=(8, 8, 2))
    check_folder_output(str(tmp_path / "nout") + "/", src, None, distributed=True)
    with pytest.raises(ConfigError, match="names a folder"):
        check_folder_output(str(tmp_path / "nout") + "/", src, None, distributed=False)
