"""Slice profiles: the simulated thick-slice degradation equals the documented formula, profile
files, FWHM, and the data-driven estimate recovers a known FWHM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_domains.errors import ConfigError, InputFileError
from sr_domains.medical.profile_estimate import estimate_profile
from sr_domains.medical.slice_profile import (
    FWHM_PER_SIGMA,
    SliceProfile,
    apply_along,
    degradation_matrix,
    load_profile,
    lr_centres,
    profile_from_spec,
    table_profile,
)


def _gauss_cdf(z: float, fwhm: float) -> float:
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return 0.5 * (1.0 + math.erf(z / (sigma * math.sqrt(2.0))))


def _formula(n_hr: int, h: float, spacing: float, cdf, n_lr: int, offset: float) -> np.ndarray:
    """docs: w_ji = P((i - c_j + 1/2) h) - P((i - c_j - 1/2) h), c_j = offset + (j + 1/2) f - 1/2,
    rows normalized; written out with plain loops and math.erf."""
    f = spacing / h
    w = np.zeros((n_lr, n_hr))
    for j in range(n_lr):
        c = offset + (j + 0.5) * f - 0.5
        for i in range(n_hr):
            w[j, i] = cdf((i - c + 0.5) * h) - cdf((i - c - 0.5) * h)
        w[j] /= w[j].sum()
    return w


@pytest.mark.parametrize(
    ("fwhm", "spacing", "h", "n_lr", "offset"),
    [
        (4.0, 4.0, 1.0, 5, 6.0),
        (4.5, 4.4, 0.9, 4, 7.0),
        (3.0, 4.0, 1.0, 6, 4.0),
        (6.0, 3.0, 0.5, 3, 9.0),
    ],
)
def test_gaussian_degradation_equals_the_documented_formula(fwhm, spacing, h, n_lr, offset):
    n_hr = 48
    prof = SliceProfile("gaussian", fwhm)
    got = degradation_matrix(n_hr, h, spacing, prof, n_lr=n_lr, offset=offset)
    want = _formula(n_hr, h, spacing, lambda z: _gauss_cdf(z, fwhm), n_lr, offset)
    np.testing.assert_allclose(got, want, atol=1e-9)
    # each LR sample is centred where the voxel-centre rule puts it (symmetric profile; rows
    # whose profile is cut by the ends of the fine grid are renormalized, not centred)
    c = lr_centres(n_lr, spacing / h, offset)
    inside = (c - prof.support / h > -0.5) & (c + prof.support / h < n_hr - 0.5)
    assert inside.any()
    centres = (got * np.arange(n_hr)).sum(axis=1)
    np.testing.assert_allclose(centres[inside], c[inside], atol=1e-4)


def test_rect_profile_is_the_overlap_of_voxels_with_the_slab():
    """A 3 mm slab every 4 mm (a 1 mm gap) on a 0.5 mm grid: each LR sample is the plain mean
    of the fine voxels inside the slab, partial voxels weighted by their overlap."""
    prof = SliceProfile("rect", 3.0)
    w = degradation_matrix(40, 0.5, 4.0, prof, n_lr=4, offset=2.0)
    for j in range(4):
        lo = (2.0 + (j + 0.5) * 8 - 0.5) * 0.5 - 1.5  # slab edges in mm (fine index * h)
        hi = lo + 3.0
        cover = [max(0.0, min(hi, (i + 0.5) * 0.5) - max(lo, (i - 0.5) * 0.5)) for i in range(40)]
        np.testing.assert_allclose(w[j], np.array(cover) / sum(cover), atol=1e-12)
    assert (w > 0).sum(axis=1).tolist() == [6, 6, 6, 6]  # 3 mm / 0.5 mm, no gap voxel used


def test_degradation_applied_to_a_volume_and_a_ramp():
    """Linear data stays linear (the profile is symmetric and normalized), along any axis."""
    prof = SliceProfile("gaussian", 4.0)
    w = torch.from_numpy(degradation_matrix(40, 1.0, 4.0, prof))
    ramp = torch.arange(40, dtype=torch.float64)
    vol = ramp.view(1, 1, 40).expand(3, 5, 40)
    out = apply_along(vol, w, 2)
    assert out.shape == (3, 5, 10)
    np.testing.assert_allclose(out[0, 0, 2:-2].numpy(), lr_centres(10, 4.0)[2:-2], atol=1e-9)
    out0 = apply_along(vol.permute(2, 0, 1), w, 0)
    torch.testing.assert_close(out0.permute(1, 2, 0), out)


def test_table_profile_file_fwhm_and_cdf(tmp_path):
    p = tmp_path / "profile.txt"
    # a triangle of half-width 2 mm: FWHM 2 mm
    p.write_text("# offset_mm weight\n-2, 0\n0 1\n2 0\n", encoding="utf-8")
    prof = load_profile(p)
    assert prof.kind == "table"
    assert prof.fwhm == pytest.approx(2.0)
    assert prof.source == "file profile.txt"
    z = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        prof.cdf(z), [0.0, 0.0, 0.125, 0.5, 0.875, 1.0, 1.0], atol=1e-6
    )  # integral of the unit-area triangle
    np.save(tmp_path / "p.npy", np.array([[-1.0, 1.0], [1.0, 1.0]]))
    box = load_profile(tmp_path / "p.npy")
    w = degradation_matrix(20, 1.0, 4.0, box, n_lr=2, offset=4.0)
    w_rect = degradation_matrix(20, 1.0, 4.0, SliceProfile("rect", 2.0), n_lr=2, offset=4.0)
    np.testing.assert_allclose(w, w_rect, atol=1e-4)


def test_bad_profiles_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="FWHM must be > 0"):
        SliceProfile("gaussian", 0.0)
    with pytest.raises(ConfigError, match="gaussian, rect"):
        SliceProfile("triangle", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="increasing"):
        table_profile([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n4 5 6\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"bad\.txt.*two columns"):
        load_profile(bad)
    with pytest.raises(InputFileError, match="not found"):
        load_profile(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="slice profile must be"):
        profile_from_spec("lorentzian", spacing=4.0, thickness=None)


def test_profile_from_spec_uses_thickness_else_spacing():
    assert profile_from_spec(None, spacing=4.0, thickness=None).fwhm == 4.0
    p = profile_from_spec("rect", spacing=4.0, thickness=3.0, thickness_source="header")
    assert (p.kind, p.fwhm, p.source) == ("rect", 3.0, "header")
    assert profile_from_spec("estimate", spacing=4.0, thickness=3.0) is None


def _isotropic_texture(n: int = 96, seed: int = 1) -> np.ndarray:
    """A volume whose structure is statistically the same in every direction (smoothed noise
    plus sharp-edged blobs), sampled at 1 mm."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, n, n))
    k = np.fft.fftfreq(n)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    vol = np.real(np.fft.ifftn(np.fft.fftn(noise) * np.exp(-2 * (np.pi * 1.2) ** 2 * k2)))
    return (1.0 + 0.5 * (vol > 0.05) + vol).astype(np.float32)


@pytest.mark.parametrize(("fwhm", "spacing"), [(3.0, 3.0), (5.0, 4.0), (2.5, 4.0)])
def test_estimate_recovers_a_known_fwhm_within_15_percent(fwhm, spacing):
    vol = _isotropic_texture()
    w = degradation_matrix(vol.shape[2], 1.0, spacing, SliceProfile("gaussian", fwhm))
    lr = np.einsum("xyz,jz->xyj", vol, w).astype(np.float32)
    est = estimate_profile(lr, 2, 1.0, spacing)
    assert est.profile.kind == "gaussian"
    assert est.profile.source == "estimate"
    assert est.profile.fwhm == pytest.approx(fwhm, rel=0.15)
    # the scan is a real minimum: far-off widths match worse
    costs = dict(est.scan["gaussian"])
    widths = np.array(sorted(costs))
    far = widths[np.abs(np.log(widths / fwhm)) > np.log(1.6)]
    assert min(costs[w] for w in far) > est.cost


def test_estimate_needs_slices_and_content():
    with pytest.raises(ConfigError, match=">= 6 slices"):
        estimate_profile(np.ones((40, 40, 4), np.float32), 2, 1.0, 4.0)
    with pytest.raises(ConfigError, match="too little content"):
        estimate_profile(np.zeros((60, 60, 20), np.float32), 2, 1.0, 3.0)


def test_fwhm_per_sigma():
    assert pytest.approx(2.35482, abs=1e-5) == FWHM_PER_SIGMA
