"""The Python API and Dask DICOM runs refuse ``AdaptOptions(save_model=...)`` inside the output
folder or the input folder before any work, as the CLI does (the model was written into the
output folder, then the run refused that folder; or written among the input's files)."""

from __future__ import annotations

import pytest

pytest.importorskip("pydicom")

from sr_domains.distributed import upscale_many
from sr_domains.errors import ConfigError, UnsafeOutputError
from sr_domains.medical import upscale_dicom_series
from sr_domains.options import AdaptOptions, UpscaleOptions
from sr_domains.testing.dicom import make_dicom_series


def _series(tmp_path):
    src = tmp_path / "dcm"
    make_dicom_series(src, n_slices=4, rows=24, cols=24)
    return src


def test_the_api_refuses_a_model_inside_its_dicom_output(tmp_path):
    src = _series(tmp_path)
    out = tmp_path / "out"
    for where in ("m.safetensors", "sub/m.safetensors"):
        adapt = AdaptOptions(steps=1, save_model=out / where)
        with pytest.raises(ConfigError, match="inside the DICOM output folder"):
            upscale_dicom_series(src, out, adapt=adapt)
        assert not out.exists()
    # an existing output replaced with overwrite: refused too, the folder left as it was
    upscale_dicom_series(src, out)
    before = sorted(p.name for p in out.iterdir())
    adapt = AdaptOptions(steps=1, save_model=out / "m.safetensors")
    with pytest.raises(ConfigError, match="inside the DICOM output folder"):
        upscale_dicom_series(src, out, adapt=adapt, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before


def test_the_api_refuses_a_model_among_the_input_files(tmp_path):
    src = _series(tmp_path)
    before = sorted(p.name for p in src.iterdir())
    adapt = AdaptOptions(steps=1, save_model=src / "m.safetensors")
    with pytest.raises(UnsafeOutputError, match="inside the input folder"):
        upscale_dicom_series(src, tmp_path / "out", adapt=adapt)
    assert sorted(p.name for p in src.iterdir()) == before
    assert not (tmp_path / "out").exists()


def test_a_dask_dicom_run_refuses_a_model_inside_its_output(tmp_path):
    src = _series(tmp_path)
    out = tmp_path / "out"
    adapt = AdaptOptions(steps=1, save_model=out / "m.safetensors")
    report = upscale_many(src, out, options=UpscaleOptions(adapt=adapt))
    assert len(report.failed) == 1
    assert "inside the DICOM output folder" in report.failed[0].error
    assert not (out / "m.safetensors").exists()
