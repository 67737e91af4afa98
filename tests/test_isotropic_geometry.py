"""The isotropic target grid: any real factor keeps the field of view by the voxel-centre rule
(first edge fixed, the far edge moves by ``(m - n*f) * t``), hypothesis over oblique affines;
NIfTI headers and DICOM series written on that grid read back right."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_domains.errors import ConfigError
from sr_domains.image import resampled_size
from sr_domains.medical.geometry import corners, voxel_sizes
from sr_domains.medical.isotropic import nearest_source, plan_isotropic
from sr_domains.testing.medical import rotation


def _affine(spacing, degrees, origin) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = rotation(degrees) * np.asarray(spacing, np.float64)
    a[:3, 3] = origin
    return a


@settings(max_examples=200, deadline=None)
@given(
    in_plane=st.floats(0.3, 1.5),
    ratio=st.floats(1.06, 8.0),
    n=st.integers(3, 80),
    axis=st.integers(0, 2),
    degrees=st.tuples(*[st.floats(-180, 180)] * 3),
    origin=st.tuples(*[st.floats(-200, 200)] * 3),
    target=st.one_of(st.none(), st.floats(0.25, 1.0)),
)
def test_real_factors_keep_the_field_of_view(in_plane, ratio, n, axis, degrees, origin, target):
    spacing = [in_plane] * 3
    spacing[axis] = in_plane * ratio
    shape = [17, 13, 11]
    shape[axis] = n
    aff = _affine(spacing, degrees, origin)
    t = None if target is None else target * in_plane
    plan = plan_isotropic(tuple(shape), voxel_sizes(aff), target_spacing=t)
    new = plan.affine(aff)
    want_t = in_plane if t is None else t
    # every axis ends up at the target spacing exactly (float64 round-off only), except axes
    # already within 0.1% of it, which are left alone (documented rule)
    want = [d if abs(d - want_t) <= 1e-3 * want_t else want_t for d in spacing]
    np.testing.assert_allclose(voxel_sizes(new), want, rtol=1e-9)
    assert plan.slice_axis == axis
    assert plan.out_shape == tuple(
        resampled_size(s, f) if f != 1.0 else s for s, f in zip(shape, plan.factors)
    )
    # the first corner (index -1/2 on every axis) is unchanged
    old_c = corners(aff, shape)
    new_c = corners(new, plan.out_shape)
    np.testing.assert_allclose(new_c[0], old_c[0], atol=1e-7)
    # the far corner moved along each axis direction by (m - n f) * t, at most t/2
    unit = aff[:3, :3] / np.linalg.norm(aff[:3, :3], axis=0)
    shift = np.asarray(plan.edge_shift())
    assert np.all(np.abs(shift) <= want_t / 2 + 1e-9)
    # (shifts below 1e-5 mm are reported as 0: documented float32-header round-off)
    np.testing.assert_allclose(new_c[-1], old_c[-1] + unit @ shift, atol=1.1e-5)
    # voxel centres of the new grid fall in the input voxel nearest_source says
    k = plan.slice_axis
    src = nearest_source(n, plan.out_shape[k], plan.factors[k])
    centre_in_old = (np.arange(plan.out_shape[k]) + 0.5) / plan.factors[k] - 0.5
    inside = centre_in_old < n - 0.5
    assert np.all(np.abs(centre_in_old[inside] - src[inside]) <= 0.5 + 1e-9)


def test_documented_example_of_a_non_integer_product():
    """30 slices of 4.4 mm to 0.9 mm: 30 * 4.888.. = 146.67 -> 147 slices; the far edge moves
    outward by (147 - 146.67) * 0.9 = 0.3 mm."""
    plan = plan_isotropic((256, 256, 30), (0.9, 0.9, 4.4))
    assert plan.out_shape == (256, 256, 147)
    assert plan.edge_shift()[2] == pytest.approx(0.3)
    down = plan_isotropic((256, 256, 31), (0.9, 0.9, 4.4))  # 151.56 -> 152: +0.4 mm
    assert down.out_shape[2] == 152 and down.edge_shift()[2] == pytest.approx(0.4)
    up = plan_isotropic((10, 10, 9), (1.0, 1.0, 4.3))  # 38.7 -> 39: outward by 0.3 mm
    assert up.edge_shift()[2] == pytest.approx(0.3)
    assert plan_isotropic((10, 10, 9), (1.0, 1.0, 4.2)).out_shape[2] == 38
    inward = plan_isotropic((10, 10, 11), (1.0, 1.0, 4.2))  # 46.2 -> 46: inward by 0.2 mm
    assert inward.edge_shift()[2] == pytest.approx(-0.2)


def test_in_plane_axes_are_resampled_to_the_target():
    plan = plan_isotropic((100, 80, 20), (0.5, 0.6, 3.0))
    assert plan.target == 0.5
    assert plan.factors == (1.0, pytest.approx(1.2), pytest.approx(6.0))
    assert plan.out_shape == (100, 96, 120)
    coarse = plan_isotropic((100, 80, 20), (0.5, 0.6, 3.0), target_spacing=1.0)
    assert coarse.factors == (0.5, pytest.approx(0.6), 3.0)
    assert coarse.out_shape == (50, 48, 60)


@pytest.mark.parametrize(
    ("shape", "spacing", "kw", "match"),
    [
        ((64, 64, 40), (1.0, 1.0, 1.02), {}, "already isotropic"),
        ((64, 64, 2), (1.0, 1.0, 4.0), {}, ">= 3 slices"),
        ((64, 64, 20), (1.0, 1.0, float("nan")), {}, "unknown or invalid voxel spacing"),
        ((64, 64, 20), (1.0, 0.0, 4.0), {}, "unknown or invalid voxel spacing"),
        ((64, 64, 20), (1.0, 4.0, 4.0), {}, "share the coarsest spacing"),
        ((64, 64, 20), (1.0, 1.0, 4.0), {"target_spacing": 4.0}, "not finer"),
        ((64, 64, 20), (1.0, 1.0, 4.0), {"target_spacing": -1.0}, "must be > 0"),
    ],
)
def test_bad_grids_are_refused_with_the_file_named(shape, spacing, kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        plan_isotropic(shape, spacing, where="t2.nii.gz", **kw)
    assert str(err.value).startswith("t2.nii.gz: ")
