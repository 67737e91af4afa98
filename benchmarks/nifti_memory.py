"""Peak memory and time of NIfTI upscaling vs the number of slices, and of refusing a hostile
header (a 200 KB file whose header claims 4000 x 4000 x 200 voxels).

Each case runs in a fresh subprocess that reports its own peak RSS (``VmHWM``) and wall time.
Criteria printed at the end: the 320-slice run peaks within 20% of the 80-slice run (the
volume is streamed plane by plane), and the hostile header is refused in < 1 s with a peak RSS
< 300 MB.

    python benchmarks/nifti_memory.py                       # 256x256x80 and 256x256x320
    python benchmarks/nifti_memory.py --slices 40 160 --size 128
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # use this checkout's sr_domains, installed or not

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from sr_domains.medical import upscale_nifti
ok, err = True, ""
t1 = time.perf_counter()
try:
    upscale_nifti(sys.argv[1], sys.argv[2], scale=2, overwrite=True)
except Exception as exc:
    ok, err = False, f"{type(exc).__name__}: {exc}"
call = time.perf_counter() - t1
sec = time.perf_counter() - t0
hwm = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
print(json.dumps({"ok": ok, "error": err, "sec": sec, "call": call, "rss": hwm}))
"""


def make_volume(path: Path, size: int, slices: int) -> Path:
    """An int16 head-like phantom written slice by slice (the writer never holds it whole)."""
    import nibabel as nib
    import numpy as np

    from sr_domains.medical.nifti_write import PlaneWriter

    img = nib.Nifti1Image(np.zeros((1, 1, 1), np.int16), np.diag([0.9, 0.9, 3.0, 1.0]))
    hdr = img.header
    hdr.set_data_shape((size, size, slices))
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    head = (xx**2 + yy**2) < 0.2
    rng = np.random.default_rng(0)
    with PlaneWriter(path, hdr, slices) as w:
        for z in range(slices):
            plane = np.where(head, 800 + 300 * np.sin(xx * 40 + z / 5) * np.cos(yy * 30), 0)
            w.write((plane + rng.normal(0, 10, plane.shape) * head)[None].astype(np.float32))
    return path


def make_hostile(path: Path) -> Path:
    import nibabel as nib
    import numpy as np

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)), path)
    raw = bytearray(nib.openers.Opener(str(path)).read())
    hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw)))
    hdr.set_data_shape((4000, 4000, 200))
    head = io.BytesIO()
    hdr.write_to(head)
    raw[: len(head.getvalue())] = head.getvalue()
    with nib.openers.Opener(str(path), "wb") as f:
        f.write(bytes(raw))
    return path


def run(src: Path, dst: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(dst)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--slices", type=int, nargs=2, default=[80, 320])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n in args.slices:
            src = make_volume(t / f"v{n}.nii.gz", args.size, n)
            r = run(src, t / f"o{n}.nii.gz")
            rows.append((f"{args.size}x{args.size}x{n} int16 -> x2", r))
        hostile = make_hostile(t / "hostile.nii.gz")
        r = run(hostile, t / "h.nii.gz")
        rows.append((f"hostile header ({hostile.stat().st_size} B file, claims 4000x4000x200)", r))
    print("| case | result | wall s | peak RSS MB |\n|---|---|---:|---:|")
    for name, r in rows:
        res = "ok" if r["ok"] else "refused: " + r["error"].split(": ", 1)[-1][:70] + "..."
        print(f"| {name} | {res} | {r['sec']:.1f} | {r['rss'] / 2**20:.0f} |")
    small, big, hostile_r = rows[0][1], rows[1][1], rows[2][1]
    ratio = big["rss"] / small["rss"]
    print(
        f"\npeak RSS ratio {args.slices[1]}/{args.slices[0]} slices: {ratio:.2f} "
        "(criterion <= 1.20)"
    )
    print(
        f"hostile header: refused={not hostile_r['ok']}, {hostile_r['sec']:.2f} s, "
        f"{hostile_r['rss'] / 2**20:.0f} MB (criteria < 1 s, < 300 MB)"
    )
    good = (
        ratio <= 1.2
        and not hostile_r["ok"]
        and hostile_r["sec"] < 1
        and hostile_r["rss"] < 300 * 2**20
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
