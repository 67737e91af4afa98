"""Names GDAL cannot be given: GDAL takes paths as UTF-8, and a name made under another
encoding (Latin-1 ``é``: byte 0xe9, which Python holds as ``\\udce9``) is not. A GeoTIFF output
so named failed only after the upscale, naming our temporary file; it is refused before the
model or the input is read, in the single-file CLI, the Python API, both batches (that file
alone) and the dry run. NIfTI and DICOM outputs, written by Python, keep such names. Real
files on tmp_path."""

from __future__ import annotations

import os
import shutil

import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")

from _latin1_names import cli, latin1  # noqa: E402

from sr_domains import engine_build  # noqa: E402
from sr_domains.batch_tasks import BatchFailedError, Task  # noqa: E402
from sr_domains.batch_worker import run_task  # noqa: E402
from sr_domains.errors import UnsafeOutputError  # noqa: E402
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti  # noqa: E402

SAYS = "GDAL writes this GeoTIFF and must be given its path in UTF-8, but b'"


@pytest.fixture
def models(monkeypatch):
    """Toy models; ``loaded`` lists each model read (a refusal comes before any)."""
    import sr_domains.geo.job as job
    import sr_domains.pretrained as pretrained

    loaded: list[str] = []

    def geo(m, w, *, scale, n_bands):
        loaded.append("geotiff")
        return tiny_model(1, 2)

    def medical(m, w, **kw):
        loaded.append("medical")
        return interp_model(2)

    monkeypatch.setattr(job, "resolve_network", geo)
    monkeypatch.setattr(engine_build, "resolve_model", medical)
    monkeypatch.setattr(pretrained, "resolve_model", lambda m, w, **kw: geo(m, w, **kw))
    return loaded


def test_a_geotiff_output_gdal_cannot_be_given_is_refused_before_any_work(
    tmp_path, monkeypatch, models
):
    src = make_geotiff(tmp_path / "in.tif", width=16, height=16)
    dst = latin1(tmp_path, b"caf\xe9.tif")
    code, out, err = cli(monkeypatch, "upscale", src, dst, "--no-progress")
    said = SAYS.encode() + b"caf\\xe9.tif' is not UTF-8"
    assert code == 1 and out == b"" and said in err and b"sr-tmp" not in err
    assert err.startswith(b"sr-domains: error: " + os.fsencode(dst) + b": GDAL writes")
    assert models == [] and sorted(os.listdir(tmp_path)) == ["in.tif"]
    # the Python API, a folder of the path so named, and the dry run alike
    with pytest.raises(UnsafeOutputError, match=SAYS.replace("(", r"\(")):
        upscale_geotiff(src, dst)
    folder = latin1(tmp_path, b"d\xe9j\xe0")
    with pytest.raises(UnsafeOutputError, match=r"b'd\\xe9j\\xe0' is not UTF-8"):
        upscale_geotiff(src, folder / "out.tif")
    code, out, err = cli(monkeypatch, "upscale", src, dst, "--no-progress", "--dry-run")
    assert code == 1 and b"-> " + os.fsencode(dst) + b" [refused: " + said in out
    assert sorted(os.listdir(tmp_path)) == ["in.tif"]  # (the dry run describes the model)


def test_each_file_of_a_batch_into_such_a_folder_fails_alone_before_any_work(tmp_path, models):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.tif", "b.tif"):
        make_geotiff(folder / name, width=16, height=16)
    out = latin1(tmp_path, b"r\xe9sultats")
    with pytest.raises(BatchFailedError) as caught:  # the sequential GeoTIFF batch
        upscale_many(folder, out)
    results = caught.value.report.results
    assert [r.status for r in results] == ["failed", "failed"]
    assert all(SAYS in r.error and "sr-tmp" not in r.error for r in results)
    assert models == [] and not list(out.glob("*.tif"))
    # the batch runner (Dask's task function, here in this process): refused before the
    # model is loaded
    task = Task("geotiff", str(folder / "a.tif"), str(out / "a.tif"))
    result = run_task(task, UpscaleOptions(scale=2))
    assert result.status == "failed" and SAYS in result.error and models == []
    # an input GDAL cannot be given fails alone, named as the input; the others are written
    shutil.copy(folder / "a.tif", latin1(folder, b"\xe9t\xe9.tif"))
    good = tmp_path / "out"
    with pytest.raises(BatchFailedError) as caught:
        upscale_many(folder, good)
    by_status = {r.status: r for r in caught.value.report.results}
    assert sorted(r.status for r in caught.value.report.results) == ["failed", "ok", "ok"]
    assert "GDAL cannot be given this input file name: b'\\xe9t\\xe9.tif'" in (
        by_status["failed"].error
    )
    check_upscaled(folder / "a.tif", good / "a.tif", 2)


def test_nifti_and_dicom_outputs_keep_such_names_geotiffs_are_refused(tmp_path, models):
    """Only GDAL needs UTF-8: nibabel and pydicom write through Python, which takes any
    bytes."""
    pytest.importorskip("pydicom")
    from sr_domains.medical import upscale_dicom_series
    from sr_domains.output_names import check_gdal_name, undecodable
    from sr_domains.testing.medical import make_dicom_series

    src = make_geotiff(tmp_path / "in.tif", width=16, height=16)
    with pytest.raises(UnsafeOutputError, match=r"b'\\xe9\.tif' is not UTF-8"):
        upscale_geotiff(src, latin1(tmp_path, b"\xe9.tif"))
    nii = make_nifti(latin1(tmp_path, b"t\xeate.nii.gz"), shape=(6, 6, 4))  # (input too)
    dst = latin1(tmp_path, b"t\xeate_x2.nii.gz")
    assert upscale_nifti(nii, dst) == dst
    assert nib.load(dst).shape == (12, 12, 4)
    make_dicom_series(tmp_path / "t2", n_slices=3, rows=12, cols=10)
    series = latin1(tmp_path, b"s\xe9rie_x2")
    written = upscale_dicom_series(tmp_path / "t2", series)
    assert len(written) == 3 and all(f.parent == series and f.is_file() for f in written)
    check_gdal_name(tmp_path / "plain" / "é.tif")  # (UTF-8: no error)
    assert undecodable(dst) == b"t\xeate_x2.nii.gz" and undecodable("é/x.tif") == b""


def test_a_character_no_file_name_holds_is_refused_for_any_output(tmp_path, models):
    """A lone surrogate outside the 0xDC80-0xDCFF of undecodable bytes (the Python API only):
    it raised UnicodeEncodeError from deep inside the run."""
    nii = make_nifti(tmp_path / "v.nii.gz", shape=(6, 6, 4))
    with pytest.raises(UnsafeOutputError, match=r"holds '\\ud800', which no file name can"):
        upscale_nifti(nii, tmp_path / "a\ud800.nii.gz")
    assert models == [] and os.listdir(tmp_path) == ["v.nii.gz"]
