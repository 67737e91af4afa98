"""Saturation does not spread (docs/value_fidelity.md, rule 3): the output pixels at the
saturation value are exactly the footprint of the saturated input pixels. Outside it, pixels
the envelope (a 5 x 5 maximum that holds the saturated neighbour) or rounding took to the
saturation move one unit off it, so an ``== saturation`` mask of the output is the input's,
repeated. Real files (rasterio, nibabel, pydicom) written here; a sharpening model (it
overshoots at the block's edge) and the shipped one stand in for the network."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from _dicom_files import edit_files  # noqa: E402
from _sharpen import Sharpen  # noqa: E402

from sr_domains.array_api import upscale_array  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.medical import upscale_dicom_series, upscale_nifti  # noqa: E402
from sr_domains.medical.isotropic import apply_rules, nearest_source, plan_isotropic  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402
from sr_domains.value_domain import ValueOptions, build_rules  # noqa: E402
from sr_domains.value_ops import off_saturation  # noqa: E402

SHARP = Sharpen()


def _noisy(shape: tuple[int, ...], lo: int, hi: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, shape)


def _footprint(mask: np.ndarray, s: int = 2) -> np.ndarray:
    return mask.repeat(s, axis=0).repeat(s, axis=1)


def _check(out: np.ndarray, sat_in: np.ndarray, v: float) -> None:
    fp = _footprint(sat_in)
    assert (out[fp] == v).all()  # pinned: the whole footprint
    assert int((out == v).sum()) == int(fp.sum())  # and nothing else


def _uint16_geotiff(path: Any) -> tuple[Any, np.ndarray]:
    """The probe's file: uint16, nodata 0, noisy 1000..60000 with a 10 x 10 block at 65535."""
    a = _noisy((40, 40), 1000, 60000).astype("uint16")
    a[:3, :3] = 0
    a[15:25, 15:25] = 65535
    prof = {
        "driver": "GTiff", "width": 40, "height": 40, "count": 1, "dtype": "uint16",
        "crs": "EPSG:32633", "transform": rasterio.transform.from_origin(0, 400, 10, 10),
        "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(a[None])
    return path, a


@pytest.mark.parametrize("model", [None, SHARP], ids=["shipped", "sharpen"])
def test_uint16_geotiff_saturation_stays_in_its_footprint(tmp_path, model):
    """The probe: 1625 output pixels at 65535 for a 1600-pixel footprint (x2 of 20 x 20
    here: 405 for 400 with the shipped model)."""
    src, a = _uint16_geotiff(tmp_path / "in.tif")
    with rasterio.open(upscale_geotiff(src, tmp_path / "o.tif", model=model)) as ds:
        out = ds.read(1)
        tag = ds.tags()["SR_DOMAINS_VALUES"]
    _check(out, a == 65535, 65535)
    valid = _footprint(a != 0)
    assert (out[valid] != 0).all() and (out[~valid] == 0).all()  # nodata untouched
    assert '"unsaturated"' in tag  # recorded


def test_geotiff_written_as_float_moves_only_exact_saturation(tmp_path):
    """``--dtype float32`` of uint16: only pixels equal to 65535 move (to the next float
    below); one at 65534.7 is no saturation and keeps its value."""
    src, a = _uint16_geotiff(tmp_path / "in.tif")
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=SHARP, dtype="float32")
    with rasterio.open(dst) as ds:
        out = ds.read(1)
    _check(out, a == 65535, 65535)
    below = np.nextafter(np.float32(65535), np.float32(0))
    assert (out == below).any()  # the envelope's maximum, moved off it
    assert (out[(out > 65533) & (out < 65535)] != 65534).any()  # no integer grid imposed


def test_int16_nifti_saturated_block(tmp_path):
    src = make_nifti(tmp_path / "in.nii.gz", shape=(24, 20, 3), dtype="int16")
    img = nib.load(src)
    a = _noisy((24, 20, 3), 100, 30000, seed=1).astype(np.int16)
    a[8:14, 6:12] = 32767
    nib.save(nib.Nifti1Image(a, img.affine, img.header), src)
    out = upscale_nifti(src, tmp_path / "o.nii.gz", model=SHARP, axes=(0, 1))
    b = np.asarray(nib.load(out).dataobj)
    assert b.dtype == np.int16
    _check(b, a == 32767, 32767)


def test_isotropic_rules_keep_saturation_in_its_footprint():
    """Through-plane (isotropic) output: voxels next to a saturated block that an
    overshooting network took to 32767 stay inside the envelope (its maximum is 32767)."""
    src = _noisy((8, 8, 4), 100, 30000, seed=2).astype(np.float32)
    src[2:5, 3:6, 1:3] = 32767
    plan = plan_isotropic(src.shape, (1.0, 1.0, 3.0))
    idx = np.ix_(
        *(nearest_source(n, m, f) for n, m, f in zip(src.shape, plan.out_shape, plan.factors))
    )
    wide = src.copy()
    wide[1:6, 2:7, 0:4] = 32767  # the overshoot: one voxel around the block
    out = wide[idx].copy()
    rules = build_rules(None, [float(src.min())], dtype=np.int16)
    apply_rules(out, src, plan, rules)
    sat = (src == 32767)[idx]
    assert (out[sat] == 32767).all() and int((out == 32767).sum()) == int(sat.sum())
    assert (out[(wide == 32767)[idx] & ~sat] == 32766).all()
    assert rules.stats.unsaturated == int(((wide == 32767)[idx] & ~sat).sum())


def test_12_bit_dicom_saturated_block(tmp_path):
    """MR, uint16 words with BitsStored 12: the saturation is 4095."""
    files = make_dicom_series(
        tmp_path / "in", n_slices=2, rows=16, cols=14, iop=(1, 0, 0, 0, 1, 0),
        shuffle_filenames=False, shuffle_instance_numbers=False,
    )  # fmt: skip
    blocks = []

    def edit(ds: Any, i: int) -> None:
        px = _noisy((16, 14), 100, 4000, seed=3 + i)
        px[4:10, 3:9] = 4095
        blocks.append(px)
        assert ds.BitsStored == 12
        ds.PixelData = px.astype("<u2").tobytes()

    edit_files(files, edit)
    out = upscale_dicom_series(tmp_path / "in", tmp_path / "out", model=SHARP)
    for f, px in zip(sorted(out, key=lambda f: pydicom.dcmread(f).InstanceNumber), blocks):
        d = pydicom.dcmread(f)
        assert d.BitsStored == 12
        _check(d.pixel_array, px == 4095, 4095)


def test_upscale_array_integer_and_declared_float_saturation():
    a = _noisy((1, 24, 24), 10, 250, seed=4).astype(np.uint8)
    a[0, 8:16, 8:16] = 255
    _check(upscale_array(a, model=SHARP)[0], a[0] == 255, 255)
    as_float = upscale_array(a, model=SHARP, out_dtype="float32")[0]  # exact ones only
    _check(as_float, a[0] == 255, 255)
    assert (as_float == np.nextafter(np.float32(255), np.float32(0))).any()
    # clipped reflectance: float data declares its saturation; floats move to the next below
    f = (a / 255.0).astype(np.float32)
    out = upscale_array(f, model=SHARP, values=ValueOptions(saturation=1.0))[0]
    _check(out, f[0] == 1.0, 1.0)
    assert (out == np.nextafter(np.float32(1), np.float32(0))).any()


def test_off_saturation_rounding_sides_and_floats():
    band = np.array([65534.25, 65534.5, 65534.75, 65535.0, 65535.0], np.float32)
    kept = np.array([False, False, False, False, True])
    assert off_saturation(band, kept, 65535, 1.0, up=False) == 3  # the three rounding to it
    assert band.tolist() == [65534.25, 65534.0, 65534.0, 65534.0, 65535.0]
    low = np.array([0.0, 0.25, 0.75, 0.0], np.float32)  # a saturation at the bottom: up
    assert off_saturation(low, np.array([True, False, False, False]), 0, 1.0, up=True) == 2
    assert low.tolist() == [0.0, 1.0, 0.75, 1.0]
    f = np.array([1.0, 0.99, 1.0], np.float32)
    assert off_saturation(f, np.zeros(3, bool), 1.0, 0.0, up=False) == 2
    assert f[0] == f[2] == np.nextafter(np.float32(1), np.float32(0)) and f[1] == np.float32(0.99)
    same = np.array([10.0, 20.0], np.float32)  # nothing near: untouched
    assert off_saturation(same, np.zeros(2, bool), 255, 1.0, up=False) == 0
