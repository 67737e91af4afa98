"""A NIfTI ``pixdim`` of 0 (unknown spacing, both codes 0) stays 0 in the output: nibabel reads
it as 1, which must not become a concrete ``1 / s`` spacing."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sr_domains.medical import read_nifti, upscale_nifti  # noqa: E402
from sr_domains.testing.medical import interp_model  # noqa: E402


def _raw_file(path, pixdim, shape=(12, 10, 4), nifti2=False):
    """A real file whose header holds ``pixdim`` as given (nibabel's own writer replaces a 0
    spacing by 1, so the header is written raw), qform and sform codes 0."""
    data = (np.arange(np.prod(shape)).reshape(shape) % 50).astype(np.int16)
    hdr = (nib.Nifti2Header if nifti2 else nib.Nifti1Header)()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.int16)
    hdr["pixdim"][1:4] = pixdim
    hdr.set_data_offset(hdr.single_vox_offset)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        hdr.write_to(f)
        f.write(b"\0" * (int(hdr.single_vox_offset) - hdr.sizeof_hdr))
        f.write(data.tobytes(order="F"))
    return path


def _raw_pixdim(path, nifti2=False):
    opener = gzip.open if str(path).endswith(".gz") else open
    cls = nib.Nifti2Header if nifti2 else nib.Nifti1Header
    with opener(path, "rb") as f:
        hdr = cls.from_fileobj(f, check=False)
    assert (int(hdr["qform_code"]), int(hdr["sform_code"])) == (0, 0)
    return [float(v) for v in hdr["pixdim"][1:4]]


@pytest.mark.parametrize(
    ("name", "pixdim", "want", "nifti2"),
    [
        ("unknown.nii", (0.0, 0.0, 2.0), [0.0, 0.0, 2.0], False),
        ("half.nii.gz", (0.0, 1.5, 3.0), [0.0, 0.75, 3.0], False),
        ("one.nii", (1.0, 1.0, 3.0), [0.5, 0.5, 3.0], False),  # a stated 1 mm is known
        ("unknown2.nii", (0.0, 0.0, 2.0), [0.0, 0.0, 2.0], True),
    ],
)
def test_unknown_spacing_stays_unknown(tmp_path, name, pixdim, want, nifti2):
    src = _raw_file(tmp_path / name, pixdim, nifti2=nifti2)
    assert _raw_pixdim(src, nifti2) == list(pixdim)
    before = src.read_bytes()
    dst = upscale_nifti(src, tmp_path / f"up_{name}", model=interp_model(2))
    assert _raw_pixdim(dst, nifti2) == want
    assert src.read_bytes() == before
    out = nib.load(dst)  # valid and re-loadable (nibabel reads 0 as 1 again)
    assert out.shape == (24, 20, 4)
    assert np.asarray(out.dataobj).shape == (24, 20, 4)
    vol = read_nifti(dst)
    assert vol.data.shape == (24, 20, 4)
