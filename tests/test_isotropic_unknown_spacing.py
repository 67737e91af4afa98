"""``--isotropic`` on a NIfTI ``pixdim`` of 0 (unknown spacing; nibabel reads it as 1 mm) is
refused naming the file and the axis, before any work, by the rule of ``upscale_nifti`` and the
MONAI transforms (a 0 that no sform states); every file accepted before whose ``pixdim`` are
all > 0 still is."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from _raw_nifti import write_raw  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import make_isotropic  # noqa: E402
from sr_domains.medical.isotropic_api import check_spacing_known  # noqa: E402
from sr_domains.medical.nifti_io import open_source  # noqa: E402
from sr_domains.testing.medical import make_nifti, rotation  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)

SHAPE = (16, 16, 6)


def _raw(path, pixdim, *, qcode=0, scode=0, unit="mm", oblique=False, n_volumes=None):
    """A real file whose header holds ``pixdim`` as given (written raw: nibabel's writer turns a
    0 into 1); a qform/sform with those codes, built from ``pixdim`` (0 read as 1)."""
    shape = SHAPE if n_volumes is None else (*SHAPE, n_volumes)
    rng = np.random.default_rng(0)
    data = rng.integers(100, 1000, size=shape).astype(np.int16)
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.int16)
    aff = np.eye(4)
    aff[:3, :3] = (rotation() if oblique else np.eye(3)) @ np.diag([p or 1.0 for p in pixdim])
    aff[:3, 3] = (10.0, -20.0, 30.0)
    if qcode:
        hdr.set_qform(aff, code=qcode)
    if scode:
        hdr.set_sform(aff, code=scode)
    hdr.set_xyzt_units(xyz=unit)
    hdr["pixdim"][1:4] = pixdim
    return write_raw(path, hdr, data)


@pytest.mark.parametrize(
    ("pixdim", "qcode", "axes"),
    [
        ((0.5, 0.5, 0.0), 0, "axis 2 (pixdim[3] = 0)"),  # planned 2x through-plane on 1 mm
        ((0.5, 0.5, 0.0), 1, "axis 2 (pixdim[3] = 0)"),
        ((0.0, 0.5, 0.5), 0, "axis 0 (pixdim[1] = 0)"),  # grew axis 0 x2 on 1 mm
        ((0.0, 0.5, 0.0), 1, "axis 0 (pixdim[1] = 0), axis 2 (pixdim[3] = 0)"),
    ],
)
def test_unknown_spacing_is_refused_before_any_work(tmp_path, caplog, pixdim, qcode, axes):
    src = _raw(tmp_path / "t2.nii.gz", pixdim, qcode=qcode)
    before = src.read_bytes()
    dst, model = tmp_path / "iso.nii.gz", tmp_path / "m.safetensors"
    with (
        caplog.at_level(logging.INFO, "sr_domains"),
        pytest.raises(InputFileError, match=r"unknown voxel spacing on ") as err,
    ):
        make_isotropic(src, dst, steps=1, target_spacing=0.5, save_model=model)
    assert err.value.path == str(src) and str(src) in str(err.value)
    assert axes in str(err.value) and "no sform states it" in str(err.value)
    assert not [r for r in caplog.records if " mm -> " in r.getMessage()]  # (no grid planned)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t2.nii.gz"]  # nothing written
    assert src.read_bytes() == before


def test_cli_refuses_naming_file_and_axis(tmp_path, capsys):
    src = _raw(tmp_path / "t2.nii", (0.5, 0.5, 0.0), qcode=1)
    dst = tmp_path / "iso.nii"
    assert main(["upscale", str(src), str(dst), "--isotropic", "--steps", "1"]) == 1
    msg = capsys.readouterr().err
    assert "Traceback" not in msg and str(src) in msg and "axis 2 (pixdim[3] = 0)" in msg
    assert not dst.exists()


def test_an_sform_states_the_spacing(tmp_path):
    """A ``pixdim`` of 0 under an sform (code > 0): the sform's spacing is used, as by
    ``upscale_nifti`` (accepted before and now)."""
    src = _raw(tmp_path / "s.nii.gz", (0.5, 0.5, 0.0), qcode=1, scode=2)
    (out,) = make_isotropic(src, tmp_path / "iso.nii.gz", steps=1)  # sform: 0.5 x 0.5 x 1
    assert nib.load(out).shape == (16, 16, 12)


def _old_accepts(qcode: int, scode: int, unit: str) -> bool:
    """The check before this fix: refused only a header with no qform, no sform, no unit."""
    return not (qcode == 0 and scode == 0 and unit == "unknown")


@pytest.mark.parametrize("pixdim", [(0.5, 0.5, 2.0), (1.0, 1.0, 3.0), (2.0, 1.0, 1.0)])
def test_old_accepted_with_known_pixdim_still_accepted(tmp_path, pixdim):
    """Every header the old check accepted whose ``pixdim`` are all > 0 (a stated 1 mm
    included: nibabel's 1 for a 0 makes the raw header be read again) is still accepted:
    qform only, sform only, both, oblique, none with a unit; 3-D and 4-D."""
    combos = itertools.product((0, 1), (0, 2), ("mm", "unknown"), (False, True), (None, 2))
    for i, (qcode, scode, unit, oblique, n_vol) in enumerate(combos):
        src = _raw(
            tmp_path / f"f{i}.nii.gz", pixdim, qcode=qcode, scode=scode, unit=unit,
            oblique=oblique, n_volumes=n_vol,
        )  # fmt: skip
        source = open_source(src)
        if _old_accepts(qcode, scode, unit):
            check_spacing_known(source)
        else:
            with pytest.raises(InputFileError, match="no qform/sform and no spatial unit"):
                check_spacing_known(source)


def test_made_with_builders_and_shared_sample_still_accepted(tmp_path, shared_data):
    for i, (q, s, n_vol) in enumerate([(1, 0, None), (0, 1, None), (1, 1, 2), (2, 2, None)]):
        src = make_nifti(
            tmp_path / f"b{i}.nii.gz", shape=SHAPE, spacing=(1.0, 1.0, 3.0),
            qform_code=q, sform_code=s, n_volumes=n_vol,
        )  # fmt: skip
        check_spacing_known(open_source(src))
    sample = shared_data / "nifti" / "aniso_vox.nii.gz"  # qform + sform code 1, no unit
    check_spacing_known(open_source(sample))
    (out,) = make_isotropic(make_nifti(tmp_path / "q.nii.gz", shape=SHAPE, sform_code=0),
                            tmp_path / "iso.nii.gz", steps=1)  # fmt: skip
    assert nib.load(out).shape[2] > SHAPE[2]


@pytest.mark.parametrize("case", ["pixdim0", "no_header_spacing"])
def test_dry_run_refuses_an_unknown_spacing_as_the_run_does(tmp_path, capsys, case):
    """`--dry-run --isotropic` said the file would be written where the run then refused its
    unknown spacing (a pixdim of 0 that no sform states; no qform/sform and no unit)."""
    if case == "pixdim0":
        src = _raw(tmp_path / "a.nii.gz", (0.5, 0.5, 0.0), qcode=1)
        why = "axis 2 (pixdim[3] = 0)"
    else:
        src = _raw(tmp_path / "a.nii.gz", (0.5, 0.5, 2.0), unit="unknown")
        why = "no qform/sform and no spatial unit"
    out = tmp_path / "o.nii.gz"
    args = ["upscale", str(src), str(out), "--isotropic", "--dry-run"]
    assert main(args) != 0
    got = capsys.readouterr()
    assert why in got.out + got.err and "a.nii.gz" in got.out + got.err
    assert not out.exists()
    ok = _raw(tmp_path / "b.nii.gz", (0.5, 0.5, 2.0), qcode=1)  # a stated spacing: planned
    assert main(["upscale", str(ok), str(out), "--isotropic", "--dry-run"]) == 0
    assert not out.exists()
