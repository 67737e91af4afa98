"""Time to skip a finished GeoTIFF output on a resumed batch, with and without its run-manifest
record.

A resumed batch (``sr-domains upscale ... --workers``, ``sr_domains.distributed.upscale_many``,
and the sequential folder run, ``sr_domains.geo.upscale_many``) checks every existing output
before skipping it: its tags, its size and that every block decodes. When the run manifest
records the output's checksum and the file's bytes still match it, the blocks are not decoded
again (one read of the file, the checksum the skipped record keeps, instead of a decode and a
read). This script writes a batch with a tiny model (the outputs are real outputs of ours,
with every tag), then times ``run_task`` skipping each output, and a sequential rerun of the
folder, with the manifest in place and with it moved away, interleaved over ``--repeat``
rounds.

    python benchmarks/resume.py                      # 4 files of 1536 x 1536 x 3 uint16, x2
    python benchmarks/resume.py --files 8 --size 2048 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--size", type=int, default=1536, help="input width and height")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from sr_domains.batch_worker import run_task
    from sr_domains.distributed import RUN_MANIFEST, Task, upscale_many
    from sr_domains.geo import upscale_many as sequential
    from sr_domains.options import UpscaleOptions
    from sr_domains.testing import tiny_model
    from sr_domains.testing.geo import make_geotiff

    opts, model = UpscaleOptions(scale=2), tiny_model(3, 2)
    times: dict[str, list[float]] = {
        "recorded": [],
        "not recorded": [],
        "recorded (sequential batch)": [],
        "not recorded (sequential batch)": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src, out = t / "in", t / "out"
        src.mkdir()
        for i in range(args.files):
            make_geotiff(
                src / f"s{i:03d}.tif", width=args.size, height=args.size, count=3,
                dtype="uint16", seed=i,
            )  # fmt: skip
        report = upscale_many(src, out, options=opts, model=model)
        if report.count("ok") != args.files:
            raise SystemExit(f"the batch failed: {[r.error for r in report.failed]}")
        size = sum(f.stat().st_size for f in out.glob("*.tif"))
        tasks = [Task("geotiff", str(f), str(out / f.name)) for f in sorted(src.glob("*.tif"))]
        manifest, aside = out / RUN_MANIFEST, t / "aside.jsonl"
        for _ in range(args.repeat):
            for mode in times:  # interleaved: noise hits all alike
                if mode.startswith("not recorded"):
                    manifest.rename(aside)
                t0 = time.perf_counter()
                if mode.endswith("(sequential batch)"):  # the CLI's folder run, no --workers
                    if sequential(src, out, model=model) != []:
                        raise SystemExit("the sequential batch did not skip every output")
                else:
                    for task in tasks:
                        if run_task(task, opts, model).status != "skipped":
                            raise SystemExit(f"{task.dst} was not skipped")
                times[mode].append(time.perf_counter() - t0)
                if mode.startswith("not recorded"):
                    manifest.unlink(missing_ok=True)  # (the sequential run writes a new one)
                    aside.rename(manifest)
    out_px = args.size * 2
    print(
        f"{args.files} outputs of {out_px} x {out_px} x 3 uint16 (DEFLATE, "
        f"{size / args.files / 2**20:.1f} MiB each on disk, "
        f"{out_px * out_px * 6 / 2**20:.0f} MiB decoded)\n"
    )
    print("| output's manifest record | s per skipped output (median) | runs (s, whole batch) |")
    print("|---|---:|---|")
    med = {}
    for mode, runs in times.items():
        med[mode] = statistics.median(runs) / args.files
        shown = ", ".join(f"{x:.2f}" for x in runs)
        print(f"| {mode} | {med[mode]:.3f} | {shown} |")
    print(f"\nskip time, recorded / not recorded: {med['recorded'] / med['not recorded']:.2f}")
    seq = med["recorded (sequential batch)"] / med["not recorded (sequential batch)"]
    print(f"sequential batch, recorded / not recorded: {seq:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
