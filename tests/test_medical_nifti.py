"""NIfTI in, NIfTI out: geometry (voxel-centre rule), header, dtype/scaling, SR correctness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")

from sr_domains import inference  # noqa: E402
from sr_domains.errors import (  # noqa: E402
    ConfigError,
    InputFileError,
    OutputExistsError,
    UnsafeOutputError,
)
from sr_domains.inference import Upscaler  # noqa: E402
from sr_domains.intensity import profile_from_any  # noqa: E402
from sr_domains.medical import read_nifti, upscale_nifti  # noqa: E402
from sr_domains.medical.geometry import corners, scale_factors  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti, oblique_affine  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402
from sr_domains.value_facts import ZERO_TOLERANCE  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


NIB_DATA = Path(nib.__file__).parent / "tests" / "data"


def f32_tol(aff: np.ndarray, shape) -> float:
    """NIfTI-1 stores its matrices as float32: half an ulp of the largest coordinate."""
    return 1e-6 + float(np.abs(corners(aff, shape)).max()) * 2.0**-24 * 2


def check_geometry(src: Path, dst: Path, factors, *, tol: float | None = None) -> float:
    a, b = nib.load(src), nib.load(dst)
    sa, sb = a.shape[:3], b.shape[:3]
    assert sb == tuple(int(n * f) for n, f in zip(sa, factors))
    assert b.shape[3:] == a.shape[3:]
    err = float(np.abs(corners(a.affine, sa) - corners(b.affine, sb)).max())
    assert err <= (tol if tol is not None else f32_tol(a.affine, sa)), err
    za, zb = np.array(a.header.get_zooms()[:3]), np.array(b.header.get_zooms()[:3])
    np.testing.assert_allclose(zb, za / np.array(factors), rtol=1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(b.affine[:3, :3], axis=0),
        np.linalg.norm(a.affine[:3, :3], axis=0) / np.array(factors),
        rtol=1e-5,
    )
    return err


@pytest.mark.parametrize("axes", [None, (0, 1), (0, 2), (1, 2)])
def test_oblique_anisotropic_each_axis_choice(tmp_path, axes):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(12, 10, 6), spacing=(1.0, 1.25, 3.0))
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=tiny_model(1, 2), axes=axes)
    factors = scale_factors(axes or (0, 1), 2)
    check_geometry(src, dst, factors)
    out = nib.load(dst)
    assert out.get_data_dtype() == np.int16
    assert np.isfinite(out.get_fdata()).all()


def test_4d_and_through_plane_scale3(tmp_path):
    src = make_nifti(tmp_path / "in.nii", shape=(8, 7, 5), n_volumes=3)
    model = interp_model(3)  # linear, so the per-volume intensity ratio must survive
    dst = upscale_nifti(src, tmp_path / "out.nii", model=model, scale=3, through_plane=True)
    check_geometry(src, dst, (3, 3, 3))
    out = nib.load(dst)
    assert out.shape == (24, 21, 15, 3)
    assert out.header.get_zooms()[3] == pytest.approx(2.5)  # TR kept
    # the same profile for all volumes: volume t is ~ (1 + 0.1 t) x volume 0
    data = out.get_fdata()
    ratio = data[..., 2].sum() / data[..., 0].sum()
    assert ratio == pytest.approx(1.2, rel=1e-3)


def test_nifti2_float64_geometry_exact(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", nifti2=True, dtype="float64")
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=interp_model(2))
    check_geometry(src, dst, (2, 2, 1), tol=1e-6)
    out = nib.load(dst)
    assert isinstance(out, nib.Nifti2Image)
    assert out.get_data_dtype() == np.float64


@pytest.mark.parametrize(("qcode", "scode"), [(1, 0), (0, 2), (0, 0), (1, 4)])
def test_qform_sform_codes_kept(tmp_path, qcode, scode):
    src = make_nifti(tmp_path / "in.nii.gz", qform_code=qcode, sform_code=scode)
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=interp_model(2))
    check_geometry(src, dst, (2, 2, 1))
    a, b = nib.load(src).header, nib.load(dst).header
    assert int(b["qform_code"]) == qcode
    assert int(b["sform_code"]) == scode
    for getter in ("get_qform", "get_sform"):
        mat_a, code = getattr(a, getter)(coded=True)
        if code:  # every coded matrix follows the rule on its own
            mat_b = getattr(b, getter)()
            np.testing.assert_allclose(
                corners(mat_b, (40, 32, 8)),
                corners(mat_a, (20, 16, 8)),
                atol=f32_tol(mat_a, (20, 16, 8)),
            )


def test_header_fields_and_provenance(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(10, 8, 4))
    img = nib.load(src)
    img.header.set_intent("t test", (12.0,), name="stats")
    img.header.set_dim_info(freq=0, phase=1, slice=2)
    img.header["slice_end"], img.header["slice_code"] = 3, 1
    img.header["cal_min"], img.header["cal_max"] = 0.0, 900.0
    nib.save(img, src)
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=tiny_model(1, 2), profile="mr:1,99")
    h = nib.load(dst).header
    assert h.get_intent() == ("t test", (12.0,), "stats")
    assert h.get_xyzt_units() == ("mm", "sec")
    assert h.get_dim_info() == (0, 1, 2)
    assert int(h["slice_end"]) == 3
    assert int(h["slice_code"]) == 1
    assert float(h["cal_max"]) == 900.0
    descrip = h["descrip"].item().decode()
    assert descrip.startswith("SR x2 axes 0,1 sr_domains")
    assert "test phantom" in descrip
    assert len(descrip) <= 80
    prov = json.loads(h.extensions[-1].get_content())
    assert prov["model"] == "toy"
    assert prov["factors"] == [2.0, 2.0, 1.0]
    assert prov["profile"]["recipe"] == "mr:1,99"
    assert len(prov["profile"]["scale"]) == 1
    # through-plane resamples the slice-encoding axis: slice timing no longer applies
    dst2 = upscale_nifti(src, tmp_path / "tp.nii.gz", model=interp_model(2), through_plane=True)
    h2 = nib.load(dst2).header
    assert int(h2["slice_end"]) == 0
    assert int(h2["slice_code"]) == 0


def test_scaled_int_keeps_slope_when_it_fits(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", dtype="int16", slope=0.5, inter=10.0)
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=interp_model(2, "nearest"))
    out = nib.load(dst)
    assert out.get_data_dtype() == np.int16
    assert (out.dataobj.slope, out.dataobj.inter) == (0.5, 10.0)
    # nearest-neighbour "SR" reproduces the stored values exactly through the scaling
    a = nib.load(src).get_fdata()
    np.testing.assert_allclose(out.get_fdata(), a.repeat(2, 0).repeat(2, 1), atol=1e-4)


def test_overshoot_keeps_the_integer_value_grid(tmp_path):
    # uint8 phantom using the full range: a sharpening model overshoots beyond 0..255
    def values(w):
        return np.where(w[..., 0] > 0, 255.0, 0.0)

    src = make_nifti(
        tmp_path / "in.nii.gz",
        dtype="uint8",
        values=values,
        oblique=False,
        affine=np.diag([1.0, 1.0, 2.0, 1.0]) @ _shift(-10, 0, 0),
    )
    sharpen = interp_model(2, "bicubic")  # bicubic rings past the input range
    raw = ValueOptions(clamp=False)  # the writer alone: round and clip to the grid
    dst = upscale_nifti(
        src, tmp_path / "out.nii.gz", model=sharpen, profile="range:0,255", values=raw
    )
    out = nib.load(dst)
    assert out.get_data_dtype() == np.uint8
    assert (out.dataobj.slope, out.dataobj.inter) == (1.0, 0.0)  # no new scaling
    vol = read_nifti(src)
    expected = np.clip(np.rint(_torch_interp(vol.data, (2, 2, 1), "bicubic")), 0, 255)
    got = np.asarray(out.dataobj)
    np.testing.assert_array_equal(got, expected)  # rounded and clipped to the source grid
    assert (got == 0).sum() > 0 and (got == 255).sum() > 0


def _shift(x, y, z):
    t = np.eye(4)
    t[:3, 3] = (x, y, z)
    return t


def _torch_interp(vol: np.ndarray, factors, mode: str) -> np.ndarray:
    """Reference: separable interpolation of a 3-D volume with torch (voxel-centre rule)."""
    t = torch.from_numpy(np.asarray(vol, np.float32))
    size = tuple(int(n * f) for n, f in zip(vol.shape, factors))
    if mode == "bicubic":
        (k,) = [a for a in range(3) if factors[a] == 1]
        order = [k] + [a for a in range(3) if a != k]
        planes = t.permute(*order)[:, None]
        up = torch.nn.functional.interpolate(
            planes, size=tuple(size[a] for a in order[1:]), mode="bicubic", align_corners=False
        )[:, 0]
        return up.permute(*np.argsort(order)).numpy()
    up = torch.nn.functional.interpolate(
        t[None, None], size=size, mode="trilinear", align_corners=False
    )
    return up[0, 0].numpy()


@pytest.mark.parametrize("axes", [(0, 1), (0, 2), (1, 2)])
def test_identity_like_model_gives_the_textbook_interpolation(tmp_path, axes):
    """A bilinear "model" must give exactly torch's interpolation along the chosen axes: proves
    that axes are not swapped or flipped and that the intensity profile inverts exactly.
    The volume's far tails (below ZERO_TOLERANCE of its maximum) are zero background for the
    value rules: their footprints keep the input's values."""
    src = make_nifti(tmp_path / "in.nii.gz", shape=(9, 8, 7), dtype="float32")
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=interp_model(2), axes=axes)
    got = nib.load(dst).get_fdata()
    data = read_nifti(src).data
    factors = scale_factors(axes, 2)
    expected = _torch_interp(data, factors, "trilinear")
    foot = data
    for a, f in enumerate(factors):
        foot = np.repeat(foot, f, axis=a)
    background = np.abs(foot) <= ZERO_TOLERANCE * np.abs(data).max()
    assert 0 < background.mean() < 0.2
    np.testing.assert_array_equal(got[background], foot[background])
    np.testing.assert_allclose(got[~background], expected[~background], rtol=1e-5, atol=1e-3)


def test_world_function_lands_at_world_positions(tmp_path):
    """Values that are a linear function of world position stay that function of the *output*
    affine's world positions (interior voxels): the geometry and the pixels agree."""
    g = np.array([3.0, -2.0, 1.5])
    aff = oblique_affine((1.1, 0.8, 2.5))
    src = make_nifti(
        tmp_path / "in.nii.gz",
        shape=(10, 12, 6),
        affine=aff,
        dtype="float32",
        values=lambda w: 500.0 + w @ g,
    )
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=interp_model(3), scale=3, axes=(0, 1))
    out = nib.load(dst)
    data = out.get_fdata()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij"), -1)
    world = idx @ out.affine[:3, :3].T + out.affine[:3, 3]
    inner = (slice(3, -3), slice(3, -3), slice(None))
    np.testing.assert_allclose(data[inner], (500.0 + world @ g)[inner], atol=2e-3)


def test_through_plane_of_a_linear_field_is_exact_inside(tmp_path):
    g = np.array([1.0, 2.0, -1.0])
    src = make_nifti(
        tmp_path / "in.nii.gz", shape=(8, 8, 6), dtype="float32", values=lambda w: 200.0 + w @ g
    )
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=interp_model(2), through_plane=True)
    out = nib.load(dst)
    data = out.get_fdata()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in data.shape], indexing="ij"), -1)
    world = idx @ out.affine[:3, :3].T + out.affine[:3, 3]
    inner = (slice(2, -2),) * 3
    np.testing.assert_allclose(data[inner], (200.0 + world @ g)[inner], atol=2e-3)


def test_nan_voxels_stay_nan(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(8, 8, 4), dtype="float32")
    img = nib.load(src)
    data = img.get_fdata().astype(np.float32)
    data[2, 3, 1] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine, img.header), src)
    out = nib.load(upscale_nifti(src, tmp_path / "o.nii.gz", model=tiny_model(1, 2))).get_fdata()
    assert np.isnan(out[4:6, 6:8, 1]).all()
    assert np.isfinite(out).sum() == out.size - 4


def test_2d_nifti(tmp_path):
    img = nib.Nifti1Image(np.arange(60, dtype=np.float32).reshape(10, 6), np.diag([0.5, 0.7, 1, 1]))
    nib.save(img, tmp_path / "in.nii")
    out = nib.load(upscale_nifti(tmp_path / "in.nii", tmp_path / "out.nii", model=interp_model(2)))
    assert out.shape == (20, 12)
    np.testing.assert_allclose(corners(out.affine, (20, 12, 1)), corners(img.affine, (10, 6, 1)))


def test_profile_round_trip_is_exact():
    x = np.linspace(-1000, 4000, 1001, dtype=np.float32)[None, :, None]
    for recipe in ("mr", "mr:2,98", "ct", "ct-window:40,400", "range:-5,7"):
        prof = profile_from_any(recipe, x)
        back = prof.denormalize(prof.normalize(x))
        np.testing.assert_allclose(back, x, rtol=1e-6, atol=1e-3)


def test_profile_fitted_once_per_volume(tmp_path):
    """Percentiles come from the whole volume: a slice-wise fit would brighten dim slices."""
    calls = []
    orig = Upscaler.upscale

    def spy(self, array, *, profile, **kw):
        calls.append(profile)
        return orig(self, array, profile=profile, **kw)

    src = make_nifti(tmp_path / "in.nii.gz", shape=(40, 8, 6), n_volumes=2)
    Upscaler.upscale = spy
    try:
        upscale_nifti(src, tmp_path / "o.nii.gz", model=tiny_model(1, 2), axes=(1, 2))
    finally:
        Upscaler.upscale = orig
    assert len(calls) >= 4
    assert all(p == calls[0] for p in calls)


def test_errors_and_no_partial_output(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz")
    dst = tmp_path / "out.nii.gz"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        upscale_nifti(src, dst, model=interp_model(2))
    assert dst.read_bytes() == b"keep me"
    with pytest.raises(UnsafeOutputError, match="not a gzipped NIfTI"):  # not even so
        upscale_nifti(src, dst, model=interp_model(2), overwrite=True)
    assert dst.read_bytes() == b"keep me"
    shutil.copy(src, dst)  # a NIfTI file: --overwrite replaces it
    upscale_nifti(src, dst, model=interp_model(2), overwrite=True)
    assert nib.load(dst).shape == (40, 32, 8)
    with pytest.raises(ConfigError, match="scale"):
        upscale_nifti(src, tmp_path / "x.nii.gz", model=interp_model(2), scale=3)
    with pytest.raises(ConfigError, match=r"\.nii"):
        upscale_nifti(src, tmp_path / "x.tif", model=interp_model(2))
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(src.read_bytes()[:200])
    with pytest.raises(InputFileError, match=r"broken\.nii\.gz"):
        upscale_nifti(bad, tmp_path / "y.nii.gz", model=interp_model(2))
    label = nib.load(src)
    label.header.set_intent("label")
    nib.save(label, tmp_path / "seg.nii.gz")
    with pytest.raises(InputFileError, match="label"):
        upscale_nifti(tmp_path / "seg.nii.gz", tmp_path / "z.nii.gz", model=interp_model(2))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not leftovers
    assert not (tmp_path / "y.nii.gz").exists()


def test_reusable_upscaler(tmp_path):
    up = Upscaler(tiny_model(1, 2), device="cpu")
    a = make_nifti(tmp_path / "a.nii.gz")
    b = make_nifti(tmp_path / "b.nii.gz", n_volumes=2)
    for p in (a, b):
        upscale_nifti(p, tmp_path / f"sr_{p.name}", model=up)
    with pytest.raises(ConfigError):
        upscale_nifti(a, tmp_path / "c.nii.gz", model=up, scale=4)


# -- real files ---------------------------------------------------------------------------------
REAL = ["anatomical.nii", "example4d.nii.gz", "example_nifti2.nii.gz"]


@pytest.mark.parametrize("name", REAL)
def test_real_nibabel_files(tmp_path, name):
    src = NIB_DATA / name
    if not src.exists():
        pytest.skip(f"{name} not shipped with this nibabel")
    dst = upscale_nifti(
        src, tmp_path / ("out" + "".join(src.suffixes)), model=interp_model(2, "nearest")
    )
    img = read_nifti(src)
    factors = scale_factors(_default(img), 2)
    check_geometry(src, dst, factors)


def _default(vol):
    from sr_domains.medical import default_axes

    return default_axes(vol.spacing, vol.data.shape)


def test_real_shared_aniso_vox(tmp_path, shared_data):
    src = shared_data / "nifti" / "aniso_vox.nii.gz"
    if not src.exists():
        pytest.skip("aniso_vox.nii.gz absent")
    dst = upscale_nifti(src, tmp_path / "out.nii.gz", model=tiny_model(1, 2))
    assert _default(read_nifti(src)) == (0, 1)  # 4 x 4 x 5 mm: the 4 mm axes
    err = check_geometry(src, dst, (2, 2, 1))
    assert err < 1e-4
    a, b = nib.load(src), nib.load(dst)
    assert b.get_data_dtype() == a.get_data_dtype() == np.int16
    assert b.header.get_zooms() == pytest.approx((2.0, 2.0, 5.0))
