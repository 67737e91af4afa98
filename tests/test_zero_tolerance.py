"""Zero background and non-negativity of float data that went through resampling: residues of
order 1e-16 (MONAI ``Spacing``) count as zero (``value_facts.ZERO_TOLERANCE``), exact for
integer data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sr_domains.value_domain import build_rules
from sr_domains.value_facts import ZERO_TOLERANCE, robust_magnitude, zero_facts


def _volume_with_residues(seed: int = 0) -> np.ndarray:
    """A float32 (1, 16, 16, 3) image: a positive object on exact-zero background, with
    +-1e-15 residues on part of the background (as float resampling leaves them)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((1, 16, 16, 3), np.float32)
    x[0, 4:12, 5:11] = rng.uniform(200.0, 800.0, (8, 6, 3)).astype(np.float32)
    x[0, 1, 1:15] = 1e-15
    x[0, 14, 1:15] = -1e-15
    return x


def test_zero_facts_float_residues_integer_exact_and_real_negatives():
    x = _volume_with_residues()[0]
    z = zero_facts(x)
    assert z.minimum < 0 and z.non_negative_minimum == 0.0
    assert z.background and z.tol == pytest.approx(ZERO_TOLERANCE * robust_magnitude(x))
    ints = np.array([[0, 3], [7, 9]], np.int16)
    assert zero_facts(ints).tol == 0.0 and zero_facts(ints).background
    assert not zero_facts(ints + 1).background  # no zero at all
    real = x.copy()
    real[0, 0] = -1e-3 * float(x.max())  # a real negative value, not a residue
    zr = zero_facts(real)
    assert not zr.background and zr.non_negative_minimum < 0
    rules = build_rules(None, [zr.non_negative_minimum], background_zero=zr.background)
    assert rules is not None and not rules.pinned and rules.pin_tol == 0.0


def test_monai_residue_background_keeps_its_values_and_output_stays_non_negative():
    pytest.importorskip("monai")
    from monai.data import MetaTensor

    import sr_domains.monai as srm
    from sr_domains.testing.medical import interp_model

    x = _volume_with_residues()
    img = MetaTensor(torch.from_numpy(x), affine=torch.eye(4, dtype=torch.float64))
    out = srm.SuperResolution(interp_model(2), device="cpu", axes=(0, 1))(img).numpy()[0]
    src = x[0]
    foot = np.repeat(np.repeat(src, 2, axis=0), 2, axis=1)  # each input voxel's 2 x 2 footprint
    near_zero = np.abs(foot) <= ZERO_TOLERANCE * float(src.max())
    # background (exact zeros and residues) keeps the input's own values: `data != 0` masks of
    # the output equal the input's, repeated over the footprint
    np.testing.assert_array_equal(out[near_zero], foot[near_zero])
    assert ((out != 0) == (foot != 0)).all()
    # the object's interpolated edge does not leak below the input's minimum
    assert out.min() >= src.min()
    assert (out[~near_zero] >= 0).all()


@pytest.mark.parametrize("through_plane", [False, True])
def test_float_nifti_with_residues_keeps_its_background(tmp_path, through_plane):
    """A float32 NIfTI as a resampling tool writes it (residues in the zero padding): the
    background footprints keep their values, in-plane and through-plane."""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti
    from sr_domains.testing.medical import interp_model

    vol = _volume_with_residues(1)[0]
    src = tmp_path / "resampled.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.diag([0.8, 0.8, 2.0, 1.0])), src)
    before = src.read_bytes()
    out = upscale_nifti(
        src, tmp_path / "sr.nii.gz", model=interp_model(2), scale=2, through_plane=through_plane
    )
    sr = np.asarray(nib.load(out).dataobj)
    foot = vol
    for axis in (0, 1, 2) if through_plane else (0, 1):
        foot = np.repeat(foot, 2, axis=axis)
    near_zero = np.abs(foot) <= ZERO_TOLERANCE * float(vol.max())
    np.testing.assert_array_equal(sr[near_zero], foot[near_zero])
    assert sr.min() >= vol.min() and (sr[~near_zero] >= 0).all()
    assert src.read_bytes() == before
    prov = json.loads(nib.load(out).header.extensions[-1].get_content())
    assert prov["values"]["pinned"] == [0.0]
    tol = ZERO_TOLERANCE * robust_magnitude(vol)
    assert prov["values"]["pin_tolerance"] == pytest.approx(tol, rel=0.01)  # (of a sample)


def test_one_outlier_neither_makes_tissue_zero_nor_a_signed_map_non_negative(tmp_path):
    """The tolerance was relative to the largest magnitude: one failed-fit voxel of 1e9 in a
    T2 map counted every tissue value (80-120 ms) as zero background (pinned, no SR), and in
    a signed field map (-260..260 Hz) it read the minimum as a residue: the map was recorded
    non-negative and its negative values clamped to 0."""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti
    from sr_domains.testing.medical import interp_model

    rng = np.random.default_rng(3)
    t2 = np.zeros((20, 20, 3), np.float32)
    t2[4:16, 4:16] = rng.uniform(80.0, 120.0, (12, 12, 3)).astype(np.float32)
    t2[10, 10, 1] = 1e9  # a failed fit
    z = zero_facts(t2)
    assert z.tol < 1e-3 and z.background  # of the tissue's magnitude, not the outlier's
    field = rng.uniform(-260.0, 260.0, (20, 20, 3)).astype(np.float32)
    field[:3] = 0.0
    field[10, 10, 1] = 2e9
    assert zero_facts(field).non_negative_minimum < -250
    for name, vol in (("t2", t2), ("field", field)):
        src = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(vol, np.eye(4)), src)
        out = upscale_nifti(src, tmp_path / f"{name}_x2.nii.gz", model=interp_model(2), scale=2)
        sr = np.asarray(nib.load(out).dataobj)
        prov = json.loads(nib.load(out).header.extensions[-1].get_content())
        assert prov["values"]["pin_tolerance"] < 1e-3, prov["values"]
        foot = np.repeat(np.repeat(vol, 2, axis=0), 2, axis=1)
        tissue = (foot != 0) & (np.abs(foot) < 1e6)
        assert not np.array_equal(sr[tissue], foot[tissue])  # upscaled, not replicated
        if name == "field":
            assert prov["values"]["domain"]["lo"] == [None], prov["values"]
            assert sr.min() < -100  # negative values kept


def test_residues_that_outnumber_a_sparse_maps_data_still_count_as_zero():
    """A lesion-probability map: 18 voxels of data and thousands of +-1e-16 residues. A plain
    percentile of the nonzero magnitudes was a residue itself, so the tolerance vanished and
    the map lost its zero background and non-negativity."""
    x = np.zeros((40, 40, 6), np.float32)
    x[1::2, :, :] = 1e-16
    x[0::4, ::3, 1] = -1e-16
    x[20:23, 20:23, 2:4] = np.linspace(0.3, 0.99, 18, dtype=np.float32).reshape(3, 3, 2)
    assert robust_magnitude(x) == pytest.approx(0.99, rel=0.02)
    z = zero_facts(x)
    assert z.background and z.non_negative_minimum == 0.0 and z.tol > 1e-8
    big = np.ones((2000,), np.float32)
    big[:5] = 1e9  # 0.25 % outliers
    assert robust_magnitude(big) == 1.0


def _reflectance(seed: int = 2) -> np.ndarray:
    """A float32 reflectance band (0..0.5) with sharp edges and one resampler residue below 0."""
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((1, 24, 28)) < 0.5, 0.0, 0.5).astype(np.float32)
    x[0, 3, 4] = -1e-12
    return x


def _write_reflectance(path, x: np.ndarray):
    """``x`` as a float32 GeoTIFF in UTM 33N, 10 m pixels."""
    import rasterio

    profile = {
        "driver": "GTiff", "width": x.shape[2], "height": x.shape[1], "count": x.shape[0],
        "dtype": "float32", "crs": "EPSG:32633",
        "transform": rasterio.Affine(10, 0, 500000, 0, -10, 4e6),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(x)
    return path


def test_residue_floor_reads_round_off_as_zero_but_keeps_real_negatives():
    from sr_domains.value_facts import band_extremes, residue_floor

    x = _reflectance()
    mins, mags = band_extremes(x)
    assert mins[0] == pytest.approx(-1e-12, rel=1e-3) and mags[0] == pytest.approx(0.5)
    assert residue_floor(mins, mags, floating=True)[0] == 0.0
    assert residue_floor([-0.01], mags, floating=True)[0] == -0.01  # a real undershoot
    assert residue_floor([-1], [1000], floating=False)[0] == -1  # integers are exact


def test_array_and_geotiff_stay_non_negative_with_a_residue_below_zero(tmp_path):
    """With the envelope off, only the non-negativity rule bounds a sharpening network: a
    -1e-12 residue must not turn it off (array API and GeoTIFF)."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains import upscale_array
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing import tiny_model
    from sr_domains.value_domain import ValueOptions

    x = _reflectance()
    model = tiny_model(1, 2, seed=3)
    no_envelope = ValueOptions(envelope=None)
    loose = upscale_array(x, model, profile="identity", values=ValueOptions(clamp=False))
    assert loose.min() < -1e-3  # the network does undershoot here
    out = upscale_array(x, model, profile="identity", values=no_envelope)
    assert out.min() >= x.min()  # >= 0 except the residue's own footprint value
    assert (out < 0).sum() <= 4 and out.min() >= -1e-12

    src = _write_reflectance(tmp_path / "refl.tif", x)
    dst = upscale_geotiff(src, tmp_path / "sr.tif", model=model, profile="identity",
                          values=no_envelope)  # fmt: skip
    with rasterio.open(dst) as ds:
        sr = ds.read()
    assert sr.min() >= -1e-12 and (sr < 0).sum() <= 4


@pytest.mark.parametrize("chunked", [False, True])
def test_xarray_stays_non_negative_with_a_residue_below_zero(tmp_path, chunked):
    pytest.importorskip("rasterio")
    rioxarray = pytest.importorskip("rioxarray")
    pytest.importorskip("dask")
    from sr_domains.testing import tiny_model
    from sr_domains.value_domain import ValueOptions
    from sr_domains.xarray import upscale

    src = _write_reflectance(tmp_path / "refl.tif", _reflectance())
    da = rioxarray.open_rasterio(src, chunks={"x": 14, "y": 12} if chunked else None)
    out = upscale(da, 2, model=tiny_model(1, 2, seed=3), profile="identity",
                  values=ValueOptions(envelope=None)).values  # fmt: skip
    assert out.min() >= -1e-12 and (out < 0).sum() <= 4


def test_monai_joint_model_stays_non_negative_with_a_residue_below_zero():
    pytest.importorskip("monai")
    from monai.data import MetaTensor

    import sr_domains.monai as srm
    from sr_domains.testing import tiny_model
    from sr_domains.value_domain import ValueOptions

    x = np.concatenate([_reflectance(s) for s in (2, 3, 4)])  # 3 channels, residue in each
    img = MetaTensor(torch.from_numpy(x), affine=torch.eye(4, dtype=torch.float64))
    model = tiny_model(3, 2, seed=3)
    sr = srm.SuperResolution(model, device="cpu", values=ValueOptions(envelope=None))
    out = sr(img).numpy()
    loose = srm.SuperResolution(model, device="cpu", values=ValueOptions(clamp=False))
    assert loose(img).numpy().min() < -1e-3
    assert out.min() >= -1e-12 and (out < 0).sum() <= 12


def test_isotropic_output_keeps_residue_background(tmp_path):
    """``make_isotropic`` (through-plane self-supervised SR) on a float NIfTI with residues in
    its zero background: their nearest-neighbour footprints keep their values."""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import make_isotropic

    i, j, k = np.meshgrid(np.arange(28), np.arange(28), np.arange(8), indexing="ij")
    r = np.sqrt((i - 13.5) ** 2 + (j - 13.5) ** 2 + ((k - 3.5) * 4) ** 2)
    vol = np.where(r < 11, 500.0 + 10.0 * i, 0.0).astype(np.float32)
    vol[0, :, :] = 1e-14  # resampling residues on two faces of the background
    vol[-1, :, :] = -1e-14
    src = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.diag([0.9, 0.9, 3.6, 1.0])), src)
    (out,) = make_isotropic(src, tmp_path / "t1_iso.nii.gz", steps=1)
    res = np.asarray(nib.load(out).dataobj, np.float32)
    assert res.shape == (28, 28, 32)
    z_src = np.clip(np.floor((np.arange(32) + 0.5) / 4.0), 0, 7).astype(int)
    foot = vol[:, :, z_src]
    background = np.abs(foot) <= ZERO_TOLERANCE * float(vol.max())
    np.testing.assert_array_equal(res[background], foot[background])
    assert res.min() >= vol.min()
