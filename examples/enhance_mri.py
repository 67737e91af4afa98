"""Enhance MRI volumes from a research script with the ``sr_domains.medical`` API.

    python examples/enhance_mri.py brain.nii.gz brain_x2.nii.gz
    python examples/enhance_mri.py dicom_dir/ dicom_x2/ --scale 2 --weights my_mri_x2.safetensors
    python examples/enhance_mri.py subjects/ out/            # every *.nii.gz in a folder

The outputs line up with the inputs in any viewer (ITK-SNAP, 3D Slicer, FSLeyes): the field of
view is unchanged and only the voxel size shrinks (see docs/medical.md). The model is built once
and reused for every file. Without ``--weights`` the shipped default weights are used.

A file that cannot be done (unreadable input, an output that exists without ``--overwrite``, an
output that would replace an input) is reported in one line, ``failed: INPUT: why``; the other
files are still processed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sr_domains.errors import SRDomainsError
from sr_domains.inference import Upscaler
from sr_domains.intensity import profile_from_any
from sr_domains.medical import read_nifti, upscale_dicom_series, upscale_image, upscale_nifti
from sr_domains.medical.nifti import is_nifti_path
from sr_domains.pretrained import resolve_model


def _failure(src: Path, exc: BaseException) -> str:
    """``failed: INPUT: why`` in one line (the input once: most messages start with it)."""
    text = " ".join(str(exc).splitlines())
    return f"failed: {text}" if text.startswith(str(src)) else f"failed: {src}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("input", type=Path, help="NIfTI file, folder of NIfTI files, or DICOM folder")
    p.add_argument("output", type=Path, help="NIfTI file or output folder")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--weights", type=Path, help="checkpoint (default: shipped weights)")
    p.add_argument("--through-plane", action="store_true", help="also upscale the slice axis")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    # sr_domains raises SRDomainsError subclasses (sr_domains.errors) whose message names the
    # file and the problem; OSError covers the rest (permissions, a full disk). One line each.
    try:
        # Build the model once; an Upscaler binds it to the device (CUDA if present), AMP and
        # tiling.
        model = resolve_model(None, args.weights, scale=args.scale, n_bands=1)
        up = Upscaler(model, device="auto")
    except (SRDomainsError, OSError) as exc:  # e.g. --weights missing or not a checkpoint
        print(f"failed: {exc}", file=sys.stderr)
        return 1

    try:
        if args.input.is_dir() and not any(is_nifti_path(f) for f in args.input.iterdir()):
            files = upscale_dicom_series(
                args.input,
                args.output,
                model=up,
                scale=args.scale,
                through_plane=args.through_plane,
                overwrite=args.overwrite,
            )
            print(f"wrote a derived DICOM series of {len(files)} file(s) to {args.output}")
            return 0
    except (SRDomainsError, OSError) as exc:
        print(_failure(args.input, exc), file=sys.stderr)
        return 1

    inputs = (
        sorted(f for f in args.input.iterdir() if is_nifti_path(f))
        if args.input.is_dir()
        else [args.input]
    )
    done: list[Path] = []
    for src in inputs:
        dst = args.output / src.name if args.input.is_dir() else args.output
        try:
            out = upscale_nifti(
                src,
                dst,
                model=up,
                scale=args.scale,
                through_plane=args.through_plane,
                overwrite=args.overwrite,
            )
        except (SRDomainsError, OSError) as exc:  # this file only: go on with the others
            print(_failure(src, exc), file=sys.stderr)
            continue
        print(f"{src} -> {out}")
        done.append(src)
    failed = len(inputs) - len(done)
    if failed and args.input.is_dir():
        print(f"{failed} of {len(inputs)} file(s) failed", file=sys.stderr)
    if not done:
        return 1

    # In-memory use (e.g. inside an analysis pipeline): arrays and affines in, arrays out.
    vol = read_nifti(done[0])
    profile = profile_from_any("mr", vol.data[None])  # robust percentile, fitted once
    sr, affine = upscale_image(vol.data, vol.affine, up, profile=profile)
    print(
        f"in memory: {vol.data.shape} voxel {np.round(vol.spacing, 3)} -> {sr.shape} "
        f"voxel {np.round(np.linalg.norm(affine[:3, :3], axis=0), 3)}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
