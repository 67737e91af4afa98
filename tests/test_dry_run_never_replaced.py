"""``--dry-run`` says of a folder at a batch output's name what the batch says when it refuses
it (:func:`sr_domains.output_checks.never_replaced`): it said "is a folder; give an output file
name", the single-file run's words, and with an empty folder "would write". Real files on
tmp_path; the run itself gives the words compared."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rasterio")
pytest.importorskip("nibabel")

from sr_domains.distributed import upscale_many as run_batch
from sr_domains.dry_run import plan
from sr_domains.errors import UnsafeOutputError
from sr_domains.geo import upscale_many
from sr_domains.options import UpscaleOptions
from sr_domains.testing import tiny_model
from sr_domains.testing.geo import make_geotiff
from sr_domains.testing.medical import make_nifti


@pytest.fixture(autouse=True)
def toy_model(monkeypatch):
    import sr_domains.pretrained as pretrained

    monkeypatch.setattr(pretrained, "resolve_model", lambda m, w, **kw: tiny_model(1, 2))


def _folder_at(out: Path, name: str, empty: bool) -> None:
    (out / name).mkdir(parents=True)
    if not empty:
        (out / name / "notes.txt").write_text("mine")


@pytest.mark.parametrize("empty", [True, False])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_geotiff_batch(tmp_path, empty, overwrite):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.tif", "c.tif"):
        make_geotiff(src / name, width=16, height=16)
    _folder_at(out, "a.tif", empty)
    options = UpscaleOptions(scale=2, overwrite=overwrite)
    first, second = plan(src, out, options)
    with pytest.raises(UnsafeOutputError) as refused:
        upscale_many(src, out, model=tiny_model(1, 2), overwrite=overwrite)
    assert first.action.startswith("refused: a folder; never replaced")
    assert str(refused.value) == f"{out}: a.tif: {first.action.removeprefix('refused: ')}"
    assert second.action.startswith("not run: the batch stops before any work")


@pytest.mark.parametrize("empty", [True, False])
def test_a_nifti_batch(tmp_path, empty):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        make_nifti(src / f"v{i}.nii.gz", shape=(6, 6, 4))
    _folder_at(out, "v1.nii.gz", empty)
    options = UpscaleOptions(scale=2, overwrite=True)
    planned = plan(src, out, options)
    assert [p.action.split(":")[0] for p in planned] == ["would write", "refused"]
    report = run_batch(src, out, options=options, model=tiny_model(1, 2))
    assert [r.status for r in report.results] == ["ok", "failed"]
    said = planned[1].action.removeprefix("refused: ")
    assert said.startswith("is a folder where the batch writes an output file")
    assert report.results[1].error == f"{out / 'v1.nii.gz'}: {said}"
