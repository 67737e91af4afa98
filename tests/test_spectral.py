"""Band ratios of multi-band output (sr_domains.spectral): bicubic's spectral angles kept when a
single-band model runs band by band (default), or always / never on request."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _sharpen import Sharpen

from sr_domains.array_api import upscale_array
from sr_domains.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from sr_domains.degrade import imresize as _imresize
from sr_domains.errors import ConfigError
from sr_domains.inference import Upscaler
from sr_domains.intensity import IntensityProfile
from sr_domains.metrics import sam
from sr_domains.models import create_model
from sr_domains.pretrained import load_pretrained
from sr_domains.value_domain import ValueOptions, array_reader, build_rules

NO_ENVELOPE = ValueOptions(envelope=None)  # the ratio rule alone (then only the domain)
IDENTITY = IntensityProfile("identity", (1.0,), (0.0,))


def _scene(bands: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    """Non-negative multispectral radiance: smooth fields with edges, distinct band spectra."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 0.3 + 0.2 * np.sin(6 * xx) * np.cos(4 * yy) + 0.3 * (xx + yy > 1.0)
    spectra = rng.uniform(0.3, 1.5, (bands, 1, 1))
    noise = 0.02 * rng.standard_normal((bands, size, size))
    return np.clip(spectra * base + noise, 0.01, None).astype(np.float32)


def imresize(x: np.ndarray, scale: float) -> np.ndarray:
    """Bicubic as the rule uses it: clipped at zero (non-negative data)."""
    return np.maximum(_imresize(x, scale), 0)


def _interior(a: np.ndarray, s: int, border: int = 3) -> np.ndarray:
    b = border * s
    return a[..., b:-b, b:-b]


def _cross_ratio_error(out: np.ndarray, ref: np.ndarray) -> float:
    """max |out_b * ref_0 - out_0 * ref_b| relative to the products (0 = same band ratios),
    over pixels with some output (a negative network sum becomes a zero vector: no ratio)."""
    lit = out.sum(0) > 1e-3
    err = 0.0
    for b in range(1, out.shape[0]):
        lhs, rhs = (out[b] * ref[0])[lit], (out[0] * ref[b])[lit]
        err = max(err, float(np.max(np.abs(lhs - rhs) / np.maximum(np.abs(lhs), 1e-6))))
    return err


def _sam(out: np.ndarray, ref: np.ndarray) -> float:
    return sam(out, ref, mask=np.broadcast_to(out.sum(0) > 1e-3, out.shape))


@pytest.mark.parametrize("scale", [2, 3])
def test_band_by_band_output_keeps_bicubic_band_ratios_and_the_band_sum(scale):
    x = _scene()
    free = upscale_array(x, model=Sharpen(scale=scale), values=ValueOptions(spectral="model"))
    kept = upscale_array(x, model=Sharpen(scale=scale), values=NO_ENVELOPE)  # default: auto
    bic = imresize(x, float(scale))
    # the per-band model changes the band ratios (what the rule exists for) ...
    assert _cross_ratio_error(_interior(free, scale), _interior(bic, scale)) > 1e-2
    # ... the rule restores bicubic's exactly and keeps the model's band sum (its detail)
    assert _cross_ratio_error(_interior(kept, scale), _interior(bic, scale)) < 1e-5
    raw = upscale_array(x, model=Sharpen(scale=scale), values=ValueOptions(clamp=False))
    raw_sum = np.maximum(_interior(raw, scale).sum(0), 0)  # non-negative data stays so
    np.testing.assert_allclose(_interior(kept, scale).sum(0), raw_sum, rtol=1e-5, atol=1e-6)
    angle = _sam(_interior(kept, scale), _interior(bic, scale))
    assert angle < 1e-3 < _sam(_interior(free, scale), _interior(bic, scale))


def test_default_rules_keep_ratios_where_the_envelope_allows():
    x = _scene(bands=5, seed=1)
    bic = imresize(x, 2.0)
    out = upscale_array(x, model=Sharpen())
    free = upscale_array(x, model=Sharpen(), values=ValueOptions(spectral="model"))
    assert sam(_interior(out, 2), _interior(bic, 2)) < 0.2 * sam(
        _interior(free, 2), _interior(bic, 2)
    )
    assert out.min() >= 0


def test_rule_is_off_for_negative_data_single_bands_and_by_request():
    x = _scene()
    signed = x - 0.2  # e.g. temperatures: band ratios mean nothing
    for mins, opts, expected in [
        (x.reshape(4, -1).min(1), ValueOptions(), None),  # auto: the engine decides
        (x.reshape(4, -1).min(1), ValueOptions(spectral="bicubic"), True),
        (x.reshape(4, -1).min(1), ValueOptions(spectral="model"), False),
        (signed.reshape(4, -1).min(1), ValueOptions(spectral="bicubic"), False),
        ([0.5], ValueOptions(spectral="bicubic"), False),
    ]:
        rules = build_rules(opts, mins)
        assert rules is not None and rules.spectral is expected
    # asked for where band offsets say where zero is, it holds where the values allow: those
    # below that zero are left out one by one
    zero = [0.1] * 4
    forced = build_rules(
        ValueOptions(spectral="bicubic"), x.reshape(4, -1).min(1), physical_zero=zero
    )
    assert forced is not None and forced.spectral is True and forced.zero == (0.1,) * 4
    with pytest.raises(ConfigError, match="spectral"):
        ValueOptions(spectral="yes")  # type: ignore[arg-type]
    a = upscale_array(signed, model=Sharpen(), values=NO_ENVELOPE)
    b = upscale_array(signed, model=Sharpen(), values=ValueOptions(envelope=None, spectral="model"))
    np.testing.assert_array_equal(a, b)


def test_a_joint_model_keeps_its_own_spectra_unless_asked():
    x = _scene(bands=3)
    model = Sharpen(channels=3)
    auto = upscale_array(x, model=model, values=NO_ENVELOPE)
    own = upscale_array(x, model=model, values=ValueOptions(envelope=None, spectral="model"))
    np.testing.assert_array_equal(auto, own)
    forced = upscale_array(x, model=model, values=ValueOptions(envelope=None, spectral="bicubic"))
    bic = imresize(x, 2.0)
    assert _cross_ratio_error(_interior(forced, 2), _interior(bic, 2)) < 1e-5
    assert _cross_ratio_error(_interior(own, 2), _interior(bic, 2)) > 1e-2


def test_a_joint_model_whose_card_asks_for_bicubic_spectra_gets_them_by_default(tmp_path):
    x = _scene(bands=3)
    model = Sharpen(channels=3)
    model.card = ModelCard.for_model(model, spectral="bicubic")
    auto = upscale_array(x, model=model, values=NO_ENVELOPE)
    bic = imresize(x, 2.0)
    assert _cross_ratio_error(_interior(auto, 2), _interior(bic, 2)) < 1e-5
    own = upscale_array(x, model=model, values=ValueOptions(envelope=None, spectral="model"))
    assert _cross_ratio_error(_interior(own, 2), _interior(bic, 2)) > 1e-2  # the user decides
    # the choice travels with the weights file
    real = create_model("edsr-lite-ca", in_channels=3, scale=2)
    path = save_checkpoint(real, tmp_path / "w.safetensors", ModelCard(spectral="bicubic"))
    _, card = load_checkpoint(path)
    assert card.spectral == "bicubic"
    with pytest.raises(ConfigError, match="spectral must be one of"):
        ModelCard(spectral="yes")  # type: ignore[arg-type]
    newer = json.loads(ModelCard().to_json()) | {"spectral": "learned"}  # a later version's
    assert ModelCard.from_json(json.dumps(newer)).spectral == "model"  # weights still load


def test_shipped_rgb_x2_keeps_bicubic_band_ratios_by_default():
    model = load_pretrained("sr-lite-rgb-x2")
    assert model.card.spectral == "bicubic"
    x = _scene(bands=3, size=40, seed=3)
    out = upscale_array(x, model=model, values=NO_ENVELOPE)
    bic = imresize(x, 2.0)
    assert _cross_ratio_error(_interior(out, 2), _interior(bic, 2)) < 1e-5
    own = upscale_array(x, model=model, values=ValueOptions(envelope=None, spectral="model"))
    assert _cross_ratio_error(_interior(own, 2), _interior(bic, 2)) > 1e-4


@pytest.mark.parametrize("radius", [1, 2])  # the envelope's own context may be narrower
def test_strips_and_row_ranges_equal_the_whole_image(radius):
    """The rule reads its own bicubic context: tiles, strips and a split at an odd HR row
    (a Dask row range) give the same values as one pass."""
    x = _scene(bands=3, size=40, seed=2)
    opts = ValueOptions(envelope=None, envelope_radius=radius)
    whole = upscale_array(x, model=Sharpen(), values=opts, tile=64)
    tiled = upscale_array(x, model=Sharpen(), values=opts, tile=16)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-6)
    up = Upscaler(Sharpen(), tile=16)
    parts = []
    for rows in ((0, 27), (27, 80)):
        rules = build_rules(opts, x.reshape(3, -1).min(1))
        got = dict(
            up.stream(array_reader(x), (40, 40), 3, profile=IDENTITY, rules=rules, rows=rows)
        )
        parts += [got[k] for k in sorted(got)]
        assert rules is not None and rules.stats.spectral > 0
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-5, atol=1e-6)


def test_pixels_next_to_invalid_input_keep_the_network_values():
    x = _scene()
    valid = np.ones(x.shape[1:], bool)
    valid[10:14, 10:14] = False
    x_bad = x.copy()
    x_bad[:, 10:14, 10:14] = 1e4  # a sentinel: must not leak into any bicubic support
    out = upscale_array(x_bad, model=Sharpen(), values=NO_ENVELOPE, valid_mask=valid)
    free = upscale_array(
        x_bad,
        model=Sharpen(),
        values=ValueOptions(envelope=None, spectral="model"),
        valid_mask=valid,
    )
    assert np.isfinite(out[:, 16:32, 16:32]).all() or np.isnan(out[:, 20:28, 20:28]).all()
    near = (slice(None), slice(2 * 8 + 1, 2 * 16 - 1), slice(2 * 8 + 1, 2 * 16 - 1))
    ok = np.isfinite(free[near])
    np.testing.assert_array_equal(out[near][ok], free[near][ok])  # untouched there
    far = (slice(None), slice(44, 60), slice(44, 60))
    assert _cross_ratio_error(out[far], imresize(x, 2.0)[far]) < 1e-5
    assert np.nanmax(out) < 100  # no sentinel anywhere


def test_geotiff_multiband_band_by_band_records_and_keeps_ratios(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "ms.tif", width=32, height=32, count=4, dtype="uint16")
    with rasterio.open(src, "r+") as ds:
        ds.write((_scene() * 3000).astype("uint16"))
        lr = ds.read().astype(np.float32)
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=Sharpen(), values=NO_ENVELOPE)
    with rasterio.open(dst) as ds:
        out = ds.read().astype(np.float64)
        record = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
    assert record["band_ratios"] == "bicubic" and record["clamped"]["spectral"] > 0
    bic = imresize(lr, 2.0)
    # uint16 rounding is the only difference from bicubic's ratios
    assert _sam(_interior(out, 2), _interior(bic, 2)) < 0.05
    free = upscale_geotiff(
        src,
        tmp_path / "f.tif",
        model=Sharpen(),
        values=ValueOptions(envelope=None, spectral="model"),
    )
    with rasterio.open(free) as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_VALUES"])["band_ratios"] == "model"
        assert _sam(_interior(ds.read().astype(np.float64), 2), _interior(bic, 2)) > 0.1


def test_band_ratios_are_kept_above_the_physical_zero(tmp_path):
    """Sentinel-2 L2A stores reflectance x 10000 + 1000: ratios (NDVI) of stored values are
    not those of reflectance. With the s2l2a profile (or the file's band offsets) the rule
    works above the stored value of zero reflectance, and records it."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    zero = 1000.0
    src = make_geotiff(tmp_path / "l2a.tif", width=32, height=32, count=2, dtype="uint16")
    scene = (_scene(bands=2) * 3000 + zero).astype("uint16")
    with rasterio.open(src, "r+") as ds:
        ds.write(scene)
    bic = imresize(scene.astype(np.float32) - zero, 2.0)  # reflectance-proportional
    runs = {
        "profile": dict(profile="s2l2a"),
        "offsets": dict(profile="dtype"),  # the file's offsets say where zero is
    }
    for name, kw in runs.items():
        if name == "offsets":
            with rasterio.open(src, "r+") as ds:
                ds.scales, ds.offsets = (1e-4, 1e-4), (-0.1, -0.1)
        dst = upscale_geotiff(
            src, tmp_path / f"{name}.tif", model=Sharpen(), values=NO_ENVELOPE, **kw
        )
        with rasterio.open(dst) as ds:
            out = ds.read().astype(np.float64) - zero
            record = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
        assert record["band_ratios"] == "bicubic", name
        assert record["band_ratio_zero"] == [zero, zero], name
        # reflectance ratios are bicubic's (uint16 rounding aside); in stored units they are not
        assert _sam(_interior(out, 2), _interior(bic, 2)) < 0.05, name
        stored = out + zero
        assert _sam(_interior(stored, 2), _interior(bic + zero, 2)) > 0.05, name


def test_negative_reflectance_in_a_few_pixels_leaves_the_rule_on_elsewhere(tmp_path):
    """Sentinel-2 L2A stores negative reflectance (water, shadow) below its zero of 1000. One
    such pixel switched the band-ratio rule off for the whole scene; now only the output
    pixels whose bicubic support reaches it keep the network's values."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    zero = 1000.0
    src = make_geotiff(tmp_path / "l2a.tif", width=32, height=32, count=2, dtype="uint16")
    scene = _scene(bands=2) * 3000 + zero
    scene[1, 4:7, 4:7] = zero - 80  # a pond: negative NIR reflectance
    with rasterio.open(src, "r+") as ds:
        ds.write(scene.astype("uint16"))
    runs, records = {}, {}
    for name, spectral in (("kept", "auto"), ("free", "model")):
        dst = upscale_geotiff(
            src,
            tmp_path / f"{name}.tif",
            model=Sharpen(),
            profile="s2l2a",
            values=ValueOptions(envelope=None, spectral=spectral),
        )
        with rasterio.open(dst) as ds:
            runs[name] = ds.read().astype(np.float64) - zero
            records[name] = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
    assert records["kept"]["band_ratios"] == "bicubic"
    assert records["kept"]["band_ratio_zero"] == [zero, zero]
    assert records["free"]["band_ratios"] == "model"
    bic = imresize(scene.astype(np.float32) - zero, 2.0)
    far = (slice(None), slice(24, 58), slice(24, 58))  # away from the pond
    assert _sam(runs["kept"][far], bic[far]) < 0.05
    assert _sam(runs["free"][far], bic[far]) > 0.1
    pond = (slice(None), slice(8, 14), slice(8, 14))  # the pond's own output pixels
    np.testing.assert_array_equal(runs["kept"][pond], runs["free"][pond])


def test_band_offsets_alone_do_not_make_a_signed_quantity_a_spectrum(tmp_path):
    """An int16 temperature in 0.01 degC with offset -50 (stored zero 5000) got band ratios
    above 0 degC only: offsets are no claim that the data cannot go below zero."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "temp.tif", width=32, height=32, count=2, dtype="int16")
    scene = _scene(bands=2) * 3000 + 3500  # about -15 .. +25 degC: both signs
    with rasterio.open(src, "r+") as ds:
        ds.write(scene.astype("int16"))
        ds.scales, ds.offsets = (0.01, 0.01), (-50.0, -50.0)
    dst = upscale_geotiff(src, tmp_path / "o.tif", model=Sharpen(), values=NO_ENVELOPE)
    with rasterio.open(dst) as ds:
        record = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
    assert record["band_ratios"] == "model" and "band_ratio_zero" not in record


def test_a_few_values_below_the_band_offsets_zero_are_said_and_can_be_left_out(tmp_path, caplog):
    """Landsat Collection 2 reflectance (scale 2.75e-5, offset -0.2) holds a few slightly
    negative values over water: the rule went off for the whole scene without a word. It is
    said, naming the file, and ``--spectral bicubic`` keeps it, those pixels left out."""
    import logging

    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    zero = 0.2 / 2.75e-5
    src = make_geotiff(tmp_path / "c2.tif", width=32, height=32, count=2, dtype="uint16")
    scene = _scene(bands=2) * 3000 + zero + 500
    scene[:, 4:6, 4:6] = zero - 180  # -0.005 reflectance
    with rasterio.open(src, "r+") as ds:
        ds.write(np.round(scene).astype("uint16"))
        ds.scales, ds.offsets = (2.75e-5, 2.75e-5), (-0.2, -0.2)
    records = {}
    for spectral in ("auto", "bicubic"):
        with caplog.at_level(logging.WARNING):
            dst = upscale_geotiff(
                src,
                tmp_path / f"{spectral}.tif",
                model=Sharpen(),
                values=ValueOptions(envelope=None, spectral=spectral),
            )
        with rasterio.open(dst) as ds:
            records[spectral] = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
    assert records["auto"]["band_ratios"] == "model"
    assert f"{src}: band(s) 1,2 hold valid values below their zero" in caplog.text
    assert "--spectral bicubic imposes them" in caplog.text
    assert records["bicubic"]["band_ratios"] == "bicubic"
    assert records["bicubic"]["clamped"]["spectral"] > 0.9 * 64 * 64
    # signed data with no physical zero (temperatures in degC): asked for, still off, and said
    signed = make_geotiff(tmp_path / "t.tif", width=32, height=32, count=2, dtype="float32")
    with rasterio.open(signed, "r+") as ds:
        ds.write((_scene(bands=2) * 30 - 15).astype("float32"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        dst = upscale_geotiff(
            signed, tmp_path / "t2.tif", model=Sharpen(), values=ValueOptions(spectral="bicubic")
        )
    with rasterio.open(dst) as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_VALUES"])["band_ratios"] == "model"
    assert "nothing says where their zero is" in caplog.text


def test_the_tag_says_model_spectra_when_no_pixel_could_keep_bicubics(tmp_path):
    """s2l2a data wholly below its zero of 1000 (older L2A without the offset): no pixel got
    bicubic's ratios, yet the tag said "band_ratios": "bicubic"."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "old.tif", width=32, height=32, count=2, dtype="uint16")
    with rasterio.open(src, "r+") as ds:
        ds.write((_scene(bands=2) * 300 + 10).astype("uint16"))  # all below 1000
    dst = upscale_geotiff(
        src, tmp_path / "o.tif", model=Sharpen(), profile="s2l2a", values=NO_ENVELOPE
    )
    with rasterio.open(dst) as ds:
        record = json.loads(ds.tags()["SR_DOMAINS_VALUES"])
    assert record["clamped"]["spectral"] == 0
    assert record["band_ratios"] == "model" and "band_ratio_zero" not in record
