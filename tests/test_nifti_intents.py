"""Non-scalar NIfTI intents (vectors, tensors, point sets, CIFTI) are refused like labels;
scalar statistical maps are upscaled."""

from __future__ import annotations

import pytest

nib = pytest.importorskip("nibabel")

from _nifti_intent_files import save_with_intent as _save  # noqa: E402

from sr_domains.dry_run import dry_run  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import make_isotropic, upscale_nifti  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing.medical import interp_model  # noqa: E402


@pytest.mark.parametrize(
    ("intent", "shape", "name"),
    [
        ("vector", (12, 10, 4, 1, 3), "VECTOR"),
        ("displacement vector", (12, 10, 4, 1, 3), "DISPVECT"),
        ("symmetric matrix", (12, 10, 4, 1, 6), "SYMMATRIX"),
        ("general matrix", (12, 10, 4, 1, 9), "GENMATRIX"),
        ("pointset", (12, 10, 4), "POINTSET"),
        ("rgb vector", (12, 10, 4, 1, 3), "RGB_VECTOR"),
        ("fnirt disp field", (12, 10, 4, 1, 3), "FNIRT_DISPLACEMENT_FIELD"),
        ("ConnDense", (12, 10, 4), "CONNECTIVITY_DENSE"),
        ("neuroname", (12, 10, 4), "NEURONAME"),
    ],
)
def test_non_scalar_intent_is_refused(tmp_path, intent, shape, name):
    src = _save(tmp_path / "field.nii.gz", intent, shape)
    before = src.read_bytes()
    for run in (
        lambda dst: upscale_nifti(src, dst, model=interp_model(2)),
        lambda dst: make_isotropic(src, dst, steps=1),
    ):
        dst = tmp_path / "out.nii.gz"
        with pytest.raises(InputFileError, match=rf"field\.nii\.gz: .*intent {name}\b"):
            run(dst)
        assert not dst.exists()
    assert src.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["field.nii.gz"]


def test_dry_run_names_the_intent(tmp_path):
    src = _save(tmp_path / "dti.nii.gz", "symmetric matrix", (12, 10, 4, 1, 6))
    report = dry_run(src, tmp_path / "out.nii.gz", UpscaleOptions(scale=2))
    assert "dti.nii.gz" in report and "intent SYMMATRIX" in report


@pytest.mark.parametrize("intent", ["z score", "t test", "p value", "estimate", "none"])
def test_scalar_intents_are_upscaled(tmp_path, intent):
    src = _save(tmp_path / "map.nii.gz", intent)
    dst = upscale_nifti(src, tmp_path / "up.nii.gz", model=interp_model(2))
    out = nib.load(dst)
    assert out.shape == (24, 20, 4)
    assert out.header.get_intent()[0] == nib.load(src).header.get_intent()[0]
