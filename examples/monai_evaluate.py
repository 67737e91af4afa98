"""Evaluate an SR model on HR volumes with MONAI's SupervisedEvaluator (PSNR / SSIM handlers).

    python examples/monai_evaluate.py                        # two volumes cut from a real MRI
    python examples/monai_evaluate.py a.nii.gz b.nii.gz --weights mri_x2.safetensors

Every HR volume is loaded, scaled to [0, 1] (0.5-99.5 percentiles, the shipped models' range),
degraded to LR in its plane (MakeLowResolutiond, bicubic as the shipped weights were trained),
super-resolved slice by slice by SRInferer, scored against the HR volume with MONAI's PSNR and
SSIM handlers (SSIM with 11x11x1 windows: the usual per-slice SSIM), put back on the file's grid
by SRInvertd and saved. A bicubic upsampler runs through the same evaluator as the baseline.

Writes ``<output-dir>/sr/*.nii.gz`` (aligned with the inputs) and MONAI's MetricsSaver reports
``<output-dir>/{model,bicubic}/metrics.csv`` and ``psnr_raw.csv`` / ``ssim_raw.csv`` (per volume).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "nifti" / "aniso_vox.nii.gz"


def default_inputs(folder: Path) -> list[Path]:
    """Two volumes of different sizes cut from a real MRI (the sample beside the repository,
    else nibabel's bundled ``anatomical.nii``), written to ``folder``."""
    import nibabel as nib

    src = SAMPLE if SAMPLE.is_file() else Path(nib.__file__).parent / "tests/data/anatomical.nii"
    img = nib.load(src)
    folder.mkdir(parents=True, exist_ok=True)
    nx, ny, nz = img.shape[:3]
    mid = nz // 2
    cuts = {
        "whole_plane": img.slicer[: nx - nx % 2, : ny - ny % 2, mid - 4 : mid + 4],
        "crop": img.slicer[6 : 6 + 2 * ((nx - 12) // 2), 10 : 10 + 2 * ((ny - 20) // 2), 2:8],
    }
    out = []
    for name, cut in cuts.items():
        path = folder / f"{name}.nii.gz"
        nib.save(cut, path)
        out.append(path)
    return out


def bicubic(scale: int):
    """A plain upscaling module (the baseline); SRInferer reads its ``scale`` attribute."""
    import torch

    class Bicubic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.interpolate(
                x, scale_factor=self.scale, mode="bicubic", align_corners=False
            )

    return Bicubic()


def evaluate(
    files, network, scale: int, axes: tuple[int, int], out_dir: Path, save_sr: bool
) -> dict[str, float]:
    """Run one SupervisedEvaluator over ``files``; returns its PSNR / SSIM means.

    The same in-plane ``axes`` go to the LR maker and the inferer (after shrinking two axes
    the finest two of the LR grid may be others).
    """
    import torch
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator
    from monai.handlers import (
        IgniteMetricHandler,
        MetricsSaver,
        PeakSignalToNoiseRatio,
        from_engine,
    )
    from monai.metrics import SSIMMetric
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        SaveImaged,
        ScaleIntensityRangePercentilesd,
    )

    from sr_domains.monai import MakeLowResolutiond, SRInferer, SRInvertd, SRPrepareBatch

    pre = Compose(
        [
            LoadImaged("image"),
            EnsureChannelFirstd("image"),
            ScaleIntensityRangePercentilesd("image", 0.5, 99.5, 0.0, 1.0, clip=True),
            MakeLowResolutiond(
                "image", lr_keys="image_lr", scale=scale, axes=axes, degrade="bicubic"
            ),
        ]
    )
    loader = DataLoader(Dataset([{"image": str(f)} for f in files], transform=pre), batch_size=1)
    post = None
    if save_sr:
        saver = SaveImaged(
            "pred",
            output_dir=out_dir.parent / "sr",
            output_postfix=f"x{scale}",
            separate_folder=False,
            print_log=False,
        )
        # prediction and target both back on the file's grid: the metrics then cover the
        # file's voxels only (any padding added for divisibility is cut away)
        post = Compose([SRInvertd(["pred", "label"]), saver])
    pair = from_engine(["pred", "label"])
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=network,
        inferer=SRInferer(scale=scale, axes=axes),
        prepare_batch=SRPrepareBatch("image_lr", "image", fold=False),  # whole volumes
        postprocessing=post,
        key_val_metric={"psnr": PeakSignalToNoiseRatio(max_val=1.0, output_transform=pair)},
        additional_metrics={
            "ssim": IgniteMetricHandler(
                metric_fn=SSIMMetric(spatial_dims=3, data_range=1.0, win_size=(11, 11, 1)),
                output_transform=pair,
            )
        },
        val_handlers=[
            MetricsSaver(
                save_dir=str(out_dir),
                metrics="*",
                metric_details="*",
                batch_transform=lambda batch: [item["image"].meta for item in batch],
                summary_ops=None,
            )
        ],
    )
    evaluator.run()
    return {k: float(v) for k, v in evaluator.state.metrics.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("inputs", type=Path, nargs="*", help="HR NIfTI volumes (default: two cuts)")
    p.add_argument("--output-dir", type=Path, default=Path("out/monai_evaluate"))
    p.add_argument("--scale", type=int, default=2, choices=(2, 4))
    p.add_argument("--weights", type=Path, help="checkpoint (default: shipped gray weights)")
    p.add_argument("--axes", default="0,1", help="in-plane voxel axes (default 0,1)")
    args = p.parse_args(argv)
    axes = tuple(int(a) for a in args.axes.split(","))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from sr_domains.errors import SRDomainsError
    from sr_domains.pretrained import load_pretrained

    try:
        from sr_domains import load_checkpoint

        if args.weights is not None:
            network = load_checkpoint(args.weights)[0]
        else:
            network = load_pretrained(f"sr-lite-gray-x{args.scale}")
    except SRDomainsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = args.inputs or default_inputs(args.output_dir / "hr")
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"error: {missing[0]}: no such file", file=sys.stderr)
        return 2
    rows = {
        "model": evaluate(files, network, args.scale, axes, args.output_dir / "model", True),
        "bicubic": evaluate(
            files, bicubic(args.scale), args.scale, axes, args.output_dir / "bicubic", False
        ),
    }
    print(f"{len(files)} volumes, x{args.scale}")
    for name, m in rows.items():
        print(f"{name:8s} PSNR {m['psnr']:6.2f} dB  SSIM {m['ssim']:.4f}")
    print(f"SR volumes in {args.output_dir / 'sr'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
