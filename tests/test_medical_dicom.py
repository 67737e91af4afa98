"""DICOM series in, derived DICOM series out: reading, geometry, tags, re-reading elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")

from _dicom_files import shipped  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless  # noqa: E402

from sr_domains import inference  # noqa: E402
from sr_domains.image import scale_dicom_plane  # noqa: E402
from sr_domains.medical import (  # noqa: E402
    list_dicom_series,
    load_dicom_series,
    read_dicom_volume,
    upscale_dicom_series,
)
from sr_domains.medical.geometry import corners, slice_normal, upscaled_affine  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.medical import (  # noqa: E402
    interp_model,
    make_dicom_series,
    make_enhanced_dicom,
)
from sr_domains.value_domain import ValueOptions  # noqa: E402


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Exact comparisons: run on the CPU even where CUDA exists (no AMP, same numbers)."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


SAME_TAGS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "FrameOfReferenceUID",
    "Modality",
    "SOPClassUID",
)


def assert_same_volume(da, aa, db, ab, atol=0.0):
    """Volume b (another reader's axis order/direction) is volume a: the affines differ by an
    axis permutation/flip and the voxels agree after undoing it."""
    m = np.linalg.inv(aa) @ ab  # b index -> a index
    perm = np.rint(m[:3, :3])
    np.testing.assert_allclose(m[:3, :3], perm, atol=1e-5)
    assert (np.abs(perm).sum(0) == 1).all()
    assert (np.abs(perm).sum(1) == 1).all()
    order = [int(np.flatnonzero(perm[i])[0]) for i in range(3)]
    vol = np.transpose(np.asarray(db), order)
    for i in range(3):
        expect_t = 0 if perm[i, order[i]] > 0 else da.shape[i] - 1
        assert m[i, 3] == pytest.approx(expect_t, abs=1e-4)
        if perm[i, order[i]] < 0:
            vol = np.flip(vol, axis=i)
    assert vol.shape == da.shape
    np.testing.assert_allclose(vol, da, atol=atol)


@pytest.fixture
def mr_series(tmp_path) -> Path:
    make_dicom_series(tmp_path / "mr", n_slices=5, rows=16, cols=12)
    return tmp_path / "mr"


def test_sorted_by_position_not_by_name_or_instance_number(tmp_path):
    files = make_dicom_series(tmp_path / "s", n_slices=7, rows=8, cols=6)  # spatial order
    s = load_dicom_series(tmp_path / "s")
    assert [x.path for x in s.slices] == files
    assert [x.path.name for x in s.slices] != sorted(p.name for p in files)
    proj = [x.position @ slice_normal(s.iop) for x in s.slices]
    assert np.all(np.diff(proj) == pytest.approx(3.0))
    assert s.slice_spacing == pytest.approx(3.0)


@pytest.mark.parametrize(("modality", "scale"), [("MR", 2), ("CT", 3)])
def test_derived_series_geometry_and_tags(tmp_path, modality, scale):
    src_files = make_dicom_series(
        tmp_path / "in", n_slices=4, rows=10, cols=8, pixel_spacing=(0.9, 0.65), modality=modality
    )
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", scale=scale, model=tiny_model(1, scale)
    )
    src = load_dicom_series(tmp_path / "in")
    dst = load_dicom_series(tmp_path / "out")
    assert [x.path for x in dst.slices] == out  # written in spatial order
    assert dst.shape == (4, 10 * scale, 8 * scale)
    err = np.abs(corners(src.affine, src.shape) - corners(dst.affine, dst.shape)).max()
    assert err < 1e-6
    np.testing.assert_allclose(dst.pixel_spacing, np.array([0.9, 0.65]) / scale, rtol=1e-12)
    np.testing.assert_allclose(dst.iop, src.iop, atol=1e-12)
    a, b = [pydicom.dcmread(p) for p in src_files], [pydicom.dcmread(p) for p in out]
    for sa, sb in zip(src.slices, b):  # each IPP by the same half-pixel rule
        ipp, _ps = scale_dicom_plane(sa.position, sa.iop, sa.pixel_spacing, scale)
        np.testing.assert_allclose([float(v) for v in sb.ImagePositionPatient], ipp, atol=1e-9)
        assert float(sb.SliceLocation) == float(sa.ds.SliceLocation)
    uids = {d.SOPInstanceUID for d in b}
    assert len(uids) == len(b)
    assert not uids & {d.SOPInstanceUID for d in a}
    assert len({d.SeriesInstanceUID for d in b}) == 1
    assert b[0].SeriesInstanceUID != a[0].SeriesInstanceUID
    for d in b:
        for tag in SAME_TAGS:
            assert d.get(tag) == a[0].get(tag), tag
        assert d.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
        assert list(d.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert d.SeriesDescription == f"T1 phantom SR x{scale}"
        assert f"x{scale}" in d.DerivationDescription
        assert "sr_domains" in d.DerivationDescription
        assert d.Rows == 10 * scale
        assert d.Columns == 8 * scale
        bits = a[0].BitsStored  # (12 for the MR phantom: its values fit, so it is kept)
        assert (d.BitsAllocated, d.BitsStored, d.HighBit) == (16, bits, bits - 1)
        assert d.pixel_array.dtype == (np.int16 if d.PixelRepresentation else np.uint16)
        ref = d.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert ref in {x.SOPInstanceUID for x in a}
        assert d.ContributingEquipmentSequence[-1].Manufacturer == "sr_domains"
    assert [int(d.InstanceNumber) for d in b] == list(range(1, 5))
    if modality == "CT":
        assert all(d.RescaleIntercept == -1024 and d.RescaleType == "HU" for d in b)


def test_linear_field_lands_at_world_positions(tmp_path):
    """HU that are a linear function of LPS position stay that function of the output tags'
    positions: rows/columns are not swapped or mirrored."""
    g = np.array([3.0, -2.0, 1.5])
    make_dicom_series(
        tmp_path / "in", n_slices=3, rows=12, cols=9, modality="CT", values=lambda w: 100.0 + w @ g
    )
    upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2), profile="ct")
    vol, aff, _ = read_dicom_volume(tmp_path / "out")
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in vol.shape], indexing="ij"), -1)
    world = idx @ aff[:3, :3].T + aff[:3, 3]
    inner = (slice(None), slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(vol[inner], (100.0 + world @ g)[inner], atol=1.01)


def test_identity_like_model_reproduces_the_input(tmp_path):
    """Nearest-neighbour "SR" must return each stored value s x s times, in the right place."""
    make_dicom_series(tmp_path / "in", n_slices=3, rows=9, cols=7)
    upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=interp_model(2, "nearest"))
    a, _, _ = read_dicom_volume(tmp_path / "in")
    b, _, _ = read_dicom_volume(tmp_path / "out")
    np.testing.assert_array_equal(b, a.repeat(2, 1).repeat(2, 2))


def test_reread_with_monai_and_nibabel(tmp_path):
    monai_transforms = pytest.importorskip("monai.transforms")
    from nibabel.nicom import dicomwrappers

    make_dicom_series(tmp_path / "in", n_slices=4, rows=10, cols=8, modality="CT")
    upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=tiny_model(1, 2))
    vol, aff, series = read_dicom_volume(tmp_path / "out")
    src = load_dicom_series(tmp_path / "in")
    np.testing.assert_allclose(aff, upscaled_affine(src.affine, (1, 2), 2), atol=1e-9)
    load = monai_transforms.LoadImage(
        reader="PydicomReader", image_only=True, affine_lps_to_ras=False
    )
    img = load(str(tmp_path / "out"))
    assert_same_volume(vol, aff, img.numpy(), np.asarray(img.affine), atol=1e-3)
    for k, s in enumerate(series.slices):  # nibabel: per-file affine of (row, column)
        w = dicomwrappers.wrapper_from_file(s.path)
        np.testing.assert_allclose(w.affine[:3, :2], aff[:3, 1:3], atol=1e-9)
        np.testing.assert_allclose(w.affine[:3, 3], aff[:3, :3] @ [k, 0, 0] + aff[:3, 3], atol=1e-9)
        np.testing.assert_allclose(w.get_data(), vol[k], atol=1e-3)


def test_through_plane_series(tmp_path):
    make_dicom_series(tmp_path / "in", n_slices=4, rows=8, cols=8, slice_spacing=4.0)
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", model=interp_model(2), through_plane=True
    )
    src, dst = load_dicom_series(tmp_path / "in"), load_dicom_series(tmp_path / "out")
    assert len(out) == 8
    assert dst.shape == (8, 16, 16)
    assert dst.slice_spacing == pytest.approx(2.0)
    err = np.abs(corners(src.affine, src.shape) - corners(dst.affine, dst.shape)).max()
    assert err < 1e-6
    ds = [pydicom.dcmread(p) for p in out]
    normal = slice_normal(dst.iop)
    loc = [float(d.SliceLocation) for d in ds]
    proj = [np.array(d.ImagePositionPatient, float) @ normal for d in ds]
    np.testing.assert_allclose(loc, proj, atol=1e-5)  # the phantom's SliceLocation = projection
    assert float(ds[0].SpacingBetweenSlices) == pytest.approx(2.0)
    assert float(ds[0].SliceThickness) == pytest.approx(4.0)  # acquisition thickness kept


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_series(tmp_path, syntax):
    kw = {"n_slices": 3, "rows": 40, "cols": 36, "seed": 3}  # J2K needs >= 32 px for 6 levels
    make_dicom_series(tmp_path / "plain", **kw)
    make_dicom_series(tmp_path / "comp", transfer_syntax=syntax, **kw)
    assert (
        pydicom.dcmread(next((tmp_path / "comp").iterdir())).file_meta.TransferSyntaxUID == syntax
    )
    np.testing.assert_array_equal(
        read_dicom_volume(tmp_path / "comp")[0], read_dicom_volume(tmp_path / "plain")[0]
    )
    out = upscale_dicom_series(tmp_path / "comp", tmp_path / "out", model=tiny_model(1, 2))
    assert pydicom.dcmread(out[0]).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_real_compressed_and_odd_encodings_decode(name):
    ref = read_dicom_volume(shipped("MR_small.dcm"))[0]
    np.testing.assert_array_equal(read_dicom_volume(shipped(name))[0], ref)


def test_real_big_endian_source_is_written_little_endian(tmp_path):
    """Explicit VR Big Endian (retired, still in archives): the derived series is written little
    endian with the pixels and geometry of the little endian copy's output, and the bytes of a
    kept binary (OW) tag are swapped, not copied."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    src = tmp_path / "in" / "be.dcm"
    src.parent.mkdir()
    ds = pydicom.dcmread(shipped("MR_small_bigendian.dcm"))
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 16]
    lut.add_new("LUTData", "OW", np.array([0, 100, 200, 65535], ">u2").tobytes())
    ds.VOILUTSequence = Sequence([lut])
    ds.add_new(0x00660016, "OF", bytes(6))  # PointCoordinatesData: 1.5 floats, cannot be swapped
    ds.save_as(src)  # as read: big endian
    assert pydicom.dcmread(src).original_encoding == (False, False)
    before = src.read_bytes()
    out = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    ref = upscale_dicom_series(
        shipped("MR_small.dcm"), tmp_path / "ref", model=interp_model(2, "nearest")
    )
    assert src.read_bytes() == before
    d, r = pydicom.dcmread(out[0]), pydicom.dcmread(ref[0])
    assert d.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert d.original_encoding == (False, True)
    np.testing.assert_array_equal(d.pixel_array, r.pixel_array)
    for key in ("Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "PixelRepresentation"):
        assert d.get(key) == r.get(key), key
    data = d.VOILUTSequence[0]["LUTData"].value
    got = np.frombuffer(data, "<u2") if isinstance(data, bytes) else np.asarray(data)
    np.testing.assert_array_equal(got, [0, 100, 200, 65535])
    assert d[0x00660016].value in (b"", None)  # emptied (logged), not copied in the wrong order


def test_real_lossy_ct_keeps_lossy_flag(tmp_path):
    src = shipped("693_J2KI.dcm")  # JPEG 2000 (lossy) CT, LossyImageCompression 01
    vol, _, s = read_dicom_volume(src)
    assert vol.shape == (1, 512, 512)
    assert vol.min() < -1000
    out = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    d = pydicom.dcmread(out[0])
    assert d.LossyImageCompression == "01"
    np.testing.assert_array_equal(read_dicom_volume(out[0])[0], vol.repeat(2, 1).repeat(2, 2))
    err = np.abs(
        corners(s.affine, s.shape) - corners(read_dicom_volume(out[0])[1], (1, 1024, 1024))
    ).max()
    assert err < 1e-6


def test_real_files_without_geometry(tmp_path):
    """Single images with no ImagePosition/Orientation (JPEG extended, JPEG-LS) are handled as
    2-D images: PixelSpacing (if any) divided, no position invented."""
    for name in ("JPGExtended.dcm", "JPEGLSNearLossless_16.dcm"):
        src = shipped(name)
        vol, _, s = read_dicom_volume(src)
        assert not s.has_geometry
        assert vol.shape[0] == 1
        out = upscale_dicom_series(src, tmp_path / src.stem, model=interp_model(2, "nearest"))
        d = pydicom.dcmread(out[0])
        assert "ImagePositionPatient" not in d
        assert d.Rows == 2 * s.rows
        np.testing.assert_array_equal(read_dicom_volume(out[0])[0], vol.repeat(2, 1).repeat(2, 2))


def test_real_ct_small_hu_preserved(tmp_path):
    src = shipped("CT_small.dcm")
    vol, aff, s = read_dicom_volume(src)
    out = upscale_dicom_series(src, tmp_path / "out", model=interp_model(2, "nearest"))
    vol2, aff2, _ = read_dicom_volume(tmp_path / "out")
    np.testing.assert_array_equal(vol2, vol.repeat(2, 1).repeat(2, 2))
    assert np.abs(corners(aff, s.shape) - corners(aff2, vol2.shape)).max() < 1e-6
    d = pydicom.dcmread(out[0])
    assert float(d.RescaleIntercept) == float(s.first.RescaleIntercept)


def test_enhanced_multiframe(tmp_path):
    from nibabel.nicom import dicomwrappers

    src = make_enhanced_dicom(tmp_path / "in" / "enh.dcm", n_frames=5)
    s = load_dicom_series(src)
    assert s.enhanced
    assert s.n_slices == 5
    assert [x.frame for x in s.slices] != list(range(5))  # frames were shuffled on disk
    out = upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", model=interp_model(2), through_plane=True
    )
    assert len(out) == 1
    d = pydicom.dcmread(out[0])
    s2 = load_dicom_series(out[0])
    assert s2.shape == (10, 40, 36)
    assert int(d.NumberOfFrames) == 10
    assert np.abs(corners(s.affine, s.shape) - corners(s2.affine, s2.shape)).max() < 1e-6
    assert [x.frame for x in s2.slices] == list(range(10))  # written in spatial order
    assert d.ImageType[0] == "DERIVED"
    assert d.SOPInstanceUID != s.first.SOPInstanceUID
    shared = d.SharedFunctionalGroupsSequence[0]
    assert shared.MRImageFrameTypeSequence[0].FrameType[0] == "DERIVED"
    assert float(shared.PixelMeasuresSequence[0].SpacingBetweenSlices) == pytest.approx(1.25)
    stack = [
        int(f.FrameContentSequence[0].InStackPositionNumber)
        for f in d.PerFrameFunctionalGroupsSequence
    ]
    assert stack == list(range(1, 11))
    w = dicomwrappers.wrapper_from_file(out[0])  # nibabel reads it as one consistent volume
    vol, aff, _ = read_dicom_volume(out[0])
    assert_same_volume(
        vol,
        aff,
        np.moveaxis(w.get_data(), -1, 0).transpose(0, 1, 2),
        _nib_to_krc(w.affine),
        atol=1e-3,
    )


def _nib_to_krc(aff):
    """nibabel multiframe affine is over (row, column, frame); reorder to (frame, row, col)."""
    return aff[:, [2, 0, 1, 3]]


def test_stored_representation_is_kept(tmp_path):
    """Signedness and rescale of the source are kept (the value grid does not change); SR
    overshoot is clamped into the physical domain instead of changing the representation."""

    def edge(w):
        return np.where(w[..., 0] > -7.0, 4000.0, 0.0)

    make_dicom_series(tmp_path / "in", n_slices=2, rows=12, cols=12, values=edge)
    upscale_dicom_series(
        tmp_path / "in", tmp_path / "out", model=interp_model(2, "bicubic"), profile="range:0,4000"
    )
    b, _, s = read_dicom_volume(tmp_path / "out")
    src = load_dicom_series(tmp_path / "in")
    assert b.min() == 0 and b.max() == 4000  # bicubic rings past both; clamped back
    assert s.first.PixelRepresentation == src.first.PixelRepresentation
    assert float(s.first.get("RescaleSlope", 1)) == float(src.first.get("RescaleSlope", 1))

    raw = upscale_dicom_series(
        tmp_path / "in",
        tmp_path / "raw",
        model=interp_model(2, "bicubic"),
        profile="range:0,4000",
        values=ValueOptions(clamp=False),
    )
    r, _, _ = read_dicom_volume(raw[0].parent)
    assert r.max() > 4000  # unclamped overshoot, still on the source grid
    np.testing.assert_array_equal(r, np.rint(r))


def test_series_selection(tmp_path):
    make_dicom_series(tmp_path / "mix" / "a", n_slices=3, rows=6, cols=6, description="T1")
    make_dicom_series(tmp_path / "mix" / "b", n_slices=2, rows=6, cols=6, description="T2", seed=1)
    listing = list_dicom_series(tmp_path / "mix")
    assert sorted((s.description, s.n_images) for s in listing) == [("T1", 3), ("T2", 2)]
    uid = next(s.uid for s in listing if s.description == "T2")
    out = upscale_dicom_series(
        tmp_path / "mix", tmp_path / "out", series_uid=uid, model=interp_model(2)
    )
    assert len(out) == 2
    assert pydicom.dcmread(out[0]).SeriesDescription == "T2 SR x2"


def test_real_babymri_series(tmp_path, shared_data):
    src = shared_data / "dicom" / "mr_brain_6slice_babymri_dwv"
    if not src.exists():
        pytest.skip("babymri series absent")
    monai_transforms = pytest.importorskip("monai.transforms")
    s = load_dicom_series(src)
    assert s.shape == (6, 256, 256)
    assert s.slice_spacing == pytest.approx(9.0)
    work = tmp_path / "in"
    shutil.copytree(src, work)
    upscale_dicom_series(work, tmp_path / "out", model=tiny_model(1, 2))
    vol, aff, s2 = read_dicom_volume(tmp_path / "out")
    err = np.abs(corners(s.affine, s.shape) - corners(aff, vol.shape)).max()
    assert err < 1e-6
    np.testing.assert_allclose(s2.pixel_spacing, [0.5, 0.5])
    load = monai_transforms.LoadImage(
        reader="PydicomReader", image_only=True, affine_lps_to_ras=False
    )
    img = load(str(tmp_path / "out"))
    assert_same_volume(vol, aff, img.numpy(), np.asarray(img.affine), atol=1e-3)


def test_three_channel_weights_work_on_a_series(tmp_path):
    """docs/medical.md: a checkpoint with more input channels (RGB weights) gets each slice
    repeated on them and its outputs averaged; such --weights used to be refused."""
    from sr_domains import create_model, save_checkpoint

    make_dicom_series(tmp_path / "in", n_slices=3, rows=10, cols=8)
    rgb = create_model("srcnn", in_channels=3, scale=2)
    weights = save_checkpoint(rgb, tmp_path / "rgb.safetensors")
    files = upscale_dicom_series(tmp_path / "in", tmp_path / "out", weights=weights)
    vol, _, _ = read_dicom_volume(tmp_path / "out")
    assert len(files) == 3 and vol.shape == (3, 20, 16)
    assert np.isfinite(vol).all()
