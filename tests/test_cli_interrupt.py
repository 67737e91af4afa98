"""Ctrl-C in a program that calls ``sr_domains.cli.main()`` stops the program (the
:class:`KeyboardInterrupt` is re-raised after ``sr-domains: interrupted``, once the temporary
files are removed), as SIGTERM does (``SystemExit(143)``): main() returned 130 and a
``for f in files: main([...])`` loop went on to its next file. The command's own process
(``own_process``, the ``sr-domains`` script) still exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("rasterio")

from sr_domains.io_safety import TMP_TAG
from sr_domains.testing.geo import make_geotiff

REPO = Path(__file__).resolve().parents[1]

LOOP = textwrap.dedent(
    """
    import os, signal, sys
    from sr_domains.cli import main
    from sr_domains.geo import job

    real = job.write_block

    def ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C at the terminal, mid-write
        return real(*args, **kwargs)

    job.write_block = ctrl_c
    for src in sys.argv[2:]:
        out = os.path.join(sys.argv[1], os.path.basename(src))
        code = main(["upscale", src, out, "--no-progress", "--tile", "16"], own_process=OWN)
        print("the host went on", code, flush=True)
        if OWN:
            sys.exit(code)
    """
)


def _run(tmp_path: Path, own: bool) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The loop over two small GeoTIFFs in a fresh interpreter (it Ctrl-Cs itself mid-write
    of the first); its output folder."""
    srcs = [make_geotiff(tmp_path / f"{n}.tif", width=40, height=40, seed=i) for i, n in
            enumerate("ab")]  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    script = LOOP.replace("OWN", str(own))
    r = subprocess.run(
        [sys.executable, "-c", script, str(out), *map(str, srcs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return r, out


def test_ctrl_c_stops_a_program_that_calls_main(tmp_path):
    r, out = _run(tmp_path, own=False)
    assert "the host went on" not in r.stdout, r.stdout
    # an unhandled KeyboardInterrupt: Python ends the process as Ctrl-C does (killed by SIGINT)
    assert r.returncode == -signal.SIGINT, r.stderr
    assert "sr-domains: interrupted" in r.stderr
    assert r.stderr.rstrip().splitlines()[-1] == "KeyboardInterrupt", r.stderr
    assert os.listdir(out) == [], os.listdir(out)  # no temporary, no partial output


def test_ctrl_c_in_the_commands_own_process_exits_130(tmp_path):
    r, out = _run(tmp_path, own=True)
    assert r.stdout.split() == ["the", "host", "went", "on", "130"], r.stderr
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "sr-domains: interrupted", r.stderr
    assert "Traceback" not in r.stderr
    assert not [n for n in os.listdir(out) if TMP_TAG in n], os.listdir(out)
