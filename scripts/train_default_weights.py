"""Train, evaluate and install the shipped default weights (sr_domains/weights/).

CPU recipe (reproducible; stage 1 about 20-40 minutes per model on two cores, stage 2 about
as long)::

    python scripts/train_default_weights.py               # everything, in dependency order
    python scripts/train_default_weights.py --only gray_x2 --steps 500    # a quick look

Two stages per model, offline training corpora only (``configs/default/*.yaml``: gray-train or
rgb-train, see sr_domains.train.corpora):

1. ``*_stage1.yaml``: bicubic pre-training (x4 starts from the x2 stage-1 trunk); skipped when
   its run already holds finished weights.
2. ``*.yaml``: fine-tuning with randomized degradations (Gaussian and motion-like PSFs with area
   decimation, Wald MTF, k-space truncation for MRI, sensor noise; a spectral-angle term for RGB)
   so one model per (bands, scale) is robust to real sensors.

Each stage-2 model is then scored on the matching held-out corpus (gray-heldout: real MR DICOM
series + oblique NIfTI; rgb-heldout: Landsat-7 and uint16 RGB GeoTIFFs) and on the quality
battery (``sr_domains.train.battery``), neither of which it saw. Scores go into the model card
and ``--out-dir``/weights_report.md (docs/weights.md is curated from it: it also compares
versions); the weights are installed into sr_domains/weights/.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE2 = ["gray_x2", "rgb_x2", "gray_x4", "rgb_x4"]
ORDER = [f"{k}_stage1" for k in STAGE2] + STAGE2
HELDOUT = {"gray": "gray-heldout", "rgb": "rgb-heldout"}
WEIGHTS_DIR = REPO / "sr_domains" / "weights"
REPORT = "weights_report.md"  # in --out-dir; docs/weights.md is curated from it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=ORDER, help="subset (default: all)")
    parser.add_argument("--steps", type=int, help="override the configs' step counts")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: config)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out-dir", default="runs/default", help="run folders go here")
    parser.add_argument("--no-install", action="store_true", help="do not copy into the package")
    parser.add_argument("--resume", action="store_true", help="resume interrupted runs")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="no training: re-score the finished runs in --out-dir, rewrite cards and docs",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from sr_domains.train.config import apply_overrides, load_train_config
    from sr_domains.train.trainer import train

    keys = args.only or STAGE2
    todo = [k for k in ORDER if k in keys or k.removesuffix("_stage1") in keys]
    for key in todo:
        cfg = load_train_config(REPO / "configs" / "default" / f"{key}.yaml")
        over: dict[str, object] = {"out_dir": args.out_dir, "device": args.device}
        if args.steps:
            over["steps"] = args.steps
        if args.threads:
            over["threads"] = args.threads
        init = cfg.model.init_from
        if init and not Path(init).is_absolute():  # runs/default/... follows --out-dir
            rel = Path(init)
            if rel.parts[:2] == ("runs", "default"):
                over["model.init_from"] = str(Path(args.out_dir).resolve().joinpath(*rel.parts[2:]))
            else:
                over["model.init_from"] = str(REPO / init)
        cfg = apply_overrides(cfg, over)
        weights = cfg.run_dir / "weights.safetensors"
        stage1 = key.endswith("_stage1")
        if stage1 and weights.exists():
            print(f"{cfg.name}: stage 1 already trained ({weights})")
            continue
        if not args.evaluate_only:
            weights = train(cfg, resume=args.resume, overwrite=not args.resume).weights
        if weights is None or not weights.exists():
            raise SystemExit(f"{cfg.name}: no finished weights in {cfg.run_dir}")
        if not stage1:
            finish(key, cfg, weights, args)
    if not args.no_install:
        write_doc(Path(args.out_dir))
    return 0


def finish(key: str, cfg, weights: Path, args: argparse.Namespace) -> None:
    """Score ``weights`` on the held-out corpus, write the card, install, write heldout.md."""
    from sr_domains.checkpoint import load_checkpoint, save_checkpoint
    from sr_domains.train.battery import run_battery
    from sr_domains.train.evaluate import evaluate

    corpus = HELDOUT[key.split("_")[0]]
    report = evaluate(weights=weights, corpus=corpus, device=args.device)
    print(report.table, flush=True)
    model, card = load_checkpoint(weights)
    model.card = card
    battery = run_battery([(cfg.name, model)], device=args.device)
    print(battery.table(), flush=True)
    summary = {f"heldout_{k}": round(v, 4) for k, v in report.summary.items()}
    summary["psnr_gain_db"] = round(report.summary["psnr_gain_db"], 4)
    for r in battery.rows:  # flat keys: card metrics are name -> number
        summary[f"battery_gain_db:{r.image_set}/{r.case}"] = round(r.gain_db, 3)
    card = dataclasses.replace(
        card,
        metrics=summary,
        training_data=card.training_data
        + f" Scores (card metrics) are on the held-out corpus {corpus}, never trained on.",
    )
    final = Path(args.out_dir) / cfg.name / f"{cfg.name}.safetensors"
    save_checkpoint(model, final, card, overwrite=True)
    if not args.no_install:
        WEIGHTS_DIR.mkdir(exist_ok=True)
        shutil.copyfile(final, WEIGHTS_DIR / final.name)
        print(f"installed {WEIGHTS_DIR / final.name}")
    section = (
        f"## {cfg.name}\n\nTrained on `{cfg.data.corpus}` ({cfg.steps} steps x "
        f"{cfg.batch_size} patches of {cfg.data.patch_size} px, config "
        f"`configs/default/{key}.yaml`). Held-out evaluation, `sr-domains evaluate "
        f"--model {cfg.name} --corpus {corpus}`:\n\n{report.table}\n\n"
        f"Quality battery (`sr-domains evaluate --battery --model {cfg.name}`):\n\n"
        f"{battery.table()}\n"
    )
    (final.parent / "heldout.md").write_text(section, encoding="utf-8")


def write_doc(out_dir: Path) -> None:
    """docs/weights.md from the held-out reports of every model trained so far."""
    from sr_domains.train.config import load_train_config

    sections = []
    for key in STAGE2:
        name = load_train_config(REPO / "configs" / "default" / f"{key}.yaml").name
        report = out_dir / name / "heldout.md"
        if report.exists():
            sections.append(report.read_text(encoding="utf-8"))
    doc = out_dir / REPORT
    doc.write_text(
        "# Shipped weights\n\nMade by `python scripts/train_default_weights.py` (CPU). "
        "PSNR/SSIM in the normalized space of each file's intensity profile (data range 1 = "
        "the 0.5-99.5 percentile range), bicubic LR, border of `scale` pixels excluded.\n\n"
        + "\n".join(sections),
        encoding="utf-8",
    )
    print(f"wrote {doc} (copy what changed into docs/weights.md)")


if __name__ == "__main__":
    sys.exit(main())
