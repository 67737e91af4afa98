"""``-q`` / ``-v`` reach the ``--workers`` processes: ``-q`` (errors only) printed a worker's
WARNING all the same, and ``-v`` showed none of a worker's INFO records. Real runs of the
command in a process of its own (its logging is then the command's) on a local cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402

#: What a worker says of this input with ``--profile identity`` (values far outside [0, 1]).
SAID = "the 'identity' profile feeds them to the network unchanged"


def _run(tmp_path: Path, *flags: str) -> str:
    """The stderr of ``sr-domains upscale FOLDER OUT --workers 1`` with ``flags``."""
    folder = tmp_path / "in"
    if not folder.exists():
        folder.mkdir()
        values = np.random.default_rng(0).random((1, 20, 24)).astype("float32") * 5000 - 100
        profile = {"driver": "GTiff", "width": 24, "height": 20, "count": 1,
                   "dtype": "float32", "crs": "EPSG:32633",
                   "transform": Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)}  # fmt: skip
        with rasterio.open(folder / "a.tif", "w", **profile) as ds:
            ds.write(values)
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    cmd = [sys.executable, "-m", "sr_domains", "upscale", str(folder), str(out), "--workers",
           "1", "--profile", "identity", "--no-progress", *flags]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "a.tif").is_file()
    return done.stderr


def test_quiet_prints_no_worker_warning(tmp_path):
    err = _run(tmp_path, "-q")
    assert SAID not in err and "WARNING" not in err, err
    assert err.splitlines()[-1].startswith("1 written"), err  # (the report, as sequential)


def test_verbose_shows_the_workers_info(tmp_path):
    err = _run(tmp_path, "-v")
    assert err.count(SAID) == 1, err
    assert "INFO sr_domains.geo.upscale: wrote" in err, err
