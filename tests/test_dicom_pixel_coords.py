"""Tags in pixel coordinates (ultrasound regions, display shutters, collimators, per-pixel
spacings, aspect ratio, overlays, image counts) follow the derived series' new grid."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from sr_domains import inference  # noqa: E402
from sr_domains.medical import load_dicom_series, upscale_dicom_series  # noqa: E402
from sr_domains.medical.dicom_adapter import info, info_json  # noqa: E402
from sr_domains.medical.dicom_write import write_derived_series  # noqa: E402
from sr_domains.testing.medical import (  # noqa: E402
    interp_model,
    make_dicom_series,
    make_enhanced_dicom,
)

US_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _image(path: Path, modality: str, sop: str, size: int = 64, **tags) -> Path:
    """A single 8-bit 2-D image without ImagePosition/Orientation, with ``tags``."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.SeriesNumber = modality, "PX", 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for key, value in tags.items():
        setattr(ds, key, value)
    yy, xx = np.mgrid[:size, :size]
    ds.PixelData = ((xx * 3 + yy) % 256).astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _region(ref=(28, 0), phys=(0.0, 0.0), **extra) -> Dataset:
    r = Dataset()
    r.RegionSpatialFormat, r.RegionDataType, r.RegionFlags = 1, 1, 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = 4, 4
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = 59, 59
    r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = 3  # cm
    r.PhysicalDeltaX = r.PhysicalDeltaY = 0.02
    r.ReferencePixelX0, r.ReferencePixelY0 = ref
    if phys is not None:
        r.ReferencePixelPhysicalValueX, r.ReferencePixelPhysicalValueY = phys
    for key, value in extra.items():
        setattr(r, key, value)
    return r


def _physical(r: Dataset, ax: str, i: float) -> float:
    """The physical value a viewer gives absolute pixel coordinate ``i`` along ``ax``."""
    lo = int(r[f"RegionLocationMin{ax}0"].value)
    ref = lo + int(r[f"ReferencePixel{ax}0"].value)
    phys = float(r[f"ReferencePixelPhysicalValue{ax}"].value)
    return phys + (i - ref) * float(r[f"PhysicalDelta{ax}"].value)


def _up(src: Path, dst: Path, scale: int = 2) -> Dataset:
    out = upscale_dicom_series(src, dst, scale=scale, model=interp_model(scale, "nearest"))
    return pydicom.dcmread(out[0])


def test_ultrasound_regions_follow_the_grid(tmp_path, caplog):
    """x2: PhysicalDelta halved, bounds on the new pixel edges, every source pixel centre
    keeps its physical value (the reference pixel between new pixels: the nearest one, its
    physical value moved); without a physical value the reference pixel is removed, with a
    WARNING naming it; a TM-line position between new pixels likewise."""
    regions = [_region(phys=(1.5, 0.25)), _region(phys=None, TMLinePositionX0=3)]
    src = _image(tmp_path / "us.dcm", "US", US_STORAGE, SequenceOfUltrasoundRegions=regions)
    with caplog.at_level(logging.WARNING):
        out = _up(src, tmp_path / "out")
    assert (out.Rows, out.Columns) == (128, 128)
    r, bare = out.SequenceOfUltrasoundRegions
    for reg in (r, bare):
        assert (reg.PhysicalDeltaX, reg.PhysicalDeltaY) == (0.01, 0.01)
        assert [reg.RegionLocationMinX0, reg.RegionLocationMinY0] == [8, 8]
        assert [reg.RegionLocationMaxX1, reg.RegionLocationMaxY1] == [119, 119]
    for ax in ("X", "Y"):
        for i in (4, 17, 32, 59):  # source pixel i, centre (i + 0.5) * 2 - 0.5 on the new grid
            assert _physical(r, ax, (i + 0.5) * 2 - 0.5) == pytest.approx(
                _physical(regions[0], ax, i), abs=1e-12
            )
    assert "ReferencePixelX0" not in bare and "TMLinePositionX0" not in bare
    text = caplog.text
    assert "ReferencePixelX0" in text and "TMLinePositionX0" in text and "us.dcm" in text


def test_ultrasound_x3_is_exact(tmp_path):
    """x3 puts source pixel centres on new pixel centres: reference pixel and TM-line
    positions are mapped without a physical value and without a warning."""
    regions = [_region(phys=None, TMLinePositionX0=3, DopplerSampleVolumeYPosition=-2)]
    src = _image(tmp_path / "us.dcm", "US", US_STORAGE, SequenceOfUltrasoundRegions=regions)
    r = _up(src, tmp_path / "out", 3).SequenceOfUltrasoundRegions[0]
    assert [r.RegionLocationMinX0, r.RegionLocationMaxX1] == [12, 179]
    assert r.PhysicalDeltaX == pytest.approx(0.02 / 3)
    # absolute 4 + 28 = 32 -> 97; relative to the new corner 12: 85
    assert (r.ReferencePixelX0, r.ReferencePixelY0) == (85, 1)
    assert (r.TMLinePositionX0, r.DopplerSampleVolumeYPosition) == (9, -6)


def _dx(tmp_path: Path, **tags) -> Path:
    shutter = {
        "ShutterShape": ["RECTANGULAR", "CIRCULAR", "POLYGONAL"],
        "ShutterLeftVerticalEdge": 5,
        "ShutterRightVerticalEdge": 60,
        "ShutterUpperHorizontalEdge": 3,
        "ShutterLowerHorizontalEdge": 50,
        "CenterOfCircularShutter": [32, 30],
        "RadiusOfCircularShutter": 25,
        "VerticesOfThePolygonalShutter": [10, 10, 10, 50, 40, 30],
        "ShutterPresentationValue": 0,
        "ImagerPixelSpacing": [0.15, 0.15],
        "NominalScannedPixelSpacing": [0.2, 0.2],
    }
    return _image(tmp_path / "dx.dcm", "DX", DX_STORAGE, **{**shutter, **tags})


def test_display_shutter_follows_the_grid(tmp_path):
    """x2: rectangle edges (1-based, inclusive) on the new pixel edges, the circle holds the
    exact one, the polygon holds the exact one (whole pixels around its vertices), per-pixel
    spacings halved."""
    out = _up(_dx(tmp_path), tmp_path / "out")
    assert [out.ShutterLeftVerticalEdge, out.ShutterRightVerticalEdge] == [9, 120]
    assert [out.ShutterUpperHorizontalEdge, out.ShutterLowerHorizontalEdge] == [5, 100]
    exact = [(32 - 0.5) * 2 + 0.5, (30 - 0.5) * 2 + 0.5]  # 1-based centre on the new grid
    centre = [int(v) for v in out.CenterOfCircularShutter]
    off = math.hypot(centre[0] - exact[0], centre[1] - exact[1])
    assert off <= 0.75 and 50 + off <= int(out.RadiusOfCircularShutter) <= 50 + off + 1
    assert [int(v) for v in out.VerticesOfThePolygonalShutter] == [
        19, 19, 19, 100, 20, 100, 80, 60, 80, 59, 20, 19,
    ]  # fmt: skip
    assert [float(v) for v in out.ImagerPixelSpacing] == [0.075, 0.075]
    assert [float(v) for v in out.NominalScannedPixelSpacing] == [0.1, 0.1]


def test_unequal_factors(tmp_path, caplog):
    """Rows x2, columns x1: the circle (an ellipse now) is removed with a WARNING, the
    rectangle kept; PixelAspectRatio 1:1 becomes 1:2 (vertical : horizontal); spacings per
    axis."""
    src = _dx(tmp_path, PixelAspectRatio=[1, 1], ShutterShape=["RECTANGULAR", "CIRCULAR"])
    series = load_dicom_series(src)
    volume = np.zeros((1, 128, 64), np.float32)
    with caplog.at_level(logging.WARNING):
        out = write_derived_series(
            series, volume, series.affine, tmp_path / "out", scale=2,
            derivation="test", plane_factors=(2.0, 1.0),
        )  # fmt: skip
    d = pydicom.dcmread(out[0])
    assert d.ShutterShape == "RECTANGULAR"
    assert "CenterOfCircularShutter" not in d and "RadiusOfCircularShutter" not in d
    assert "CenterOfCircularShutter" in caplog.text
    assert [d.ShutterLeftVerticalEdge, d.ShutterRightVerticalEdge] == [5, 60]
    assert [d.ShutterUpperHorizontalEdge, d.ShutterLowerHorizontalEdge] == [5, 100]
    assert [int(v) for v in d.PixelAspectRatio] == [1, 2]
    assert [float(v) for v in d.ImagerPixelSpacing] == [0.075, 0.15]


def test_overlay_and_bitmap_shutter_dropped_with_warning(tmp_path, caplog):
    """An overlay (60xx) on the source's pixels is dropped with a WARNING naming its group;
    a shutter drawn by it goes too (the whole shutter when it was the only shape)."""
    src = _image(
        tmp_path / "ov.dcm", "DX", DX_STORAGE, ShutterShape="BITMAP",
        ShutterOverlayGroup=0x6000, ShutterPresentationValue=0,
    )  # fmt: skip
    ds = pydicom.dcmread(src)
    ds.add_new(0x60000010, "US", 64)
    ds.add_new(0x60000011, "US", 64)
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60003000, "OW", np.zeros(64 * 64 // 8, np.uint8).tobytes())
    ds.save_as(src)
    with caplog.at_level(logging.WARNING):
        out = _up(src, tmp_path / "out")
    assert not [e for e in out if e.tag.group == 0x6000]
    assert "ShutterShape" not in out and "ShutterOverlayGroup" not in out
    assert "ShutterPresentationValue" not in out
    assert "overlay 6000" in caplog.text and "ShutterOverlayGroup" in caplog.text


def test_counts_follow_the_slices(tmp_path, caplog):
    """Through-plane x2 of 6 slices: ImagesInAcquisition and NumberOfSlices say 12 and
    ImageIndex follows the spatial order; a count of another acquisition is removed."""
    files = make_dicom_series(tmp_path / "in", n_slices=6, rows=12, cols=10)
    for k, f in enumerate(files):  # spatial order
        ds = pydicom.dcmread(f)
        ds.ImagesInAcquisition, ds.NumberOfSlices, ds.ImageIndex = 6, 6, k + 1
        ds.save_as(f)
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "tp", model=interp_model(2, "nearest"), through_plane=True
    )
    got = [pydicom.dcmread(f) for f in out]
    assert len(got) == 12
    assert {int(d.ImagesInAcquisition) for d in got} == {12}
    assert {int(d.NumberOfSlices) for d in got} == {12}
    assert [int(d.ImageIndex) for d in got] == list(range(1, 13))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.ImagesInAcquisition = 40
        ds.save_as(f)
    with caplog.at_level(logging.WARNING):
        out = upscale_dicom_series(
            tmp_path / "in", tmp_path / "tp2", model=interp_model(2, "nearest"), through_plane=True
        )
    assert "ImagesInAcquisition" not in pydicom.dcmread(out[0])
    assert "ImagesInAcquisition 40" in caplog.text


def test_enhanced_functional_group_shutter(tmp_path):
    """A shutter in the enhanced file's shared functional groups follows the grid too."""
    src = make_enhanced_dicom(tmp_path / "in" / "enh.dcm", n_frames=3, rows=20, cols=16)
    ds = pydicom.dcmread(src)
    shutter = Dataset()
    shutter.ShutterShape = "RECTANGULAR"
    shutter.ShutterLeftVerticalEdge, shutter.ShutterRightVerticalEdge = 2, 15
    shutter.ShutterUpperHorizontalEdge, shutter.ShutterLowerHorizontalEdge = 1, 20
    ds.SharedFunctionalGroupsSequence[0].FrameDisplayShutterSequence = Sequence([shutter])
    ds.save_as(src)
    out = _up(src, tmp_path / "out")
    got = out.SharedFunctionalGroupsSequence[0].FrameDisplayShutterSequence[0]
    assert [got.ShutterLeftVerticalEdge, got.ShutterRightVerticalEdge] == [3, 30]
    assert [got.ShutterUpperHorizontalEdge, got.ShutterLowerHorizontalEdge] == [1, 40]


def test_info_states_no_invented_spacing(tmp_path):
    """``info`` on a 2-D image without PixelSpacing says the spacing is unknown (not 1 x 1
    mm); with ImagerPixelSpacing it states that one, as the derived image divides it."""
    us = _image(tmp_path / "us" / "us.dcm", "US", US_STORAGE)
    text = info(us)
    assert "spacing    unknown (no PixelSpacing)" in text
    assert "1 x 1 mm" not in text and "0.5 x 0.5 mm" not in text
    assert info_json(us)["series"][0]["pixel_spacing"] is None
    dx = _image(tmp_path / "dx" / "dx.dcm", "DX", DX_STORAGE, ImagerPixelSpacing=[0.15, 0.2])
    text = info(dx)
    assert "0.15 x 0.2 mm at the detector (ImagerPixelSpacing" in text
    assert "pixels of 0.075 x 0.1 mm (ImagerPixelSpacing)" in text
    entry = info_json(dx)["series"][0]
    assert entry["pixel_spacing"] is None and entry["imager_pixel_spacing"] == [0.15, 0.2]


def test_info_states_no_placeholder_slice_spacing(tmp_path):
    """H19: ``info --json`` gave ``slice_spacing`` 1.0 for a 2-D image (no slices to be
    between: the reader's placeholder) and for one placed slice stating neither
    SpacingBetweenSlices nor SliceThickness: null, as ``pixel_spacing`` is without
    PixelSpacing; the text says the same. A stated thickness is still given."""
    for dcm in (
        _image(tmp_path / "us" / "us.dcm", "US", US_STORAGE),
        _image(tmp_path / "sc" / "sc.dcm", "OT", DX_STORAGE, PixelSpacing=[0.5, 0.5]),
    ):
        assert info_json(dcm)["series"][0]["slice_spacing"] is None
        assert "between slices" not in info(dcm)
    one = make_dicom_series(tmp_path / "one", n_slices=1)[0]
    assert info_json(one)["series"][0]["slice_spacing"] == 3.0
    ds = pydicom.dcmread(one)
    del ds.SliceThickness
    ds.save_as(one)
    assert info_json(one)["series"][0]["slice_spacing"] is None
    text = info(one)
    assert "0.9 x 0.7 mm in-plane; between slices unknown (one slice" in text
    assert "1 mm between slices" not in text


def test_malformed_values_are_removed_not_fatal(tmp_path, caplog):
    """A malformed pixel-coordinate tag (one value where two are due, an empty edge) is
    removed with a WARNING naming it; the image is still written."""
    src = _dx(tmp_path, ImagerPixelSpacing="0.15", ShutterRightVerticalEdge=None)
    with caplog.at_level(logging.WARNING):
        out = _up(src, tmp_path / "out")
    assert "ImagerPixelSpacing" not in out and "ShutterShape" not in out
    assert "ImagerPixelSpacing cannot be read" in caplog.text
    assert "ShutterShape cannot be read" in caplog.text
    assert [float(v) for v in out.NominalScannedPixelSpacing] == [0.1, 0.1]


RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"


def test_rt_image_plane_spacing_and_position(tmp_path):
    """RT Image: ImagePlanePixelSpacing divided, RTImagePosition (the first pixel's centre;
    rows along +x, columns along -y) moved to the new first pixel's centre, a quarter source
    pixel up and left at x2."""
    src = _image(
        tmp_path / "rt.dcm", "RTIMAGE", RT_IMAGE, ImagePlanePixelSpacing=[0.4, 0.5],
        RTImagePosition=[-15.75, 12.6], RTImagePlane="NORMAL",
    )  # fmt: skip
    out = _up(src, tmp_path / "out")
    assert [float(v) for v in out.ImagePlanePixelSpacing] == [0.2, 0.25]
    x, y = (float(v) for v in out.RTImagePosition)
    assert (x, y) == (pytest.approx(-15.75 - 0.25 * 0.5), pytest.approx(12.6 + 0.25 * 0.4))
    # the receptor position of source pixel (row 3, column 5) is that of its centre on the new grid
    r, c = (3 + 0.5) * 2 - 0.5, (5 + 0.5) * 2 - 0.5
    assert (x + c * 0.25, y - r * 0.2) == (
        pytest.approx(-15.75 + 5 * 0.5),
        pytest.approx(12.6 - 3 * 0.4),
    )


def test_incomplete_tags_are_removed_not_left_on_the_source_grid(tmp_path, caplog):
    """A region without its Y bounds (its PhysicalDeltaY would stay the source's), a shutter
    edge without its partner, a circle without its radius: removed with a WARNING (before,
    left unmapped, silently); the shutter's ShutterPresentationValue goes with it."""
    region = _region(phys=(1.5, 0.25))
    del region.RegionLocationMinY0, region.RegionLocationMaxY1
    src = _dx(
        tmp_path, SequenceOfUltrasoundRegions=[region], ShutterShape=["RECTANGULAR", "CIRCULAR"],
        ShutterRightVerticalEdge=None, CollimatorShape="CIRCULAR",
        CenterOfCircularCollimator=[32, 32],
    )  # fmt: skip
    ds = pydicom.dcmread(src)
    del ds.ShutterRightVerticalEdge
    ds.save_as(src)
    with caplog.at_level(logging.WARNING):
        out = _up(src, tmp_path / "out")
    for key in ("SequenceOfUltrasoundRegions", "ShutterShape", "ShutterLeftVerticalEdge"):
        assert key not in out
    assert "CenterOfCircularShutter" not in out and "ShutterPresentationValue" not in out
    assert "CenterOfCircularCollimator" not in out and "CollimatorShape" not in out
    for key in ("SequenceOfUltrasoundRegions", "ShutterShape", "CollimatorShape"):
        assert f"{key} cannot be read" in caplog.text


def test_factor_below_one_never_inverts_bounds(tmp_path, caplog):
    """A factor below 1 (isotropic output coarser in-plane): bounds no new pixel centre lies
    in are removed with a WARNING, never written as left > right."""
    src = _dx(tmp_path, ShutterShape="RECTANGULAR", ShutterRightVerticalEdge=5)
    series = load_dicom_series(src)
    with caplog.at_level(logging.WARNING):
        out = write_derived_series(
            series, np.zeros((1, 26, 26), np.float32), series.affine, tmp_path / "out",
            scale=1, derivation="test", plane_factors=(0.4, 0.4),
        )  # fmt: skip
    d = pydicom.dcmread(out[0])
    assert "ShutterLeftVerticalEdge" not in d and "ShutterShape" not in d
    assert "ShutterShape cannot be read" in caplog.text


def _holds(poly: list[int], exact: list[float]) -> bool:
    """Whether the convex polygon ``poly`` holds every point of ``exact`` (flat row, column
    pairs; on its edges counts): then it holds their polygon."""
    p = list(zip(poly[0::2], poly[1::2]))
    sides = [
        (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])
        for x, y in zip(exact[0::2], exact[1::2])
        for a, b in zip(p, p[1:] + p[:1])
    ]
    return all(v >= -1e-9 for v in sides) or all(v <= 1e-9 for v in sides)


def _polygon(vertices: list[int], factors: tuple[float, float], caplog) -> Dataset:
    from sr_domains.medical.dicom_pixel_coords import map_pixel_tags, warner

    ds = Dataset()
    ds.ShutterShape = ["RECTANGULAR", "POLYGONAL"]
    ds.ShutterLeftVerticalEdge, ds.ShutterRightVerticalEdge = 2, 60
    ds.ShutterUpperHorizontalEdge, ds.ShutterLowerHorizontalEdge = 2, 60
    ds.VerticesOfThePolygonalShutter = vertices
    ds.ShutterPresentationValue = 0
    with caplog.at_level(logging.WARNING):
        map_pixel_tags(ds, factors, warner("dx.dcm", set()))
    return ds


def _exact(vertices: list[int], factors: tuple[float, float]) -> list[float]:
    return [(v - 0.5) * factors[k % 2] + 0.5 for k, v in enumerate(vertices)]


@pytest.mark.parametrize("factors", [(2.0, 2.0), (4.0, 4.0), (2.0, 3.0), (1.6, 1.6)])
def test_a_convex_polygon_shutter_holds_the_exact_one(factors, caplog):
    """R3: vertices rounded away from the centroid did not hold the exact polygon: at x2 the
    apex of the triangle (10,10), (10,50), (40,30) lay 0.16 px outside the rounded edge (the
    shutter hid pixels the source showed). The hull of the whole pixels around each exact
    vertex holds it, within a pixel of it; the same for random convex polygons."""
    rng = np.random.default_rng(0)
    shapes = [[10, 10, 10, 50, 40, 30]]
    for _ in range(40):
        pts = rng.integers(1, 64, (rng.integers(3, 9), 2))
        hull = _convex_hull([tuple(map(int, p)) for p in pts])
        if len(hull) >= 3:
            shapes.append([v for p in hull for v in p])
    for vertices in shapes:
        ds = _polygon(vertices, factors, caplog)
        new = [int(v) for v in ds.VerticesOfThePolygonalShutter]
        exact = _exact(vertices, factors)
        assert _holds(new, exact), (vertices, new)
        near = [
            min(max(abs(r - x), abs(c - y)) for x, y in zip(exact[0::2], exact[1::2]))
            for r, c in zip(new[0::2], new[1::2])
        ]
        assert max(near) < 1, (vertices, new)  # (tight: each new vertex by an exact one)
    assert "VerticesOfThePolygonalShutter" not in caplog.text


def _convex_hull(pts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Gift wrapping, written apart from the library's hull (counter-clockwise)."""
    pts = sorted(set(pts))
    if len(pts) < 3:
        return pts
    hull, p = [], pts[0]
    while True:
        hull.append(p)
        q = pts[0] if pts[0] != p else pts[1]
        for r in pts:
            cross = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
            far = (r[0] - p[0]) ** 2 + (r[1] - p[1]) ** 2 > (q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2
            if cross < 0 or (cross == 0 and far):
                q = r
        p = q
        if p == hull[0]:
            return hull


def test_a_non_convex_polygon_shutter_is_removed_where_it_cannot_be_exact(caplog):
    """R3: a non-convex polygon (an L) whose vertices fall between the new pixels (x2) has no
    simple exact whole-pixel polygon that holds it (its hull would show what the source hid):
    removed with a WARNING naming it, the rest of the shutter kept. At x3 its vertices land on
    pixels: mapped exactly, in order."""
    ell = [10, 10, 10, 50, 20, 50, 20, 20, 40, 20, 40, 10]
    ds = _polygon(ell, (2.0, 2.0), caplog)
    assert "VerticesOfThePolygonalShutter" not in ds
    assert ds.ShutterShape == "RECTANGULAR" and "ShutterPresentationValue" in ds
    assert "dx.dcm: VerticesOfThePolygonalShutter (a non-convex polygon" in caplog.text
    caplog.clear()
    ds = _polygon(ell, (3.0, 3.0), caplog)
    assert [int(v) for v in ds.VerticesOfThePolygonalShutter] == [
        int(v) for v in _exact(ell, (3.0, 3.0))
    ]
    assert list(ds.ShutterShape) == ["RECTANGULAR", "POLYGONAL"] and not caplog.text
    only = Dataset()
    only.ShutterShape, only.ShutterPresentationValue = "POLYGONAL", 0
    only.VerticesOfThePolygonalShutter = ell
    from sr_domains.medical.dicom_pixel_coords import map_pixel_tags

    map_pixel_tags(only, (2.0, 2.0), lambda *a: None)
    assert "ShutterShape" not in only and "ShutterPresentationValue" not in only
