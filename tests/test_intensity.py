"""Intensity profiles: explicit, invertible, fitted once per file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from sr_domains.errors import ConfigError
from sr_domains.intensity import (
    IntensityProfile,
    cast_to_dtype,
    profile_from_any,
    resolve_recipe,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_dtype_profile_maps_range_to_unit_interval_and_inverts_exactly(dtype):
    info = np.iinfo(dtype)
    x = np.array([[[info.min, 0 if info.min < 0 else info.min + 1, info.max]]], dtype)
    p = profile_from_any("dtype", x)
    y = p.normalize(x)
    assert y.dtype == np.float32
    assert y[0, 0, 0] == pytest.approx(0.0) and y[0, 0, 2] == pytest.approx(1.0)
    back = cast_to_dtype(p.denormalize(y), dtype)
    np.testing.assert_array_equal(back, x)


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint16, (3, 9, 7)))
def test_integer_round_trip_is_exact_for_every_recipe(x):
    for recipe in ("dtype", "reflectance", "s2l2a", "percentile:2,98", "range:10,5000"):
        p = profile_from_any(recipe, x)
        back = cast_to_dtype(p.denormalize(p.normalize(x)), np.uint16)
        np.testing.assert_array_equal(back, x, err_msg=recipe)


def test_float_dtype_profile_is_refused_not_guessed():
    with pytest.raises(ConfigError, match="integer"):
        profile_from_any("dtype", np.zeros((1, 2, 2), np.float32))


def test_reflectance_and_s2l2a_values():
    x = np.array([[[0, 1000, 10000]]], np.uint16)
    np.testing.assert_allclose(profile_from_any("reflectance", x).normalize(x), [[[0, 0.1, 1]]])
    # Sentinel-2 L2A processing baseline >= 04.00: reflectance = (DN - 1000) / 10000
    np.testing.assert_allclose(
        profile_from_any("s2l2a", x).normalize(x), [[[-0.1, 0.0, 0.9]]], atol=1e-7
    )


def test_percentile_is_per_band_ignores_invalid_and_is_fitted_on_whole_data():
    rng = np.random.default_rng(1)
    x = np.stack([rng.uniform(0, 100, (50, 50)), rng.uniform(1000, 2000, (50, 50))])
    mask = np.ones((50, 50), bool)
    mask[:5] = False
    x[:, :5] = 1e9  # nodata values must not enter the statistics
    p = profile_from_any("percentile:0,100", x, valid_mask=mask)
    y = p.normalize(x)[:, 5:]
    assert y.min() == pytest.approx(0.0, abs=1e-6) and y.max() == pytest.approx(1.0, abs=1e-6)
    assert p.n_bands == 2
    assert p.offset[0] != p.offset[1]


def test_mr_recipe_is_one_range_for_all_channels():
    x = np.arange(1000, dtype=np.float32).reshape(1, 10, 100)
    p = profile_from_any("mr", x)
    assert p.n_bands == 1
    lo = -p.offset[0] / p.scale[0]
    assert lo == pytest.approx(np.percentile(x, 0.5))


def test_ct_recipes():
    hu = np.array([[[-1024, 0, 3071]]], np.int16)
    np.testing.assert_allclose(profile_from_any("ct", hu).normalize(hu)[0, 0, [0, 2]], [0, 1])
    w = profile_from_any("ct-window:40,400", hu)  # [-160, 240]
    np.testing.assert_allclose(w.normalize(np.array([[[-160, 240]]]))[0, 0], [0, 1], atol=1e-6)


def test_nan_is_ignored_by_percentiles():
    x = np.array([[[np.nan, 1.0, 2.0, 3.0]]])
    p = profile_from_any("percentile:0,100", x)
    assert np.isfinite(p.scale[0]) and p.normalize(x)[0, 0, 3] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad", ["", "nope", "dtype:1", "range:5,1", "scale:0", "percentile:90,10", "ct-window:1"]
)
def test_bad_recipes_explain_valid_forms(bad):
    with pytest.raises(ConfigError):
        resolve_recipe(bad)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("percentile:99,1", r"0 <= P < Q <= 100, got \(99, 1\)"),
        ("range:5,1", r"LO < HI, got \(5, 1\)"),
        ("scale:0", "non-zero scale"),
        ("ct-window:40,0", "width W > 0"),
        ("mr:1", r"0 <= P < Q <= 100, got \(1\)"),
    ],
)
def test_a_known_recipe_with_bad_parameters_says_what_it_takes(bad, why):
    with pytest.raises(ConfigError, match=why):
        resolve_recipe(bad)


def test_dict_round_trip_and_band_mismatch():
    p = IntensityProfile("x", (0.5, 2.0), (0.0, 1.0))
    assert IntensityProfile.from_dict(p.to_dict()) == p
    assert profile_from_any(p.to_dict()) == p
    with pytest.raises(ConfigError, match="2 bands"):
        p.normalize(np.zeros((3, 2, 2)))
    with pytest.raises(ConfigError):
        IntensityProfile("x", (0.0,), (0.0,))


def test_cast_clips_and_rounds():
    v = np.array([-3.6, 0.4, 0.5, 254.6, 300.0, np.nan])
    np.testing.assert_array_equal(cast_to_dtype(v, np.uint8), [0, 0, 0, 255, 255, 0])
    assert cast_to_dtype(np.array([1e40]), np.float32)[0] == np.finfo(np.float32).max


def test_nodata_sentinel_overflows_silently_to_a_non_finite_value():
    """float32 nodata such as -3.4e38 times a scale > 1 overflows; callers mask non-finite
    values, so normalize must not warn (a RuntimeWarning leaked through `sr-domains -q`)."""
    import warnings

    prof = profile_from_any(
        "percentile:0.5,99.5", np.linspace(0, 0.25, 100, dtype=np.float32)[None]
    )
    x = np.array([[-3.4e38, 0.1]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = prof.normalize(x)
    assert not np.isfinite(y[0, 0]) and np.isfinite(y[0, 1])
