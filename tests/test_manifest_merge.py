"""The run manifest describes every output of its folder: a run over part of a batch keeps the
earlier records of the outputs it did not touch, so a later resume still knows a cut-short
output of an earlier run as its own and redoes it (instead of refusing it as a user's file).
Also: the sequential batch's summary is the CLI's to print, never a warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("rasterio")

from sr_domains import inference
from sr_domains.batch_tasks import BatchFailedError, Task, TaskResult
from sr_domains.distributed import upscale_many
from sr_domains.geo import upscale_many as geo_many
from sr_domains.options import UpscaleOptions
from sr_domains.output_checks import is_run_manifest
from sr_domains.run_manifest import file_sha256, recorded_sha, write_run_manifest
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff

MANIFEST = "sr-domains-run.jsonl"


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _records(folder: Path) -> dict[str, dict]:
    lines = (folder / MANIFEST).read_text().splitlines()
    return {Path(r["output"]).name: r for r in map(json.loads, lines)}


def _scenes(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        make_geotiff(folder / f"s{i}.tif", width=24, height=16, count=1, seed=i)


def _run(runner: str, inputs: str | Path, out: Path, model: Any) -> list[str]:
    """The names of the outputs written by a run of ``runner`` (failures raise / are listed)."""
    if runner == "sequential":
        return sorted(p.name for p in geo_many(inputs, out, model=model))
    report = upscale_many(inputs, out, options=UpscaleOptions(), model=model)
    assert report.count("failed") == 0, [r.error for r in report.failed]
    return sorted(Path(r.task.dst).name for r in report.results if r.status == "ok")


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_a_run_over_part_of_a_batch_keeps_the_records_of_the_other_outputs(tmp_path, runner):
    folder, out, model = tmp_path / "in", tmp_path / "out", tiny_model(1, 2)
    _scenes(folder, 4)
    assert _run(runner, folder, out, model) == ["s0.tif", "s1.tif", "s2.tif", "s3.tif"]
    first = _records(out)
    (out / "s3.tif").unlink()  # an output removed since: its record may go
    assert _run(runner, str(folder / "s[12].tif"), out, model) == []  # both complete
    kept = _records(out)
    assert sorted(kept) == ["s0.tif", "s1.tif", "s2.tif"]
    assert kept["s0.tif"] == first["s0.tif"]  # untouched: the first run's record, as written
    assert kept["s1.tif"]["status"] == "skipped"  # touched: this run's record
    lines = (out / MANIFEST).read_text().splitlines()
    assert len(lines) == 3 and is_run_manifest(out / MANIFEST)
    # s0.tif, written by the first run only, cut short: known as ours, redone
    good = (out / "s0.tif").read_bytes()
    (out / "s0.tif").write_bytes(good[:100])
    assert _run(runner, folder, out, model) == ["s0.tif", "s3.tif"]
    assert file_sha256([out / "s0.tif"]) == _records(out)["s0.tif"]["output_sha256"]


def test_the_cli_resume_redoes_a_cut_short_output_after_a_partial_run(tmp_path, monkeypatch):
    """The reviewer's case through the CLI's sequential batch (a folder, then a glob), with the
    shipped model."""
    from sr_domains.cli import main

    _scenes(tmp_path / "many", 4)
    out = tmp_path / "outk"
    monkeypatch.chdir(tmp_path)
    assert main(["upscale", "many", "outk", "--no-progress"]) == 0
    assert main(["upscale", "many/s[12].tif", "outk", "--no-progress"]) == 0
    assert len((out / MANIFEST).read_text().splitlines()) == 4
    (out / "s3.tif").write_bytes((out / "s3.tif").read_bytes()[:100])
    assert main(["upscale", "many", "outk", "--no-progress"]) == 0  # redone, not refused
    assert _records(out)["s3.tif"]["status"] == "ok"


def test_the_last_record_of_an_output_wins_and_cut_short_lines_are_dropped(tmp_path):
    for name in ("a.tif", "b.tif", "c.tif"):
        (tmp_path / name).write_bytes(b"II*\x00")
    rec = '{{"input": "in/{0}", "output": "out/{0}", "status": "ok", "output_sha256": "{1}"}}'
    (tmp_path / MANIFEST).write_text(
        "\n".join(
            [
                rec.format("a.tif", "1" * 64),
                rec.format("b.tif", "2" * 64),
                rec.format("a.tif", "3" * 64),  # appended later: wins
                rec.format("gone.tif", "4" * 64),  # no such output any more
                '{"input": "in/c.tif", "outp',  # cut short by a kill
            ]
        )
        + "\n"
    )
    task = Task("geotiff", "in/b.tif", str(tmp_path / "b.tif"))
    write_run_manifest(tmp_path, [TaskResult(task, "ok", sha256="5" * 64)], [])
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert [json.loads(line)["output_sha256"][0] for line in lines] == ["3", "5"]
    assert recorded_sha(Path("in/a.tif"), tmp_path / "a.tif") == "3" * 64
    assert recorded_sha(Path("in/b.tif"), tmp_path / "b.tif") == "5" * 64
    assert is_run_manifest(tmp_path / MANIFEST)


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_a_resumed_run_keeps_the_weights_that_made_each_output(tmp_path, runner):
    """A rerun that skipped every output wrote "model": "" and "weights_sha256": "" over the
    records of the run that made them: after any resume the manifest no longer said which
    weights made the folder."""
    folder, out, model = tmp_path / "in", tmp_path / "out", None  # the shipped default
    _scenes(folder, 2)
    assert _run(runner, folder, out, model) == ["s0.tif", "s1.tif"]
    first = _records(out)
    assert all(r["model"] and r["weights_sha256"] for r in first.values()), first
    assert _run(runner, folder, out, model) == []  # all skipped
    again = _records(out)
    for name, rec in again.items():
        assert rec["status"] == "skipped"
        assert (rec["model"], rec["weights_sha256"]) == (
            first[name]["model"],
            first[name]["weights_sha256"],
        )


@pytest.mark.parametrize("runner", ["sequential", "batch runner"])
def test_an_output_another_run_is_writing_keeps_its_record(tmp_path, runner):
    """Two runs into one folder: each failed on the outputs the other was writing and wrote
    its own view of the whole manifest, so the last one to end recorded the other's outputs as
    failed, without their checksums; a later cut-short copy of them was then refused as a
    user's file instead of redone."""
    from sr_domains.io_locks import destination_lock

    folder, out, model = tmp_path / "in", tmp_path / "out", tiny_model(1, 2)
    _scenes(folder, 3)
    assert _run(runner, folder, out, model) == ["s0.tif", "s1.tif", "s2.tif"]
    first = _records(out)
    (out / "s0.tif").write_bytes((out / "s0.tif").read_bytes()[:100])  # cut short: redone
    (out / "s1.tif").write_bytes((out / "s1.tif").read_bytes()[:100])  # ... but busy now
    with destination_lock(out / "s1.tif"):  # "another run" writing s1.tif
        if runner == "sequential":
            with pytest.raises(BatchFailedError, match="another sr-domains run"):
                geo_many(folder, out, model=model)
        else:
            report = upscale_many(folder, out, options=UpscaleOptions(), model=model)
            assert [Path(r.task.dst).name for r in report.failed] == ["s1.tif"]
    kept = _records(out)
    assert kept["s1.tif"] == first["s1.tif"]  # the record of the run that owns it, as it was
    assert kept["s0.tif"]["status"] == "ok"
    assert _run(runner, folder, out, model) == ["s1.tif"]  # known as ours: redone


def test_the_batch_runner_records_a_model_objects_weights_as_its_outputs_do(tmp_path):
    """``upscale_many(..., model=net)`` recorded "edsr" and no checksum, while each output's
    provenance named the weights and their checksum."""
    import rasterio

    from sr_domains import load_pretrained

    folder, out = tmp_path / "in", tmp_path / "out"
    _scenes(folder, 1)
    net = load_pretrained("sr-lite-gray-x2")
    assert _run("batch runner", folder, out, net) == ["s0.tif"]
    rec = _records(out)["s0.tif"]
    with rasterio.open(out / "s0.tif") as ds:
        tags = ds.tags()
    assert rec["model"] == tags["SR_DOMAINS_MODEL"] == "sr-lite-gray-x2"
    assert rec["weights_sha256"] == tags["SR_DOMAINS_WEIGHTS_SHA256"]


def test_a_users_file_the_batch_refuses_is_recorded_as_failed(tmp_path):
    """The failure of an output no run has recorded (a user's notes under its name) is the
    manifest's to record, as the report says; only another run's record is left alone."""
    from sr_domains.testing.medical import make_nifti

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_nifti(folder / "a.nii.gz", shape=(12, 12, 2))
    make_nifti(folder / "b.nii.gz", shape=(12, 12, 2))
    out.mkdir()
    (out / "a.nii.gz").write_text("notes\n")
    report = upscale_many(folder, out, options=UpscaleOptions(), model=tiny_model(1, 2))
    assert [Path(r.task.dst).name for r in report.failed] == ["a.nii.gz"]
    recs = _records(out)
    assert recs["a.nii.gz"]["status"] == "failed" and recs["b.nii.gz"]["status"] == "ok"
