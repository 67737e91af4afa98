"""Build the wheel, install it into a fresh venv (no checkout, no ../shared) and check that
`sr-domains evaluate --corpus ...` reproduces the README held-out table within 0.01 dB.

    python scripts/check_wheel.py            # about 5 minutes on two cores

Prints one line per README row (README gain, gain from the installed wheel, difference) and
exits 1 when a row differs by more than 0.01 dB or cannot be run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(
    r"^\| `(?P<name>sr-lite-[a-z0-9-]+)` \([^)]*\) \| \d \| (?P<corpus>[a-z-]+) \| "
    r"(?P<bicubic>[\d.]+) \| (?P<sr>[\d.]+) \| [^|]*?(?P<gain>[+-][\d.]+) dB"
)


def readme_rows() -> list[dict[str, str]]:
    """The rows of the README's held-out table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [m.groupdict() for line in text.splitlines() if (m := ROW.match(line))]


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", default="torch==2.13.0", help="torch requirement to install")
    args = parser.parse_args(argv)
    rows = readme_rows()
    if not rows:
        raise SystemExit("no held-out table found in README.md")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(REPO)])
        (wheel,) = (work / "dist").glob("*.whl")
        venv = work / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        run([*pip, args.torch])
        run([*pip, f"{wheel}[geo,medical,train]"])
        env = {k: v for k, v in os.environ.items() if k != "SR_DOMAINS_DATA"}
        bad = 0
        for row in rows:
            out = work / f"{row['name']}.json"
            cmd = [str(venv / "bin" / "sr-domains"), "evaluate", "--model", row["name"]]
            run([*cmd, "--corpus", row["corpus"], "--json", str(out)], cwd=work, env=env)
            summary = json.loads(out.read_text())["summary"]
            gain = summary["psnr_gain_db"]
            diff = gain - float(row["gain"])
            ok = abs(diff) <= 0.01 + 0.005  # the README rounds to 0.01
            bad += not ok
            print(
                f"{row['name']:28s} {row['corpus']:13s} README {row['gain']:>6s}  wheel "
                f"{gain:+.3f}  diff {diff:+.3f}  {'ok' if ok else 'DIFFERS'}",
                flush=True,
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
