"""A NIfTI ``pixdim`` of 0 (unknown spacing, nibabel reads it as 1) is not compared with the
known spacings when the default in-plane axes are picked: array order, as with no spacing."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from _raw_nifti import write_raw  # noqa: E402

from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.medical.nifti import nifti_info  # noqa: E402
from sr_domains.medical.nifti_adapter import info_json  # noqa: E402
from sr_domains.testing.medical import interp_model  # noqa: E402


def _raw_file(path, pixdim, shape=(12, 10, 4)):
    """A real file whose header holds ``pixdim`` as given (nibabel's writer would replace a 0
    by 1), qform and sform codes 0."""
    data = (np.arange(np.prod(shape)).reshape(shape) % 50).astype(np.int16)
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.int16)
    hdr["pixdim"][1:4] = pixdim
    return write_raw(path, hdr, data)


@pytest.mark.parametrize(
    ("pixdim", "axes", "shape"),
    [
        ((0.0, 1.5, 0.0), (0, 1), (24, 20, 4)),  # was (0, 2): the invented 1 < 1.5
        ((1.5, 1.5, 0.0), (0, 1), (24, 20, 4)),  # was (0, 2)
        ((1.0, 1.5, 1.0), (0, 2), (24, 10, 8)),  # stated spacings still pick the axes
    ],
)
def test_unknown_spacing_not_compared(tmp_path, pixdim, axes, shape):
    src = _raw_file(tmp_path / "in.nii", pixdim)
    assert f"SR default in-plane axes {axes}" in nifti_info(src)
    assert info_json(src)["default_axes"] == list(axes)
    before = src.read_bytes()
    dst = upscale_nifti(src, tmp_path / "up.nii", model=interp_model(2))
    assert nib.load(dst).shape == shape
    assert src.read_bytes() == before


def test_training_reads_the_planes_upscale_takes(tmp_path):
    """A training volume with a pixdim of 0 is cut into the planes `upscale` would take: it
    took (0, 2) from nibabel's invented spacing of 1, so a model learnt other planes."""
    from sr_domains.train.inputs import InputSpec
    from sr_domains.train.sources import SourceOptions, _read_nifti

    src = _raw_file(tmp_path / "in.nii", (0.0, 1.5, 0.0), shape=(12, 10, 4))
    loaded = _read_nifti(InputSpec("nifti", src), SourceOptions())
    assert loaded.axes == (0, 1)
    assert loaded.data.shape[-2:] == (12, 10)
    stated = _read_nifti(InputSpec("nifti", src), SourceOptions(slice_axes=(1, 2)))
    assert stated.axes == (1, 2)  # the user's choice is kept
