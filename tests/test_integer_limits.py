"""Integer outputs at the limits of their type: a float result cast to an integer type is the
clipped value, never a wrapped one. float64 rounds 2**63 - 1 (int64) and 2**64 - 1 (uint64) up
to a power of two, float32 does the same to 2**31 - 1 and 2**32 - 1, and a value clipped to
such a bound is outside the type: the cast is undefined (x86: int64 -2**63, uint64 0)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from sr_domains.geo.writer import cast_inplace
from sr_domains.intensity import cast_to_dtype
from sr_domains.value_domain import ValueOptions

MODEL = "sr-lite-gray-x2"  # the shipped default gray model: real overshoot at edges
INTS = ["int64", "uint64", "int32", "uint32", "int16", "uint16", "int8", "uint8"]


def _extremes(dt: str, ft: type) -> tuple[np.ndarray, list[int]]:
    """Float values past, at and beyond both ends of ``dt`` (and NaN) with the expected ints."""
    info = np.iinfo(dt)
    top, bottom = int(info.max), int(info.min)
    values = [1.5 * top, float(top), np.inf, float(bottom) - 1e3, -np.inf, np.nan, 7.5]
    return np.array(values, ft), [top, top, top, bottom, bottom, 0, 8]


@pytest.mark.parametrize("ft", [np.float32, np.float64])
@pytest.mark.parametrize("dt", INTS)
def test_safe_cast_clips_at_both_ends(dt: str, ft: type) -> None:
    from sr_domains.value_ops import safe_cast

    values, expected = _extremes(dt, ft)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no 'invalid value encountered in cast')
        got = safe_cast(values.copy(), dt, nan=5)
    assert got.dtype == np.dtype(dt)
    assert got.tolist() == [*expected[:5], 5, 8]
    out = np.zeros(values.shape, dt)
    assert safe_cast(values.copy(), dt, out=out) is out
    assert out.tolist() == expected


@pytest.mark.parametrize("dt", ["int64", "uint64"])
def test_shared_casts_keep_64_bit_maximum(dt: str) -> None:
    """``cast_to_dtype`` (upscale_array, MONAI) and the GeoTIFF/xarray writer's in-place cast:
    float64 data at and above the maximum is the maximum (it was -2**63 or 0)."""
    values, expected = _extremes(dt, np.float64)
    assert cast_to_dtype(values, dt).tolist() == expected
    assert cast_inplace(values.copy().reshape(1, 1, -1), dt).ravel().tolist() == expected
    top = np.iinfo(dt).max
    near = np.array([top - 5000, top - 1024, top], np.float64)
    assert cast_to_dtype(near, dt).tolist() == [int(v) for v in near[:2]] + [top]


@pytest.mark.parametrize("dt", ["int32", "uint32"])
def test_writer_casts_float32_blocks_without_widening(dt: str) -> None:
    """float32 blocks are cast to 32-bit integers in float32 (float32 rounds their maximum up
    to 2**31 / 2**32): the values of ``cast_to_dtype``'s float64 cast, bit for bit."""
    info = np.iinfo(dt)
    rng = np.random.default_rng(0)
    block = rng.uniform(float(info.max) * 0.999, float(info.max) * 1.001, (2, 40, 24))
    block = block.astype(np.float32)
    block[0, :3] = [[np.inf], [-np.inf], [np.nan]]
    want = cast_to_dtype(block.astype(np.float64), dt)
    got = cast_inplace(block.copy(), dt)
    np.testing.assert_array_equal(got, want)
    assert got.max() == info.max and got[0, 0, 0] == info.max and got[0, 1, 0] == info.min


def _edges(shape: tuple[int, ...], dt: str, at_max: bool) -> np.ndarray:
    """A checkerboard of 4-pixel squares at an end of ``dt`` and 1000 inside it: edges the
    network overshoots past the end."""
    info = np.iinfo(dt)
    end = int(info.max) if at_max else int(info.min)
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    board = ((ii // 4 + jj // 4) % 2).astype(bool)
    board = np.broadcast_to(board.reshape(board.shape + (1,) * (len(shape) - 2)), shape)
    out = np.empty(shape, dt)
    out[board] = end
    out[~board] = end - 1000 if at_max else end + 1000
    return out


def _float_span(a: np.ndarray) -> tuple[int, int]:
    """The source range as float64 sees it (int64/uint64 beyond 2**53 is computed in
    float64), as exact integers, clipped to the type."""
    info = np.iinfo(a.dtype)
    lo, hi = (
        min(max(int(np.float64(v)), int(info.min)), int(info.max)) for v in (a.min(), a.max())
    )
    return lo, hi


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("dt", ["int64", "uint64"])
def test_nifti_64_bit_volume_at_its_maximum(tmp_path: Path, dt: str, clamp: bool) -> None:
    """An int64/uint64 NIfTI volume at the maximum of its type, upscaled with the default model
    (value rules on, and off: the raw network output): every voxel is in the type, the maximum
    stays the maximum, nothing wraps (int64 used to give -2**63 there, uint64 0). (The minimum,
    a power of two, was always exact.)"""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti

    src = _edges((16, 16, 2), dt, True)
    img = nib.Nifti1Image(src, np.diag([1.0, 1.0, 3.0, 1.0]), dtype=np.dtype(dt))
    img.header.set_slope_inter(1.0, 0.0)
    nib.save(img, tmp_path / "in.nii.gz")
    opts = ValueOptions() if clamp else ValueOptions(clamp=False)
    dst = upscale_nifti(
        tmp_path / "in.nii.gz", tmp_path / "out.nii.gz", model=MODEL, device="cpu", values=opts
    )
    out = np.asanyarray(nib.load(dst).dataobj)
    assert out.dtype == np.dtype(dt) and out.shape == (32, 32, 2)
    lo, hi = _float_span(src)
    got_lo, got_hi = int(out.min()), int(out.max())
    assert got_hi == np.iinfo(dt).max
    if clamp:  # within the source range (as float64 holds it)
        assert lo <= got_lo and got_hi <= hi, (got_lo, got_hi, lo, hi)
    else:  # overshoot clipped at the maximum; the low side stays near the data
        assert got_lo >= lo - 10**4 and got_hi <= hi + 10**4, (got_lo, got_hi, lo, hi)


def test_upscale_array_int64_at_maximum() -> None:
    """``upscale_array`` of an int64 array at its maximum, value rules off."""
    from sr_domains import upscale_array

    src = _edges((16, 16), "int64", True)
    out = upscale_array(src, model=MODEL, device="cpu", values=ValueOptions(clamp=False))
    lo, _hi = _float_span(src)
    assert out.dtype == np.int64
    assert int(out.max()) == np.iinfo(np.int64).max and int(out.min()) >= lo - 10**4


def _geotiff(path: Path, data: np.ndarray) -> Path:
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": "EPSG:32633",
        "transform": Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


@pytest.mark.parametrize(
    ("dt", "at_max", "dtype"),
    [
        ("int32", True, None),
        ("uint32", True, None),
        ("uint16", True, None),
        ("int16", False, None),
        ("float32", True, "int32"),  # float32 data past 2**31 written as int32
        ("float32", True, "uint32"),
    ],
)
def test_geotiff_at_the_limits_with_value_rules_off(
    tmp_path: Path, dt: str, at_max: bool, dtype: str | None
) -> None:
    """GeoTIFF (no int64 there): 32/16-bit rasters at an end of their type, and float32 rasters
    beyond 2**31 / 2**32 written with an integer ``--dtype``, upscaled with the raw network
    output (value rules off): the end is written as the end, nothing wraps."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff

    if dt == "float32":  # a board 0.1 % below and above the maximum of ``dtype``
        top = float(np.iinfo(dtype).max)
        board = _edges((24, 24), "int16", True) == np.iinfo(np.int16).max
        src = np.where(board, top * 1.001, top * 0.999).astype(np.float32)
    else:
        src = _edges((24, 24), dt, at_max)
    path = _geotiff(tmp_path / "in.tif", src)
    dst = upscale_geotiff(
        path,
        tmp_path / "out.tif",
        model=MODEL,
        device="cpu",
        values=ValueOptions(clamp=False),
        dtype=dtype,
    )
    with rasterio.open(dst) as f:
        out = f.read(1)
    out_dt = np.dtype(dtype or dt)
    info = np.iinfo(out_dt)
    assert out.dtype == out_dt and out.shape == (48, 48)
    end = int(info.max) if at_max else int(info.min)
    assert (int(out.max()) if at_max else int(out.min())) == end
    lo, hi = int(src.min()), min(int(src.max()), int(info.max))
    margin = 2000 if dt != "float32" else 0.002 * float(info.max)
    assert int(out.min()) >= lo - margin and int(out.max()) <= hi + margin
