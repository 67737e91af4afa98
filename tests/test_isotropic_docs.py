"""Every Python block of the "Isotropic volumes" section of docs/medical.md runs as written (on
generated inputs; the training budget is cut to two steps so the test stays fast)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

nib = pytest.importorskip("nibabel")
pytest.importorskip("pydicom")
pytest.importorskip("monai")

from sr_domains.adapt import Budget  # noqa: E402
from sr_domains.medical import isotropic_io  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "medical.md"


def _section_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Isotropic volumes")
    end = text.index("\n## ", start + 10)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


@pytest.mark.slow  # like the doc pages that run commands (tests/test_doc_snippets.py)
def test_isotropic_doc_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        isotropic_io.Budget, "minutes", classmethod(lambda cls, m, s=None: Budget(None, 2))
    )
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        make_nifti("t2.nii.gz", shape=(96, 90, 12), spacing=(0.9, 0.9, 4.4))
        make_dicom_series("t2_dicom", n_slices=5, pixel_spacing=(0.9, 0.9), slice_spacing=3.6)
        blocks = _section_blocks()
        assert len(blocks) >= 3
        ns: dict = {}
        for i, code in enumerate(blocks):
            exec(compile(code, f"medical.md isotropic block {i + 1}", "exec"), ns)
    finally:
        torch.set_num_threads(n)
    assert nib.load("t2_iso.nii.gz").shape == (96, 90, 59)  # 12 * 4.4 / 0.9 = 58.7
    assert nib.load("t2_1mm.nii.gz").header.get_zooms()[:3] == pytest.approx((1.0, 1.0, 1.0))
    assert len(list(Path("t2_iso_dicom").glob("*.dcm"))) == 20  # 5 * 3.6 / 0.9
    assert list(Path("iso").rglob("*_iso.nii.gz"))
