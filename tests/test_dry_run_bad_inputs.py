"""``--dry-run`` predicts the run for bad inputs: one ``error: ...`` line per input the run would
fail on (unreadable, a colour table, its data cut short), naming it, a plan for the others, and
exit status 1, as the run (which writes the good files and lists the failures)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

rasterio = pytest.importorskip("rasterio")

from sr_domains import inference  # noqa: E402
from sr_domains.cli import main  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402

LINE = re.compile(r"^geotiff: (\S+) -> (\S+) \[(.*)\]$", re.M)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _palette(path: Path) -> None:
    make_geotiff(path, width=24, height=16, count=1, dtype="uint8")
    with rasterio.open(path, "r+") as ds:
        ds.write_colormap(1, {0: (0, 0, 0, 255), 255: (255, 0, 0, 255)})


def _mixed(folder: Path) -> None:
    folder.mkdir()
    make_geotiff(folder / "good.tif", width=24, height=16, count=1)
    full = make_geotiff(folder.parent / "whole.tif", width=96, height=96, compress=None)
    data = full.read_bytes()
    (folder / "trunc.tif").write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    (folder / "text.tif").write_text("hi\n")
    _palette(folder / "pal.tif")


def _dry_run(capsys, src: Path, dst: Path, *extra: str) -> tuple[int, dict[str, str]]:
    code = main(["upscale", str(src), str(dst), "--dry-run", *extra])
    out = capsys.readouterr().out
    return code, {Path(m.group(1)).name: m.group(3) for m in LINE.finditer(out)}


def test_the_dry_run_names_each_bad_input_as_the_run_fails_on_it(tmp_path, capsys):
    src, out = tmp_path / "bad", tmp_path / "outb"
    _mixed(src)
    code, planned = _dry_run(capsys, src, out)
    assert code == 1 and not out.exists()
    assert sorted(planned) == ["good.tif", "pal.tif", "text.tif", "trunc.tif"]
    for name, action in planned.items():
        if name != "good.tif":
            assert action.startswith(f"error: {src / name}"), action
    assert "colour table" in planned["pal.tif"] and "cut short" in planned["trunc.tif"]
    assert planned["good.tif"] == "would write"

    assert main(["upscale", str(src), str(out), "--no-progress"]) == 1
    capsys.readouterr()
    lines = (out / "sr-domains-run.jsonl").read_text().splitlines()
    outcome = {Path(r["input"]).name: r["status"] for r in map(json.loads, lines)}
    predicted = {n: "ok" if a == "would write" else "failed" for n, a in planned.items()}
    assert predicted == outcome
    assert sorted(p.name for p in out.glob("*.tif")) == ["good.tif"]


def test_a_palette_input_makes_the_dry_run_fail_as_the_run_does(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_geotiff(src / "good.tif", width=24, height=16, count=1)
    _palette(src / "pal.tif")
    code, planned = _dry_run(capsys, src, out)
    assert code == 1 and planned["good.tif"] == "would write"
    assert planned["pal.tif"].startswith("error:") and "colour table" in planned["pal.tif"]
    assert main(["upscale", str(src), str(out), "--no-progress"]) == 1
    assert "colour table" in capsys.readouterr().err
    # a single palette file: the same verdict
    code, single = _dry_run(capsys, src / "pal.tif", tmp_path / "one.tif")
    assert code == 1 and single["pal.tif"].startswith("error:")


def test_the_dry_run_refuses_what_the_run_refuses_before_any_work(tmp_path, capsys):
    """A ``--nodata`` the output type cannot hold, a text file under the output's name (even
    with ``--overwrite``) and a COG whose ``STEM.IMD`` is an input's sidecar: each refused by
    the dry run as by the run."""
    src = make_geotiff(tmp_path / "scene.tiff", width=24, height=16, count=1, dtype="uint16")
    out = tmp_path / "o.tif"
    argv = ["upscale", str(src), str(out), "--nodata", "-9999", "--no-progress"]
    assert main([*argv, "--dry-run"]) == 1
    assert "-9999" in capsys.readouterr().out
    assert main(argv) != 0 and not out.exists()
    capsys.readouterr()
    out.write_text("notes\n")
    code, planned = _dry_run(capsys, src, out)
    assert code == 1 and "not a GeoTIFF" in planned["scene.tiff"]
    with rasterio.open(src, "r+") as ds:  # an IMD domain: the COG keeps it in scene.IMD
        ds.update_tags(ns="IMD", SATID="WV03")
    (tmp_path / "scene.IMD").write_text("SATID = WV03;\n")
    cog = tmp_path / "scene.tif"
    args = ["upscale", str(src), str(cog), "--cog"]
    assert main([*args, "--dry-run"]) == 1
    assert "sidecar of the input" in capsys.readouterr().out
    assert main([*args, "--no-progress"]) != 0
    assert (tmp_path / "scene.IMD").read_text() == "SATID = WV03;\n" and not cog.exists()


def test_the_dry_run_refuses_a_lossy_codec_as_the_run_does(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", width=24, height=16, count=1, dtype="uint8")
    argv = ["upscale", str(src), str(tmp_path / "o.tif"), "--co", "COMPRESS=JPEG"]
    assert main([*argv, "--dry-run"]) == 1
    assert "lossy" in capsys.readouterr().out
    assert main([*argv, "--no-progress"]) != 0 and not (tmp_path / "o.tif").exists()


def test_the_dry_run_refuses_a_dtype_that_leaves_one_value(tmp_path, capsys):
    """The run refuses --dtype uint8 for float data 0..0.4 (all 0); the dry run said "would
    write" and exited 0."""
    import numpy as np

    src = make_geotiff(tmp_path / "f.tif", width=24, height=16, count=1, dtype="float32")
    with rasterio.open(src, "r+") as ds:
        ds.write(np.linspace(0, 0.4, 24 * 16, dtype="float32").reshape(1, 16, 24))
    argv = ["upscale", str(src), str(tmp_path / "o.tif"), "--dtype", "uint8"]
    code, planned = _dry_run(capsys, src, tmp_path / "o.tif", "--dtype", "uint8")
    assert code == 1 and "would write one value (0)" in planned["f.tif"]
    assert main([*argv, "-q"]) == 1


def test_a_refused_output_of_a_batch_stops_it_in_the_dry_run_as_in_the_run(tmp_path, capsys):
    """A text file under one output's name: the batch (in this process) writes nothing, and
    says from the start that --overwrite would not replace it; the dry run had planned the
    other outputs as "would write"."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        make_geotiff(folder / f"s{i}.tif", width=24, height=16, count=1, seed=i)
    out = tmp_path / "out"
    out.mkdir()
    (out / "s1.tif").write_text("my notes\n")
    code, planned = _dry_run(capsys, folder, out)
    assert code == 1 and "not a GeoTIFF" in planned["s1.tif"], planned
    for name in ("s0.tif", "s2.tif"):
        assert planned[name].startswith("not run: the batch stops before any work"), planned
    assert main(["upscale", str(folder), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "s1.tif: not a GeoTIFF file; never replaced, even with --overwrite" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["s1.tif"]
    assert (out / "s1.tif").read_text() == "my notes\n"
    if importlib.util.find_spec("distributed") is not None:  # on Dask the others run
        code, planned = _dry_run(capsys, folder, out, "--workers", "1")
        assert code == 1 and planned["s0.tif"] == "would write", planned


def test_the_dry_run_says_the_noise_gate_may_blend_the_default(tmp_path, capsys):
    """The run wrote "sr-lite-gray-x2+1.00xsr-lite-gray-x2-robust" on a noisy input where the
    dry run had named "sr-lite-gray-x2" alone; a model named by the user is used as it is."""
    src = make_geotiff(tmp_path / "a.tif", width=24, height=16, count=1)
    main(["upscale", str(src), str(tmp_path / "o.tif"), "--dry-run"])
    out = capsys.readouterr().out
    assert "blended towards sr-lite-gray-x2-robust if the input is noisy" in out, out
    main(["upscale", str(src), str(tmp_path / "o.tif"), "--dry-run", "--model", "sr-lite-gray-x2"])
    assert "noise gate" not in capsys.readouterr().out
