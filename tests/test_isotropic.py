"""make_isotropic end to end: NIfTI (3-D, 4-D, integer scaling), DICOM series, the CLI and
the MONAI transform; outputs read back with nibabel, pydicom and MONAI."""

from __future__ import annotations

import json

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains._resample import cubic_contributions  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series, make_isotropic, plan_isotropic  # noqa: E402
from sr_domains.medical.geometry import corners, slice_normal, voxel_sizes  # noqa: E402
from sr_domains.medical.slice_profile import SliceProfile, degradation_matrix  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti, oblique_affine  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def sharp_phantom(n: int = 48, seed: int = 0) -> np.ndarray:
    """1 mm isotropic volume of sharp-edged spheres and boxes on a flat background."""
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).astype(np.float32)
    vol = np.full((n, n, n), 100.0, np.float32)
    for _ in range(30):
        c, r = rng.uniform(4, n - 4, 3), rng.uniform(3, 9)
        if rng.random() < 0.5:
            inside = np.sum((g - c) ** 2, -1) < r * r
        else:
            inside = np.all(np.abs(g - c) < r * rng.uniform(0.4, 1, 3), -1)
        vol[inside] = rng.uniform(200, 1000)
    return vol


def thick_slices(truth: np.ndarray, spacing: float, fwhm: float) -> np.ndarray:
    w = degradation_matrix(truth.shape[2], 1.0, spacing, SliceProfile("gaussian", fwhm))
    return np.einsum("xyz,jz->xyj", truth, w).astype(np.float32)


def cubic_along_z(lr: np.ndarray, factor: float, m: int) -> np.ndarray:
    idx, w = cubic_contributions(lr.shape[2], m, factor, False)
    return np.einsum("xyjp,jp->xyj", lr[:, :, idx], w)


def psnr(x: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(np.ptp(truth) ** 2 / np.mean((x - truth) ** 2)))


def test_nifti_end_to_end_beats_cubic_with_the_right_grid(tmp_path):
    truth = sharp_phantom()
    lr = thick_slices(truth, 4.0, 4.0)
    aff = oblique_affine((1.0, 1.0, 4.0))
    src = tmp_path / "t2.nii.gz"
    img = nib.Nifti1Image(lr, aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=2)
    nib.save(img, src)
    (out,) = make_isotropic(src, tmp_path / "t2_iso.nii.gz", steps=25, seed=0)
    res = nib.load(out)
    assert res.shape == (48, 48, 48)
    plan = plan_isotropic(lr.shape, voxel_sizes(img.affine))
    np.testing.assert_allclose(res.affine, plan.affine(img.affine), atol=1e-5)
    np.testing.assert_allclose(res.header.get_zooms(), (1.0, 1.0, 1.0), atol=1e-6)
    assert int(res.header["qform_code"]) == 1 and int(res.header["sform_code"]) == 2
    np.testing.assert_allclose(
        corners(res.affine, res.shape)[0], corners(img.affine, img.shape)[0], atol=1e-4
    )
    sr = np.asarray(res.dataobj, np.float32)
    cub = cubic_along_z(lr, 4.0, 48)
    assert psnr(sr, truth) > psnr(cub, truth) + 0.5
    prov = json.loads(res.header.extensions[-1].get_content())
    assert prov["training"]["steps"] == 25 and prov["training"]["seed"] == 0
    assert prov["slice_profile"] == {
        "kind": "gaussian",
        "fwhm_mm": 4.0,
        "source": pytest.approx("slice spacing (no thickness known)"),
    }
    assert prov["grid"]["far_edge_shift_mm"] == [0.0, 0.0, 0.0]
    # MONAI reads the same grid
    from monai.transforms import LoadImage

    mt = LoadImage(image_only=True)(str(out))
    np.testing.assert_allclose(np.asarray(mt.affine), res.affine, atol=1e-5)


def test_seed_and_steps_repeat_a_run_and_a_saved_model_reapplies(tmp_path):
    src = make_nifti(tmp_path / "a.nii.gz", shape=(36, 32, 9), spacing=(1.0, 1.0, 4.4))
    model = tmp_path / "a_model.safetensors"
    (a,) = make_isotropic(src, tmp_path / "a1.nii.gz", steps=3, seed=7, save_model=model)
    (b,) = make_isotropic(src, tmp_path / "a2.nii.gz", steps=3, seed=7)
    (c,) = make_isotropic(src, tmp_path / "a3.nii.gz", weights=model, budget_minutes=0)
    va, vb, vc = (np.asarray(nib.load(p).dataobj) for p in (a, b, c))
    assert va.shape == (36, 32, 40)  # 9 * 4.4 = 39.6 -> 40 slices, far edge +0.4 mm
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_array_equal(va, vc)
    hdr = nib.load(a).header
    assert hdr.get_data_dtype() == np.int16
    prov = json.loads(hdr.extensions[-1].get_content())
    assert prov["grid"]["far_edge_shift_mm"][2] == pytest.approx(0.4, abs=1e-5)


def test_4d_volume_by_volume_with_one_fit(tmp_path):
    src = make_nifti(
        tmp_path / "dwi.nii.gz", shape=(24, 20, 6), spacing=(1.2, 1.2, 3.6), n_volumes=3
    )
    (out,) = make_isotropic(src, tmp_path / "dwi_iso.nii.gz", steps=2)
    res = nib.load(out)
    assert res.shape == (24, 20, 18, 3)
    assert res.header.get_zooms()[3] == pytest.approx(2.5)  # TR kept
    data = np.asarray(res.dataobj, np.float32)
    ratio = data[..., 2].sum() / data[..., 0].sum()  # the phantom's volumes scale by 1, 1.1, 1.2
    assert ratio == pytest.approx(1.2, rel=0.02)
    prov = json.loads(res.header.extensions[-1].get_content())
    assert prov["training"]["steps"] == 2


def test_integer_scaling_background_and_sidecar_thickness(tmp_path):
    def values(world):
        r = np.linalg.norm(world - world.reshape(-1, 3).mean(0), axis=-1)
        return np.where(r < 9.0, 500.0 + 10.0 * world[..., 0], 0.0)

    src = make_nifti(
        tmp_path / "t1.nii.gz", shape=(28, 28, 8), spacing=(0.9, 0.9, 3.6), dtype="int16",
        slope=2.0, inter=0.0, values=values, oblique=False,
    )  # fmt: skip
    (tmp_path / "t1.json").write_text(json.dumps({"SliceThickness": 3.0}), encoding="utf-8")
    (out,) = make_isotropic(src, tmp_path / "t1_iso.nii.gz", steps=1)
    res = nib.load(out)
    assert res.get_data_dtype() == np.int16
    assert res.dataobj.slope == 2.0 and res.dataobj.inter == 0.0
    src_v = np.asarray(nib.load(src).dataobj, np.float32)
    out_v = np.asarray(res.dataobj, np.float32)
    assert out_v.min() >= 0  # non-negative input stays non-negative
    # exact-zero background stays exactly zero over its nearest-neighbour footprint
    z_src = np.clip(np.floor((np.arange(32) + 0.5) / 4.0), 0, 7).astype(int)
    assert np.all(out_v[src_v[:, :, z_src] == 0] == 0)
    prov = json.loads(res.header.extensions[-1].get_content())
    assert prov["slice_profile"]["fwhm_mm"] == 3.0 and prov["slice_profile"]["source"] == "header"


def _pixel(ds) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(
        ds.get("RescaleIntercept", 0)
    )


def test_dicom_series_reads_back_as_one_isotropic_volume(tmp_path):
    paths = make_dicom_series(
        tmp_path / "in", n_slices=6, rows=24, cols=20, pixel_spacing=(0.9, 0.7), slice_spacing=3.0
    )
    src_series = load_dicom_series(tmp_path / "in")
    files = make_isotropic(tmp_path / "in", tmp_path / "out", steps=1)
    plan = plan_isotropic(src_series.shape, (3.0, 0.9, 0.7))
    assert plan.out_shape == (26, 31, 20)  # 6 * 3 / 0.7 = 25.7 -> 26; 24 * 0.9 / 0.7 -> 31
    assert len(files) == 26
    dss = [pydicom.dcmread(f) for f in files]
    first = pydicom.dcmread(paths[0])
    assert len({d.SOPInstanceUID for d in dss}) == 26
    assert {d.SeriesInstanceUID for d in dss} != {first.SeriesInstanceUID}
    assert len({d.SeriesInstanceUID for d in dss}) == 1
    assert {d.StudyInstanceUID for d in dss} == {first.StudyInstanceUID}
    assert {d.FrameOfReferenceUID for d in dss} == {first.FrameOfReferenceUID}
    for d in dss:
        assert (d.Rows, d.Columns) == (31, 20)
        np.testing.assert_allclose([float(v) for v in d.PixelSpacing], [0.7, 0.7])
        assert float(d.SliceThickness) == pytest.approx(0.7)
        assert float(d.SpacingBetweenSlices) == pytest.approx(0.7)
        assert "ISO" in d.SeriesDescription and d.ImageType[0] == "DERIVED"
    # positions: one line along the normal, 0.7 mm apart, in InstanceNumber order
    normal = slice_normal([float(v) for v in first.ImageOrientationPatient])
    ipp = np.array([[float(v) for v in d.ImagePositionPatient] for d in dss])
    proj = ipp @ normal
    np.testing.assert_allclose(np.diff(proj), 0.7, atol=1e-6)
    assert [int(d.InstanceNumber) for d in dss] == list(range(1, 27))
    steps = np.diff(ipp, axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(0.7 * normal, steps.shape), atol=1e-6)
    # the series re-reads as one volume covering the input's extent (first edge identical,
    # far edge within half an output slice)
    out_series = load_dicom_series(tmp_path / "out")
    assert out_series.shape == (26, 31, 20)
    c_in, c_out = (
        corners(src_series.affine, src_series.shape),
        corners(out_series.affine, out_series.shape),
    )
    np.testing.assert_allclose(c_out[0], c_in[0], atol=1e-5)
    assert np.linalg.norm(c_out[-1] - c_in[-1]) <= 0.35 + 1e-5
    vol = np.stack([_pixel(d) for d in dss])
    assert np.isfinite(vol).all() and vol.max() > 100


def test_bad_inputs_get_one_clear_error_naming_the_file(tmp_path):
    iso = make_nifti(tmp_path / "iso.nii.gz", shape=(16, 16, 16), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(InputFileError, match=r"iso\.nii\.gz: already isotropic"):
        make_isotropic(iso, tmp_path / "o.nii.gz")
    two = make_nifti(tmp_path / "two.nii.gz", shape=(16, 16, 2), spacing=(1.0, 1.0, 4.0))
    with pytest.raises(InputFileError, match=r"two\.nii\.gz: .*>= 3 slices"):
        make_isotropic(two, tmp_path / "o.nii.gz")
    img = nib.Nifti1Image(np.ones((16, 16, 8), np.float32), np.eye(4))
    img.header.set_zooms((1.0, 1.0, 0.0))
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    nib.save(img, tmp_path / "nospacing.nii.gz")
    with pytest.raises(InputFileError, match=r"nospacing\.nii\.gz: unknown voxel spacing"):
        make_isotropic(tmp_path / "nospacing.nii.gz", tmp_path / "o.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((16, 12), np.int16), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(InputFileError, match=r"flat\.nii\.gz: .*got shape \(16, 12\)$"):
        make_isotropic(tmp_path / "flat.nii.gz", tmp_path / "o.nii.gz")  # its own shape
    make_dicom_series(tmp_path / "d2", n_slices=2, slice_spacing=4.0)
    with pytest.raises(InputFileError, match=r"d2: isotropic SR needs >= 3 slices"):
        make_isotropic(tmp_path / "d2", tmp_path / "d2_out")
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "d2_out").exists()


def test_cli_isotropic_and_flag_checks(tmp_path, capsys):
    src = make_nifti(tmp_path / "flair.nii.gz", shape=(28, 24, 6), spacing=(1.0, 1.0, 5.0))
    dst, model = tmp_path / "flair_iso.nii.gz", tmp_path / "flair.safetensors"
    args = ["upscale", str(src), str(dst), "--isotropic", "--steps", "2", "--seed", "3"]
    assert main([*args, "--save-model", str(model), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    assert nib.load(dst).shape == (28, 24, 30) and model.is_file()
    assert main(["upscale", str(src), str(tmp_path / "x.nii.gz"), "--budget", "1"]) == 2
    assert "apply to --isotropic or --adapt only" in capsys.readouterr().err
    assert main([*args[:4], "--isotropic", "--through-plane"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main([*args[:3], "--target-spacing", "1"]) == 2
    assert "need --isotropic" in capsys.readouterr().err
    assert main([*args, "--model", "edsr", "--overwrite"]) == 2
    assert "--model does not apply" in capsys.readouterr().err
    for scale in ("2", "4"):  # a given --scale 2 (the default) was ignored without a word
        assert main([*args, "--scale", scale, "--overwrite"]) == 2
        assert "--scale does not apply to --isotropic" in capsys.readouterr().err
    # the documented reuse: --weights of a saved model, applied as it is (its card's scale is
    # the slice factor; it was read as an in-plane --scale and refused)
    again = tmp_path / "again.nii.gz"
    reuse = ["upscale", str(src), str(again), "--isotropic", "--weights", str(model)]
    assert main([*reuse, "--budget", "0", "--no-progress"]) == 0
    assert nib.load(again).shape == (28, 24, 30)
    np.testing.assert_array_equal(nib.load(again).affine, nib.load(dst).affine)
    # --save-model never replaces the --weights it starts from, even with --overwrite
    before = model.read_bytes()
    fine_tune = [*reuse[:2], str(tmp_path / "ft.nii.gz"), *reuse[3:], "--steps", "1"]
    assert main([*fine_tune, "--save-model", str(model), "--overwrite"]) == 1
    assert "would replace the input" in capsys.readouterr().err
    assert model.read_bytes() == before and not (tmp_path / "ft.nii.gz").exists()


def test_monai_transform_updates_the_geometry(tmp_path):
    pytest.importorskip("monai")
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, SaveImaged

    from sr_domains.monai import MakeIsotropicd

    src = make_nifti(tmp_path / "sub.nii.gz", shape=(24, 22, 6), spacing=(1.0, 1.0, 4.0))
    pipe = Compose(
        [
            LoadImaged("image"),
            EnsureChannelFirstd("image"),
            MakeIsotropicd("image", steps=2, seed=1),
            SaveImaged("image", output_dir=str(tmp_path / "out"), output_postfix="iso",
                       resample=False, separate_folder=False, print_log=False),
        ]
    )  # fmt: skip
    d = pipe({"image": str(src)})
    assert tuple(d["image"].shape) == (1, 24, 22, 24)
    written = nib.load(tmp_path / "out" / "sub_iso.nii.gz")
    ref = nib.load(src)
    plan = plan_isotropic(ref.shape, voxel_sizes(ref.affine))
    np.testing.assert_allclose(written.affine, plan.affine(ref.affine), atol=1e-4)
    np.testing.assert_allclose(written.header.get_zooms()[:3], (1.0, 1.0, 1.0), atol=1e-5)
    (api,) = make_isotropic(src, tmp_path / "api.nii.gz", steps=2, seed=1)
    np.testing.assert_allclose(
        np.asarray(written.dataobj, np.float32)[..., :],
        np.asarray(nib.load(api).dataobj, np.float32),
        atol=1.0,  # same fit; the file version is rounded to int16
    )


def test_enhanced_dicom_gets_one_frame_per_new_slice(tmp_path):
    from sr_domains.testing.medical import make_enhanced_dicom

    src = make_enhanced_dicom(
        tmp_path / "enh.dcm", n_frames=4, pixel_spacing=(0.8, 0.8), slice_spacing=3.2
    )
    (out,) = make_isotropic(src, tmp_path / "enh_iso", steps=0)
    ds = pydicom.dcmread(out)
    assert int(ds.NumberOfFrames) == 16  # 4 * 3.2 / 0.8
    frames = ds.PerFrameFunctionalGroupsSequence
    ipp = np.array(
        [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in frames]
    )
    normal = slice_normal([float(v) for v in load_dicom_series(src).iop])
    np.testing.assert_allclose(np.diff(ipp @ normal), 0.8, atol=1e-6)
    measures = [
        grp.PixelMeasuresSequence[0]
        for grp in (ds.SharedFunctionalGroupsSequence[0], *frames)
        if "PixelMeasuresSequence" in grp
    ]
    assert measures
    for m in measures:
        assert float(m.SliceThickness) == pytest.approx(0.8)
        assert float(m.SpacingBetweenSlices) == pytest.approx(0.8)
    assert load_dicom_series(tmp_path / "enh_iso").shape == (16, 20, 18)
