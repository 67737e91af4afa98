"""GDAL sidecars beside a GeoTIFF output (``STEM.IMD``, ``NAME.aux.xml``): an input's are never
removed or replaced; those of the output being replaced are."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import UnsafeOutputError  # noqa: E402
from sr_domains.geo import upscale_geotiff  # noqa: E402
from sr_domains.geo.sidecars import sidecar_owner  # noqa: E402
from sr_domains.geo.split import upscale_geotiff_split  # noqa: E402
from sr_domains.models.base import BaseSRConfig  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import ToySR, tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402


class NoWork(ToySR):
    """Fails if it is ever run: a refusal must come before any work."""

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model ran before the refusal")


def _no_work() -> NoWork:
    return NoWork(BaseSRConfig(in_channels=1, scale=2)).eval()


def _with_imd(path: Path, satid: str = "WV02", keep_file: bool = True) -> Path:
    """``path`` with an IMD domain; GDAL writes it to ``STEM.IMD`` too (removed unless
    ``keep_file``: then it is only in the TIFF's own metadata)."""
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(ns="IMD", SATID=satid, CLOUDCOVER="0.1")
    if not keep_file:
        path.with_suffix(".IMD").unlink()
    return path


def _names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("src_name", ["scene.tiff", "scene.TIF"])
def test_plain_output_beside_the_input_keeps_its_imd(tmp_path, src_name):
    """The probe: ``scene.tiff`` + ``scene.IMD`` upscaled to ``scene.tif`` deleted scene.IMD."""
    src = _with_imd(make_geotiff(tmp_path / src_name))
    imd = tmp_path / "scene.IMD"
    before = imd.read_bytes()
    out = upscale_geotiff(src, tmp_path / "scene.tif", model=tiny_model(1, 2))
    assert imd.read_bytes() == before
    assert _names(tmp_path) == sorted([src_name, "scene.IMD", "scene.tif"])
    with rasterio.open(out) as ds:
        assert ds.tags(ns="IMD")["SATID"] == "WV02"
    # replacing the output (--overwrite) does not make the input's sidecar its own
    upscale_geotiff(src, tmp_path / "scene.tif", model=tiny_model(1, 2), overwrite=True)
    assert imd.read_bytes() == before


def test_cli_plain_output_beside_the_input_keeps_its_imd(tmp_path):
    src = _with_imd(make_geotiff(tmp_path / "scene.tiff"))
    before = (tmp_path / "scene.IMD").read_bytes()
    dst = tmp_path / "scene.tif"
    assert main(["upscale", str(src), str(dst), "--scale", "2", "--no-progress"]) == 0
    assert (tmp_path / "scene.IMD").read_bytes() == before and dst.is_file()


@pytest.mark.parametrize("overwrite", [False, True])
def test_cog_over_an_inputs_imd_is_refused_before_any_work(tmp_path, overwrite):
    """A COG of ``scene.tiff`` named ``scene.tif`` keeps its IMD in ``scene.IMD``: GDAL's copy
    replaced the input's. Refused, naming both files, before the model runs."""
    src = _with_imd(make_geotiff(tmp_path / "scene.tiff"))
    imd = tmp_path / "scene.IMD"
    before = imd.read_bytes()
    dst = tmp_path / "scene.tif"
    previous = make_geotiff(dst, seed=1).read_bytes() if overwrite else b""
    with pytest.raises(UnsafeOutputError, match=r"scene\.IMD.*input .*scene\.tiff"):
        upscale_geotiff(src, dst, model=_no_work(), cog=True, overwrite=overwrite)
    assert imd.read_bytes() == before
    expected = ["scene.IMD", "scene.tiff"] + (["scene.tif"] if overwrite else [])
    assert _names(tmp_path) == sorted(expected)  # no output, temp file or lock
    if overwrite:
        assert dst.read_bytes() == previous


def test_cog_would_create_an_imd_for_the_input_is_refused(tmp_path):
    """The input keeps its IMD domain inside the TIFF, no ``scene.IMD``: a COG named
    ``scene.tif`` would create one, which GDAL then reads as the input's metadata."""
    src = _with_imd(make_geotiff(tmp_path / "scene.tiff"), keep_file=False)
    with rasterio.open(src) as ds:
        assert ds.tags(ns="IMD")["SATID"] == "WV02"
    with pytest.raises(UnsafeOutputError, match=r"scene\.IMD.*scene\.tiff"):
        upscale_geotiff(src, tmp_path / "scene.tif", model=_no_work(), cog=True)
    assert _names(tmp_path) == ["scene.tiff"]


def test_cli_cog_over_an_inputs_imd_is_refused(tmp_path, capsys):
    src = _with_imd(make_geotiff(tmp_path / "scene.tiff"))
    before = (tmp_path / "scene.IMD").read_bytes()
    rc = main(["upscale", str(src), str(tmp_path / "scene.tif"), "--cog", "--no-progress"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "scene.IMD" in err and "scene.tiff" in err
    assert (tmp_path / "scene.IMD").read_bytes() == before
    assert _names(tmp_path) == ["scene.IMD", "scene.tiff"]


def test_split_run_keeps_the_inputs_imd(tmp_path):
    """The split (Dask) run used the same removal; its refusal comes before any worker."""
    src = _with_imd(make_geotiff(tmp_path / "scene.tiff"))
    before = (tmp_path / "scene.IMD").read_bytes()
    with pytest.raises(UnsafeOutputError, match=r"scene\.IMD.*scene\.tiff"):
        upscale_geotiff_split(
            src, tmp_path / "scene.tif", client=None, options=UpscaleOptions(cog=True)
        )
    assert (tmp_path / "scene.IMD").read_bytes() == before
    assert _names(tmp_path) == ["scene.IMD", "scene.tiff"]


def test_split_plain_output_beside_the_input_keeps_its_imd(tmp_path, dask_client):
    src = _with_imd(make_geotiff(tmp_path / "scene.tiff", width=40, height=36))
    before = (tmp_path / "scene.IMD").read_bytes()
    out = upscale_geotiff_split(
        src, tmp_path / "scene.tif", client=dask_client, model=tiny_model(1, 2), parts=2
    )
    assert (tmp_path / "scene.IMD").read_bytes() == before
    assert _names(tmp_path) == ["scene.IMD", "scene.tif", "scene.tiff"]
    with rasterio.open(out) as ds:
        assert ds.tags(ns="IMD")["SATID"] == "WV02"


def test_overwrite_removes_the_previous_outputs_sidecars(tmp_path):
    """Sidecars of the output being replaced still go: its COG ``k.IMD`` (the new source has
    no IMD) and a stale ``k.tif.aux.xml`` that would override the new metadata."""
    (tmp_path / "in").mkdir()
    with_imd = _with_imd(make_geotiff(tmp_path / "in" / "a.tif"))
    plain = make_geotiff(tmp_path / "in" / "b.tif")
    out = tmp_path / "out"
    dst = upscale_geotiff(with_imd, out / "k.tif", model=tiny_model(1, 2), cog=True)
    assert _names(out) == ["k.IMD", "k.tif"]
    (out / "k.tif.aux.xml").write_text(
        '<PAMDataset><Metadata><MDI key="STALE">yes</MDI></Metadata></PAMDataset>'
    )
    upscale_geotiff(plain, dst, model=tiny_model(1, 2), overwrite=True)
    assert _names(out) == ["k.tif"]
    with rasterio.open(dst) as ds:
        assert "STALE" not in ds.tags() and not ds.tags(ns="IMD")


def test_cog_overwrite_replaces_its_own_imd(tmp_path):
    (tmp_path / "in").mkdir()
    src = _with_imd(make_geotiff(tmp_path / "in" / "a.tif"), satid="OLD")
    dst = upscale_geotiff(src, tmp_path / "out" / "k.tif", model=tiny_model(1, 2), cog=True)
    _with_imd(src, satid="NEW")
    upscale_geotiff(src, dst, model=tiny_model(1, 2), cog=True, overwrite=True)
    assert "NEW" in (tmp_path / "out" / "k.IMD").read_text()
    assert _names(tmp_path / "out") == ["k.IMD", "k.tif"]


def test_an_imd_shared_with_another_file_is_kept(tmp_path):
    """``k.IMD`` beside ``k.tif`` and ``k.NTF`` may be the NITF's: not the output's to delete,
    and a COG does not replace it."""
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / "a.tif")
    out = tmp_path / "out"
    dst = upscale_geotiff(src, out / "k.tif", model=tiny_model(1, 2))
    (out / "k.NTF").write_bytes(b"NITF")
    (out / "k.IMD").write_text("satId = OTHER;\nEND;\n")
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert (out / "k.IMD").read_text() == "satId = OTHER;\nEND;\n"
    _with_imd(src)
    with pytest.raises(UnsafeOutputError, match=r"k\.IMD.*exists"):
        upscale_geotiff(src, dst, model=_no_work(), cog=True, overwrite=True)
    assert (out / "k.IMD").read_text() == "satId = OTHER;\nEND;\n"


def test_sidecars_without_a_previous_output_are_not_deleted(tmp_path):
    """An ``out.tif.aux.xml`` with no ``out.tif`` is not an output being replaced: it stays,
    and the run is refused (GDAL would read it as the new output's metadata; with
    --overwrite it goes: test_orphan_sidecars.py); nor does a COG replace an ``out.IMD`` of
    no output."""
    (tmp_path / "in").mkdir()
    src = make_geotiff(tmp_path / "in" / "a.tif")
    out = tmp_path / "out"
    out.mkdir()
    pam = out / "k.tif.aux.xml"
    pam.write_text("<PAMDataset/>")
    with pytest.raises(UnsafeOutputError, match=r"k\.tif\.aux\.xml \(metadata\) is there"):
        upscale_geotiff(src, out / "k.tif", model=_no_work())
    assert pam.read_text() == "<PAMDataset/>" and not (out / "k.tif").exists()
    (out / "c.IMD").write_text("mine")
    with pytest.raises(UnsafeOutputError, match=r"c\.IMD \(IMD metadata\) is there"):
        upscale_geotiff(_with_imd(src), out / "c.tif", model=_no_work(), cog=True)
    assert (out / "c.IMD").read_text() == "mine" and not (out / "c.tif").exists()


def test_sidecar_owner(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    src = a / "scene.tiff"
    src.write_bytes(b"")
    link = b / "alias.tif"
    link.symlink_to(src)
    for name in ("scene.IMD", "SCENE.imd", "scene.RPB", "scene_RPC.TXT", "scene.tiff.aux.xml"):
        assert sidecar_owner(a / name, [src]) == src, name
    for name in ("scene_x2.IMD", "scene.tif.aux.xml", "scene.tif.msk", "other.IMD"):
        assert sidecar_owner(a / name, [src]) is None, name
    assert sidecar_owner(b / "scene.IMD", [src]) is None  # another folder
    assert sidecar_owner(b / "alias.IMD", [link]) == link  # the name GDAL opened
    assert sidecar_owner(a / "scene.IMD", [link]) == link  # the file behind the link


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_overwrite_removes_the_previous_outputs_upper_case_sidecars(tmp_path):
    """A replaced output's ``k.tif.MSK`` (all invalid) and ``k.tif.OVR`` (all 7s) stayed and
    became the new output's mask and overviews."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = upscale_geotiff(src, tmp_path / "out" / "k.tif", model=tiny_model(1, 2))
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False), rasterio.open(dst, "r+") as ds:
        ds.write_mask(False)
    os.replace(f"{dst}.msk", f"{dst}.MSK")
    with rasterio.open(f"{dst}.OVR", "w", "GTiff", 24, 16, 1, dtype="float32") as ovr:
        ovr.write(np.full((1, 16, 24), 7, "float32"))
    with rasterio.open(dst) as ds:  # (what GDAL reads as the output's)
        assert not ds.read_masks(1).any() and ds.overviews(1) == [2]
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert _names(dst.parent) == ["k.tif"]
    with rasterio.open(dst) as ds:
        assert ds.read_masks(1).all() and ds.overviews(1) == [] and ds.files == [str(dst)]
