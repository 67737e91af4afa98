"""Negative numbers that argparse took for options: ``--nodata -inf`` failed with "argument
--nodata: expected one argument" (only ``--nodata=-inf`` worked), as did ``-1e5``, ``-nan`` and
``--value-range -100,200``; ``-9999`` and ``-1.5`` always worked (real rasterio file, real
run of the shipped model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr_domains.cli import build_parser, main


@pytest.mark.parametrize(
    ("args", "dest", "want"),
    [
        (["--nodata", "-inf"], "nodata", -math.inf),
        (["--nodata", "-Infinity"], "nodata", -math.inf),
        (["--nodata", "-1e5"], "nodata", -1e5),
        (["--nodata", "-3.4E+38"], "nodata", -3.4e38),
        (["--saturation", "-1e3"], "saturation", -1e3),
        (["--value-range", "-100,200"], "value_range", (-100.0, 200.0)),
        (["--value-range", "-1e3,"], "value_range", (-1e3, None)),
        (["--value-range", "-inf,0"], "value_range", (-math.inf, 0.0)),
    ],
)
def test_a_negative_number_after_an_option_is_its_value(args, dest, want):
    ns = build_parser().parse_args(["upscale", "in.tif", "out.tif", *args, "-q"])
    assert getattr(ns, dest) == want and ns.quiet


def test_nodata_minus_nan_is_read_as_nan():
    ns = build_parser().parse_args(["upscale", "in.tif", "out.tif", "--nodata", "-nan"])
    assert math.isnan(ns.nodata)


def test_nodata_minus_inf_runs_as_nodata_equals_minus_inf(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "in.tif", width=40, height=32, dtype="float32", nodata=-9999)
    dst = tmp_path / "out.tif"
    assert main(["upscale", "-q", str(src), str(dst), "--nodata", "-inf", "--no-progress"]) == 0
    with rasterio.open(src) as ds:
        hole = (ds.read(1) == -9999).repeat(2, axis=0).repeat(2, axis=1)
    with rasterio.open(dst) as ds:
        assert ds.nodata == -np.inf
        out = ds.read(1)
    assert hole.any()
    np.testing.assert_array_equal(np.isneginf(out), hole)  # the file's -9999 stays invalid
