"""A NIfTI ``pixdim`` of 0 (unknown spacing, both codes 0) stays 0 in the output: nibabel reads
it as 1, which must not become a concrete ``1 / s`` spacing."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from _raw_nifti import write_raw  # noqa: E402

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
    return write_raw(path, hdr, data)


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


def _qform_file(path, pixdim, shape=(12, 10, 4), sform=False):
    """A real file with an oblique qform (code 1) and a ``pixdim`` of 0 written raw; with
    ``sform`` also an sform (code 2) that states every spacing."""
    from sr_domains.testing.medical import rotation

    data = (np.arange(np.prod(shape)).reshape(shape) % 50).astype(np.int16)
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.int16)
    aff = np.eye(4)
    aff[:3, :3] = rotation() @ np.diag([1.0 if p == 0 else p for p in pixdim])
    aff[:3, 3] = (10.0, -20.0, 30.0)
    hdr.set_qform(aff, code=1)
    if sform:
        hdr.set_sform(aff @ np.diag([0.9, 1, 1, 1]), code=2)
    hdr["pixdim"][1:4] = pixdim
    return write_raw(path, hdr, data)


@pytest.mark.parametrize("sform", [False, True])
def test_unknown_spacing_stays_unknown_with_a_qform(tmp_path, sform):
    """With qform code > 0 the written qform put its column norm (nibabel's 1 / s = 0.5) into
    pixdim; it stays 0, and the known axes follow the voxel-centre rule exactly."""
    from sr_domains.image import scale_nifti_affine

    src = _qform_file(tmp_path / "q.nii", (0.0, 1.5, 2.0), sform=sform)
    with open(src, "rb") as f:
        assert list(nib.Nifti1Header.from_fileobj(f, check=False)["pixdim"][1:4]) == [0, 1.5, 2]
    q_src = nib.load(src).header.get_qform()  # (nibabel: the unknown spacing read as 1)
    before = src.read_bytes()
    dst = upscale_nifti(src, tmp_path / "up.nii", model=interp_model(2))
    with open(dst, "rb") as f:
        raw = nib.Nifti1Header.from_fileobj(f, check=False)
    assert [float(v) for v in raw["pixdim"][1:4]] == [0.0, 0.75, 2.0]
    assert (int(raw["qform_code"]), int(raw["sform_code"])) == (1, 2 if sform else 0)
    want = scale_nifti_affine(q_src, (2, 2, 1))  # axes (0, 1): the unknown one not compared
    got = nib.load(dst).header.get_qform()
    np.testing.assert_allclose(got[:3, 1:], want[:3, 1:], atol=1e-5)  # known axes, centre
    np.testing.assert_allclose(got[:3, 0], q_src[:3, 0], atol=1e-5)  # direction; 0 read as 1
    assert nib.load(dst).shape == (24, 20, 4)
    assert src.read_bytes() == before
