"""Dask runs fail once and cleanly: an existing output that cannot be read is refused in one
line (as the sequential batch says it), not retried, and keeps its run-manifest record; a
task whose retries ran out keeps what the manifest knew of an output it left as it was; a
split raster's failing band stops the run once, without retries, and a stop leaves no part
file; a batch stopped twice (a second Ctrl-C) leaves nothing the next run does not clean."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import torch

distributed = pytest.importorskip("distributed")
pytest.importorskip("rasterio")

from sr_domains import distributed as sr_distributed  # noqa: E402
from sr_domains.distributed import RUN_MANIFEST, upscale_many  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.geo.split import upscale_geotiff_split  # noqa: E402
from sr_domains.io_safety import LOCK_TAG, TMP_TAG  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.models import ToySR  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """Two worker threads in this process (the models' counters are shared)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


def _after_running_tasks(client) -> None:
    """Return once each worker's one thread has ended the task it ran (a band still running
    after the split raised holds the GDAL cache cap and its part file until it ends)."""
    for address in client.scheduler_info()["workers"]:
        client.submit(abs, 1, workers=[address], pure=False).result()


def _records(out: Path, name: str) -> list[dict]:
    lines = (out / RUN_MANIFEST).read_text().splitlines()
    return [r for r in map(json.loads, lines) if Path(r["output"]).name == name]


def _scenes(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        make_geotiff(folder / f"s{i}.tif", width=24, height=20, count=1, seed=i)
    return folder


def _litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_TAG in p.name or LOCK_TAG in p.name)


_UNREADABLE_RUN = """
import json, sys, distributed
from sr_domains.distributed import upscale_many
from sr_domains.testing import tiny_model
with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                              dashboard_address=None) as cl, distributed.Client(cl) as c:
    r = upscale_many(sys.argv[1], sys.argv[2], model=tiny_model(1, 2), client=c)
print(json.dumps([[x.task.dst, x.status, x.error] for x in r.results]))
"""


def test_an_output_that_cannot_be_read_fails_once_in_one_line_and_keeps_its_record(tmp_path):
    """A recorded output without read permission: three attempts with Dask tracebacks, then
    ``PermissionError: [Errno 13] ...`` and a failed record without the output's checksum. It
    is refused as the sequential batch says it (``PATH: Permission denied``), once."""
    src, out = _scenes(tmp_path / "in"), tmp_path / "out"
    upscale_many(src, out, model=tiny_model(1, 2))
    (recorded,) = [r["output_sha256"] for r in _records(out, "s0.tif")]
    os.chmod(out / "s0.tif", 0)
    cmd = [sys.executable, "-c", _UNREADABLE_RUN, str(src), str(out)]
    if os.geteuid() == 0:  # (root reads any file: the run gets no such power)
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv cannot make a file unreadable")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", "--bounding-set", caps, "--inh-caps", caps, "--", *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    results = {Path(d).name: (status, error) for d, status, error in json.loads(run.stdout)}
    assert results["s0.tif"] == ("failed", f"{out / 's0.tif'}: Permission denied")
    assert results["s1.tif"][0] == "skipped"
    assert "Compute Failed" not in run.stderr and "Traceback" not in run.stderr  # no retries
    assert [r["output_sha256"] for r in _records(out, "s0.tif")] == [recorded]


class _Boom(ToySR):
    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom\nsecond line")


def test_a_task_out_of_retries_keeps_what_the_manifest_knew(tmp_path, client):
    """An output of ours cut short, whose repair raised an unexpected error on every try: its
    record lost the checksum that says it is ours, and the next run refused it as a user's
    file ("a TIFF that cannot be read") instead of redoing it."""
    src, out = _scenes(tmp_path / "in", 1), tmp_path / "out"
    model = tiny_model(1, 2)
    upscale_many(src, out, model=model, client=client)
    good = (out / "s0.tif").read_bytes()
    (out / "s0.tif").write_bytes(good[: len(good) // 2])
    boom = _Boom(BaseSRConfig(in_channels=1, scale=2)).eval()
    failed = upscale_many(src, out, model=boom, client=client, retries=0)
    assert [r.error for r in failed.failed] == ["RuntimeError: boom"]  # (one line)
    redo = upscale_many(src, out, model=model, client=client)
    assert redo.count("ok") == 1 and (out / "s0.tif").read_bytes() == good


class _Refusing(ToySR):
    """Every window is refused as a bad input block (counted: once per band that starts)."""

    calls: ClassVar[list[int]] = []

    def body(self, x: torch.Tensor) -> torch.Tensor:
        _Refusing.calls.append(1)
        raise InputFileError("src.tif", "block 3 cannot be decoded")


def test_a_refused_band_stops_the_split_once_without_retries(tmp_path, client, caplog):
    src = make_geotiff(tmp_path / "big.tif", width=40, height=200, count=1)
    _Refusing.calls.clear()
    model = _Refusing(BaseSRConfig(in_channels=1, scale=2)).eval()
    opts = UpscaleOptions(scale=2, tile=32)
    with (
        caplog.at_level(logging.WARNING, logger="distributed"),
        pytest.raises(InputFileError, match="src.tif: block 3 cannot be decoded"),
    ):
        upscale_geotiff_split(src, tmp_path / "out.tif", client=client, options=opts, model=model)
    _after_running_tasks(client)  # (the other band may still run when the split raises)
    assert 1 <= len(_Refusing.calls) <= 2  # each of the 2 bands at most once (3 tries each)
    assert "Compute Failed" not in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


class _OneBlocksOneRefuses(ToySR):
    """The first band to compute a window waits until the test lets it go on; the other one
    is refused as a bad input block."""

    go_on = threading.Event()
    first: ClassVar[list[int]] = []
    waited_out: ClassVar[list[bool]] = []

    def body(self, x: torch.Tensor) -> torch.Tensor:
        me = threading.get_ident()
        if not _OneBlocksOneRefuses.first:
            _OneBlocksOneRefuses.first.append(me)
            _OneBlocksOneRefuses.waited_out.append(not self.go_on.wait(timeout=30))
        elif me != _OneBlocksOneRefuses.first[0]:
            raise InputFileError("src.tif", "block 9 cannot be decoded")
        return super().body(x)


def test_a_failing_band_stops_the_split_at_once_and_leaves_no_part(tmp_path, client):
    """The bands' results were taken in order: a band failing while the one before it still
    ran stopped the run only once that one had finished. Now at once; the band still running
    writes on into its removed part, and no part file is left once it ends."""
    src = make_geotiff(tmp_path / "big.tif", width=40, height=200, count=1)
    for kept in (_OneBlocksOneRefuses.first, _OneBlocksOneRefuses.waited_out):
        kept.clear()
    _OneBlocksOneRefuses.go_on.clear()
    model = _OneBlocksOneRefuses(BaseSRConfig(in_channels=1, scale=2)).eval()
    opts = UpscaleOptions(scale=2, tile=32)
    with pytest.raises(InputFileError, match="block 9"):
        upscale_geotiff_split(src, tmp_path / "out.tif", client=client, options=opts, model=model)
    _OneBlocksOneRefuses.go_on.set()  # (the run returned while the first band waited)
    _after_running_tasks(client)
    assert _OneBlocksOneRefuses.waited_out == [False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


class _StopHere(ToySR):
    """Signals that its task started, then blocks: the worker is killed mid-write."""

    def body(self, x: torch.Tensor) -> torch.Tensor:
        distributed.Event("sr-h3-started").set()
        threading.Event().wait(timeout=120)
        return super().body(x)


def test_a_second_ctrl_c_while_stopping_leaves_nothing_the_next_run_keeps(tmp_path, monkeypatch):
    """``--overwrite`` of complete outputs, stopped mid-write, then a second Ctrl-C while the
    stop cleans up: the old outputs stay whole at their names, and the killed worker's lock and
    temporary file, beside an output the next run skips, were left there for good."""
    src, out = _scenes(tmp_path / "in", 1), tmp_path / "out"
    upscale_many(src, out, model=tiny_model(1, 2))
    good = (out / "s0.tif").read_bytes()

    def stop_when_started(futures, *args, **kwargs):
        run_client = next(iter(futures)).client  # (the embedded cluster's: not the default)
        distributed.Event("sr-h3-started", client=run_client).wait(timeout=120)
        raise KeyboardInterrupt
        yield  # (a generator, as as_completed)

    def second_ctrl_c(tasks):
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(distributed, "as_completed", stop_when_started)
    monkeypatch.setattr(sr_distributed, "remove_leftovers", second_ctrl_c)
    model = _StopHere(BaseSRConfig(in_channels=1, scale=2)).eval()
    opts = UpscaleOptions(overwrite=True, tile=16)  # (tiles: the model runs mid-write)
    with pytest.raises(KeyboardInterrupt):
        upscale_many(src, out, options=opts, model=model, workers=1)
    monkeypatch.undo()
    assert (out / "s0.tif").read_bytes() == good  # no half-written file at the final name
    assert _litter(out)  # (the stop was cut short)
    again = upscale_many(src, out, model=tiny_model(1, 2))
    assert again.count("skipped") == 1
    assert _litter(out) == []
