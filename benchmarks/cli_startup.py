"""Wall time of short ``sr-domains`` commands, the part a user running one command per file
pays every time: ``info`` and ``upscale`` of a small NIfTI volume and of the bundled GeoTIFF
sample, and the ``models`` listing, each with a cold disk cache (a fresh
``SR_DOMAINS_CACHE_DIR``: the memory probe runs and imports ``torch._dynamo``) and a warm one
(the probe's result is read back), interleaved (the machine is shared: compare the columns of
one run). Also ``python -c "import torch"``,
the floor of any command that runs a network.

    python benchmarks/cli_startup.py [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sr_domains.testing.medical import make_nifti  # noqa: E402


def _time(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    exe = [sys.executable, "-m", "sr_domains"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_nifti(str(work / "brain.nii.gz"), shape=(40, 36, 10), spacing=(1.0, 1.0, 3.0))
        shutil.copy(REPO / "examples" / "data" / "sample.tif", work / "sample.tif")
        cases = {
            "import torch": ([sys.executable, "-c", "import torch"], False),
            "info NIfTI": ([*exe, "info", "brain.nii.gz"], False),
            "models (listing)": ([*exe, "models"], False),
            "upscale NIfTI 40x36x10": ([*exe, "upscale", "brain.nii.gz", "o.nii.gz"], True),
            "upscale sample.tif 200x200x3": ([*exe, "upscale", "sample.tif", "o.tif"], True),
        }
        base = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}
        warm_dir = work / "warm-cache"
        times: dict[tuple[str, str], list[float]] = {}
        runs = 0
        for rep in range(args.reps + 1):  # rep 0 warms the OS file cache and the disk cache
            for name, (cmd, writes) in cases.items():
                for state in ("cold", "warm"):
                    runs += 1  # every cold run gets a folder of its own
                    cache = warm_dir if state == "warm" else work / f"cold-{runs}"
                    env = {**base, "SR_DOMAINS_CACHE_DIR": str(cache)}
                    full = [*cmd, "--overwrite"] if writes else cmd
                    t = _time(full, env, work)
                    if rep:
                        times.setdefault((name, state), []).append(t)
    print(f"median of {args.reps} runs, seconds (cold: empty disk cache; warm: filled)\n")
    print(f"| {'command':30s} | cold cache | warm cache | warm / cold |")
    print(f"|{'-' * 32}|-----------:|-----------:|------------:|")
    for name in cases:
        cold = statistics.median(times[(name, "cold")])
        warm = statistics.median(times[(name, "warm")])
        print(f"| {name:30s} | {cold:10.2f} | {warm:10.2f} | {warm / cold:11.2f} |")


if __name__ == "__main__":
    main()
