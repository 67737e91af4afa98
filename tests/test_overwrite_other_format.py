"""``--overwrite`` replaces an existing output file only when it is a file of the output's
format: a text file (a report, notes) under an output's name is refused, untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_domains.cli import main
from sr_domains.errors import UnsafeOutputError
from sr_domains.output_checks import preflight
from sr_domains.testing.geo import make_geotiff

NOTES = b"my notes, not an image\n"


@pytest.mark.parametrize(
    "name",
    [
        "out.tif",
        "OUT.TIFF",
        "out.nii",
        "out.nii.gz",
        "out.png",
        "m.safetensors",
        "m.pt",
        "m.pt2",
        "m.onnx",
    ],
)
def test_a_file_of_another_format_is_never_replaced(tmp_path, name):
    dst = tmp_path / name
    dst.write_bytes(NOTES)
    with pytest.raises(UnsafeOutputError, match="is not an? .*never replaced, even with"):
        preflight(dst, [], overwrite=True)
    assert dst.read_bytes() == NOTES


def test_an_empty_file_or_one_of_the_format_or_another_suffix_may_be_replaced(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "cut.tif").write_bytes(b"II*\x00" + bytes(4))  # a TIFF cut short: ours to redo
    (tmp_path / "big.nii").write_bytes((348).to_bytes(4, "big") + bytes(8))
    (tmp_path / "notes.json").write_bytes(NOTES)  # (suffixes without a known format)
    for name in ("empty.tif", "cut.tif", "big.nii", "notes.json"):
        preflight(tmp_path / name, [], overwrite=True)
    with pytest.raises(Exception, match="exists"):  # without --overwrite: still refused
        preflight(tmp_path / "cut.tif", [], overwrite=False)


def test_cli_refuses_to_overwrite_a_text_file_named_like_the_output(tmp_path, capsys):
    src = make_geotiff(tmp_path / "in.tif", width=16, height=12, count=1, crs="EPSG:32633")
    dst = tmp_path / "out.tif"
    dst.write_bytes(NOTES)
    argv = ["upscale", str(src), str(dst), "--overwrite", "--device", "cpu", "--no-progress"]
    assert main(argv) != 0
    assert "is not a GeoTIFF file" in capsys.readouterr().err
    assert dst.read_bytes() == NOTES
    dst.unlink()
    assert main(argv) == 0 and main(argv) == 0  # our own output is replaced
    rasterio = pytest.importorskip("rasterio")
    with rasterio.open(dst) as ds:
        assert ds.shape == (24, 32) and np.isfinite(ds.read(1)).all()


def test_nifti_cli_refuses_a_text_file_named_like_the_output(tmp_path, capsys):
    pytest.importorskip("nibabel")
    from sr_domains.testing.medical import make_nifti

    src = make_nifti(tmp_path / "in.nii.gz", shape=(12, 10, 4))
    dst = Path(tmp_path / "out.nii.gz")
    dst.write_bytes(NOTES)
    assert main(["upscale", str(src), str(dst), "--overwrite", "--no-progress"]) != 0
    assert "is not a gzipped NIfTI file" in capsys.readouterr().err
    assert dst.read_bytes() == NOTES


def test_model_files_replace_only_model_files(tmp_path, capsys):
    """save_checkpoint(overwrite=True) and export --overwrite replaced a text file named
    .safetensors / .onnx; now refused, untouched, while a real model file is replaced."""
    import torch

    from sr_domains import create_model, save_checkpoint

    model = create_model("srcnn", in_channels=1, scale=2)
    notes = tmp_path / "m.safetensors"
    notes.write_bytes(NOTES)
    with pytest.raises(UnsafeOutputError, match="not a safetensors file"):
        save_checkpoint(model, notes, overwrite=True)
    assert notes.read_bytes() == NOTES
    ours = save_checkpoint(model, tmp_path / "ok.safetensors")
    save_checkpoint(model, ours, overwrite=True)  # a model file: replaced
    script = tmp_path / "m.pt"  # (TorchScript: torch alone, no onnx needed)
    script.write_bytes(NOTES)
    argv = ["export", "--weights", str(ours), str(script), "--overwrite"]
    assert main(argv) == 1
    assert "exists and is not a TorchScript file: it is not a model file" in capsys.readouterr().err
    assert script.read_bytes() == NOTES
    torch.jit.save(torch.jit.script(torch.nn.Identity()), script)
    assert main(argv) == 0  # a TorchScript file: replaced (torch.save files: never, see
    assert script.read_bytes()[:2] == b"PK"  # test_overwrite_model_files.py)
