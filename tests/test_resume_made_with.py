"""Resumed batches skip only outputs made the way the rerun would make them (NIfTI, DICOM,
``--isotropic``; GeoTIFF in test_geo_cli/test_distributed), on real nibabel and pydicom files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("pydicom")

from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import RUN_MANIFEST, upscale_many  # noqa: E402
from sr_domains.made_with import Made, Requested  # noqa: E402
from sr_domains.options import (  # noqa: E402
    AdaptOptions,
    InternalOptions,
    IsotropicOptions,
    UpscaleOptions,
)
from sr_domains.pretrained import list_pretrained  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402


def _sha(path: Path) -> str:
    files = sorted(f for f in path.iterdir() if f.name != RUN_MANIFEST) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _statuses(report) -> list[str]:
    return [r.status for r in report.results]


def _errors(report) -> str:
    return " | ".join(r.error for r in report.results)


def test_nifti_rerun_skips_only_outputs_made_the_same_way(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)  # noisy slices of 64 px and more: the gate blends
    yy, xx = np.mgrid[0:72, 0:68]
    vol = np.stack([400 + 300 * np.sin(xx / 6 + k) * np.cos(yy / 9) for k in range(4)], -1)
    vol = np.round(vol + 60 * rng.standard_normal(vol.shape)).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 3.0, 1.0])), src / "anat.nii")
    out = tmp_path / "out"
    first = upscale_many(src, out, options=UpscaleOptions(scale=2))
    assert _statuses(first) == ["ok"], _errors(first)
    done = out / "anat.nii"
    shape, sha = nib.load(done).shape, _sha(done)

    assert _statuses(upscale_many(src, out, options=UpscaleOptions(scale=2))) == ["skipped"]
    cases = {
        "made without --through-plane": UpscaleOptions(scale=2, through_plane=True),
        "made x2, not x4": UpscaleOptions(scale=4),
        "made with other weights: sr-lite-gray-x2+": UpscaleOptions(
            scale=2, model="sr-lite-gray-x2-bicubic"
        ),
        "made with the noise gate's blend": UpscaleOptions(scale=2, model="sr-lite-gray-x2"),
        "made without --adapt": UpscaleOptions(scale=2, adapt=AdaptOptions(steps=1)),
    }
    for why, opts in cases.items():
        report = upscale_many(src, out, options=opts)
        assert _statuses(report) == ["failed"] and why in _errors(report), _errors(report)
        assert _sha(done) == sha  # an output made otherwise is never replaced silently

    code = main(["upscale", str(src), str(out), "--dry-run", "--through-plane"])
    assert code == 1  # refused, as the run
    assert "refused: exists, made without --through-plane" in capsys.readouterr().out

    tp = UpscaleOptions(scale=2, through_plane=True, overwrite=True)
    assert _statuses(upscale_many(src, out, options=tp)) == ["ok"]
    assert nib.load(done).shape == (shape[0], shape[1], 2 * shape[2])
    again = upscale_many(src, out, options=UpscaleOptions(scale=2, through_plane=True))
    assert _statuses(again) == ["skipped"]


def test_dicom_rerun_finds_its_series_by_relative_or_absolute_path(tmp_path, monkeypatch):
    """A run records its source as given (relative to where it ran); a Dask worker is given
    absolute paths. Either way the finished series is found, and compared with the rerun."""
    make_dicom_series(tmp_path / "in" / "t2", n_slices=3, rows=12, cols=10)
    monkeypatch.chdir(tmp_path)
    first = upscale_many("in", "out", options=UpscaleOptions(scale=2))
    assert _statuses(first) == ["ok"], _errors(first)
    series = Path(first.results[0].task.dst)
    sha = _sha(series)
    same = upscale_many(tmp_path / "in", tmp_path / "out", options=UpscaleOptions(scale=2))
    assert _statuses(same) == ["skipped"], _errors(same)
    for why, opts in {
        "made without --through-plane": UpscaleOptions(scale=2, through_plane=True),
        "made x2, not x4": UpscaleOptions(scale=4),
    }.items():
        report = upscale_many(tmp_path / "in", "out", options=opts)
        assert _statuses(report) == ["failed"] and why in _errors(report), _errors(report)
    assert _sha(series) == sha


def test_isotropic_rerun_skips_its_own_output_and_refuses_another_recipe(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_nifti(src / "thick.nii.gz", shape=(24, 20, 6), spacing=(1.0, 1.0, 3.0))
    out = tmp_path / "out"
    iso = UpscaleOptions(isotropic=IsotropicOptions(), internal=InternalOptions(steps=2, seed=0))
    first = upscale_many(src, out, options=iso)
    assert _statuses(first) == ["ok"], _errors(first)
    sha = _sha(out / "thick.nii.gz")
    assert _statuses(upscale_many(src, out, options=iso)) == ["skipped"]
    fba = UpscaleOptions(
        isotropic=IsotropicOptions(fusion="fba"), internal=InternalOptions(steps=2)
    )
    for why, opts in {
        "made with --fusion mean, not fba": fba,
        "made by --isotropic": UpscaleOptions(scale=2),
    }.items():
        report = upscale_many(src, out, options=opts)
        assert _statuses(report) == ["failed"] and why in _errors(report), _errors(report)
    assert _sha(out / "thick.nii.gz") == sha


def test_requested_compares_the_weights_file_a_blend_started_from():
    entry = {e.name: e for e in list_pretrained()}["sr-lite-gray-x2"]
    from sr_domains.io_safety import weights_sha256

    sha = weights_sha256(Path(entry.path))
    blend = Made(
        weights="sr-lite-gray-x2+0.40xsr-lite-gray-x2-robust",
        sha256="0" * 64,
        hash_of="state_dict",
        base_sha256=sha,
        scale=2,
        noise=0.4,
        recipe="{}",
    )
    assert Requested().differs(blend, 2) == ""  # the default, gated again: the same blend
    assert "noise gate" in Requested(model="sr-lite-gray-x2").differs(blend, 2)
    earlier = Made(**{**blend.to_dict(), "base_sha256": "f" * 64})
    assert Requested().differs(earlier, 2) == "made with other weights: an earlier sr-lite-gray-x2"
    assert "did not record" in Requested().differs(None, 2)


def test_geotiff_rerun_with_adapt_is_not_the_plain_output(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.errors import OutputExistsError
    from sr_domains.geo import upscale_many as geo_many
    from sr_domains.testing.geo import make_geotiff

    src = tmp_path / "in"
    src.mkdir()
    make_geotiff(src / "s.tif", width=32, height=24, count=3, seed=1)
    (done,) = geo_many(src, tmp_path / "out", scale=2)
    sha = _sha(done)
    assert geo_many(src, tmp_path / "out", scale=2) == []  # complete: skipped
    with pytest.raises(OutputExistsError, match="made without --adapt"):
        geo_many(src, tmp_path / "out", scale=2, adapt=AdaptOptions(steps=1, patch=16))
    assert _sha(done) == sha
    with rasterio.open(done) as ds:
        assert "SR_DOMAINS_BASE_WEIGHTS_SHA256" not in ds.tags()  # the file itself, no blend


def test_cli_folder_or_glob_of_nifti_is_a_batch_without_workers(tmp_path, capsys):
    """``sr-domains upscale scans/ out/`` on NIfTI files runs the batch in this process (it
    said "not a recognised input"; a quoted glob said "no such file or folder")."""
    src = tmp_path / "scans"
    src.mkdir()
    make_nifti(src / "anat.nii", shape=(20, 16, 3), spacing=(1.0, 1.0, 3.0))
    make_nifti(src / "t1.nii.gz", shape=(16, 12, 4))
    (src / "cut.nii.gz").write_bytes((src / "t1.nii.gz").read_bytes()[:300])  # cut short
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 1  # one input failed
    err = capsys.readouterr().err
    assert "cut.nii.gz" in err and "2 written, 0 already complete, 1 failed" in err
    single = tmp_path / "single.nii"
    assert main(["upscale", str(src / "anat.nii"), str(single), "--no-progress"]) == 0
    np.testing.assert_array_equal(nib.load(out / "anat.nii").dataobj, nib.load(single).dataobj)
    (src / "cut.nii.gz").unlink()
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 0
    assert "0 written, 2 already complete, 0 failed" in capsys.readouterr().err
    glob_out = tmp_path / "glob_out"
    assert main(["upscale", str(src / "*.nii*"), str(glob_out), "--no-progress"]) == 0
    assert sorted(p.name for p in glob_out.glob("*.nii*")) == ["anat.nii", "t1.nii.gz"]
    (src / "notes.txt").write_text("not an input")
    capsys.readouterr()
    assert main(["upscale", str(src / "*"), str(tmp_path / "all"), "--no-progress"]) == 1
    assert "matches 3 file(s) but no batch of one domain" in capsys.readouterr().err
    assert not (tmp_path / "all").exists()
    args = ["upscale", str(src / "*"), str(tmp_path / "all"), "--domain", "nifti"]
    assert main([*args, "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "all").glob("*.nii*")) == ["anat.nii", "t1.nii.gz"]
