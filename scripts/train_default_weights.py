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
   decimation, Wald MTF, k-space truncation for MRI, sensor noise). RGB: with
   ``shared_detail`` on (one detail layer for all bands, colours stay bicubic's) and a
   bicubic-heavy mix (3 of 6 draws bicubic); the shipped RGB model is ``(1 - b) * stage1 + b *
   stage2`` (:data:`RGB_BLEND`).
3. Single band only (:data:`MID_BLEND`, :data:`FINAL_BLEND`): stage 2 alone sharpens inputs
   that are soft because the scene is (up to -4 dB against bicubic on a clean MR slice), stage
   1 under-corrects real blur. So the two are blended in weight space, ``mid = (1 - a) *
   stage1 + a * stage2`` (network interpolation, as in ESRGAN), ``*_stage3.yaml`` fine-tunes
   ``mid`` for 1000 steps with a bicubic-heavy random mix (3 of 7 draws bicubic), and the
   shipped default is ``(1 - b) * stage1 + b * stage3``. Stages 1 and 2 ship beside it as
   ``<name>-bicubic`` and ``<name>-robust`` (docs/weights.md); at x4 the robust variant is
   stage 2 fine-tuned once more with noise on every sample (``*_noisy.yaml``, :data:`NOISY`),
   as the noise gate blends it in for noisy inputs.

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
#: the larger RGB family (``sr-base``, EDSR 16 x 64): trained on a GPU session only, when asked
#: (``--only rgb_x2_base``); never part of the default CPU run, and shipped only if the battery
#: says it beats the ``sr-lite`` model (docs/weights.md, "The GPU route")
GPU_FAMILY = ["rgb_x2_base"]
STAGE3 = ["gray_x2", "gray_x4"]
#: stage-2 models fine-tuned once more with noise on every sample; that run is the shipped
#: ``-robust`` variant (the one the noise gate blends in), stage 3 still starts from stage 2
NOISY = ["gray_x4"]
ORDER = (
    [f"{k}_stage1" for k in STAGE2]
    + STAGE2
    + [f"{k}_noisy" for k in NOISY]
    + [f"{k}_stage3" for k in STAGE3]
    + [f"{k}_stage1" for k in GPU_FAMILY]
    + GPU_FAMILY
)
HELDOUT = {"gray": "gray-heldout", "rgb": "rgb-heldout"}
WEIGHTS_DIR = REPO / "sr_domains" / "weights"
REPORT = "weights_report.md"  # in --out-dir; docs/weights.md is curated from it
#: stage-2 weight ``a`` of the blend that stage 3 starts from, and stage-3 weight ``b`` of the
#: shipped default (both picked on the battery + held-out images: docs/weights.md)
MID_BLEND = {"gray_x2": 0.5, "gray_x4": 0.7}
FINAL_BLEND = {"gray_x2": 0.65, "gray_x4": 0.85}
#: stage-2 weight ``b`` of the shipped RGB models (stage 2 = shared-detail fine-tune)
RGB_BLEND = {"rgb_x2": 0.85, "rgb_x4": 0.95, "rgb_x2_base": 0.85}
ARCH_NOTE = "Small generic model (EDSR 8x32, 5x5 channel attention, bicubic skip)"
BASE_NOTE = "Larger generic model (EDSR 16x64, 5x5 channel attention, bicubic skip)"
DEGRADATIONS = (
    "MATLAB bicubic, Gaussian PSF (sigma 0.2-1.2 LR px) + area decimation, Wald MTF (0.15-0.45"
    " at Nyquist), motion-like anisotropic PSF, MRI k-space truncation; half the samples with"
    " noise (Gaussian sigma <= 0.02, or Rician sigma <= 0.03)"
)


def variant_notes(name: str, kind: str, key: str = "") -> str:
    """Card notes of the three shipped single-band variants (default, robust, bicubic)."""
    if kind == "default":
        a, b = MID_BLEND.get(key, 0.0), FINAL_BLEND.get(key, 0.0)
        return (
            f"{ARCH_NOTE}, v3: {1 - b:.2g} x {name}-bicubic + {b:.2g} x a fine-tuned blend"
            f" ({1 - a:.2g} x {name}-bicubic + {a:.2g} x {name}-robust, then 1000 steps of"
            " random degradations, 3 of 7 bicubic), in weight space. Training degradations:"
            f" {DEGRADATIONS}. Above bicubic on every held-out image and on"
            " most battery cases; weakest on noisy MRI (k-space truncation + Rician noise),"
            f" where {name}-robust is better: when no model is named, upscale blends that"
            " variant in by the input's estimated noise (sr_domains.noise_gate; battery"
            " scores measured that way; docs/weights.md)."
        )
    if kind == "robust":
        noisy = (
            " Then fine-tuned 800 steps with that noise on every sample (the variant the noise"
            " gate blends in for noisy inputs)."
            if key.endswith("_noisy")
            else ""
        )
        return (
            f"{ARCH_NOTE}, v2: degradation-robust. Training degradations: {DEGRADATIONS}."
            f"{noisy}"
            " Best on blurred or noisy sensor data; sharpens inputs that are soft because the"
            f" scene is (use {name} unless the input is known to be blurred)."
        )
    return (
        f"{ARCH_NOTE}, v1: trained on MATLAB-bicubic pairs only; the best choice when the"
        " low-resolution data really was made by bicubic decimation, weaker on sensor-like"
        " blur and noise (quality battery: docs/weights.md)."
    )


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
        "--train-only",
        action="store_true",
        help="train and stop: no scoring, cards or install (a GPU session; score the runs "
        "here afterwards with --evaluate-only)",
    )
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="no training: re-score the finished runs in --out-dir, rewrite cards and docs",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from sr_domains.train.config import apply_overrides, load_train_config
    from sr_domains.train.trainer import train

    for key in plan(args.only):
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
        if args.train_only:
            continue
        if key in STAGE3:  # stage 3 starts from this blend; the variants are finished after it
            stage1_weights = _run(args, f"{cfg.name}-stage1")
            blend_weights(stage1_weights, weights, MID_BLEND[key], _run(args, cfg.name, "blend"))
        elif key.endswith("_stage3"):
            finish_variants(key.removesuffix("_stage3"), cfg, weights, args)
        elif key.endswith("_noisy"):
            pass  # shipped as the -robust variant, finished with the others after stage 3
        elif key.startswith("rgb_"):
            finish_rgb(key, cfg, weights, args)
        elif not stage1:
            finish(key, cfg, weights, args)
    if not args.no_install and not args.train_only:
        write_doc(Path(args.out_dir))
    return 0


def plan(only: list[str] | None) -> list[str]:
    """The configs to run, in dependency order: ``only`` and the stages they need (default:
    every shipped model; never :data:`GPU_FAMILY` unless named)."""
    keys = only or STAGE2
    return [
        k
        for k in ORDER
        if k in keys or k.rsplit("_stage", 1)[0] in keys or k.removesuffix("_noisy") in keys
    ]


def blend_weights(stage1: Path, stage2: Path, alpha: float, out: Path) -> Path:
    """``(1 - alpha) * stage1 + alpha * stage2`` (same architecture), card of stage 2."""
    from sr_domains.checkpoint import load_checkpoint, save_checkpoint

    m1, _ = load_checkpoint(stage1)
    m2, card = load_checkpoint(stage2)
    a = m1.state_dict()
    mixed = {k: torch_lerp(a[k], v, alpha) for k, v in m2.state_dict().items()}
    m2.load_state_dict(mixed)
    save_checkpoint(m2, out, card, overwrite=True)
    return out


def torch_lerp(a, b, alpha: float):
    """``(1 - alpha) a + alpha b`` in float, back in ``b``'s dtype (integer buffers: ``b``)."""
    if not b.is_floating_point():
        return b
    return ((1 - alpha) * a.double() + alpha * b.double()).to(b.dtype)


def _run(args: argparse.Namespace, run: str, file: str = "weights") -> Path:
    return Path(args.out_dir) / run / f"{file}.safetensors"


def finish_variants(key: str, cfg3, stage3: Path, args: argparse.Namespace) -> None:
    """The three shipped single-band variants: ``<name>-bicubic`` (stage 1), ``<name>-robust``
    (stage 2, or its noisy fine-tune for :data:`NOISY` keys) and the default ``<name>`` (stage 1
    blended with stage 3, :data:`FINAL_BLEND`)."""
    from sr_domains.train.config import load_train_config

    def config(k: str):
        return load_train_config(REPO / "configs" / "default" / f"{k}.yaml")

    cfg = config(key)
    stage1 = _run(args, f"{cfg.name}-stage1")
    final = blend_weights(stage1, stage3, FINAL_BLEND[key], _run(args, cfg.name, "default"))
    robust_key = f"{key}_noisy" if key in NOISY else key
    robust = _run(args, config(robust_key).name)
    folder = Path(args.out_dir) / cfg.name
    for k, weights, name, kind in (
        (f"{key}_stage1", stage1, f"{cfg.name}-bicubic", "bicubic"),
        (robust_key, robust, f"{cfg.name}-robust", "robust"),
        (f"{key}_stage3", final, cfg.name, "default"),
    ):
        notes = variant_notes(cfg.name, kind, k if kind == "robust" else key)
        finish(k, config(k), weights, args, name=name, notes=notes, folder=folder)


def finish_rgb(key: str, cfg, weights: Path, args: argparse.Namespace) -> None:
    """The shipped RGB model: ``(1 - b) * stage1 + b * stage2`` (:data:`RGB_BLEND`) with
    ``shared_detail`` on (stage 2 trained with it; stage 1's weights load either way)."""
    from sr_domains.checkpoint import load_checkpoint

    stage1 = _run(args, f"{cfg.name}-stage1")
    shared, card = load_checkpoint(weights)
    card = dataclasses.replace(card, spectral=cfg.card.spectral)  # a config change, no retraining
    plain, _ = load_checkpoint(stage1)
    a = plain.state_dict()
    shared.load_state_dict(
        {k: torch_lerp(a[k], v, RGB_BLEND[key]) for k, v in shared.state_dict().items()}
    )
    out = _run(args, cfg.name, "default")
    from sr_domains.checkpoint import save_checkpoint

    save_checkpoint(shared, out, card, overwrite=True)
    b = RGB_BLEND[key]
    arch = BASE_NOTE if key in GPU_FAMILY else ARCH_NOTE
    notes = (
        f"{arch}, shared detail (one detail layer added to every band of the bicubic"
        f" upsampling: colours stay bicubic's), v2: {1 - b:.2g} x the bicubic-trained stage 1"
        f" + {b:.2g} x its fine-tune with shared detail on random degradations (3 of 6"
        f" MATLAB bicubic; Gaussian PSF sigma 0.2-1.2 LR px + area, Wald MTF 0.15-0.45,"
        " motion PSF; Gaussian noise <= 0.02 on half), in weight space (docs/weights.md)."
    )
    if cfg.card.spectral == "bicubic":
        notes += (
            " Card spectral: bicubic: by default `upscale` gives its output bicubic's band"
            " ratios (spectral angles at or below bicubic's on the battery)."
        )
    finish(key, cfg, out, args, notes=notes)


def scored_note(training_data: str, corpus: str) -> str:
    """The card's training-data text ending with where its scores come from, once (a
    re-score, ``--evaluate-only``, starts from a card that already says so)."""
    note = f" Scores (card metrics) are on the held-out corpus {corpus}, never trained on."
    return training_data.replace(note, "") + note


def finish(
    key: str,
    cfg,
    weights: Path,
    args: argparse.Namespace,
    name: str | None = None,
    notes: str | None = None,
    folder: Path | None = None,
) -> None:
    """Score ``weights`` on the held-out corpus, write the card, install, write heldout.md
    (``name``/``notes``: install under another name with these card notes; ``folder``: where
    the card's file and report go, default the run folder of ``cfg``). ``key`` names the
    config (``configs/default/<key>.yaml``) that ``cfg`` came from."""
    from sr_domains.checkpoint import load_checkpoint, save_checkpoint
    from sr_domains.train.battery import run_battery
    from sr_domains.train.evaluate import evaluate

    name = name or cfg.name
    folder = folder or Path(args.out_dir) / cfg.name
    final = folder / f"{name}.safetensors"
    corpus = HELDOUT[key.split("_")[0]]
    model, card = load_checkpoint(weights)
    card = dataclasses.replace(card, name=name, notes=notes or card.notes)
    save_checkpoint(model, final, card, overwrite=True)  # evaluated under its own name
    report = evaluate(weights=final, corpus=corpus, device=args.device)
    print(report.table, flush=True)
    model.card = card
    battery = run_battery([(name, model)], device=args.device)
    print(battery.table(), flush=True)
    summary = {f"heldout_{k}": round(v, 4) for k, v in report.summary.items()}
    summary["psnr_gain_db"] = round(report.summary["psnr_gain_db"], 4)
    for r in battery.rows:  # flat keys: card metrics are name -> number
        summary[f"battery_gain_db:{r.image_set}/{r.case}"] = round(r.gain_db, 3)
    card = dataclasses.replace(
        card, metrics=summary, training_data=scored_note(card.training_data, corpus)
    )
    save_checkpoint(model, final, card, overwrite=True)
    if not args.no_install:
        WEIGHTS_DIR.mkdir(exist_ok=True)
        shutil.copyfile(final, WEIGHTS_DIR / final.name)
        print(f"installed {WEIGHTS_DIR / final.name}")
    lead = f"{notes}\n\n" if notes else ""
    section = (
        f"## {name}\n\n{lead}Trained on `{cfg.data.corpus}` ({cfg.steps} steps x "
        f"{cfg.batch_size} patches of {cfg.data.patch_size} px, config "
        f"`configs/default/{key}.yaml`). Held-out evaluation, `sr-domains evaluate "
        f"--model {name} --corpus {corpus}`:\n\n{report.table}\n\n"
        f"Quality battery (`sr-domains evaluate --battery --model {name}`):\n\n"
        f"{battery.table()}\n"
    )
    report_md = folder / ("heldout.md" if final.stem == folder.name else f"heldout-{name}.md")
    report_md.write_text(section, encoding="utf-8")


def write_doc(out_dir: Path) -> None:
    """docs/weights.md from the held-out reports of every model trained so far."""
    from sr_domains.train.config import load_train_config

    sections = []
    for key in STAGE2 + GPU_FAMILY:
        name = load_train_config(REPO / "configs" / "default" / f"{key}.yaml").name
        for report in sorted((out_dir / name).glob("heldout*.md")):
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
