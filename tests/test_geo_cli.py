"""CLI end to end, batch/resume, COG output and the adapter contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

rasterio = pytest.importorskip("rasterio")

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import ConfigError, InputFileError, UnsafeOutputError  # noqa: E402
from sr_domains.geo import adapter, is_complete, upscale_geotiff, upscale_many  # noqa: E402
from sr_domains.testing import tiny_model  # noqa: E402
from sr_domains.testing.geo import check_upscaled, make_geotiff  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy_models(monkeypatch):
    """The CLI resolves models by name/weights; until the model zoo lands, give it toys."""
    import sr_domains.geo.job as up

    real = up.resolve_network

    def fake(model, weights, *, scale, n_bands):
        if model is None and weights is None:
            return tiny_model(1, scale)
        return real(model, weights, scale=scale, n_bands=n_bands)

    monkeypatch.setattr(up, "resolve_network", fake)


def test_cli_upscale_bands(tmp_path, toy_models, capsys):
    src = make_geotiff(tmp_path / "in.tif", count=4, dtype="uint16", nodata=0)
    dst = tmp_path / "out" / "x2.tif"
    rc = main(["upscale", str(src), str(dst), "--scale", "2", "--bands", "3,2,1", "--no-progress"])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(dst)
    check_upscaled(src, dst, 2, bands=[3, 2, 1])


def test_cli_output_folder_for_single_file(tmp_path, toy_models):
    src = make_geotiff(tmp_path / "in.tif")
    (tmp_path / "o").mkdir()
    assert main(["upscale", str(src), str(tmp_path / "o"), "--no-progress"]) == 0
    check_upscaled(src, tmp_path / "o" / "in.tif", 2)


def test_cli_cog(tmp_path, toy_models):
    src = make_geotiff(tmp_path / "in.tif", width=300, height=280, count=3, nodata=0)
    dst = tmp_path / "cog.tif"
    assert main(["upscale", str(src), str(dst), "--cog", "--no-progress"]) == 0
    check_upscaled(src, dst, 2)
    with rasterio.open(dst) as d:
        assert d.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert d.profile["tiled"]
        assert d.block_shapes[0] == (512, 512)
        assert d.overviews(1) == [2]
        assert d.tags()["SR_DOMAINS_SYNTHETIC"] == "super-resolved"
    head = dst.read_bytes()[:400]
    assert b"LAYOUT=IFDS_BEFORE_DATA" in head  # COG ghost header: IFDs before pixel data
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_info(tmp_path, capsys):
    src = make_geotiff(
        tmp_path / "in.tif", count=2, dtype="int16", nodata=-9999, descriptions=["red", "nir"]
    )
    assert main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    for text in ("64 x 48 px", "2 band(s)", "int16", "EPSG:32633", "north-up", "bounds",
                 "nodata      -9999", '"nir"', "mask=nodata"):  # fmt: skip
        assert text in out, text
    empty = tmp_path / "empty"
    empty.mkdir()
    for extra in ([], ["--json"]):  # an empty folder is an error, as for the other domains
        assert main(["info", "--domain", "geotiff", *extra, str(empty)]) == 1
        assert "no GeoTIFF files found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bands", "9"], "do not exist"),
        (["--axes", "0,1"], "--axes do not apply to GeoTIFF"),
        (["--nodata", "300"], "not a uint8 value"),
    ],
)
def test_cli_errors(tmp_path, toy_models, capsys, args, message):
    src = make_geotiff(tmp_path / "in.tif")
    rc = main(["upscale", str(src), str(tmp_path / "o.tif"), "--no-progress", *args])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_cli_non_raster_names_the_file(tmp_path, capsys):
    txt = tmp_path / "readme.txt"
    txt.write_text("hello")
    assert main(["upscale", str(txt), str(tmp_path / "o.tif")]) == 1
    assert "readme.txt" in capsys.readouterr().err
    bad = tmp_path / "fake.tif"
    bad.write_text("hello")
    assert main(["upscale", str(bad), str(tmp_path / "o.tif")]) == 1
    assert "fake.tif: not a readable raster" in capsys.readouterr().err


def _folder(tmp_path, n=3):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(n):
        make_geotiff(d / f"scene_{i}.tif", width=30 + i, height=20, seed=i)
    return d


def test_batch_is_resumable(tmp_path, toy_models, capsys):
    src = _folder(tmp_path)
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 0
    assert len(capsys.readouterr().out.split()) == 3
    for i in range(3):
        check_upscaled(src / f"scene_{i}.tif", out / f"scene_{i}.tif", 2)
    # an interrupted run: one output missing, a temp file left behind by a killed process
    (out / "scene_1.tif").unlink()
    (out / ".scene_1.tif.sr-partial-999.tif").write_bytes(b"partial")
    mtime = (out / "scene_0.tif").stat().st_mtime_ns
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.split() == [str(out / "scene_1.tif")]
    assert (out / "scene_0.tif").stat().st_mtime_ns == mtime  # complete: skipped
    assert is_complete(out / "scene_1.tif", src / "scene_1.tif", 2)
    assert not is_complete(out / "scene_1.tif", src / "scene_1.tif", 4)


def test_batch_glob_and_foreign_output(tmp_path, toy_models):
    src = _folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "scene_2.tif").write_bytes(b"someone else's file")
    # not a GeoTIFF: refused before any work even with overwrite (a user's notes, say), and
    # said so without it too (it advised --overwrite, which then refused)
    never = "scene_2.tif: not a GeoTIFF file; never replaced, even with --overwrite"
    with pytest.raises(UnsafeOutputError, match=never):
        upscale_many(src, out, model=tiny_model(1, 2))
    with pytest.raises(UnsafeOutputError, match=never):
        upscale_many(str(src / "scene_[02].tif"), out, overwrite=True)
    assert not (out / "scene_0.tif").exists()
    (out / "scene_2.tif").unlink()
    shutil.copy(src / "scene_1.tif", out / "scene_2.tif")  # a GeoTIFF: overwrite replaces it
    written = upscale_many(str(src / "scene_[02].tif"), out, overwrite=True)
    assert [p.name for p in written] == ["scene_0.tif", "scene_2.tif"]
    assert not (out / "scene_1.tif").exists()


def test_batch_goes_on_after_a_bad_file(tmp_path, toy_models, capsys):
    src = _folder(tmp_path, 2)
    (src / "broken.tif").write_text("not a tiff")
    (src / "moved.tif").symlink_to(tmp_path / "elsewhere.tif")  # a broken link: reported too
    (src / "sub.tif").mkdir()  # a folder is not an input
    out = tmp_path / "out"
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "2 of 4 file(s) failed" in err
    assert "broken.tif" in err
    assert "moved.tif: broken link (to " in err
    names = ["scene_0.tif", "scene_1.tif", "sr-domains-run.jsonl"]  # (with the run manifest)
    assert sorted(p.name for p in out.iterdir()) == names


def test_batch_goes_on_after_a_file_whose_bands_do_not_fit(tmp_path):
    """A file the model cannot take (4 bands for a 3-band model) is reported by name and the
    files after it still run; before, the batch stopped there with an unnamed error."""
    src = tmp_path / "in"
    src.mkdir()
    for name, count in (("a.tif", 3), ("b.tif", 4), ("c.tif", 3)):
        make_geotiff(src / name, width=24, height=20, count=count, seed=count)
    out = tmp_path / "out"
    with pytest.raises(
        InputFileError, match=r"1 of 3 file\(s\) failed: .*b\.tif: the model takes 3"
    ):
        upscale_many(src, out, model=tiny_model(3, 2))
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "c.tif", "sr-domains-run.jsonl"]
    check_upscaled(src / "c.tif", out / "c.tif", 2)
    lines = (out / "sr-domains-run.jsonl").read_text().splitlines()
    records = {Path(r["input"]).name: r for r in map(json.loads, lines)}
    assert [records[n]["status"] for n in ("a.tif", "b.tif", "c.tif")] == ["ok", "failed", "ok"]
    bad = records["b.tif"]
    assert "the model takes 3" in bad["error"] and not bad["output_sha256"]
    with pytest.raises(ConfigError, match=r"b\.tif: the model takes 3"):  # one file: named too
        upscale_geotiff(src / "b.tif", tmp_path / "b.tif", model=tiny_model(3, 2))
    assert not (tmp_path / "b.tif").exists()


def test_resume_skips_only_outputs_made_the_same_way(tmp_path, capsys):
    """A rerun into the same folder skips finished outputs only when they were made with the
    same weights and bands; one made otherwise is an existing output (it was skipped as done)."""
    from sr_domains.checkpoint import save_checkpoint
    from sr_domains.errors import OutputExistsError
    from sr_domains.models import create_model

    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        make_geotiff(src / f"s{i}.tif", width=24, height=20, count=3, seed=i)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for path, seed in ((a, 0), (b, 1)):
        torch.manual_seed(seed)
        save_checkpoint(create_model("srcnn", in_channels=3, scale=2), path)
    out = tmp_path / "out"
    assert len(upscale_many(src, out, weights=a)) == 2
    assert upscale_many(src, out, weights=a) == []  # same weights: done, skipped
    before = (out / "s0.tif").read_bytes()
    with pytest.raises(OutputExistsError, match="made with other weights: a.safetensors, not b"):
        upscale_many(src, out, weights=b)
    capsys.readouterr()
    assert main(["upscale", str(src), str(out), "--weights", str(b), "--dry-run"]) == 1  # refused
    said = capsys.readouterr().out
    assert said.count("refused: exists, made with other weights: a.safetensors, not b") == 2
    with pytest.raises(OutputExistsError, match="made from bands 1,2,3, not 3,2,1"):
        upscale_many(src, out, weights=a, bands=(3, 2, 1))
    torch.manual_seed(2)
    save_checkpoint(create_model("srcnn", in_channels=3, scale=2), a, overwrite=True)
    with pytest.raises(OutputExistsError, match="an earlier a.safetensors"):
        upscale_many(src, out, weights=a)
    assert (out / "s0.tif").read_bytes() == before  # nothing replaced without overwrite
    assert len(upscale_many(src, out, weights=b, overwrite=True)) == 2
    assert upscale_many(src, out, weights=b) == []


def test_batch_refuses_output_folder_holding_inputs(tmp_path):
    src = _folder(tmp_path, 1)
    with pytest.raises(ValueError, match="replace the input|holds the input"):
        upscale_many(src, src, model=tiny_model(1, 2))


def test_sniff(tmp_path):
    tif = make_geotiff(tmp_path / "a.tif")
    assert adapter.sniff(tif)
    assert adapter.sniff(tmp_path / "missing.TIFF")  # the reader then names the missing file
    assert adapter.sniff(tmp_path)  # a folder holding GeoTIFFs
    assert adapter.sniff(Path(str(tmp_path / "*.tif")))
    magic = tmp_path / "no_suffix"
    magic.write_bytes(tif.read_bytes())
    assert adapter.sniff(magic)
    (tmp_path / "empty").mkdir()
    assert not adapter.sniff(tmp_path / "empty")
    assert not adapter.sniff(tmp_path / "brain.nii.gz")


@pytest.mark.parametrize("fmt", ["vrt", "jp2"])
def test_a_jpeg2000_or_vrt_raster_is_an_input_and_its_output_a_tif(tmp_path, capsys, fmt):
    """A single JPEG 2000 (Sentinel-2 bands) or VRT raster is read through GDAL, sniffed by name
    and content. Its output is a GeoTIFF named ``.tif`` in an output folder (it was named
    ``B04.jp2``, a GeoTIFF under a JPEG 2000 name), and a ``.jp2`` output name is refused."""
    import hashlib

    import rasterio
    from rasterio.shutil import copy as gdal_copy

    driver = {"vrt": "VRT", "jp2": "JP2OpenJPEG"}[fmt]
    with rasterio.Env() as env:
        drivers = env.drivers()
    if driver not in drivers:
        pytest.skip(f"GDAL has no {driver} driver here")
    tif = make_geotiff(tmp_path / "b04.tif", width=40, height=30, count=1, seed=3)
    src = tmp_path / f"B04.{fmt}"
    opts = {"QUALITY": "100", "REVERSIBLE": "YES"} if fmt == "jp2" else {}
    gdal_copy(tif, src, driver=driver, **opts)  # lossless: the same pixels
    nameless = tmp_path / f"raster_{fmt}"  # no suffix: known by its first bytes
    nameless.write_bytes(src.read_bytes())
    assert adapter.sniff(src) and adapter.sniff(nameless)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    out = tmp_path / "out"
    out.mkdir()
    assert main(["upscale", str(src), str(out), "-q"]) == 0  # (the shipped default model)
    assert sorted(p.name for p in out.iterdir()) == ["B04.tif"]
    check_upscaled(src, out / "B04.tif", 2)
    assert main(["upscale", str(tif), str(tmp_path / "ref.tif"), "-q"]) == 0
    with rasterio.open(out / "B04.tif") as a, rasterio.open(tmp_path / "ref.tif") as b:
        assert a.driver == "GTiff" and a.tags()["SR_DOMAINS_SOURCE"] == src.name
        assert a.crs == b.crs and a.transform == b.transform
        assert (a.read() == b.read()).all()  # the same pixels in: the same output
    bad = tmp_path / f"B04_x2.{fmt}"
    assert main(["upscale", str(src), str(bad), "-q"]) == 2
    assert f"must end in .tif or .tiff (not .{fmt})" in capsys.readouterr().err
    assert not bad.exists()
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()
             if p.name in before}  # fmt: skip
    assert after == before and not list(tmp_path.glob("*.aux.xml"))  # inputs untouched


@pytest.mark.parametrize("workers", [None, 1])
def test_a_folder_batch_takes_its_jpeg2000_and_vrt_rasters_too(tmp_path, workers):
    """A folder of Sentinel-2 JP2 bands (and VRT stacks) is a batch like a folder of TIFFs
    (its JP2 files were left out without a word); outputs are ``.tif``, resumable."""
    import rasterio
    from rasterio.shutil import copy as gdal_copy

    from sr_domains.distributed import upscale_many as batch
    from sr_domains.options import UpscaleOptions

    if workers:
        pytest.importorskip("distributed")  # (the dask extra)

    with rasterio.Env() as env:
        if not {"VRT", "JP2OpenJPEG"} <= set(env.drivers()):
            pytest.skip("GDAL lacks the VRT or JP2OpenJPEG driver here")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_geotiff(src / "a.tif", width=24, height=20, seed=1)
    gdal_copy(make_geotiff(tmp_path / "b.tif", width=24, height=20, seed=2), src / "B04.jp2",
              driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES")  # fmt: skip
    gdal_copy(src / "a.tif", src / "stack.vrt", driver="VRT")
    model = tiny_model(1, 2)

    def run() -> list[str]:
        if workers is None:
            return [p.name for p in upscale_many(src, out, model=model)]
        report = batch(src, out, options=UpscaleOptions(), model=model, workers=workers)
        return [Path(r.task.dst).name for r in report.results if r.status == "ok"]

    assert sorted(run()) == ["B04.tif", "a.tif", "stack.tif"]
    for name in ("B04", "stack"):
        with rasterio.open(out / f"{name}.tif") as ds:
            assert ds.driver == "GTiff" and ds.width == 48
    check_upscaled(src / "B04.jp2", out / "B04.tif", 2)
    assert run() == []  # resumed: all complete
    gdal_copy(src / "a.tif", src / "B04.vrt", driver="VRT")  # a second B04.tif
    with pytest.raises(ConfigError, match=r"would be written to .*B04\.tif"):
        run()


def test_batch_collision_is_one_message_with_and_without_workers(tmp_path, capsys):
    """Two inputs named alike: the sequential batch said ``['a.tif']``, ``--workers``
    ``['colout/a.tif']``; both now name the output path and its inputs, exit status 2."""
    pytest.importorskip("distributed")  # (the dask extra)
    for sub in ("x", "y"):
        (tmp_path / "col" / sub).mkdir(parents=True)
        make_geotiff(tmp_path / "col" / sub / "a.tif", width=16, height=12)
    out = tmp_path / "colout"
    argv = ["upscale", str(tmp_path / "col" / "*" / "a.tif"), str(out), "--scale", "2"]
    lines = []
    for extra in ([], ["--workers", "2"]):
        assert main([*argv, *extra]) == 2
        lines.append(capsys.readouterr().err.strip())
    x, y = (tmp_path / "col" / sub / "a.tif" for sub in ("x", "y"))
    want = f"several inputs would be written to {out / 'a.tif'} ({x}, {y}); rename them"
    assert lines == [f"sr-domains: error: {want}"] * 2
    assert not out.exists()


def test_an_output_never_replaces_a_source_of_a_vrt_input(tmp_path, capsys):
    """A VRT reads other rasters: an output named like one of them replaced it (with
    ``--overwrite``), losing the user's data. It is refused as an input, also by the dry run."""
    import hashlib

    from rasterio.shutil import copy as gdal_copy

    from sr_domains.errors import UnsafeOutputError

    src = make_geotiff(tmp_path / "src.tif", width=24, height=20)
    vrt = tmp_path / "stack.vrt"
    gdal_copy(src, vrt, driver="VRT")
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    with pytest.raises(UnsafeOutputError, match="would replace the input"):
        upscale_geotiff(vrt, src, model=tiny_model(1, 2), overwrite=True)
    argv = ["upscale", str(vrt), str(src), "--overwrite", "-q"]
    assert main(argv) != 0 and "would replace the input" in capsys.readouterr().err
    assert main([*argv, "--dry-run"]) == 1  # as the run
    assert "[refused: the output would replace the input" in capsys.readouterr().out
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    out = tmp_path / "out.tif"  # another name: written, from the VRT's pixels
    assert upscale_geotiff(vrt, out, model=tiny_model(1, 2)) == out
    check_upscaled(vrt, out, 2)
    src.rename(tmp_path / "moved.tif")  # a VRT whose source is gone: named, nothing written
    with pytest.raises(InputFileError, match=r"reads .*src\.tif, which does not exist"):
        upscale_geotiff(vrt, tmp_path / "o2.tif", model=tiny_model(1, 2))
    assert not (tmp_path / "o2.tif").exists()


def test_adapter_imports_without_rasterio(tmp_path):
    code = (
        "import sys; sys.modules['rasterio'] = None\n"
        "from pathlib import Path\n"
        "from sr_domains.geo import adapter\n"
        "from sr_domains.options import UpscaleOptions\n"
        "assert adapter.sniff(Path('x.tif'))\n"
        "try:\n"
        "    adapter.upscale(Path('x.tif'), Path('y.tif'), UpscaleOptions())\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert 'pip install "sr-domains[geo]"' in r.stdout


def test_python_api_exports():
    import sr_domains.geo as geo

    assert callable(geo.upscale_geotiff)
    assert callable(geo.upscale_many)
    with pytest.raises(AttributeError):
        geo.nope  # noqa: B018
    for name in geo.__all__:
        assert getattr(geo, name) is not None


def test_scale_defaults_to_the_weights_scale(tmp_path):
    from sr_domains import create_model, save_checkpoint

    weights = save_checkpoint(
        create_model("srcnn", in_channels=1, scale=4), tmp_path / "x4.safetensors"
    )
    src = make_geotiff(tmp_path / "in.tif", width=20, height=16)
    assert (
        main(
            [
                "upscale",
                str(src),
                str(tmp_path / "o.tif"),
                "--weights",
                str(weights),
                "--no-progress",
            ]
        )
        == 0
    )
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.shape == (64, 80) and ds.tags()["SR_DOMAINS_SCALE"] == "4"


def test_keyword_api_and_options_object_write_the_same_file(tmp_path):
    """``upscale_geotiff(**keywords)`` turns its keywords into one ``UpscaleOptions`` (validated
    as the CLI's are) and runs ``write_geotiff``, which the CLI and the Dask tasks call."""
    from sr_domains.geo import write_geotiff
    from sr_domains.options import UpscaleOptions
    from sr_domains.value_domain import ValueOptions

    src = make_geotiff(tmp_path / "in.tif", width=40, height=30, count=3, nodata=0)
    model = tiny_model(1, 2)
    a = upscale_geotiff(
        src, tmp_path / "a.tif", model=model, bands=[3, 1], dtype="float32",
        values=ValueOptions(clamp=False), creation_options={"compress": "LZW"}, tile=16,
    )  # fmt: skip
    opts = UpscaleOptions(
        bands=(3, 1), dtype="float32", values=ValueOptions(clamp=False),
        creation_options=(("compress", "LZW"),), tile=16,
    )  # fmt: skip
    b = write_geotiff(src, tmp_path / "b.tif", opts, model=model)
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        assert (ra.read() == rb.read()).all() and ra.dtypes == rb.dtypes == ("float32",) * 2
        assert ra.tags() == rb.tags() and ra.compression == rb.compression
        assert ra.tags()["SR_DOMAINS_SOURCE_BANDS"] == "3,1"
    with pytest.raises(ConfigError, match="overlap"):  # checked before any file is touched
        upscale_geotiff(src, tmp_path / "c.tif", model=model, tile=16, overlap=16)
    with pytest.raises(ConfigError, match="scale must be an integer"):
        upscale_geotiff(src, tmp_path / "c.tif", model=model, scale=2.5)
    # objects the GeoTIFF engine cannot use are refused (they used to be dropped silently,
    # and the default weights and profile used instead)
    with pytest.raises(ConfigError, match="profile must be a recipe"):
        upscale_geotiff(src, tmp_path / "c.tif", model=model, profile={"recipe": "dtype"})
    with pytest.raises(ConfigError, match="model must be"):
        upscale_geotiff(src, tmp_path / "c.tif", model=object())
    assert not (tmp_path / "c.tif").exists()


def test_an_output_spelt_as_a_missing_folder_is_refused(tmp_path, capsys):
    """``out.tif/`` (a folder that does not exist) wrote a file ``out.tif``: Path drops the
    slash. An existing folder still takes the output under the input's name."""
    src = make_geotiff(tmp_path / "in.tif", width=16, height=16)
    missing = str(tmp_path / "out.tif") + "/"
    assert main(["upscale", str(src), missing, "--no-progress"]) == 2
    assert "names a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
    (tmp_path / "od").mkdir()
    assert main(["upscale", str(src), str(tmp_path / "od") + "/", "--no-progress"]) == 0
    assert (tmp_path / "od" / "in.tif").exists()
