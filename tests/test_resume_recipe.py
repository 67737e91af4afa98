"""A resumed batch compares the run's recipe too: the options besides weights, scale and mode
that change what an output holds (value rules, profile, ``--dtype``, ``--co``, the ``--adapt``
and ``--isotropic`` settings). A rerun that changes one of them used to skip finished outputs
made without it (``--no-clamp`` or ``--dtype float32`` after a plain run: "complete")."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from sr_domains.distributed import upscale_many
from sr_domains.made_with import Made, Requested
from sr_domains.options import (
    AdaptOptions,
    InternalOptions,
    IsotropicOptions,
    UpscaleOptions,
)
from sr_domains.run_recipe import recipe
from sr_domains.value_domain import ValueOptions


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _statuses(report) -> list[str]:
    return [r.status for r in report.results]


def _errors(report) -> str:
    return " | ".join(r.error for r in report.results)


def test_recipe_lists_only_the_options_that_differ_from_their_defaults():
    assert recipe() == "{}"
    assert recipe(values=ValueOptions(), adapt=None, isotropic=None) == "{}"
    assert json.loads(recipe(values=ValueOptions(clamp=False))) == {"clamp": False}
    # where files go is not how an output is made; how many steps adapt it is
    adapt = AdaptOptions(steps=7, save_model=Path("m.safetensors"), overwrite=True)
    assert json.loads(recipe(adapt=adapt)) == {"adapt_steps": 7}
    co = json.loads(recipe(creation_options={"compress": "ZSTD", "BLOCKXSIZE": "256"}))
    assert co == {"co": [["BLOCKXSIZE", "256"], ["COMPRESS", "ZSTD"]]}
    # the --co order of a rerun does not matter; the fit's step count does
    assert recipe(creation_options=(("B", "1"), ("A", "2"))) == recipe(
        creation_options={"A": "2", "B": "1"}
    )
    iso = recipe(isotropic=IsotropicOptions(fusion="fba"), internal=InternalOptions(steps=3))
    assert json.loads(iso) == {"fit_steps": 3}  # fusion is compared by Made itself


def test_requested_names_the_option_a_rerun_changes():
    made = Made(weights="x", scale=2, recipe=recipe(values=ValueOptions(clamp=False)))
    opts = UpscaleOptions(scale=2, values=ValueOptions(clamp=False))
    asked = Requested.of(opts, domain="geotiff")
    assert asked.recipe == made.recipe
    assert asked._recipe(made) == ""
    why = Requested.of(UpscaleOptions(scale=2), domain="geotiff")._recipe(made)
    assert why == "made with other options: clamp false, now default"
    older = Made(weights="x", scale=2)  # a record of a version that did not keep the recipe
    assert "did not record its other options" in asked._recipe(older)
    # the GeoTIFF-only options do not apply to a volume
    vol = UpscaleOptions(scale=2, dtype="float32", cog=True)
    assert Requested.of(vol, domain="nifti").recipe == "{}"
    assert "dtype" in Requested.of(vol, domain="geotiff").recipe


def test_geotiff_rerun_with_other_value_options_is_refused(tmp_path, capsys, caplog):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.cli import main
    from sr_domains.errors import OutputExistsError
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    src = tmp_path / "in"
    src.mkdir()
    make_geotiff(src / "s.tif", width=32, height=24, count=1, seed=2)
    make_geotiff(src / "t.tif", width=24, height=24, count=1, seed=3)
    out = tmp_path / "out"
    raw = UpscaleOptions(scale=2, values=ValueOptions(clamp=False))
    assert _statuses(upscale_many(src, out, options=raw)) == ["ok", "ok"]
    done = out / "s.tif"
    sha = _sha(done)
    with rasterio.open(done) as ds:
        assert json.loads(ds.tags()["SR_DOMAINS_RECIPE"]) == {"clamp": False}
    assert _statuses(upscale_many(src, out, options=raw)) == ["skipped"] * 2  # same recipe
    for why, opts in {
        "clamp false, now default": UpscaleOptions(scale=2),
        "dtype default, now float32": UpscaleOptions(
            scale=2, values=ValueOptions(clamp=False), dtype="float32"
        ),
    }.items():
        report = upscale_many(src, out, options=opts)
        assert _statuses(report) == ["failed"] * 2 and why in _errors(report), _errors(report)
    # the sequential API and the CLI refuse it the same way, naming every refused output
    with pytest.raises(OutputExistsError, match="clamp false, now default") as refused:
        geo_many(src, out, scale=2)
    assert "2 of 2 outputs, s.tif: made with" in str(refused.value)
    assert "; t.tif: made with" in str(refused.value)
    assert main(["upscale", str(src), str(out), "--no-progress"]) != 0
    assert "clamp false, now default" in capsys.readouterr().err
    assert main(["upscale", str(src), str(out), "--no-clamp", "--no-progress"]) == 0
    assert _sha(done) == sha  # refused or skipped: never rewritten
    with caplog.at_level(logging.INFO, logger="sr_domains"):  # a rerun says it skipped
        again = geo_many(src, out, scale=2, values=ValueOptions(clamp=False))
    assert again == [] and [r.status for r in again.report.results] == ["skipped"] * 2
    assert "0 written, 2 already complete" in caplog.text


def test_nifti_rerun_with_another_profile_is_refused(tmp_path):
    nib = pytest.importorskip("nibabel")
    from sr_domains.testing.medical import make_nifti

    src = tmp_path / "in"
    src.mkdir()
    make_nifti(src / "t1.nii.gz", shape=(16, 12, 3))
    out = tmp_path / "out"
    prof = UpscaleOptions(scale=2, profile="percentile:1,99")
    assert _statuses(upscale_many(src, out, options=prof)) == ["ok"]
    done = out / "t1.nii.gz"
    sha = _sha(done)
    assert nib.load(done).shape[:2] == (32, 24)
    assert _statuses(upscale_many(src, out, options=prof)) == ["skipped"]
    report = upscale_many(src, out, options=UpscaleOptions(scale=2))
    assert _statuses(report) == ["failed"], _errors(report)
    assert "profile percentile:1,99, now default" in _errors(report)
    assert _sha(done) == sha


def test_isotropic_rerun_with_another_fit_is_refused(tmp_path):
    pytest.importorskip("nibabel")
    from sr_domains.testing.medical import make_nifti

    src = tmp_path / "in"
    src.mkdir()
    make_nifti(src / "thick.nii.gz", shape=(16, 16, 6), spacing=(1.0, 1.0, 3.0))
    out = tmp_path / "out"

    def iso(steps: int) -> UpscaleOptions:
        return UpscaleOptions(isotropic=IsotropicOptions(), internal=InternalOptions(steps=steps))

    assert _statuses(upscale_many(src, out, options=iso(2))) == ["ok"]
    sha = _sha(out / "thick.nii.gz")
    assert _statuses(upscale_many(src, out, options=iso(2))) == ["skipped"]
    report = upscale_many(src, out, options=iso(3))
    assert _statuses(report) == ["failed"] and "fit_steps 2, now 3" in _errors(report)
    assert _sha(out / "thick.nii.gz") == sha


def test_dtype_of_the_inputs_own_type_is_the_default(tmp_path):
    """``--dtype`` naming the input's own type writes the same output as no ``--dtype``: it is
    not recorded, and a rerun with or without it resumes (also over an output of a version that
    recorded it); another type is still refused."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.run_recipe import for_source
    from sr_domains.testing.geo import make_geotiff

    assert for_source('{"clamp":false,"dtype":"uint16"}', "uint16") == '{"clamp":false}'
    assert for_source('{"dtype":"float32"}', "uint16") == '{"dtype":"float32"}'
    assert for_source("", "uint16") == ""  # (an output that recorded no recipe)
    src = tmp_path / "in"
    src.mkdir()
    make_geotiff(src / "s.tif", width=24, height=20, count=1, dtype="uint16", seed=4)
    out, done = tmp_path / "out", tmp_path / "out" / "s.tif"
    same = UpscaleOptions(scale=2, dtype="uint16")
    assert _statuses(upscale_many(src, out, options=same)) == ["ok"]
    with rasterio.open(done) as ds:
        assert ds.tags()["SR_DOMAINS_RECIPE"] == "{}" and ds.dtypes[0] == "uint16"
    assert _statuses(upscale_many(src, out, options=UpscaleOptions(scale=2))) == ["skipped"]
    with rasterio.open(done, "r+") as ds:  # as an earlier version recorded it
        ds.update_tags(SR_DOMAINS_RECIPE='{"dtype":"uint16"}')
    for opts in (UpscaleOptions(scale=2), same):
        assert _statuses(upscale_many(src, out, options=opts)) == ["skipped"]
    report = upscale_many(src, out, options=UpscaleOptions(scale=2, dtype="float32"))
    assert _statuses(report) == ["failed"] and "dtype default, now float32" in _errors(report)
