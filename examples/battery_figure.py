"""Per-degradation score bars from a quality-battery JSON (``benchmarks/quality.py --json``):
PSNR gain over bicubic of each model (and of the model adapted to each image, when the battery
ran with ``--adapt``), one panel per model and image set.

    python benchmarks/quality.py --json battery.json [--adapt]
    python examples/battery_figure.py battery.json docs/img/battery_gains.png
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = json.loads(Path(args[0]).read_text(encoding="utf-8"))["rows"]
    panels: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        panels[(r["model"], r["image_set"])].append(r)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, ((model, image_set), rs) in zip(axes[0], sorted(panels.items())):
        names = [r["case"] for r in rs]
        x = range(len(rs))
        gains = [r["gain_db"] for r in rs]
        ax.bar([i - 0.2 for i in x], gains, width=0.4, label="model", color="#4C72B0")
        adapted = [r.get("psnr_adapted") for r in rs]
        if any(a is not None for a in adapted):
            ag = [(a - r["psnr_bicubic"]) if a is not None else 0 for a, r in zip(adapted, rs)]
            ax.bar([i + 0.2 for i in x], ag, width=0.4, label="--adapt", color="#DD8452")
        ax.axhline(0, color="black", lw=0.8)
        ax.axhline(0.3, color="gray", lw=0.8, ls="--")
        ax.set_xticks(list(x), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{model}\n{image_set}", fontsize=9)
        ax.set_ylabel("PSNR gain over bicubic (dB)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
