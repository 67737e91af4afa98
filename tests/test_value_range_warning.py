"""A ``--value-range`` (``ValueOptions.value_range``) that the data leave is warned, up front,
naming the file, the range and the share of valid values outside it (a DEM of -50..3000 with
``--value-range -100,200`` came back 99.7 % at 200 without a word), for GeoTIFF, NIfTI and
DICOM; ``-q`` hides it and the dry run says it. Also the messages a probe found unclear: a
nodata the output type cannot hold ("an int16", "not an integer") and the batch collision
refusal, which named outputs differently with and without ``--workers``."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sr_domains.testing import tiny_model
from sr_domains.value_domain import ValueOptions
from sr_domains.value_ops import nodata_problem

WARNING = "contradicts the data"


def _dem(tmp_path):
    """A float32 DEM of -50..3000 (the probe's case) as a small GeoTIFF."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "dem.tif", width=40, height=32, dtype="float32")
    data = np.linspace(-50.0, 3000.0, 40 * 32, dtype=np.float32).reshape(1, 32, 40)
    with rasterio.open(src, "r+") as ds:
        ds.write(data)
    return src


def test_geotiff_value_range_the_data_leave_is_warned_and_still_applied(tmp_path, caplog):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff

    src = _dem(tmp_path)
    with caplog.at_level(logging.WARNING):
        out = upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(),
                              values=ValueOptions(value_range=(-100.0, 200.0)))  # fmt: skip
    text = caplog.text
    assert "dem.tif: --value-range -100,200 contradicts the data" in text
    assert "% of the sampled valid values" in text and "data -50..3000" in text
    share = float(text.split("contradicts the data: ")[1].split("%")[0])
    assert 90 < share < 100  # (values above 200: 2800 of the 3050 m)
    assert "stored values" in text  # the units the range is in
    with rasterio.open(out) as ds:
        assert float(ds.read(1).max()) <= 200.0  # a warning, not a refusal: applied
    for ok in (ValueOptions(value_range=(-100.0, 5000.0)), ValueOptions(value_range=(-50.0, None)),
               ValueOptions(value_range=(None, 200.0), clamp=False), None):  # fmt: skip
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            upscale_geotiff(src, tmp_path / "o.tif", model=tiny_model(), values=ok,
                            overwrite=True)  # fmt: skip
        assert WARNING not in caplog.text, ok


def test_one_value_outside_the_range_is_already_warned(tmp_path, caplog):
    """A physical range holds every valid value: a single one outside says it is wrong. Values
    that are not valid (nodata, NaN) are left out."""
    from sr_domains.value_range_check import warn_outside_range

    values = np.zeros((1, 100, 100), np.float32)
    values[0, 0, 0] = 7.0
    values[0, 1, :] = np.nan
    valid = np.ones(values.shape, bool)
    valid[0, 2, :] = False
    values[0, 2, :] = -9999.0  # nodata: not counted
    opts = ValueOptions(value_range=(0.0, 5.0))
    with caplog.at_level(logging.WARNING):
        assert warn_outside_range("x.tif", values, valid, opts, "geotiff") == 1
    assert "x.tif: --value-range 0,5 contradicts the data: 0.0102% " in caplog.text
    assert "(1 of 9800; data 0..7)" in caplog.text


def test_cli_quiet_hides_it_and_the_dry_run_says_it(tmp_path, caplog):
    pytest.importorskip("rasterio")
    from sr_domains.cli import main

    src = _dem(tmp_path)
    out = tmp_path / "o.tif"
    argv = ["upscale", str(src), str(out), "--value-range", "-100,200"]
    assert main([*argv, "--dry-run"]) == 0
    assert "dem.tif: --value-range -100,200 contradicts the data" in caplog.text
    assert not out.exists()
    caplog.clear()
    assert main(["-q", *argv]) == 0
    assert WARNING not in caplog.text
    assert out.exists()


def _nifti_and_series(tmp_path):
    """A small int16 NIfTI file and an MR series of values 0..1200."""
    pytest.importorskip("nibabel")
    pytest.importorskip("pydicom")
    from sr_domains.testing.dicom import make_dicom_series
    from sr_domains.testing.medical import make_nifti

    nii = make_nifti(tmp_path / "t1.nii.gz", shape=(16, 12, 4), dtype="int16")
    series = tmp_path / "mr"
    make_dicom_series(series, n_slices=3, rows=12, cols=10)  # MR 0..1200
    return nii, series


def test_nifti_and_dicom_value_range_the_data_leave_is_warned(tmp_path, caplog):
    nii, series = _nifti_and_series(tmp_path)
    from sr_domains.medical import upscale_dicom_series, upscale_nifti

    narrow = ValueOptions(value_range=(None, 10.0))
    with caplog.at_level(logging.WARNING):
        upscale_nifti(nii, tmp_path / "o.nii.gz", model=tiny_model(), values=narrow)
    assert "t1.nii.gz: --value-range ,10 contradicts the data" in caplog.text
    assert "NIfTI physical values" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        upscale_dicom_series(series, tmp_path / "o_mr", model=tiny_model(), values=narrow)
    assert f"{series}: --value-range ,10 contradicts the data" in caplog.text
    assert "DICOM modality values" in caplog.text
    caplog.clear()
    wide = ValueOptions(value_range=(-1e6, 1e6))
    with caplog.at_level(logging.WARNING):
        upscale_nifti(nii, tmp_path / "o2.nii.gz", model=tiny_model(), values=wide)
        upscale_dicom_series(series, tmp_path / "o2_mr", model=tiny_model(), values=wide)
    assert WARNING not in caplog.text


@pytest.mark.parametrize(
    ("nodata", "dtype", "message"),
    [
        (70000, "int16", "nodata 70000 is not an int16 value (-32768..32767)"),
        (1.5, "int16", "nodata 1.5 is not an int16 value (not an integer)"),
        (float("nan"), "int8", "nodata NaN is not an int8 value"),
        (2.5, "uint16", "nodata 2.5 is not a uint16 value (not an integer)"),
        (70000, ">i2", "nodata 70000 is not an int16 value (-32768..32767)"),  # (not >i2)
    ],
)
def test_nodata_messages_name_the_type_with_its_article(nodata, dtype, message):
    assert nodata_problem(nodata, np.dtype(dtype)) == message


def test_a_range_at_the_datas_own_ends_is_no_contradiction(tmp_path, caplog):
    """R4: a range taken from the data itself (nibabel's ``get_fdata()`` min/max, numpy
    float64) was warned for an int16 NIfTI with ``scl_slope`` 0.1: the scan holds float32
    values (768 x 0.1 as 76.800003), compared with the float64 76.8000011. Values are compared
    at their own precision."""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import upscale_nifti

    img = nib.Nifti1Image(
        (np.arange(16 * 12 * 4, dtype=np.int16) + 1).reshape(16, 12, 4), np.eye(4)
    )
    img.header.set_slope_inter(0.1, 0.0)
    nib.save(img, tmp_path / "pet.nii.gz")
    data = nib.load(tmp_path / "pet.nii.gz").get_fdata()
    own = ValueOptions(value_range=(data.min(), data.max()))  # (np.float64 ends)
    with caplog.at_level(logging.WARNING):
        upscale_nifti(
            tmp_path / "pet.nii.gz", tmp_path / "o.nii.gz", model=tiny_model(), values=own
        )
        upscale_nifti(
            tmp_path / "pet.nii.gz",
            tmp_path / "o2.nii.gz",
            model=tiny_model(),
            values=ValueOptions(value_range=(None, data.max() - 0.05)),
        )
    assert caplog.text.count(WARNING) == 1  # the second: the top value 76.8 lies above 76.75
    assert "(1 of 768; data 0.1..76.8)" in caplog.text


def _big_with_cubic_overviews(path, low, high, dtype):
    """A raster large enough to be sampled from its x2 overview: 37-pixel squares of ``low``
    and ``high``, with cubic overviews (they overshoot at the squares' edges)."""
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling

    from sr_domains.geo.reader import SAMPLE_VALUES

    n = 4200  # (more than 2 x SAMPLE_VALUES pixels: the sample comes from the x2 overview)
    assert n * n > 2 * SAMPLE_VALUES
    yy, xx = np.ogrid[0:n, 0:n]
    data = np.where(((yy // 37) + (xx // 37)) % 2 == 0, low, high).astype(dtype)
    profile = dict(
        driver="GTiff",
        width=n,
        height=n,
        count=1,
        dtype=dtype,
        crs="EPSG:32633",
        transform=Affine(10, 0, 500000, 0, -10, 4000000),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.build_overviews([2, 4], Resampling.cubic)
    return path


def test_a_sample_from_resampled_overviews_is_judged_at_full_resolution(tmp_path, caplog):
    """R4: a large raster is sampled from its overviews; cubic ones (the COG driver's
    default) overshoot the data at edges (10..200 read as 0..219), so a range at the data's
    own ends was warned by the dry run and the run. The overview's verdict is checked at full
    resolution before anything is said; a real contradiction is still warned, with the full
    resolution's numbers."""
    pytest.importorskip("rasterio")
    from sr_domains.geo.dtype_checks import warn_value_range
    from sr_domains.geo.reader import RasterSource

    src = _big_with_cubic_overviews(tmp_path / "big.tif", 10, 200, "uint8")
    with RasterSource(src) as rs:
        sample, _ = rs.sample()
        assert sample.min() < 10 and sample.max() > 200  # (the overview overshoots)
        with caplog.at_level(logging.WARNING):
            warn_value_range(rs, ValueOptions(value_range=(10.0, 200.0)))
            assert WARNING not in caplog.text
            warn_value_range(rs, ValueOptions(value_range=(None, 100.0)))
    assert "big.tif: --value-range ,100 contradicts the data: 50% " in caplog.text
    assert "data 10..200)" in caplog.text  # (full resolution, not the overview's 0..219)


def test_the_check_copies_nothing_of_a_volume(tmp_path):
    """R4: the check of a DICOM series' volume (held in memory) took a copy of the valid
    values and a mask (tracemalloc 42.5 MiB beside a 200 x 512 x 512 float32 volume of 200
    MiB); it now compares a chunk at a time."""
    import tracemalloc

    from sr_domains.value_range_check import warn_outside_range

    vol = np.random.default_rng(0).uniform(-1000, 3000, (64, 256, 256)).astype(np.float32)
    vol[:, :4] = np.nan  # (padding)
    tracemalloc.start()
    try:
        n = warn_outside_range("s", vol, None, ValueOptions(value_range=(0.0, 100.0)), "dicom")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == int(np.count_nonzero((vol < 0) | (vol > 100)))
    assert peak < 0.25 * vol.nbytes, peak / vol.nbytes


def test_the_dtype_clipping_warning_judges_an_overviews_overshoot_at_full_resolution(
    tmp_path, caplog
):
    """H16: the ``--dtype`` clipping warning judged the sample read from cubic overviews: a
    uint16 raster of 10..250 read 0..274 there, so ``--dtype uint8`` was warned 'clipped'
    though every value fits. Judged again at full resolution, as the value-range warning is;
    a real clip is still warned with the full resolution's share."""
    pytest.importorskip("rasterio")
    from sr_domains.geo.dtype_checks import warn_clipping_dtype
    from sr_domains.geo.reader import RasterSource

    fits = _big_with_cubic_overviews(tmp_path / "fits.tif", 10, 250, "uint16")
    with RasterSource(fits) as rs:
        assert rs.sample()[0].max() > 256  # (the overview overshoots past uint8)
        with caplog.at_level(logging.WARNING):
            warn_clipping_dtype(rs, np.dtype("uint8"))
    assert "clipped" not in caplog.text
    clips = _big_with_cubic_overviews(tmp_path / "clips.tif", 10, 300, "uint16")
    with RasterSource(clips) as rs, caplog.at_level(logging.WARNING):
        warn_clipping_dtype(rs, np.dtype("uint8"))
    assert "clips.tif: 50% of the valid input values lie outside the uint8 range" in caplog.text


def test_upscale_array_warns_a_value_range_the_array_leaves(caplog):
    """H16: ``upscale_array(values=ValueOptions(value_range=...))`` clamped an array leaving
    the range without a word (the file paths warned). Invalid pixels are left out."""
    from sr_domains import upscale_array

    arr = np.linspace(-50.0, 3000.0, 32 * 40, dtype=np.float32).reshape(32, 40)
    narrow = ValueOptions(value_range=(-100.0, 200.0))
    with caplog.at_level(logging.WARNING):
        out = upscale_array(arr, tiny_model(), values=narrow, device="cpu")
    assert "the array: --value-range -100,200 contradicts the data" in caplog.text
    assert "the array's own values" in caplog.text
    assert float(np.nanmax(out)) <= 200.0  # (still applied)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        upscale_array(arr, tiny_model(), values=narrow, valid_mask=arr <= 200, device="cpu")
        upscale_array(arr, tiny_model(), values=ValueOptions(value_range=(-50.0, 3000.0)),
                      device="cpu")  # fmt: skip
    assert WARNING not in caplog.text


def test_superresolution_warns_a_value_range_the_tensor_leaves_naming_its_file(caplog):
    """H16: the MONAI transform took ``values=`` without the warning; it names the
    MetaTensor's ``filename_or_obj`` (else 'the image')."""
    pytest.importorskip("monai")
    import torch
    from monai.data import MetaTensor

    from sr_domains.monai import SuperResolution

    vol = torch.linspace(0.0, 1200.0, 16 * 12 * 4).reshape(1, 16, 12, 4)
    img = MetaTensor(vol, affine=torch.eye(4), meta={"filename_or_obj": "/data/t1.nii.gz"})
    sr = SuperResolution(tiny_model(), values=ValueOptions(value_range=(None, 10.0)),
                         device="cpu")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        sr(img)
    assert "/data/t1.nii.gz: --value-range ,10 contradicts the data" in caplog.text
    assert "the tensor's values" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        sr(MetaTensor(vol, affine=torch.eye(4)))
    assert "the image: --value-range ,10 contradicts the data" in caplog.text
    caplog.clear()
    wide = SuperResolution(tiny_model(), values=ValueOptions(value_range=(0.0, 1200.0)),
                           device="cpu")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        wide(img)
    assert WARNING not in caplog.text


def test_srinferer_warns_each_batch_item_that_leaves_the_range_once(caplog):
    """H19: ``SRInferer(values=...)`` took a value range without the warning
    ``SuperResolution`` gives; it warns once per batch item (not per tile), naming the item's
    ``filename_or_obj`` from a collated batch."""
    pytest.importorskip("monai")
    import torch
    from monai.data import MetaTensor, list_data_collate

    from sr_domains.monai import SRInferer

    def item(top, name):
        vol = torch.linspace(0.0, top, 1 * 24 * 20).reshape(1, 24, 20)
        return {"img": MetaTensor(vol, affine=torch.eye(4), meta={"filename_or_obj": name})}

    batch = list_data_collate([item(5.0, "/d/in.nii.gz"), item(1200.0, "/d/out.nii.gz")])["img"]
    inferer = SRInferer(tile=8, values=ValueOptions(value_range=(None, 10.0)), device="cpu")
    with caplog.at_level(logging.WARNING):
        out = inferer(batch, tiny_model())
    assert caplog.text.count(WARNING) == 1  # (24 x 20 in 8-pixel tiles: several tiles)
    assert "/d/out.nii.gz: --value-range ,10 contradicts the data" in caplog.text
    assert "the tensor's values" in caplog.text
    assert float(out.max()) <= 10.0  # (still applied)
    caplog.clear()
    plain = torch.stack([batch[1].as_tensor(), batch[1].as_tensor()])
    with caplog.at_level(logging.WARNING):
        inferer(plain, tiny_model())
    assert "batch item 1: --value-range ,10 contradicts the data" in caplog.text
    assert caplog.text.count(WARNING) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        SRInferer(values=ValueOptions(value_range=(0.0, 1200.0)), device="cpu")(batch, tiny_model())
    assert WARNING not in caplog.text


def test_make_isotropic_warns_a_value_range_the_volume_leaves(caplog):
    """H19: ``MakeIsotropic(values=...)`` took a value range without the warning; once per
    call, naming the MetaTensor's file (else 'the image')."""
    pytest.importorskip("monai")
    import torch
    from monai.data import MetaTensor

    from sr_domains.monai import MakeIsotropic

    vol = torch.linspace(0.0, 1200.0, 16 * 12 * 4).reshape(1, 16, 12, 4)
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0]))
    img = MetaTensor(vol, affine=affine, meta={"filename_or_obj": "/data/t2.nii.gz"})
    narrow = ValueOptions(value_range=(None, 10.0))
    with caplog.at_level(logging.WARNING):
        MakeIsotropic(steps=1, device="cpu", values=narrow)(img)
    assert caplog.text.count(WARNING) == 1
    assert "/data/t2.nii.gz: --value-range ,10 contradicts the data" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        MakeIsotropic(steps=1, device="cpu", values=narrow)(MetaTensor(vol, affine=affine))
    assert "the image: --value-range ,10 contradicts the data" in caplog.text
    caplog.clear()
    wide = ValueOptions(value_range=(0.0, 1200.0))
    with caplog.at_level(logging.WARNING):
        MakeIsotropic(steps=1, device="cpu", values=wide)(img)
    assert WARNING not in caplog.text


def test_nifti_and_dicom_dry_runs_say_it_as_the_run_does(tmp_path, caplog):
    nii, series = _nifti_and_series(tmp_path)
    from sr_domains.cli import main

    for src, out, units in ((nii, tmp_path / "o.nii.gz", "NIfTI physical values"),
                            (series, tmp_path / "o_mr", "DICOM modality values")):  # fmt: skip
        caplog.clear()
        assert main(["upscale", str(src), str(out), "--value-range", ",10", "--dry-run"]) == 0
        assert f"{src}: --value-range ,10 contradicts the data" in caplog.text
        assert units in caplog.text
        assert not out.exists()
        caplog.clear()
        wide = ["upscale", str(src), str(out), "--value-range", "-1e6,1e6", "--dry-run"]
        assert main(wide) == 0
        assert WARNING not in caplog.text and not out.exists()
