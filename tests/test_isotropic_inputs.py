"""``--isotropic`` input checks: header slice thicknesses that are no thickness (BIDS sidecar,
DICOM), 4-D volumes whose first volume is empty, and training strips that do not fit; each an
error naming the file (and the value, volume or thickness source)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import make_isotropic  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def _nifti(tmp_path, sidecar=None, shape=(24, 20, 6), spacing=(1.2, 1.2, 3.6)):
    src = make_nifti(tmp_path / "t2.nii.gz", shape=shape, spacing=spacing)
    if sidecar is not None:
        text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
        (tmp_path / "t2.json").write_text(text, encoding="utf-8")
    return src


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "true"), (-2, "-2"), (float("nan"), "NaN"), ("NaN", '"NaN"'),
     ("abc", '"abc"'), ([3.0], r"\[3.0\]")],
)  # fmt: skip
def test_sidecar_thickness_that_is_no_thickness_is_refused(tmp_path, value, shown):
    src = _nifti(tmp_path, {"SliceThickness": value, "RepetitionTime": 2.0})
    dst = tmp_path / "iso.nii.gz"
    pattern = rf"t2\.json: SliceThickness {shown} is not a slice thickness .*--slice-thickness"
    with pytest.raises(InputFileError, match=pattern):  # (true was read as 1 mm, the rest lost)
        make_isotropic(src, dst, steps=1)
    assert not dst.exists()
    # a thickness given by the user, or a profile that needs none, does without the header
    (out,) = make_isotropic(src, dst, steps=1, slice_thickness=3.0)
    prov = json.loads(nib.load(out).header.extensions[-1].get_content())
    assert prov["slice_profile"]["source"] == "user"


@pytest.mark.parametrize("text", ['{"SliceThickness": 3.0', "[3.0]"])
def test_unreadable_sidecar_is_refused_naming_it(tmp_path, text):
    src = _nifti(tmp_path, text)
    with pytest.raises(InputFileError, match=r"t2\.json: .*(unreadable JSON|not list)"):
        make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)  # (was a warning, then spacing)
    # a readable sidecar without the key: the slice spacing, as documented
    (tmp_path / "t2.json").write_text(json.dumps({"RepetitionTime": 2.0}), encoding="utf-8")
    (out,) = make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)
    prov = json.loads(nib.load(out).header.extensions[-1].get_content())
    assert prov["slice_profile"]["fwhm_mm"] == pytest.approx(3.6)


def _dicom_with_thickness(folder, value):
    files = make_dicom_series(folder, n_slices=6, rows=24, cols=20, slice_spacing=3.0)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds["SliceThickness"]
        ds.add(pydicom.DataElement(0x00180050, "DS", None))
        ds[0x00180050]._value = value  # (as a scanner wrote it, past pydicom's checks)
        ds.save_as(f)
    return files


@pytest.mark.parametrize(("value", "shown"), [("abc", '"abc"'), ("-3.0", "-3.0")])
def test_dicom_thickness_that_is_no_thickness_is_refused_naming_the_file(
    tmp_path, capsys, value, shown
):
    files = _dicom_with_thickness(tmp_path / "t2", value)
    dst = tmp_path / "iso"
    pattern = rf"\.dcm: SliceThickness \(0018,0050\) {shown} is not a slice thickness"
    with pytest.raises(InputFileError, match=pattern) as err:  # ("abc": a bare ValueError)
        make_isotropic(tmp_path / "t2", dst, steps=1)
    assert err.value.path in {str(f) for f in files}
    assert main(["upscale", str(tmp_path / "t2"), str(dst), "--isotropic", "--steps", "1"]) == 1
    msg = capsys.readouterr().err
    assert "Traceback" not in msg and "is not a slice thickness" in msg and ".dcm:" in msg
    assert not dst.exists()
    out = make_isotropic(tmp_path / "t2", dst, steps=1, slice_thickness=3.0)
    assert len(out) == 26  # 6 slices of 3 mm at 0.7 mm


def test_a_zero_thickness_is_unknown_the_slice_spacing_is_used(tmp_path, caplog):
    """DICOM writes SliceThickness 0 for "unknown" (a Type 2 tag): such series ran with the
    slice spacing, and still do, with a warning naming the file (sidecar or DICOM)."""
    src = _nifti(tmp_path, {"SliceThickness": 0, "RepetitionTime": 2.0})
    with caplog.at_level(logging.WARNING):
        (out,) = make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)
    prov = json.loads(nib.load(out).header.extensions[-1].get_content())
    assert prov["slice_profile"]["fwhm_mm"] == pytest.approx(3.6)  # the slice spacing
    assert any("t2.json: SliceThickness 0 (unknown)" in r.getMessage() for r in caplog.records)
    _dicom_with_thickness(tmp_path / "d", "0.0")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        out = make_isotropic(tmp_path / "d", tmp_path / "iso_d", steps=1)
    assert len(out) == 26  # 6 slices of 3 mm at 0.7 mm
    assert any(".dcm: SliceThickness" in r.getMessage() for r in caplog.records)


def _four_d(path, empty):
    src = make_nifti(path, shape=(24, 20, 6), spacing=(1.2, 1.2, 3.6), n_volumes=3)
    img = nib.load(src)
    data = np.asarray(img.dataobj).copy()
    for v in empty:
        data[..., v] = 0
    nib.save(nib.Nifti1Image(data, img.affine, img.header), src)
    return src


def test_4d_fitted_on_the_first_volume_with_content(tmp_path):
    src = _four_d(tmp_path / "dwi.nii.gz", empty=[0])
    (out,) = make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)  # (was refused)
    res = nib.load(out)
    assert res.shape == (24, 20, 18, 3)
    data = np.asarray(res.dataobj, np.float32)
    assert np.all(data[..., 0] == 0) and data[..., 1].max() > 0
    prov = json.loads(res.header.extensions[-1].get_content())
    assert prov["fit_volume"] == 1 and prov["training"]["steps"] == 1


def test_no_volume_with_content_is_refused_naming_file_and_volumes(tmp_path):
    src = _four_d(tmp_path / "dwi.nii.gz", empty=[0, 1, 2])
    pattern = r"dwi\.nii\.gz: none of its 3 volumes \(volume 0, 1, 2\) has content"
    with pytest.raises(InputFileError, match=pattern):
        make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)
    make_dicom_series(tmp_path / "flat", n_slices=6, values=lambda w: np.zeros(w.shape[:-1]))
    with pytest.raises(InputFileError, match=r"flat: the volume has no content to learn"):
        make_isotropic(tmp_path / "flat", tmp_path / "flat_iso", steps=1)


def test_too_small_for_the_header_thickness_names_file_and_source(tmp_path):
    shape, spacing = (41, 30, 8), (0.7, 0.7, 3.0)
    src = _nifti(tmp_path, {"SliceThickness": 500}, shape=shape, spacing=spacing)
    pattern = (
        r"t2\.nii\.gz: in-plane size 41 x 30 is too small .* 500 mm profile .*; "
        r"the 500 mm is the SliceThickness of the sidecar .*t2\.json"
    )
    with pytest.raises(InputFileError, match=pattern):
        make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)
    with pytest.raises(InputFileError, match=r"t2\.nii\.gz: .*--slice-thickness given"):
        make_isotropic(src, tmp_path / "iso.nii.gz", steps=1, slice_thickness=500.0)


def test_dry_run_refuses_the_thickness_the_run_refuses(tmp_path, capsys):
    """`--dry-run --isotropic` reads the header thickness the run would use: it said "would
    write" for a sidecar or DICOM thickness the run then refused."""
    src = _nifti(tmp_path, {"SliceThickness": -2})
    _dicom_with_thickness(tmp_path / "t2dcm", "abc")
    for inp, out in ((src, tmp_path / "o.nii.gz"), (tmp_path / "t2dcm", tmp_path / "o")):
        capsys.readouterr()
        args = ["upscale", str(inp), str(out), "--isotropic", "--dry-run"]
        assert main(args) != 0
        got = capsys.readouterr()
        assert "is not a slice thickness" in got.out + got.err
        # the thickness given by the user: the header's is not read
        assert main([*args, "--slice-thickness", "3"]) == 0
        assert not out.exists()


def test_enhanced_top_level_zero_thickness_falls_to_the_functional_groups(tmp_path, caplog):
    """An enhanced file with a top-level SliceThickness 0 (unknown) and 4 mm in its pixel
    measures functional group: the 0 took the slice spacing (2.5 mm) for --isotropic, and
    `info` showed 0."""
    from sr_domains.medical.dicom_adapter import info
    from sr_domains.medical.dicom_read import load_dicom_series
    from sr_domains.medical.isotropic_api import series_thickness
    from sr_domains.testing.medical import make_enhanced_dicom

    src = make_enhanced_dicom(tmp_path / "e" / "e.dcm", n_frames=6, rows=24, cols=20)
    ds = pydicom.dcmread(src)
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness = 4.0
    ds.SliceThickness = 0  # top level: "unknown" (Type 2)
    ds.save_as(src)
    assert series_thickness(load_dicom_series(tmp_path / "e")) == 4.0
    assert "SliceThickness 4.0)" in info(tmp_path / "e")
    with caplog.at_level(logging.WARNING):
        (out,) = make_isotropic(tmp_path / "e", tmp_path / "iso", steps=1)
    assert "SliceThickness 0 (unknown)" not in caplog.text
    assert "FWHM 4 mm" in pydicom.dcmread(out).DerivationDescription
