"""GDAL sidecars of an output that is not there (``out.tif.aux.xml``, ``out.tif.msk`` left by
an earlier output deleted without them): GDAL would read them as the new output's metadata and
mask. Refused before any work without ``--overwrite`` (dry run and batches alike); with it they
are set aside and deleted as a replaced output's are."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine

rasterio = pytest.importorskip("rasterio")

from sr_domains import io_safety  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.distributed import upscale_many as tasks_many  # noqa: E402
from sr_domains.errors import UnsafeOutputError  # noqa: E402
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.geo.split import upscale_geotiff_split  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import ToySR, tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

STALE_PAM = (
    '<PAMDataset><PAMRasterBand band="1"><Description>STALE</Description>'
    "<NoDataValue>1234</NoDataValue><Offset>-5</Offset><Scale>100</Scale></PAMRasterBand>"
    "</PAMDataset>"
)
LINE = re.compile(r"^geotiff: (\S+) -> (\S+) \[(.*)\]$", re.M)


class NoWork(ToySR):
    """Fails if it is ever run: a refusal must come before any work."""

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model ran before the refusal")


def _no_work() -> NoWork:
    return NoWork(BaseSRConfig(in_channels=1, scale=2)).eval()


def _orphans(dst: Path) -> tuple[Path, Path]:
    """A stale PAM ``dst.aux.xml`` and an all-invalid external mask ``dst.msk`` without
    ``dst`` (the mask made by GDAL for a file then deleted)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    pam = Path(f"{dst}.aux.xml")
    pam.write_text(STALE_PAM)
    tmp = dst.with_name("made-mask.tif")
    grid = {"crs": "EPSG:32633", "transform": Affine(1, 0, 0, 0, -1, 6)}
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False),
        rasterio.open(tmp, "w", "GTiff", 8, 6, 1, dtype="uint8", **grid) as ds,
    ):
        ds.write(np.ones((1, 6, 8), "uint8"))
        ds.write_mask(np.zeros((6, 8), "uint8"))
    msk = Path(f"{dst}.msk")
    os.replace(f"{tmp}.msk", msk)
    tmp.unlink()
    return pam, msk


def _clean(dst: Path) -> None:
    """``dst`` has none of the stale metadata and an all-valid mask."""
    with rasterio.open(dst) as ds:
        assert ds.nodata != 1234 and ds.descriptions[0] != "STALE"
        assert ds.scales[0] == 1 and ds.offsets[0] == 0
        assert (ds.read_masks(1) > 0).all() and ds.files == [str(dst)]


def test_orphan_sidecars_are_refused_before_any_work(tmp_path):
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    pam, msk = _orphans(dst)
    before = pam.read_bytes(), msk.read_bytes()
    with pytest.raises(UnsafeOutputError) as err:
        upscale_geotiff(src, dst, model=_no_work())
    text = str(err.value)
    assert "k.tif.aux.xml (metadata), k.tif.msk (mask)" in text and "--overwrite" in text
    assert "delete them" in text
    assert not dst.exists() and (pam.read_bytes(), msk.read_bytes()) == before


def test_overwrite_sets_orphan_sidecars_aside_as_a_replaced_outputs(tmp_path):
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    pam, _ = _orphans(dst)
    with pytest.raises(AssertionError, match="model ran"):  # a failed run: they stay
        upscale_geotiff(src, dst, model=_no_work(), overwrite=True)
    assert sorted(os.listdir(dst.parent)) == ["k.tif.aux.xml", "k.tif.msk"]
    assert pam.read_text() == STALE_PAM
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert sorted(os.listdir(dst.parent)) == ["k.tif"]
    _clean(dst)


DEAD_PID = 4_194_304 + 4321  # (above Linux's largest pid_max: no such process)


def test_a_failed_overwrite_puts_orphan_sidecars_back(tmp_path, monkeypatch):
    """The rename failing after they were set aside puts them back (as for a replaced
    output), and one that a killed ``--overwrite`` run left set aside is put back too."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    pam, msk = _orphans(dst)
    (dst.parent / f".k.tif.ovr.sr-aside-{DEAD_PID}-beef").write_bytes(b"overviews")
    before = pam.read_bytes(), msk.read_bytes()
    real = os.replace

    def replace(a, b):  # the run fails at its own rename
        if Path(b) == dst:
            raise PermissionError(1, "Operation not permitted")
        return real(a, b)

    monkeypatch.setattr(io_safety.os, "replace", replace)
    with pytest.raises(PermissionError):
        upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    monkeypatch.undo()
    assert sorted(os.listdir(dst.parent)) == ["k.tif.aux.xml", "k.tif.msk", "k.tif.ovr"]
    assert (pam.read_bytes(), msk.read_bytes()) == before
    assert Path(f"{dst}.ovr").read_bytes() == b"overviews"


def test_cli_and_dry_run_refuse_orphan_sidecars_unless_overwrite(tmp_path, capsys):
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    _orphans(dst)
    argv = ["upscale", str(src), str(dst), "--no-progress"]
    assert main([*argv, "--dry-run"]) == 1
    action = LINE.search(capsys.readouterr().out).group(3)
    assert action.startswith("refused: k.tif.aux.xml (metadata), k.tif.msk (mask)"), action
    assert main([*argv, "-q"]) != 0
    err = capsys.readouterr().err
    assert "k.tif.msk (mask)" in err and "--overwrite" in err and not dst.exists()
    assert main([*argv, "--dry-run", "--overwrite"]) == 0
    assert LINE.search(capsys.readouterr().out).group(3) == "would write"
    assert main([*argv, "-q", "--overwrite"]) == 0
    assert sorted(os.listdir(dst.parent)) == ["k.tif"]
    _clean(dst)


def _folder(tmp_path: Path) -> tuple[Path, Path]:
    folder, out = tmp_path / "in", tmp_path / "o"
    folder.mkdir()
    for i in range(2):
        make_geotiff(folder / f"s{i}.tif", width=24, height=16, seed=i)
    _orphans(out / "s1.tif")
    return folder, out


def test_a_batch_refuses_orphan_sidecars_before_any_work(tmp_path, capsys):
    """In this process the batch checks every output first: nothing is written, as the dry
    run says; with --overwrite both outputs are written, the orphans gone."""
    folder, out = _folder(tmp_path)
    assert main(["upscale", str(folder), str(out), "--dry-run"]) == 1
    planned = {Path(m.group(1)).name: m.group(3) for m in LINE.finditer(capsys.readouterr().out)}
    assert planned["s1.tif"].startswith("refused: s1.tif.aux.xml (metadata)"), planned
    assert planned["s0.tif"].startswith("not run: the batch stops before any work"), planned
    with pytest.raises(UnsafeOutputError, match=r"s1\.tif\.aux\.xml.*--overwrite"):
        upscale_many(folder, out, model=_no_work())
    assert sorted(os.listdir(out)) == ["s1.tif.aux.xml", "s1.tif.msk"]
    upscale_many(folder, out, model=tiny_model(1, 2), overwrite=True)
    assert sorted(os.listdir(out)) == ["s0.tif", "s1.tif", "sr-domains-run.jsonl"]
    _clean(out / "s1.tif")


def test_the_task_runner_fails_only_the_task_with_orphan_sidecars(tmp_path, capsys):
    """The batch runner (Dask's tasks, here in this process) fails that task alone, as its
    dry run says, and sets the orphans aside with --overwrite."""
    folder, out = _folder(tmp_path)
    if importlib.util.find_spec("distributed") is not None:
        assert main(["upscale", str(folder), str(out), "--dry-run", "--workers", "1"]) == 1
        lines = LINE.finditer(capsys.readouterr().out)
        planned = {Path(m.group(1)).name: m.group(3) for m in lines}
        assert planned["s1.tif"].startswith("refused: s1.tif.aux.xml"), planned
        assert planned["s0.tif"] == "would write", planned
    report = tasks_many(folder, out, model=tiny_model(1, 2))
    (failed,) = report.failed
    assert failed.task.dst.endswith("s1.tif") and "s1.tif.msk (mask)" in failed.error
    assert not (out / "s1.tif").exists() and (out / "s1.tif.msk").exists()
    report = tasks_many(folder, out, model=tiny_model(1, 2), options=UpscaleOptions(overwrite=True))
    assert not report.failed
    assert sorted(os.listdir(out)) == ["s0.tif", "s1.tif", "sr-domains-run.jsonl"]
    _clean(out / "s1.tif")


def test_the_split_run_refuses_orphan_sidecars(tmp_path):
    """Its refusal comes before any worker (no client needed)."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    _orphans(dst)
    with pytest.raises(UnsafeOutputError, match=r"k\.tif\.aux\.xml.*--overwrite"):
        upscale_geotiff_split(src, dst, client=None, model=_no_work())
    assert sorted(os.listdir(dst.parent)) == ["k.tif.aux.xml", "k.tif.msk"]


def _upper_case_orphans(dst: Path) -> list[Path]:
    """GDAL's other spellings of orphans: an all-invalid mask ``dst.MSK``, overviews
    ``dst.OVR`` (of a raster of 7s the new output's size / 2) with a stale PAM
    ``dst.OVR.aux.xml``, and an IMD ``STEM.imd``."""
    pam, msk = _orphans(dst)
    pam.unlink()
    upper = [Path(f"{dst}.MSK"), Path(f"{dst}.OVR"), Path(f"{dst}.OVR.aux.xml")]
    os.replace(msk, upper[0])
    with rasterio.open(upper[1], "w", "GTiff", 24, 16, 1, dtype="float32") as ovr:
        ovr.write(np.full((1, 16, 24), 7, "float32"))
    upper[2].write_text(STALE_PAM)
    imd = dst.with_suffix(".imd")
    imd.write_text(
        'version = "AA";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "OLD";\nEND_GROUP = IMAGE_1\nEND;\n'
    )
    return [*upper, imd]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_upper_case_orphans_are_refused_or_set_aside(tmp_path):
    """``k.tif.MSK``, ``k.tif.OVR`` (GDAL looks for them too on a case-sensitive file system)
    and ``k.imd`` were taken as the new output's mask, overviews and IMD metadata (exit 0):
    refused as ``k.tif.msk`` is; with --overwrite set aside and deleted, and one a killed run
    left set aside is put back first (then goes too)."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    orphans = _upper_case_orphans(dst)
    before = [p.read_bytes() for p in orphans]
    with pytest.raises(UnsafeOutputError) as err:
        upscale_geotiff(src, dst, model=_no_work())
    assert (
        "k.tif.MSK (mask), k.tif.OVR (overviews), k.tif.OVR.aux.xml (metadata), "
        "k.imd (IMD metadata) are there without their output" in str(err.value)
    )
    assert [p.read_bytes() for p in orphans] == before and not dst.exists()
    os.replace(orphans[0], dst.parent / f".k.tif.MSK.sr-aside-{DEAD_PID}-beef")
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert sorted(os.listdir(dst.parent)) == ["k.tif"]
    _clean(dst)
    with rasterio.open(dst) as ds:
        assert ds.overviews(1) == [] and not ds.tags(ns="IMD")
