"""Before/after figure for the docs: LR | bicubic | SR on one MRI slice, same field of view.

    python examples/mri_before_after.py                            # shipped default weights
    python examples/mri_before_after.py --weights my_mri_x2.safetensors
    python examples/mri_before_after.py --placeholder              # no trained weights yet

Default input: ``../shared/data/nifti/aniso_vox.nii.gz`` (dipy, 4 x 4 x 5 mm, oblique). Every
panel goes through ``upscale_nifti`` and is drawn over its physical extent, so the panels line up
exactly as in a viewer. ``--placeholder`` draws the SR panel with bicubic interpolation posing
as a model (clearly labelled); regenerate the figure once trained weights ship.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from sr_domains.errors import ConfigError
from sr_domains.medical import default_axes, read_nifti, upscale_nifti
from sr_domains.pretrained import resolve_model
from sr_domains.testing.medical import interp_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "nifti" / "aniso_vox.nii.gz"


def load_model(weights: Path | None, scale: int, placeholder: bool):
    try:
        return resolve_model(None, weights, scale=scale, n_bands=1), None
    except (ConfigError, ImportError) as exc:
        if not placeholder:
            raise SystemExit(f"no model: {exc}\npass --weights PATH, or --placeholder") from exc
        return interp_model(scale, "bicubic"), "placeholder: bicubic, no trained weights yet"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    p.add_argument("--output", type=Path, default=REPO / "docs" / "img" / "mri_before_after.png")
    p.add_argument("--weights", type=Path)
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--placeholder", action="store_true", help="bicubic stand-in for the model")
    args = p.parse_args()

    model, note = load_model(args.weights, args.scale, args.placeholder)
    vol = read_nifti(args.input)
    axes = default_axes(vol.spacing, vol.data.shape)
    (k,) = {0, 1, 2} - set(axes)
    with tempfile.TemporaryDirectory() as tmp:
        sr = upscale_nifti(args.input, Path(tmp) / "sr.nii.gz", model=model, scale=args.scale)
        bic = upscale_nifti(
            args.input,
            Path(tmp) / "bic.nii.gz",
            model=interp_model(args.scale, "bicubic"),
            scale=args.scale,
        )
        images = [nib.load(f).get_fdata() for f in (args.input, bic, sr)]

    def plane(data: np.ndarray) -> np.ndarray:
        return np.take(data, data.shape[k] // 2, axis=k).T  # rows = 2nd in-plane axis

    extent = [
        0,
        vol.data.shape[axes[0]] * vol.spacing[axes[0]],
        0,
        vol.data.shape[axes[1]] * vol.spacing[axes[1]],
    ]
    lo, hi = np.percentile(images[0], [0.5, 99.5])
    sp = vol.spacing
    titles = [
        f"input {sp[axes[0]]:.3g} x {sp[axes[1]]:.3g} mm",
        f"bicubic x{args.scale}",
        f"SR x{args.scale}" + (f"\n({note})" if note else ""),
    ]
    fig, grid = plt.subplots(2, 3, figsize=(11, 7.6), constrained_layout=True)
    cx, cy, half = extent[1] * 0.5, extent[3] * 0.55, min(extent[1], extent[3]) * 0.18
    for col, (img, title) in enumerate(zip(images, titles)):
        for row in range(2):
            ax = grid[row, col]
            ax.imshow(
                plane(img),
                cmap="gray",
                vmin=lo,
                vmax=hi,
                origin="lower",
                extent=extent,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
                ax.add_patch(
                    plt.Rectangle(
                        (cx - half, cy - half),
                        2 * half,
                        2 * half,
                        fill=False,
                        ec="tab:orange",
                        lw=1,
                    )
                )
            else:
                ax.set_xlim(cx - half, cx + half)
                ax.set_ylim(cy - half, cy + half)
    fig.suptitle(
        f"{args.input.name}: slice {vol.data.shape[k] // 2} along axis {k}, same field of view "
        "(panels drawn over their physical extent)",
        fontsize=10,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(args.output)


if __name__ == "__main__":
    main()
