"""An integer NIfTI volume holding a few distinct values (a segmentation without intent LABEL,
as nnU-Net and FreeSurfer write them) is upscaled with a warning that SR invents labels; an
MR volume is not warned."""

from __future__ import annotations

import logging

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.testing.medical import interp_model, oblique_affine  # noqa: E402


def _save(path, data):
    nib.save(nib.Nifti1Image(data, oblique_affine((1.0, 1.0, 2.0))), path)
    return path


def test_a_segmentation_without_label_intent_is_warned(tmp_path, caplog):
    seg = np.zeros((16, 16, 6), np.uint8)
    seg[4:10, 4:10] = 1
    seg[10:14, 2:6] = 3
    src = _save(tmp_path / "seg.nii.gz", seg)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_nifti(src, tmp_path / "o.nii.gz", model=interp_model(2, mode="bicubic"))
    assert "holds only 3 distinct values (0, 1, 3)" in caplog.text
    assert "nearest neighbour" in caplog.text


def test_an_mr_volume_is_not_warned(tmp_path, caplog):
    rng = np.random.default_rng(0)
    mr = rng.integers(0, 900, (16, 16, 6)).astype(np.int16)
    src = _save(tmp_path / "mr.nii.gz", mr)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_nifti(src, tmp_path / "o.nii.gz", model=interp_model(2))
    assert "distinct values" not in caplog.text
