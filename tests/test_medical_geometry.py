"""Pure geometry of the medical domain: axis choice, voxel-centre rule, DICOM affines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_domains.errors import ConfigError
from sr_domains.image import scale_dicom_plane
from sr_domains.medical.geometry import (
    axis_codes,
    check_axes,
    corners,
    default_axes,
    dicom_affine,
    dicom_plane,
    obliquity_deg,
    scale_factors,
    slice_axis,
    upscaled_affine,
    voxel_sizes,
)
from sr_domains.testing.medical import oblique_affine, rotation


@pytest.mark.parametrize(
    ("spacing", "shape", "expected"),
    [
        ((1.0, 1.0, 3.0), None, (0, 1)),
        ((3.0, 0.5, 0.5), None, (1, 2)),
        ((0.9, 4.0, 0.9), None, (0, 2)),
        ((1.0, 1.0, 1.0), None, (0, 1)),  # ties: array order
        ((1.0, 1.00000001, 1.0), None, (0, 1)),  # float noise is a tie
        ((0.5, 1.0, 1.0), (1, 64, 64), (1, 2)),  # a singleton axis is avoided
    ],
)
def test_default_axes(spacing, shape, expected):
    assert default_axes(spacing, shape) == expected


def test_axes_validation_and_factors():
    assert check_axes((2, 0)) == (0, 2)
    assert slice_axis((0, 2)) == 1
    assert scale_factors((1, 2), 3) == (1.0, 3.0, 3.0)
    assert scale_factors((1, 2), 3, through_plane=True) == (3.0, 3.0, 3.0)
    for bad in [(0, 0), (0, 3), (1,), "ab"]:
        with pytest.raises(ConfigError):
            check_axes(bad)


@settings(max_examples=60, deadline=None)
@given(
    angles=st.tuples(*[st.floats(-180, 180)] * 3),
    spacing=st.tuples(*[st.floats(0.2, 6.0)] * 3),
    origin=st.tuples(*[st.floats(-300, 300)] * 3),
    shape=st.tuples(*[st.integers(1, 300)] * 3),
    axes=st.sampled_from([(0, 1), (0, 2), (1, 2)]),
    scale=st.sampled_from([2, 3, 4]),
    through=st.booleans(),
)
def test_corners_unchanged_property(angles, spacing, origin, shape, axes, scale, through):
    aff = oblique_affine(spacing, angles, origin)
    new = upscaled_affine(aff, axes, scale, through)
    f = scale_factors(axes, scale, through)
    new_shape = tuple(int(n * g) for n, g in zip(shape, f))
    np.testing.assert_allclose(corners(new, new_shape), corners(aff, shape), rtol=0, atol=1e-9)
    np.testing.assert_allclose(voxel_sizes(new), np.asarray(spacing) / np.asarray(f), rtol=1e-12)
    # the direction of each axis is unchanged
    np.testing.assert_allclose(
        new[:3, :3] / voxel_sizes(new), aff[:3, :3] / voxel_sizes(aff), atol=1e-12
    )


def test_dicom_affine_matches_scale_dicom_plane():
    iop = [*rotation()[:, 0], *rotation()[:, 1]]
    ipp, ps = [12.5, -40.25, 7.0], (0.9, 0.7)
    aff = dicom_affine(ipp, iop, ps, 3.0)
    up = upscaled_affine(aff, (1, 2), 2)
    new_ipp, new_ps = scale_dicom_plane(ipp, iop, ps, 2)
    np.testing.assert_allclose(up[:3, 3], new_ipp, atol=1e-12)
    iop2, ps2 = dicom_plane(up)
    np.testing.assert_allclose(ps2, new_ps, rtol=1e-12)
    np.testing.assert_allclose(iop2, iop, atol=1e-12)
    # pixel (r, c) of slice k sits at IPP + r*dr*col_dir + c*dc*row_dir + k*step*normal
    k, r, c = 2, 5, 7
    normal = np.cross(iop[:3], iop[3:])
    expect = np.add(ipp, r * 0.9 * np.array(iop[3:]) + c * 0.7 * np.array(iop[:3]))
    np.testing.assert_allclose(aff @ [k, r, c, 1], [*(expect + k * 3.0 * normal), 1], atol=1e-12)


def test_orientation_helpers():
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    assert axis_codes(ras) == "RAS"
    assert axis_codes(np.diag([-1.0, 1.0, -2.0, 1.0])) == "LAI"
    assert axis_codes(np.diag([1.0, 1.0, 1.0, 1.0]), "LPS") == "LPS"
    assert obliquity_deg(ras) == pytest.approx(0.0, abs=1e-6)
    assert obliquity_deg(oblique_affine(degrees=(0, 0, 30))) == pytest.approx(30.0)
