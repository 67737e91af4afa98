"""The end-of-run summary of a sequential GeoTIFF batch (``sr-domains upscale FOLDER OUT``) is
printed by the CLI, as the Dask and NIfTI batch runners' report is, and logged by the library
at INFO: it is not a warning. Failed inputs are still named with their problem, and make the
exit status 1. And an embedded Dask cluster does not take (or warn about) the dashboard's port
8787 another cluster holds."""

from __future__ import annotations

import errno
import logging
import socket
import warnings
from pathlib import Path

import pytest

pytest.importorskip("rasterio")

from sr_domains.batch_tasks import BatchFailedError, RunReport
from sr_domains.cli import main
from sr_domains.geo import upscale_many
from sr_domains.io_safety import TMP_TAG
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff

SUMMARY = "already complete"  # a word of every batch summary


def _scenes(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir()
    return [
        make_geotiff(folder / f"s{i}.tif", width=24, height=16, count=1, crs="EPSG:32633", seed=i)
        for i in range(n)
    ]


def _upscale(src: Path, out: Path) -> int:
    return main(["upscale", str(src), str(out), "--device", "cpu", "--no-progress"])


def _summaries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if SUMMARY in r.getMessage()]


def test_the_cli_prints_the_summary_of_a_sequential_batch_and_it_is_no_warning(
    tmp_path, capsys, caplog
):
    src, out = tmp_path / "in", tmp_path / "out"
    scenes = _scenes(src)
    manifest = out / "sr-domains-run.jsonl"
    with caplog.at_level(logging.INFO, logger="sr_domains"):
        assert _upscale(src, out) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out / s.name) for s in scenes]
    assert f"2 written, 0 already complete, 0 failed; manifest {manifest}" in captured.err
    # a rerun skips both: it said so with a WARNING log line, and the CLI printed nothing
    with caplog.at_level(logging.INFO, logger="sr_domains"):
        assert _upscale(src, out) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"0 written, 2 already complete, 0 failed; manifest {manifest}" in captured.err
    assert "warning" not in captured.err.lower()
    logged = _summaries(caplog)
    assert len(logged) == 2  # the library logs it too, for its own callers: at INFO
    assert {(r.levelno, r.name) for r in logged} == {(logging.INFO, "sr_domains.geo.batch")}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_failed_input_is_named_with_its_problem_and_the_exit_status_is_1(
    tmp_path, capsys, caplog
):
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src)
    broken = src / "broken.tif"
    broken.write_text("not a tiff")
    with caplog.at_level(logging.INFO, logger="sr_domains"):
        assert _upscale(src, out) == 1
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out / "s0.tif"), str(out / "s1.tif")]  # still listed
    lines = captured.err.splitlines()
    failed = [line for line in lines if line.startswith("sr-domains: failed: ")]
    assert len(failed) == 1 and failed[0].startswith(f"sr-domains: failed: {broken}: ")
    assert len(failed[0]) > len(f"sr-domains: failed: {broken}: ")  # and the problem
    assert sum(str(broken) in line for line in lines) == 1  # one line, not a log line too
    assert "2 written, 0 already complete, 1 failed; manifest" in captured.err
    assert lines[-1] == "sr-domains: error: 1 of 3 file(s) failed"
    assert [r.levelno for r in _summaries(caplog)] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # the rerun skips the two complete outputs: the count says so, not "1 of 1" of 3 files
    assert _upscale(src, out) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "sr-domains: error: 1 of 1 file(s) tried failed; 2 already complete"


def test_the_library_keeps_the_report_of_a_sequential_batch(tmp_path):
    """``sr_domains.geo.upscale_many`` still returns the outputs it wrote (a list) and raises
    for failed inputs; both carry the run's report."""
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src)
    written = upscale_many(src, out, model=tiny_model(1, 2))
    assert written == [out / "s0.tif", out / "s1.tif"]
    report = written.report
    assert isinstance(report, RunReport) and report.count("ok") == 2
    assert report.manifest == out / "sr-domains-run.jsonl"
    again = upscale_many(src, out, model=tiny_model(1, 2))
    assert again == [] and again.report.count("skipped") == 2
    (src / "broken.tif").write_text("not a tiff")
    with pytest.raises(
        BatchFailedError, match=r"1 of 1 file\(s\) tried failed; 2 already complete: .*broken\.tif"
    ) as exc:
        upscale_many(src, out, model=tiny_model(1, 2))
    assert [Path(r.task.src).name for r in exc.value.report.failed] == ["broken.tif"]
    assert exc.value.report.count("skipped") == 2


@pytest.fixture
def port_8787_in_use():
    """Port 8787 (Dask's dashboard) held, as by another cluster's dashboard."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 8787))
        s.listen(1)
    except OSError as exc:  # held already, by someone else
        if exc.errno != errno.EADDRINUSE:
            raise
    try:
        yield
    finally:
        s.close()


def test_an_embedded_cluster_leaves_the_dashboard_port_alone(port_8787_in_use, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from sr_domains.distributed import cluster_client

    nanny = logging.getLogger("distributed.nanny")
    at_close: list[int] = []
    close = distributed.LocalCluster.close

    def recording_close(self, *args, **kwargs):
        at_close.append(nanny.getEffectiveLevel())
        return close(self, *args, **kwargs)

    monkeypatch.setattr(distributed.LocalCluster, "close", recording_close)
    nanny.setLevel(logging.INFO)  # a user's own level: theirs again after the run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with cluster_client(None, 1, None) as client:
            assert client.submit(sum, [1, 2]).result() == 3
            port = client.scheduler_info()["services"].get("dashboard")
    assert port != 8787
    said = [str(w.message) for w in caught if "8787" in str(w.message)]
    assert not said, said  # "Port 8787 is already in use. Perhaps you already have a cluster..."
    # its teardown is quiet: a worker slow to exit is killed by its nanny at WARNING ("Worker
    # process still alive after 4.0 seconds, killing"), noise after a good run (not with -v)
    assert at_close and at_close[0] == logging.ERROR, at_close
    assert nanny.level == logging.INFO
    nanny.setLevel(logging.NOTSET)


def test_an_interrupted_batch_prints_the_outputs_it_completed(tmp_path, capsys, monkeypatch):
    """Ctrl-C / SIGTERM in the third file: the two outputs written are on stdout (a pipeline
    reading them loses none; they were printed only when the whole batch returned)."""
    from sr_domains.geo import batch

    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 3)
    # every record's time 0: the rerun's records equal the first run's line for line, so the
    # outputs are told by where the rerun's records start, not by their text
    monkeypatch.setattr(batch, "time", type("Clock", (), {"perf_counter": staticmethod(float)}))
    assert _upscale(src, out) == 0  # a first run, whose records must not be printed again
    capsys.readouterr()
    real, calls = batch.write_geotiff, []

    def stop_at_third(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "write_geotiff", stop_at_third)
    argv = ["upscale", str(src), str(out), "--overwrite", "--device", "cpu", "--no-progress"]
    with pytest.raises(KeyboardInterrupt):  # (a program calling main() stops too)
        main(argv)
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out / "s0.tif"), str(out / "s1.tif")]
    assert "interrupted" in captured.err
    assert not [p.name for p in out.iterdir() if TMP_TAG in p.name]
