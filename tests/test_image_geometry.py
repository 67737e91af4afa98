"""The one geometry rule (voxel-centre / pixel-is-area) for all domains."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_domains.errors import GeometryError
from sr_domains.image import (
    SpatialRef,
    scale_dicom_plane,
    scale_geotransform,
    scale_nifti_affine,
    upscale_matrix,
)


def _oblique_affine(spacing, angles, origin):
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rx @ ry @ rz @ np.diag(spacing)
    m[:3, 3] = origin
    return m


@settings(max_examples=40, deadline=None)
@given(
    spacing=st.tuples(*[st.floats(0.2, 6.0)] * 3),
    angles=st.tuples(*[st.floats(-np.pi, np.pi)] * 3),
    shape=st.tuples(*[st.integers(1, 300)] * 3),
    factors=st.tuples(*[st.sampled_from([1, 2, 3, 4])] * 3),
)
def test_nifti_rule_keeps_corners_and_divides_spacing(spacing, angles, shape, factors):
    aff = _oblique_affine(spacing, angles, (-90.5, 12.25, 40.0))
    ref = SpatialRef(aff, shape)
    up = ref.scaled(factors)
    assert up.shape == tuple(n * f for n, f in zip(shape, factors))
    np.testing.assert_allclose(up.corners(), ref.corners(), atol=1e-6)
    np.testing.assert_allclose(up.spacing, np.array(spacing) / np.array(factors), rtol=1e-12)
    np.testing.assert_allclose(scale_nifti_affine(aff, factors), up.affine)


def test_nibabel_rescale_affine_is_not_the_rule():
    """Documented pitfall: nibabel's rescale_affine does not keep the field of view here."""
    from nibabel.affines import rescale_affine

    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    shape = (10, 10, 10)
    ours = SpatialRef(aff, shape).scaled((2, 2, 1))
    theirs = rescale_affine(aff, shape, (1.0, 1.0, 2.0), (20, 20, 10))
    assert not np.allclose(theirs, ours.affine)
    np.testing.assert_allclose(ours.corners(), SpatialRef(aff, shape).corners(), atol=1e-9)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(
    "transform",
    [
        Affine(30.0, 0.0, 440720.0, 0.0, -30.0, 3751320.0),  # UTM north-up
        Affine(0.001, 0.0, 12.5, 0.0, -0.001, 45.2),  # EPSG:4326
        Affine.translation(1000, 2000) * Affine.rotation(17) * Affine.scale(10, -12),  # rotated
    ],
)
def test_geotransform_rule_equals_affine_scale(transform, scale):
    ref = SpatialRef.from_geotransform(transform, (57, 91))
    np.testing.assert_allclose(ref.to_geotransform(), tuple(transform)[:6], atol=1e-9)
    up = ref.scaled(scale)
    expected = transform * Affine.scale(1 / scale)
    np.testing.assert_allclose(up.to_geotransform(), tuple(expected)[:6], atol=1e-9)
    np.testing.assert_allclose(scale_geotransform(transform, scale), tuple(expected)[:6])
    # outer corners of the raster in corner convention are identical
    for r, c in itertools.product((0, 57), (0, 91)):
        np.testing.assert_allclose(expected @ (c * scale, r * scale), transform @ (c, r), atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_dicom_plane_rule_matches_nifti_rule(scale):
    """IPP/PixelSpacing update is the same rule seen through DICOM's conventions."""
    row_dir = np.array([0.9, 0.1, -0.2])
    row_dir /= np.linalg.norm(row_dir)
    col_dir = np.cross(row_dir, [0.1, 0.2, 0.97])
    col_dir /= np.linalg.norm(col_dir)
    ipp = np.array([-120.0, 33.0, 7.5])
    spacing = (0.8, 0.6)  # (between rows, between columns)
    new_ipp, new_spacing = scale_dicom_plane(ipp, [*row_dir, *col_dir], spacing, scale)
    # the same slice as a (row, col) centre affine: columns = row step, column step, origin
    m = np.column_stack([col_dir * spacing[0], row_dir * spacing[1], ipp])
    new_origin = m @ upscale_matrix([scale, scale])[:, 2]
    np.testing.assert_allclose(new_ipp, new_origin, atol=1e-9)
    assert new_spacing == pytest.approx([spacing[0] / scale, spacing[1] / scale])


def test_bad_inputs_raise_geometry_error():
    with pytest.raises(GeometryError):
        SpatialRef(np.eye(3), (2, 2, 2))
    with pytest.raises(GeometryError):
        SpatialRef(np.full((3, 3), np.nan), (2, 2))
    with pytest.raises(GeometryError):
        SpatialRef(np.eye(3), (3, 3)).scaled(1.5)
    with pytest.raises(GeometryError):
        upscale_matrix([0])
    with pytest.raises(ValueError, match="2-D"):
        SpatialRef(np.eye(4), (2, 2, 2)).to_geotransform()
