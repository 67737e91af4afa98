"""Medical ``--adapt`` and keyword errors: provenance is strict JSON (no ``NaN`` when the
adaptation skipped itself), the keyword APIs take ``adapt`` as ``--adapt [STEPS]`` does and
refuse other values (and non-bool flags) before touching a file, and a one-slice DICOM series
asked for through-plane SR is an input error naming the series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains import engine_build, inference  # noqa: E402
from sr_domains.adapt.input_adapt import AdaptReport  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import ConfigError, InputFileError  # noqa: E402
from sr_domains.medical import read_nifti, upscale_dicom_series, upscale_nifti  # noqa: E402
from sr_domains.medical.nifti import output_header  # noqa: E402
from sr_domains.medical.nifti_write import PENDING, PlaneWriter  # noqa: E402
from sr_domains.options import AdaptOptions  # noqa: E402
from sr_domains.testing.medical import interp_model, make_dicom_series, make_nifti  # noqa: E402

NO_SCORES = {"bicubic": None, "before": None, "after": None}


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    """Run on the CPU even where CUDA exists."""
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


@pytest.fixture
def fake_weights(monkeypatch):
    """The CLI's model resolution returns an interpolating model (no weights loaded)."""
    monkeypatch.setattr(
        engine_build, "resolve_model", lambda model, weights, *, scale, n_bands: interp_model(scale)
    )


def _refuse(constant: str) -> Any:
    raise ValueError(f"not strict JSON: {constant}")


def strict(text: str | bytes) -> Any:
    """``json.loads`` as strict parsers (JavaScript's ``JSON.parse``) read it: no NaN/Infinity."""
    return json.loads(text, parse_constant=_refuse)


def nifti_provenance(path: Path) -> dict[str, Any]:
    return strict(nib.load(path).header.extensions[0].get_content())


@pytest.fixture
def sharp_nifti(tmp_path) -> Path:
    """A sharp disc on a clean zero background: ``--adapt`` skips itself on it."""

    def disc(world: np.ndarray) -> np.ndarray:
        return np.where(np.linalg.norm(world[..., :2] - 24.0, axis=-1) < 12.0, 800.0, 0.0)

    return make_nifti(
        tmp_path / "basic.nii.gz",
        shape=(48, 48, 12),
        spacing=(1, 1, 4),
        oblique=False,
        values=disc,
    )


def sharp_series(folder: Path, n_slices: int = 2) -> Path:
    """A DICOM MR series of one sharp disc on a zero background (``--adapt`` skips itself)."""

    def disc(world: np.ndarray) -> np.ndarray:
        return np.where(np.linalg.norm(world[..., :2], axis=-1) < 12.0, 800.0, 0.0)

    make_dicom_series(
        folder,
        n_slices=n_slices,
        rows=48,
        cols=48,
        pixel_spacing=(1.0, 1.0),
        iop=(1, 0, 0, 0, 1, 0),
        origin=(-24.0, -24.0, 0.0),
        values=disc,
    )
    return folder


# -- defect 1: strict JSON provenance -------------------------------------------------------


def test_cli_skipped_adapt_writes_null_scores_in_the_nifti_extension(
    sharp_nifti, tmp_path, fake_weights
):
    dst = tmp_path / "o.nii.gz"
    assert main(["upscale", str(sharp_nifti), str(dst), "--adapt", "5", "--seed", "1"]) == 0
    adapt = nifti_provenance(dst)["adapt"]
    assert adapt["kept"] == "original" and "nothing to adapt to" in adapt["reason"]
    assert adapt["self_validation_psnr"] == NO_SCORES


def test_skipped_adapt_writes_null_scores_in_the_dicom_manifest(tmp_path):
    src = sharp_series(tmp_path / "series")
    out = tmp_path / "out"
    upscale_dicom_series(src, out, model=interp_model(2), adapt=AdaptOptions(steps=5))
    manifest = strict((out / ".sr_domains.json").read_text(encoding="utf-8"))
    assert manifest["adapt"]["kept"] == "original"
    assert manifest["adapt"]["self_validation_psnr"] == NO_SCORES


def test_adapt_report_has_no_non_finite_number():
    report = AdaptReport(
        degradation="bicubic",
        estimate=None,
        noise=float("nan"),
        fit={"steps": 3, "loss_end": float("inf"), "losses": [0.5, float("-inf")]},
        psnr_before=31.23456,
    )
    d = report.to_dict()
    assert strict(json.dumps(d, allow_nan=False)) == d
    assert d["noise"] is None and d["fit"] == {"steps": 3, "loss_end": None, "losses": [0.5, None]}
    assert d["self_validation_psnr"] == {"bicubic": None, "before": 31.235, "after": None}


def test_nifti_extension_and_pending_values_write_null_for_non_finite(sharp_nifti, tmp_path):
    vol = read_nifti(sharp_nifti)
    prov = {"scale": 2, "x": float("nan"), "y": [np.float32("inf"), 1.5], "values": PENDING}
    hdr = output_header(vol, vol.data.shape, (1.0, 1.0, 1.0), prov)
    dst = tmp_path / "o.nii"
    with PlaneWriter(dst, hdr, vol.data.shape[2]) as writer:
        writer.write(np.moveaxis(vol.data, 2, 0))
        writer.pending = {"envelope": float("nan"), "pinned": [0.0, float("inf")]}
    got = nifti_provenance(dst)
    assert got["x"] is None and got["y"] == [None, 1.5]
    assert got["values"] == {"envelope": None, "pinned": [0.0, None]}


# -- defect 2: the adapt keyword and bool flags ----------------------------------------------


@pytest.mark.parametrize("adapt", [0, -3, "x", 2.5, [5]])
@pytest.mark.parametrize("api", [upscale_nifti, upscale_dicom_series])
def test_bad_adapt_is_refused_before_any_file_is_read(tmp_path, api, adapt):
    dst = tmp_path / ("out.nii.gz" if api is upscale_nifti else "out")
    # a missing input: an error about the file would mean it was looked at first
    with pytest.raises(ConfigError, match="adapt must be True, a number of steps >= 1"):
        api(tmp_path / "missing.nii.gz", dst, model=interp_model(2), adapt=adapt)
    assert not dst.exists()


@pytest.mark.parametrize("adapt", [0, "x", 2.5])
def test_geotiff_api_takes_adapt_and_flags_as_the_medical_ones(tmp_path, adapt):
    pytest.importorskip("rasterio")
    from sr_domains.geo import upscale_geotiff

    dst = tmp_path / "out.tif"
    with pytest.raises(ConfigError, match="adapt must be True, a number of steps >= 1"):
        upscale_geotiff(tmp_path / "missing.tif", dst, model=interp_model(2), adapt=adapt)
    with pytest.raises(ConfigError, match="cog must be True or False, got 'yes'"):
        upscale_geotiff(tmp_path / "missing.tif", dst, model=interp_model(2), cog="yes")
    assert not dst.exists()


@pytest.mark.parametrize("flag", ["through_plane", "overwrite", "progress"])
@pytest.mark.parametrize("value", ["yes", 1, None])
@pytest.mark.parametrize("api", [upscale_nifti, upscale_dicom_series])
def test_non_bool_flags_are_refused_before_any_file_is_read(tmp_path, api, flag, value):
    dst = tmp_path / ("out.nii.gz" if api is upscale_nifti else "out")
    with pytest.raises(ConfigError, match=f"{flag} must be True or False, got {value!r}"):
        api(tmp_path / "missing.nii.gz", dst, model=interp_model(2), **{flag: value})
    assert not dst.exists()


@pytest.mark.parametrize(
    ("adapt", "recipe"),
    [(5, {"adapt_steps": 5}), (True, {}), (np.int64(7), {"adapt_steps": 7}), (False, None)],
)
def test_nifti_adapt_takes_what_the_cli_takes(sharp_nifti, tmp_path, adapt, recipe):
    dst = tmp_path / "o.nii.gz"
    upscale_nifti(sharp_nifti, dst, model=interp_model(2), adapt=adapt)
    prov = nifti_provenance(dst)
    if recipe is None:  # off
        assert "adapt" not in prov and prov["made"]["adapt"] is False
        return
    assert prov["made"]["adapt"] is True and json.loads(prov["made"]["recipe"]) == recipe
    assert prov["adapt"]["self_validation_psnr"] == NO_SCORES


def test_dicom_adapt_takes_a_number_of_steps(tmp_path):
    out = tmp_path / "out"
    upscale_dicom_series(sharp_series(tmp_path / "series"), out, model=interp_model(2), adapt=3)
    manifest = strict((out / ".sr_domains.json").read_text(encoding="utf-8"))
    assert json.loads(manifest["made"]["recipe"]) == {"adapt_steps": 3}
    assert manifest["adapt"]["kept"] == "original"


# -- defect 3: one-slice DICOM series with through-plane -------------------------------------


def test_one_slice_series_through_plane_names_the_folder(tmp_path):
    src = sharp_series(tmp_path / "one", n_slices=1)
    with pytest.raises(InputFileError, match="through-plane SR needs >= 2 voxels") as err:
        upscale_dicom_series(src, tmp_path / "out", model=interp_model(2), through_plane=True)
    assert err.value.path == str(src) and "1x48x48" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_one_slice_series_through_plane_exits_1_naming_the_folder(
    tmp_path, capsys, fake_weights
):
    src = sharp_series(tmp_path / "one", n_slices=1)
    assert main(["upscale", str(src), str(tmp_path / "out"), "--through-plane"]) == 1
    err = capsys.readouterr().err
    assert f"{src}: through-plane SR needs >= 2 voxels" in err and "without through-plane" in err


@pytest.mark.parametrize("value", ["no", 0, None])
def test_isotropic_warm_start_takes_a_bool_only(tmp_path, value):
    from sr_domains.medical import make_isotropic

    with pytest.raises(ConfigError, match=f"warm_start must be True or False, got {value!r}"):
        make_isotropic(tmp_path / "missing.nii.gz", tmp_path / "o.nii.gz", warm_start=value)
    assert not (tmp_path / "o.nii.gz").exists()
