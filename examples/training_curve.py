"""Training curve of a run folder (``log.csv`` written by ``sr-domains train``): loss against
step, one line per run.

    python examples/training_curve.py docs/img/training_curve.png runs/default/sr-lite-gray-x2 ...
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    runs = list(map(Path, args[1:]))
    names = [r.name for r in runs]
    for run in runs:
        with open(run / "log.csv", newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("loss")]
        # runs of one name in different folders: the folder tells them apart
        label = run.name if names.count(run.name) == 1 else f"{run.parent.name}/{run.name}"
        ax.plot(
            [int(r["step"]) for r in rows],
            [float(r["loss"]) for r in rows],
            marker="o" if len(rows) < 3 else None,  # (a one-row log draws no line)
            label=label,
        )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (L1, normalized units)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(args[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
