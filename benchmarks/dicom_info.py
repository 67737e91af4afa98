"""Wall time of ``sr-domains info`` on a synthetic DICOM series (default 200 slices of 512x512,
int16), in this process: the header scan alone (what ``info`` did before it checked that
every file decodes), then the whole ``info`` (the scan, the geometry checks of each series and
one decode of every file's pixel data), for uncompressed files and for each compressed transfer
syntax whose encoder is installed (RLE; JPEG-LS and JPEG 2000 need pylibjpeg's encoders or
GDCM). Best of ``--reps``, cold page cache not forced (the files were just written).

    python benchmarks/dicom_info.py [--slices 200] [--size 512] [--reps 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sr_domains.medical import dicom_adapter  # noqa: E402
from sr_domains.medical.dicom_read import scan_series  # noqa: E402
from sr_domains.testing.dicom import make_dicom_series  # noqa: E402

SYNTAXES = {
    "uncompressed": None,
    "RLE lossless": "1.2.840.10008.1.2.5",
    "JPEG-LS lossless": "1.2.840.10008.1.2.4.80",
    "JPEG 2000 lossless": "1.2.840.10008.1.2.4.90",
}


def _best(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"info of {args.slices} slices of {args.size}x{args.size} int16 (best of {args.reps})")
    print(f"{'transfer syntax':<20} {'MB':>6} {'header scan s':>14} {'info s':>8} {'ms/file':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, syntax in SYNTAXES.items():
            folder = Path(tmp) / name.replace(" ", "_")
            try:
                files = make_dicom_series(
                    folder,
                    n_slices=args.slices,
                    rows=args.size,
                    cols=args.size,
                    transfer_syntax=syntax,
                )
            except Exception as exc:  # no encoder for this syntax here
                print(f"{name:<20} skipped: {type(exc).__name__}: {str(exc)[:60]}")
                continue
            mb = sum(f.stat().st_size for f in files) / 1e6
            scan = _best(lambda: scan_series(folder), args.reps)  # noqa: B023
            info = _best(lambda: dicom_adapter.info(folder), args.reps)  # noqa: B023
            per = 1000 * info / len(files)
            print(f"{name:<20} {mb:>6.1f} {scan:>14.3f} {info:>8.3f} {per:>8.2f}")


if __name__ == "__main__":
    main()
