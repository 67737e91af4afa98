"""Every Python block of docs/monai.md runs as written, in order, on two NIfTI volumes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
pytest.importorskip("ignite")
nib = pytest.importorskip("nibabel")

from sr_domains.medical.geometry import corners  # noqa: E402
from sr_domains.testing.medical import make_nifti, oblique_affine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "monai.md"
pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]


@pytest.fixture
def one_thread():
    """One torch thread: the blocks run many tiny forward passes, which two threads on busy
    shared cores slow down many times over (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_docs_python_blocks_run_in_order(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    files = []
    for i in (1, 2):
        aff = oblique_affine((1.0, 1.1, 3.0))
        aff[:3, 3] += 5.0 * i
        files.append(make_nifti(f"sub-0{i}_T1w.nii.gz", shape=(48, 40, 6), affine=aff))
    blocks = _blocks()
    assert len(blocks) >= 5
    ns: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name} python block {i + 1}", "exec"), ns)
    # what the blocks promise: SR files that overlay their inputs
    for f in files:
        src = nib.load(f)
        for postfix, factor in (("x2", 2), ("sr", 1)):
            out_path = tmp_path / "out" / f.name.replace(".nii.gz", f"_{postfix}.nii.gz")
            if postfix == "x2" and f.name.startswith("sub-02"):
                continue  # the first block runs on sub-01 only
            out = nib.load(out_path)
            # "sr": Spacingd to 1 mm then x2 -> the file grid at 0.5 / 0.55 mm in-plane
            want = np.asarray(src.header.get_zooms()) / (2, 2, 1) if factor == 2 else None
            if want is not None:
                np.testing.assert_allclose(out.header.get_zooms(), want, rtol=1e-5)
            err = np.abs(corners(out.affine, out.shape) - corners(src.affine, src.shape)).max()
            assert err < 0.6  # same field of view (the 1 mm Spacingd grid rounds the far edge)
    assert set(ns["evaluator"].state.metrics) == {"psnr", "ssim"}
    assert len(ns["items"]) == 2 and ns["d"]["image_lr"].shape[1:3] == (16, 16)
