"""A run manifest holding bytes that are not UTF-8 (a disk error, an editor) is read as one with
a line cut short: the bad line is skipped, every other record still counts. It crashed the
sequential batch with a raw ``UnicodeDecodeError``, and on Dask failed every task (retried),
whose ``failed`` records then replaced the earlier ``ok`` ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("rasterio")

from sr_domains.distributed import upscale_many as dask_many
from sr_domains.geo import upscale_many as geo_many
from sr_domains.options import UpscaleOptions
from sr_domains.run_manifest import earlier_records, recorded_sha
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff


def _records(out: Path) -> dict[str, dict[str, object]]:
    text = (out / "sr-domains-run.jsonl").read_bytes().decode("utf-8")  # (all UTF-8 again)
    recs = [json.loads(line) for line in text.splitlines()]
    return {Path(str(r["output"])).name: r for r in recs}


def _spoil(out: Path) -> None:
    """A non-UTF-8 line between the records and one after them."""
    manifest = out / "sr-domains-run.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    manifest.write_bytes(lines[0] + b"\xfe\xff not text\n" + b"".join(lines[1:]) + b"\xff\n")


@pytest.fixture
def batch(tmp_path: Path) -> tuple[Path, Path]:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_geotiff(folder / "a.tif", width=32, height=24, seed=1)
    make_geotiff(folder / "b.tif", width=24, height=20, seed=2)
    geo_many(folder, out, model=tiny_model(1, 2))
    _spoil(out)
    return folder, out


def test_the_readers_skip_the_bad_lines_and_keep_the_records(batch):
    folder, out = batch
    assert recorded_sha(folder / "a.tif", out / "a.tif")
    assert recorded_sha(folder / "b.tif", out / "b.tif")
    assert len(earlier_records(out, set())) == 2


def test_the_sequential_batch_resumes_over_a_manifest_with_a_bad_byte(batch):
    folder, out = batch
    assert geo_many(folder, out, model=tiny_model(1, 2)) == []  # both complete: skipped
    recs = _records(out)  # written anew: the bad lines dropped, the records kept
    assert {n: r["status"] for n, r in recs.items()} == {"a.tif": "skipped", "b.tif": "skipped"}


def test_the_dask_batch_resumes_over_a_manifest_with_a_bad_byte(batch, dask_client):
    folder, out = batch
    before = _records_sha(out)
    report = dask_many(
        folder, out, options=UpscaleOptions(), model=tiny_model(1, 2), client=dask_client
    )
    assert report.count("failed") == 0 and report.count("skipped") == 2
    recs = _records(out)
    assert {n: r["status"] for n, r in recs.items()} == {"a.tif": "skipped", "b.tif": "skipped"}
    assert {n: r["output_sha256"] for n, r in recs.items()} == before


def _records_sha(out: Path) -> dict[str, str]:
    text = (out / "sr-domains-run.jsonl").read_bytes().decode("utf-8", errors="replace")
    shas = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        shas[Path(rec["output"]).name] = rec["output_sha256"]
    return shas


def test_a_run_manifest_with_a_bad_byte_is_still_ours_beside_a_series(tmp_path):
    """The one strict reader: beside a DICOM series, a run manifest with a byte that is not
    UTF-8 counted as a user's file, so ``--overwrite`` of that folder was refused."""
    from sr_domains.output_checks import RUN_MANIFEST, foreign_entries, is_run_manifest

    rec = {"input": "in/s", "output": "out", "status": "ok", "error": "caf\u00e9"}
    line = json.dumps(rec, ensure_ascii=False).encode("utf-8").replace(b"\xc3\xa9", b"\xe9")
    path = tmp_path / RUN_MANIFEST
    path.write_bytes(line + b"\n")
    assert is_run_manifest(path)
    assert foreign_entries(tmp_path) == []
