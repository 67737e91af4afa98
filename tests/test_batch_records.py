"""What a batch records and says: a skipped NIfTI or DICOM output keeps its checksum and
weights in the run manifest; a GeoTIFF of another scale says so; an output found after a stop
has no measured time (null); SIGTERM says ``terminated``; a split stopped on the cluster it
started quiets that cluster's workers too. Real files, models and (where asked) Dask."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("rasterio")
pytest.importorskip("nibabel")
pytest.importorskip("pydicom")

from sr_domains import inference
from sr_domains.batch_stop import record_stopped
from sr_domains.batch_tasks import plan_tasks
from sr_domains.distributed import RUN_MANIFEST, upscale_many
from sr_domains.options import UpscaleOptions
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff
from sr_domains.testing.medical import make_dicom_series, make_nifti

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _records(folder: Path) -> dict[str, dict]:
    lines = (folder / RUN_MANIFEST).read_text().splitlines()
    return {Path(r["output"]).name: r for r in map(json.loads, lines)}


def _inputs(folder: Path) -> Path:
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=16, count=1, seed=1)
    make_nifti(folder / "b.nii.gz", shape=(12, 10, 3))
    make_dicom_series(folder / "c", n_slices=3, rows=12, cols=10)
    return folder


def test_a_rerun_keeps_the_checksum_and_weights_of_every_skipped_output(tmp_path):
    src, out, model = _inputs(tmp_path / "in"), tmp_path / "out", tiny_model(1, 2)
    first = upscale_many(src, out, options=UpscaleOptions(), model=model)
    assert [r.status for r in first.results] == ["ok"] * 3, [r.error for r in first.results]
    written = _records(out)
    again = upscale_many(src, out, options=UpscaleOptions(), model=model)
    assert [r.status for r in again.results] == ["skipped"] * 3
    skipped = _records(out)
    assert sorted(skipped) == ["a.tif", "b.nii.gz", "c"]
    for name, rec in skipped.items():
        assert rec["status"] == "skipped"
        for key in ("output_sha256", "model", "weights_sha256"):
            assert rec[key] and rec[key] == written[name][key], (name, key)


def test_a_single_series_records_the_same_checksum_written_or_skipped(tmp_path):
    """OUT is the series' folder itself, beside the manifest: the manifest is no part of it."""
    make_dicom_series(tmp_path / "in", n_slices=3, rows=12, cols=10)
    out, model = tmp_path / "out", tiny_model(1, 2)
    opts = UpscaleOptions(overwrite=True)
    upscale_many(tmp_path / "in", out, options=opts, model=model)
    redone = upscale_many(tmp_path / "in", out, options=opts, model=model)  # (manifest there)
    sha = redone.results[0].sha256
    skipped = upscale_many(tmp_path / "in", out, options=UpscaleOptions(), model=model)
    assert [r.status for r in skipped.results] == ["skipped"]
    assert skipped.results[0].sha256 == sha


def test_a_geotiff_of_another_scale_says_which(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=16, count=1)
    out = tmp_path / "out"
    first = upscale_many(folder, out, options=UpscaleOptions(scale=2), model=tiny_model(1, 2))
    assert first.count("ok") == 1
    before = (out / "a.tif").read_bytes()
    x4 = upscale_many(folder, out, options=UpscaleOptions(scale=4), model=tiny_model(1, 4))
    assert x4.count("failed") == 1
    assert "output exists (made x2, not x4)" in x4.results[0].error, x4.results[0].error
    assert (out / "a.tif").read_bytes() == before  # never replaced


def test_an_output_found_after_a_stop_has_no_measured_time(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=24, height=16, count=1)
    out, model, opts = tmp_path / "out", tiny_model(1, 2), UpscaleOptions()
    upscale_many(folder, out, options=opts, model=model)
    (out / RUN_MANIFEST).unlink()  # as if the run had stopped before recording it
    record_stopped(out, plan_tasks(folder, out), {}, opts, model)
    rec = _records(out)["a.tif"]
    assert rec["status"] == "ok" and rec["output_sha256"]
    assert rec["seconds"] is None  # unknown, not 0.0


def test_a_series_found_after_a_stop_has_the_checksum_of_its_ok_record(tmp_path):
    """The DICOM series' checksum covers the files its folder manifest lists, whether the run
    recorded it (ok), skipped it or found it after a stop (it covered .sr_domains.json too)."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_dicom_series(folder / "c", n_slices=3, rows=12, cols=10)
    out, model, opts = tmp_path / "out", tiny_model(1, 2), UpscaleOptions()
    written = upscale_many(folder, out, options=opts, model=model).results[0]
    assert written.status == "ok"
    (out / RUN_MANIFEST).unlink()
    record_stopped(out, plan_tasks(folder, out), {}, opts, model)
    assert _records(out)[out.name]["output_sha256"] == written.sha256  # (OUT is the series)


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from sr_domains.cli import main
    from sr_domains.geo import job

    real = job.write_block

    def kill_self(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would, mid-write
        return real(*args, **kwargs)

    job.write_block = kill_self
    sys.exit(main(["upscale", sys.argv[1], sys.argv[2], "--no-progress", "--tile", "16"]))
    """
)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter on a small GeoTIFF (it SIGTERMs itself mid-write)."""
    src = make_geotiff(tmp_path / "a.tif", width=40, height=40)
    return subprocess.run(
        [sys.executable, "-c", script, str(src), str(tmp_path / "o.tif")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_sigterm_says_terminated(tmp_path):
    r = _run(SIGTERM_SCRIPT, tmp_path)
    assert r.returncode == 143, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "sr-domains: terminated", r.stderr


def test_a_split_stopped_on_its_own_cluster_quiets_its_workers(tmp_path):
    pytest.importorskip("distributed")
    from sr_domains.distributed import cluster_client
    from sr_domains.geo.split_dask import run_bands

    def refuse(src, part, *args):  # (by value: the workers cannot import this module)
        from sr_domains.errors import InputFileError

        raise InputFileError(src, "refused")

    parts = [tmp_path / "p0.tif"]
    with cluster_client(None, workers=1) as client:
        level = client.run(lambda: logging.getLogger("distributed").level)
        assert list(level.values()) != [logging.ERROR]
        with pytest.raises(Exception, match="refused"):
            run_bands(client, refuse, parts, [(str(tmp_path / "a.tif"), str(parts[0]))])
        level = client.run(lambda: logging.getLogger("distributed").level)
    assert list(level.values()) == [logging.ERROR]  # no CancelledError warnings there


HOST_SCRIPT = SIGTERM_SCRIPT.replace(
    'sys.exit(main(["upscale", sys.argv[1], sys.argv[2], "--no-progress", "--tile", "16"]))',
    'main(["upscale", sys.argv[1], sys.argv[2], "--no-progress", "--tile", "16"])\n'
    'print("the host went on")',
)


def test_sigterm_stops_a_program_that_calls_main(tmp_path):
    """A program calling main() in a loop stops on SIGTERM (SystemExit(143) propagates) after
    the line; it went on to its next file when main() returned 143."""
    assert HOST_SCRIPT != SIGTERM_SCRIPT
    r = _run(HOST_SCRIPT, tmp_path)
    assert r.returncode == 143, r.stderr
    assert "the host went on" not in r.stdout
    assert "sr-domains: terminated" in r.stderr
