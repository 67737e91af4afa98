"""GDAL sidecars of batch outputs: each output folder listed once per batch (it was listed
again for every output with --overwrite), and the other spellings GDAL reads as an output's
mask, overviews and IMD (``k.tif.Msk``, ``K.TIF.ovr``, ``k.Imd`` for ``k.tif``: it compares
the names of a file's siblings case-insensitively) refused, or set aside with --overwrite, as
``k.tif.msk`` is; ``K.TIF.aux.xml`` (a PAM GDAL reads only so spelled) is left alone."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from sr_domains.batch_tasks import Task  # noqa: E402
from sr_domains.batch_worker import run_task  # noqa: E402
from sr_domains.distributed import upscale_many as tasks_many  # noqa: E402
from sr_domains.errors import ConfigError, UnsafeOutputError  # noqa: E402
from sr_domains.folder_listing import FolderListing  # noqa: E402
from sr_domains.geo import upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.geo.sidecar_names import another_files  # noqa: E402
from sr_domains.options import UpscaleOptions  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

DEAD_PID = 4_194_304 + 4321  # (above Linux's largest pid_max: no such process)
IMD = 'version = "AA";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "OLD";\nEND_GROUP = IMAGE_1\nEND;\n'
PAM = '<PAMDataset><PAMRasterBand band="1"><Description>STALE</Description></PAMRasterBand>'


def _listings(monkeypatch, folder: Path) -> list[str]:
    """``os.listdir`` / ``os.scandir`` wrapped with a counter (an instrument): the listings of
    ``folder`` the sidecar rules take."""
    calls: list[str] = []
    target = os.path.realpath(folder)
    for name in ("listdir", "scandir"):
        real = getattr(os, name)

        def counted(path=".", _real=real, _name=name):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if (
                caller.startswith(("sr_domains.geo.sidecar", "sr_domains.folder_listing"))
                and isinstance(path, (str, os.PathLike))
                and os.path.realpath(path) == target
            ):
                calls.append(f"{_name} ({caller})")
            return _real(path)

        monkeypatch.setattr(os, name, counted)
    return calls


def _inputs(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(n):
        make_geotiff(folder / f"s{i}.tif", width=24, height=16, seed=i)
    return folder


def test_a_batch_lists_its_output_folder_once(tmp_path, monkeypatch):
    """Sequential, new outputs and outputs replaced (--overwrite): one listing per batch."""
    folder, out = _inputs(tmp_path), tmp_path / "o"
    calls = _listings(monkeypatch, out)
    upscale_many(folder, out, model=tiny_model(1, 2), overwrite=True)
    assert len(calls) == 1, calls
    calls.clear()
    upscale_many(folder, out, model=tiny_model(1, 2), overwrite=True)
    assert len(calls) == 1, calls


def test_the_task_runner_lists_each_output_folder_once(tmp_path, monkeypatch):
    folder, out = _inputs(tmp_path), tmp_path / "o"
    calls = _listings(monkeypatch, out)
    options = UpscaleOptions(overwrite=True)
    for _ in range(2):
        calls.clear()
        assert not tasks_many(folder, out, model=tiny_model(1, 2), options=options).failed
        assert len(calls) == 1, calls


def _mask(path: Path) -> None:
    """An all-invalid external mask at ``path`` (as GDAL writes one)."""
    tmp = path.with_name("made-mask.tif")
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False),
        rasterio.open(tmp, "w", "GTiff", 24, 16, 1, dtype="uint8") as ds,
    ):
        ds.write(np.ones((1, 16, 24), "uint8"))
        ds.write_mask(np.zeros((16, 24), "uint8"))
    os.replace(f"{tmp}.msk", path)
    tmp.unlink()


def _overviews(path: Path) -> None:
    with rasterio.open(path, "w", "GTiff", 24, 16, 1, dtype="float32") as ds:
        ds.write(np.full((1, 16, 24), 7, "float32"))


def _spelled_orphans(dst: Path) -> list[Path]:
    """A mask ``k.tif.Msk``, overviews ``K.TIF.ovr`` and an IMD ``k.Imd`` without ``k.tif``."""
    dst.parent.mkdir(parents=True)
    mask, ovr, imd = (dst.with_name(n) for n in ("k.tif.Msk", "K.TIF.ovr", "k.Imd"))
    _mask(mask)
    _overviews(ovr)
    imd.write_text(IMD)
    return [mask, ovr, imd]


def _clean(dst: Path) -> None:
    with rasterio.open(dst) as ds:
        assert ds.read_masks(1).all() and ds.overviews(1) == [] and not ds.tags(ns="IMD")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_other_spellings_gdal_reads_are_refused_or_set_aside(tmp_path):
    """GDAL read them as the new output's mask, overviews and IMD (exit 0); the PAM
    ``K.TIF.aux.xml`` it never reads for ``k.tif`` stays, as does a ``.Ovr`` a killed run
    left set aside until it is put back (then it goes too)."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    orphans = _spelled_orphans(dst)
    pam = dst.with_name("K.TIF.aux.xml")
    pam.write_text(PAM)
    with pytest.raises(UnsafeOutputError) as err:
        upscale_geotiff(src, dst, model=tiny_model(1, 2))
    assert (
        "k.tif.Msk (mask), K.TIF.ovr (overviews), k.Imd (IMD metadata) are there without "
        "their output" in str(err.value)
    )
    assert not dst.exists() and all(p.exists() for p in orphans)
    aside = dst.with_name(f".k.tif.Ovr.sr-aside-{DEAD_PID}-beef")
    _overviews(aside)
    upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert sorted(os.listdir(dst.parent)) == ["K.TIF.aux.xml", "k.tif"]
    _clean(dst)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_spelling_of_another_files_sidecar_is_left_alone(tmp_path, caplog):
    """``K.TIF.msk`` beside a file ``K.TIF`` (a case-sensitive file system) is that file's
    mask: never deleted, and named in a warning (GDAL reads it for ``k.tif`` too)."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    dst = tmp_path / "out" / "k.tif"
    dst.parent.mkdir()
    other = make_geotiff(dst.with_name("K.TIF"), width=24, height=16)
    mask = dst.with_name("K.TIF.msk")
    _mask(mask)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        upscale_geotiff(src, dst, model=tiny_model(1, 2), overwrite=True)
    assert mask.exists() and other.exists() and dst.exists()
    assert f"{mask} exists and is left alone" in caplog.text


def test_a_task_carries_the_names_near_its_output(tmp_path):
    """What a Dask task gets of its folder's listing: its sidecars in every spelling and
    set-aside files, not the other outputs'."""
    names = ["k.tif", "k.tif.Msk", "K.TIF.ovr", "k.Imd", ".k.tif.Ovr.sr-aside-1-beef", "s0.tif"]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    near = FolderListing.of(tmp_path).near(tmp_path / "k.tif")
    assert near.names == frozenset(names[:-1])
    assert near.spellings("k.tif.ovr") == ("K.TIF.ovr",)


def _with_imd(path: Path, satid: str) -> Path:
    """``path`` with an IMD domain kept in the TIFF only (GDAL's ``STEM.IMD`` removed)."""
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(ns="IMD", SATID=satid)
    path.with_suffix(".IMD").unlink()
    return path


def _imd_of(path: Path) -> str:
    with rasterio.open(path) as ds:
        return ds.tags(ns="IMD").get("SATID", "")


@pytest.mark.parametrize("runner", ["write_many", "tasks"])
def test_a_cog_never_takes_the_imd_an_earlier_output_of_its_batch_wrote(tmp_path, runner):
    """``a.tif`` and ``a.tiff`` (COGs, --overwrite) both keep their IMD in ``out/a.IMD``: the
    batch's listing, taken before ``a.tif`` was written, said no other file had the stem
    ``a``, so ``a.tiff``'s IMD replaced ``a.tif``'s (a.tif read SATID B). Refused before any
    work, naming both (the folder is not listed again for every IMD: that was quadratic)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    a = _with_imd(make_geotiff(folder / "a.tif", width=24, height=16), "A")
    b = _with_imd(make_geotiff(folder / "a.tiff", width=24, height=16, seed=1), "B")
    make_geotiff(folder / "s.tif", width=24, height=16)
    why = (
        f"{out / 'a.tif'} ({a}) and {out / 'a.tiff'} ({b}) would share {out / 'a.IMD'} "
        f"(IMD metadata of {a}, {b}): a COG keeps"
    )
    options = UpscaleOptions(overwrite=True, cog=True)
    run = {"write_many": upscale_many, "tasks": tasks_many}[runner]
    kwargs = {"overwrite": True, "cog": True} if runner == "write_many" else {"options": options}
    with pytest.raises(ConfigError) as err:
        run(folder, out, model=tiny_model(1, 2), **kwargs)
    assert why in str(err.value)
    assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize(
    ("names", "imds", "cog", "refused"),
    [
        (("a.tif", "a.tiff"), ("A", ""), True, True),  # a.tiff read a.tif's a.IMD as its own
        (("A.tif", "a.tiff"), ("A", "B"), True, True),  # (GDAL reads a.IMD for A.tif too)
        (("a.tif", "a.tiff"), ("", ""), True, False),  # no IMD: no STEM.IMD
        (("a.tif", "a.tiff"), ("A", "B"), False, False),  # a plain GeoTIFF keeps it inside
    ],
)
def test_only_cogs_that_would_share_an_imd_are_refused(tmp_path, names, imds, cog, refused):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i, (name, satid) in enumerate(zip(names, imds)):
        src = make_geotiff(folder / name, width=24, height=16, seed=i)
        if satid:
            _with_imd(src, satid)
    run = lambda: upscale_many(folder, out, model=tiny_model(1, 2), cog=cog)  # noqa: E731
    if refused:
        with pytest.raises(ConfigError, match="would share"):
            run()
        assert not out.exists()
        return
    run()
    for name, satid in zip(names, imds):
        assert _imd_of(out / name) == satid


@pytest.mark.parametrize("runner", ["write_many", "tasks"])
def test_a_cog_batch_with_imds_lists_its_output_folder_once(tmp_path, monkeypatch, runner):
    """An --overwrite rerun of COGs with IMDs listed the output folder again for each IMD,
    twice per output (7 listings for 3 outputs, 49 for 24): once per batch."""
    folder, out = _inputs(tmp_path), tmp_path / "o"
    for i, src in enumerate(sorted(folder.iterdir())):
        _with_imd(src, f"S{i}")
    calls = _listings(monkeypatch, out)
    for _ in range(2):  # (new outputs, then the same replaced)
        calls.clear()
        if runner == "write_many":
            upscale_many(folder, out, model=tiny_model(1, 2), overwrite=True, cog=True)
        else:
            options = UpscaleOptions(overwrite=True, cog=True)
            assert not tasks_many(folder, out, model=tiny_model(1, 2), options=options).failed
        assert len(calls) == 1, calls
    assert [_imd_of(out / f"s{i}.tif") for i in range(3)] == ["S0", "S1", "S2"]
    assert sorted(p.name for p in out.glob("*.IMD")) == ["s0.IMD", "s1.IMD", "s2.IMD"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_the_output_under_another_spelling_is_not_another_file(tmp_path):
    """On a case-insensitive file system (macOS, Windows) ``K.TIF`` is the output ``k.tif``
    itself: its stored overviews ``K.TIF.ovr`` were called another file's (kept, and read as
    the new output's). Stand-in on Linux: ``K.TIF`` a hard link to ``k.tif`` (one file), with
    the listing such a file system gives (one of the two names); with the real listing (both
    names) the link is a file of its own, whose overviews stay."""
    dst = make_geotiff(tmp_path / "k.tif", width=24, height=16)
    os.link(dst, tmp_path / "K.TIF")
    ovr = tmp_path / "K.TIF.ovr"
    _overviews(ovr)
    one_entry = FolderListing(tmp_path, frozenset({"k.tif", "K.TIF.ovr"}))
    assert not another_files(ovr, dst, one_entry)
    assert another_files(ovr, dst, FolderListing.of(tmp_path))
    assert another_files(ovr, dst)


def test_a_retried_task_finds_the_sidecars_its_killed_attempt_set_aside(tmp_path, caplog):
    """A Dask retry carries the names its client listed before the first attempt; that
    attempt's worker, killed after it set ``a.tif.aux.xml`` aside, left
    ``.a.tif.aux.xml.sr-aside-PID-XXXX``, which the retry never looked for: it stayed in the
    output folder for good. The retry lists the folder again (its listing's sidecar is gone):
    put back, then replaced with the output."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16)
    out = tmp_path / "o"
    out.mkdir()
    dst = out / "a.tif"
    upscale_geotiff(src, dst, model=tiny_model(1, 2))
    Path(f"{dst}.aux.xml").write_text(PAM)
    near = FolderListing.of(out).near(dst)  # (what the client gave the task)
    os.rename(f"{dst}.aux.xml", out / f".a.tif.aux.xml.sr-aside-{DEAD_PID}-beef")  # (killed)
    task = Task("geotiff", str(src), str(dst))
    options = UpscaleOptions(scale=2, overwrite=True)
    with caplog.at_level(logging.WARNING, logger="sr_domains"):
        result = run_task(task, options, tiny_model(1, 2), near)
    assert result.status == "ok", result.error
    assert "put back" in caplog.text
    assert sorted(os.listdir(out)) == ["a.tif"]


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_the_dry_run_refuses_a_cog_imd_clash_as_the_run_does(tmp_path, capsys, workers):
    """H19: ``--dry-run --cog`` said 'would write' for ``a.tif`` / ``a.tiff`` with IMD metadata
    (exit 0) while the run refuses them before any work (exit 2); the dry run now refuses the
    batch with the run's message, with and without --workers. Without --cog it plans them."""
    from sr_domains.cli import main

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    a = _with_imd(make_geotiff(folder / "a.tif", width=24, height=16), "A")
    b = _with_imd(make_geotiff(folder / "a.tiff", width=24, height=16, seed=1), "B")
    argv = ["upscale", str(folder), str(out), "--dry-run", *workers]
    assert main([*argv, "--cog"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'a.tif'} ({a}) and {out / 'a.tiff'} ({b}) would share {out / 'a.IMD'}" in err
    assert not out.exists()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("[would write]") == 2
