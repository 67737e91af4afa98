"""The quality battery (``sr-domains evaluate --battery``): every shipped model at x2 and x4
against bicubic and Lanczos-3 under five degradations per domain, on held-out real data.

Degradations and data: :mod:`sr_domains.train.battery` (MATLAB bicubic; Gaussian PSF 0.4 and
0.8 LR px + area decimation; Wald MTF + sensor noise for satellite; k-space truncation + Rician
noise for MRI; a motion-like anisotropic PSF). Prints one Markdown table and a pass/fail line
per acceptance rule: every case >= +0.3 dB over bicubic, >= +1.0 dB on matched bicubic at x2,
and a multi-band SAM not worse than bicubic's ("n/a" when no row of that kind was scored);
the exit status is 2 when a rule says NO, 1 when nothing was scored.

    python benchmarks/quality.py                       # all shipped models (~15 min on 2 cores)
    python benchmarks/quality.py --models sr-lite-gray-x2 --json out.json
    python benchmarks/quality.py --models sr-lite-gray-x2 --adapt       # + adapted to each image
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="shipped weights names (default: all)")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    ap.add_argument("--adapt", type=int, nargs="?", const=200, metavar="STEPS")
    ap.add_argument("--cases", help="comma-separated degradation names (default: all)")
    ap.add_argument("--max-images", type=int, help="first N images of each set (default: all)")
    args = ap.parse_args()
    from sr_domains.options import AdaptOptions
    from sr_domains.pretrained import list_pretrained, load_pretrained
    from sr_domains.strict_json import provenance_json
    from sr_domains.train.battery import CASES, run_battery

    names = args.models or [e.name for e in list_pretrained()]
    known = [c.name for c in CASES]
    wanted = args.cases.split(",") if args.cases else known
    unknown = [c for c in wanted if c not in known]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(known)}")
    cases = tuple(c for c in CASES if c.name in wanted)
    adapt = AdaptOptions(steps=args.adapt) if args.adapt is not None else None
    report = run_battery(
        [(n, load_pretrained(n)) for n in names],
        cases=cases,
        adapt=adapt,
        max_images=args.max_images,
    )
    print(report.table())
    if args.json:
        args.json.write_text(provenance_json(report.to_dict(), indent=2), encoding="utf-8")
    print()
    if not report.rows:
        print("no case was scored (no model of these bands, or no images)")
        return 1
    worst = min(report.rows, key=lambda r: r.gain_db)
    where = f"{worst.model}, {worst.image_set}, {worst.case}"
    print(f"smallest gain over bicubic: {worst.gain_db:+.2f} dB ({where})")
    matched = [r for r in report.rows if r.scale == 2 and r.case == "bicubic"]
    sam = [r for r in report.rows if r.sam is not None]
    rules = {
        "every case >= +0.3 dB": [r.gain_db >= 0.3 for r in report.rows],
        "matched bicubic x2 >= +1.0 dB": [r.gain_db >= 1.0 for r in matched],
        "multi-band SAM <= bicubic's": [r.sam <= r.sam_bicubic for r in sam],
    }
    for rule, checks in rules.items():  # n/a: no row of that kind was scored
        print(f"{rule}: {'n/a' if not checks else 'yes' if all(checks) else 'NO'}")
    return 0 if all(all(c) for c in rules.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
