"""bundles/sr_mri_x2: `python -m monai.bundle run` offline on real NIfTI files (inference,
train, evaluate), verify_net_in_out, and the metadata MONAI's schema requires."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("monai")
pytest.importorskip("ignite")
nib = pytest.importorskip("nibabel")

from sr_domains import load_checkpoint  # noqa: E402
from sr_domains.medical.geometry import corners  # noqa: E402
from sr_domains.pretrained import load_pretrained  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "sr_mri_x2"
CONFIGS = BUNDLE / "configs"
pytestmark = pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")


def _bundle(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m monai.bundle ...`` in a fresh interpreter, no GPU, offline as it is."""
    pytest.importorskip("fire", reason="the monai.bundle CLI needs fire (the monai extra)")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
    res = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args, "--bundle_root", str(BUNDLE)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory, shared_data) -> Path:
    """The real sample and an odd-sized crop of it (nibabel moves the affine with the crop)."""
    folder = tmp_path_factory.mktemp("hr")
    real = nib.load(shared_data / "nifti" / "aniso_vox.nii.gz")
    nib.save(real.slicer[:, :, 8:14], folder / "slab.nii.gz")
    nib.save(real.slicer[9:42, 4:34, 10:14], folder / "crop.nii.gz")
    return folder


def _aligned(out_path: Path, src_path: Path, factors) -> None:
    out, src = nib.load(out_path), nib.load(src_path)
    assert out.shape == tuple(n * f for n, f in zip(src.shape, factors))
    assert np.abs(corners(out.affine, out.shape) - corners(src.affine, src.shape)).max() < 1e-3
    want = np.asarray(src.header.get_zooms()[:3]) / factors
    np.testing.assert_allclose(out.header.get_zooms()[:3], want, rtol=1e-5)


def test_inference_bundle_cli_on_a_real_nifti(tmp_path, shared_data):
    src = shared_data / "nifti" / "aniso_vox.nii.gz"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / src.name).write_bytes(src.read_bytes())
    config = str(CONFIGS / "inference.json")
    res = _bundle(
        "run", "--config_file", config, "--input_dir", str(tmp_path / "in"),
        "--output_dir", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert "24/24" in res.stderr  # the slice progress bar
    out_path = tmp_path / "out" / "aniso_vox_x2.nii.gz"
    _aligned(out_path, src, (2, 2, 1))
    # profile "mr": the output keeps the input's units, and its 2x2 block means give the input
    x = nib.load(src).get_fdata()
    y = nib.load(out_path).get_fdata()
    block = y.reshape(58, 2, 58, 2, 24).mean(axis=(1, 3))
    spread = np.percentile(x, 99) - np.percentile(x, 1)
    assert np.abs(block - x).mean() < 0.05 * spread
    assert abs(np.percentile(y, 99) - np.percentile(x, 99)) < 0.1 * spread


@pytest.mark.slow  # runs the bundle CLI (a fresh MONAI process) more than once
def test_inference_bundle_skips_its_own_outputs(tmp_path, shared_data):
    """Run twice with the output folder = the input folder: the second run must not take the
    first run's ``*_x2.nii.gz`` as inputs (no ``_x2_x2`` file) and leaves those outputs as
    they were (the source is super-resolved again, to the same result)."""
    real = nib.load(shared_data / "nifti" / "aniso_vox.nii.gz")
    folder = tmp_path / "in"
    folder.mkdir()
    nib.save(real.slicer[:, :, 10:12], folder / "slab.nii.gz")
    args = ("run", "--config_file", str(CONFIGS / "inference.json"), "--input_dir", str(folder),
            "--output_dir", str(folder), "--progress", "False")  # fmt: skip
    _bundle(*args, cwd=tmp_path)
    out = folder / "slab_x2.nii.gz"
    first = nib.load(out)
    first_data, first_affine = first.get_fdata(), first.affine
    _bundle(*args, cwd=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["slab.nii.gz", "slab_x2.nii.gz"]
    again = nib.load(out)
    np.testing.assert_array_equal(again.get_fdata(), first_data)
    np.testing.assert_array_equal(again.affine, first_affine)


@pytest.mark.parametrize(
    ("config", "folder_key", "postfix"),
    [("inference.json", "input_dir", "x2"), ("evaluate.json", "dataset_dir", "sr")],
)
def test_bundle_datalists_leave_out_the_bundles_own_outputs(tmp_path, config, folder_key, postfix):
    """The datalist as MONAI's ConfigParser evaluates it: files named like the config's own
    outputs (``<stem>_<output_postfix><output_ext>``) are not inputs, the others are, and an
    overridden postfix moves the rule with it."""
    from monai.bundle import ConfigParser

    names = ["a.nii.gz", f"a_{postfix}.nii.gz", "b.nii", f"c_{postfix}x.nii.gz", "d_x4.nii.gz"]
    for name in names:
        (tmp_path / name).write_bytes(b"")

    def datalist(**over) -> list[str]:
        parser = ConfigParser()
        parser.read_config(str(CONFIGS / config))
        parser.update({folder_key: str(tmp_path), "output_dir": str(tmp_path), **over})
        return [Path(d["image"]).name for d in parser.get_parsed_content("datalist")]

    kept = sorted(set(names) - {f"a_{postfix}.nii.gz"})
    assert datalist() == kept
    assert datalist(output_postfix="x4") == sorted(set(names) - {"d_x4.nii.gz"})


@pytest.mark.slow  # runs the bundle CLI (a fresh MONAI process) more than once
def test_train_then_evaluate_bundles(tmp_path, hr_dir):
    """train.json fine-tunes the shipped weights on real volumes and saves a checkpoint;
    evaluate.json scores it with PSNR / SSIM and writes SR files on each HR file's grid, the
    odd-sized crop included (DivisiblePadd undone by SRInvertd)."""
    ckpt = tmp_path / "models" / "model.safetensors"
    _bundle(
        "run", "--config_file", str(CONFIGS / "train.json"), "--dataset_dir", str(hr_dir),
        "--ckpt_path", str(ckpt), "--max_epochs", "1", "--patch_size", "[32, 32, 1]",
        "--num_samples", "2", cwd=tmp_path,
    )  # fmt: skip
    tuned, _ = load_checkpoint(ckpt)
    shipped = load_pretrained("sr-lite-gray-x2")
    deltas = [
        float((a - b).detach().abs().max())
        for a, b in zip(tuned.parameters(), shipped.parameters())
    ]
    assert max(deltas) > 0  # trained, from the shipped weights (same architecture)
    out = tmp_path / "eval"
    _bundle(
        "run", "--config_file", str(CONFIGS / "evaluate.json"), "--dataset_dir", str(hr_dir),
        "--output_dir", str(out), "--weights", str(ckpt), cwd=tmp_path,
    )  # fmt: skip
    scores = {k: float(v) for k, v in csv.reader((out / "metrics.csv").open())}
    assert 18 < scores["psnr"] < 45 and 0.5 < scores["ssim"] < 1
    with (out / "psnr_raw.csv").open() as f:
        per_volume = {Path(r["filename"]).name: float(r["mean"]) for r in csv.DictReader(f)}
    assert sorted(per_volume) == ["crop.nii.gz", "slab.nii.gz"]
    assert np.mean(list(per_volume.values())) == pytest.approx(scores["psnr"], rel=1e-5)
    for src in hr_dir.glob("*.nii.gz"):
        _aligned(out / src.name.replace(".nii.gz", "_sr.nii.gz"), src, (1, 1, 1))


def test_verify_net_in_out_offline():
    from monai.bundle import verify_net_in_out

    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        device="cpu",
        n=4,
    )


def test_metadata_has_what_the_monai_schema_requires():
    """The required fields of MONAI's meta_schema_20240725 (checked here offline; the schema
    itself is downloaded by verify_metadata, see the next test)."""
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    required = {
        "schema": str, "version": str, "monai_version": str, "pytorch_version": str,
        "numpy_version": str, "required_packages_version": dict, "task": str,
        "description": str, "authors": str, "copyright": str, "network_data_format": dict,
    }  # fmt: skip
    for key, kind in required.items():
        assert isinstance(meta.get(key), kind), key
    assert meta["schema"].endswith("meta_schema_20240725.json")
    fmt = meta["network_data_format"]
    tensor_keys = {"type", "format", "num_channels", "spatial_shape", "dtype", "value_range"}
    for group in ("inputs", "outputs"):
        for spec in fmt[group].values():
            assert tensor_keys <= set(spec), (group, spec)
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    assert meta["required_packages_version"]["sr-domains"] == version
    card = load_pretrained(json.loads((CONFIGS / "inference.json").read_text())["model_name"])
    assert fmt["inputs"]["image"]["num_channels"] == card.in_channels
    assert meta["version"] in meta["changelog"]


def test_verify_metadata_against_a_local_schema():
    """Runs MONAI's own verify_metadata when a local copy of the schema is given (it is
    downloaded from GitHub otherwise, which this offline suite does not do)."""
    schema = os.environ.get("SR_DOMAINS_MONAI_SCHEMA")
    if not schema or not Path(schema).is_file():
        pytest.skip("set SR_DOMAINS_MONAI_SCHEMA to a local meta_schema_20240725.json")
    pytest.importorskip("jsonschema")
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=schema)
