"""Before/after figure for the docs: thick-slice MRI made isotropic (axial, coronal, sagittal;
LR | cubic | make_isotropic | truth).

    python examples/isotropic_before_after.py --truth brain_1mm.nii.gz        # any 1 mm volume
    python examples/isotropic_before_after.py                                 # MNI152 (nilearn)
    python examples/isotropic_before_after.py --sr out/through_plane/g4_iso_header.nii.gz

Thick slices (Gaussian profile, FWHM = spacing = ``--thickness`` mm, along the third axis) are
simulated from the 1 mm truth with the documented slice-profile formula, then made isotropic
again by cubic interpolation and by :func:`sr_domains.medical.make_isotropic` (``--budget``
minutes; or ``--sr`` reuses an output of ``benchmarks/through_plane.py`` made from the same
truth). The MNI152 default needs nilearn (``benchmarks/through_plane_setup.sh`` installs it).
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

from sr_domains._resample import cubic_contributions
from sr_domains.image import scale_nifti_affine
from sr_domains.medical import make_isotropic
from sr_domains.medical.slice_profile import SliceProfile, degradation_matrix

REPO = Path(__file__).resolve().parents[1]
FIGURE = "isotropic_before_after.png"


def load_truth(path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if path is not None:
        img = nib.load(path)
        return np.asarray(img.get_fdata(), np.float32), np.asarray(img.affine)
    from nilearn.datasets import load_mni152_template  # only for the default

    img = load_mni152_template(resolution=1)
    return np.asarray(img.get_fdata(), np.float32), np.asarray(img.affine)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--truth", type=Path, help="1 mm isotropic volume (default: MNI152)")
    p.add_argument("--thickness", type=float, default=4.0)
    p.add_argument("--budget", type=float, default=4.0, help="minutes of training")
    p.add_argument("--sr", type=Path, help="reuse this make_isotropic output")
    p.add_argument("--output", type=Path, default=REPO / "docs" / "img" / FIGURE)
    args = p.parse_args()

    truth, affine = load_truth(args.truth)
    t = args.thickness
    w = degradation_matrix(truth.shape[2], 1.0, t, SliceProfile("gaussian", t))
    lr = np.einsum("xyz,jz->xyj", truth, w).astype(np.float32)
    n = lr.shape[2]
    m = int(np.floor(n * t + 0.5))
    idx, wc = cubic_contributions(n, m, t, False)
    cubic = np.einsum("xyjp,jp->xyj", lr[:, :, idx], wc)
    if args.sr is not None:
        sr = np.asarray(nib.load(args.sr).dataobj, np.float32)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "lr.nii.gz"
            nib.save(nib.Nifti1Image(lr, scale_nifti_affine(affine, (1, 1, 1 / t))), src)
            (out,) = make_isotropic(src, Path(tmp) / "iso.nii.gz", budget_minutes=args.budget)
            sr = np.asarray(nib.load(out).dataobj, np.float32)
    lr_nn = np.repeat(lr, round(t), axis=2)[:, :, :m] if t == round(t) else cubic * np.nan
    mm = min(m, truth.shape[2])
    vols = [lr_nn[..., :mm], cubic[..., :mm], sr[..., :mm], truth[..., :mm]]
    psnr = []
    rng = np.ptp(truth)
    for v in vols[1:3]:
        psnr.append(10 * np.log10(rng**2 / np.mean((v - truth[..., :mm]) ** 2)))
    cx, cy, cz = (s // 2 for s in truth.shape)
    cz = min(cz, mm - 1)
    views = {
        "axial (between thick slices)": lambda v: v[:, :, cz + int(t) // 2].T,
        "coronal": lambda v: v[:, cy, :].T,
        "sagittal": lambda v: v[cx, :, :].T,
    }
    titles = [
        f"LR {t:g} mm slices (nearest)",
        f"cubic ({psnr[0]:.1f} dB)",
        f"make_isotropic ({psnr[1]:.1f} dB)",
        "truth 1 mm",
    ]
    vmax = np.percentile(truth, 99.5)
    fig, axs = plt.subplots(3, 4, figsize=(13, 10))
    for r, (name, cut) in enumerate(views.items()):
        for c, v in enumerate(vols):
            ax = axs[r, c]
            ax.imshow(cut(v), cmap="gray", origin="lower", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=10)
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle(
        f"Thick slices ({t:g} mm Gaussian profile) made 1 mm isotropic; PSNR over the whole volume",
        fontsize=11,
    )
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=90)
    print(args.output)


if __name__ == "__main__":
    main()
