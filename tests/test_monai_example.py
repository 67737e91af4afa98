"""examples/monai_pipeline.py and monai_evaluate.py run end to end on real NIfTI files."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _examples import run_example

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

import sr_domains  # noqa: E402
from sr_domains.medical.geometry import corners  # noqa: E402
from sr_domains.pretrained import list_pretrained  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "monai_pipeline.py"
EVALUATE = REPO / "examples" / "monai_evaluate.py"
pytestmark = pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")


def _example_module():
    spec = importlib.util.spec_from_file_location("monai_pipeline", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_example(EXAMPLE, *args)


def _check_aligned(out_dir: Path, stdout: str) -> None:
    (saved,) = out_dir.glob("*_x2.nii.gz")
    assert str(saved.name) in stdout
    src = nib.load(_example_module().default_input())  # the default the script used
    out = nib.load(saved)
    finest = np.argsort(src.header.get_zooms()[:3], kind="stable")[:2]
    factors = [2 if a in finest else 1 for a in range(3)]
    assert out.shape == tuple(n * f for n, f in zip(src.shape[:3], factors))
    err = np.abs(corners(src.affine, src.shape[:3]) - corners(out.affine, out.shape)).max()
    assert err < 1e-3
    np.testing.assert_allclose(
        out.header.get_zooms(), np.array(src.header.get_zooms()[:3]) / factors, rtol=1e-5
    )


def test_example_with_weights_writes_an_aligned_file(tmp_path, capsys):
    ckpt = sr_domains.save_checkpoint(
        sr_domains.create_model("edsr-lite-ca", in_channels=1, scale=2), tmp_path / "m.safetensors"
    )
    res = _run("--weights", str(ckpt), "--output-dir", str(tmp_path / "out"), "--device", "cpu")
    assert res.returncode == 0, res.stderr
    _check_aligned(tmp_path / "out", res.stdout)
    again = _example_module().main(["--weights", str(ckpt), "--output-dir", str(tmp_path / "out")])
    assert again == 2 and "--overwrite" in capsys.readouterr().err


@pytest.mark.slow  # a second run of the example script; the one above stays in the default run
def test_example_with_the_shipped_default_weights(tmp_path):
    if not any(e.scale == 2 and e.in_channels == 1 for e in list_pretrained()):
        pytest.skip("no default x2 weights shipped")
    res = _run("--output-dir", str(tmp_path / "out"), "--device", "cpu")
    assert res.returncode == 0, res.stderr
    _check_aligned(tmp_path / "out", res.stdout)


def test_example_without_weights_says_what_to_do(tmp_path, capsys):
    if any(e.scale == 2 and e.in_channels == 1 for e in list_pretrained()):
        pytest.skip("default x2 weights are shipped")
    assert _example_module().main(["--output-dir", str(tmp_path / "out")]) == 2
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def one_thread():
    """One torch thread (many tiny forward passes; two threads on busy shared cores are many
    times slower); restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_evaluate_example_scores_two_volumes_and_beats_bicubic(
    tmp_path, capsys, shared_data, one_thread
):
    """examples/monai_evaluate.py: a SupervisedEvaluator over two real MRI volumes with PSNR /
    SSIM handlers; the shipped weights beat bicubic on both, the SR files overlay the inputs."""
    spec = importlib.util.spec_from_file_location("monai_evaluate", EVALUATE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.SAMPLE.resolve() == (shared_data / "nifti" / "aniso_vox.nii.gz").resolve()
    assert mod.main(["--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    scores = {}
    for name in ("model", "bicubic"):
        with (tmp_path / name / "metrics.csv").open() as f:
            scores[name] = {k: float(v) for k, v in csv.reader(f)}
        with (tmp_path / name / "psnr_raw.csv").open() as f:
            per_volume = {Path(r["filename"]).name: float(r["mean"]) for r in csv.DictReader(f)}
        assert sorted(per_volume) == ["crop.nii.gz", "whole_plane.nii.gz"]
        assert f"{name:8s} PSNR {scores[name]['psnr']:6.2f} dB" in printed
    assert scores["model"]["psnr"] > scores["bicubic"]["psnr"] + 0.3
    assert scores["model"]["ssim"] > scores["bicubic"]["ssim"]
    for hr in (tmp_path / "hr").glob("*.nii.gz"):
        sr = nib.load(tmp_path / "sr" / hr.name.replace(".nii.gz", "_x2.nii.gz"))
        src = nib.load(hr)
        assert sr.shape == src.shape
        np.testing.assert_allclose(sr.affine, src.affine, atol=1e-4)
