"""examples/enhance_mri.py: refused outputs and bad inputs are one line each, not tracebacks;
the other files are still processed and the exit status says something failed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _examples import run_example

nib = pytest.importorskip("nibabel")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "enhance_mri.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_example(EXAMPLE, *args, cwd=cwd)


def _failures(res: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    return [line for line in res.stderr.splitlines() if line.startswith("failed: ")]


@pytest.fixture
def folder(tmp_path, shared_data) -> Path:
    """Two real two-slice volumes and a file named like NIfTI that is not one."""
    real = nib.load(shared_data / "nifti" / "aniso_vox.nii.gz")
    src = tmp_path / "in"
    src.mkdir()
    nib.save(real.slicer[:, :, 10:12], src / "a.nii.gz")
    nib.save(real.slicer[:, :, 12:14], src / "b.nii.gz")
    (src / "bad.nii.gz").write_bytes(b"not a NIfTI file")
    return src


def test_a_folder_run_reports_each_failed_file_in_one_line(tmp_path, folder):
    out = tmp_path / "out"
    first = _run("in", "out", cwd=tmp_path)
    assert first.returncode != 0
    (bad,) = _failures(first)
    assert "bad.nii.gz" in bad
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "b.nii.gz"]  # the others ran
    assert "in memory:" in first.stdout  # the array demo uses a file that worked
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    again = _run("in", "out", cwd=tmp_path)  # no --overwrite: every output is refused
    assert again.returncode != 0
    lines = _failures(again)
    assert len(lines) == 3, again.stderr
    for name in ("a.nii.gz", "b.nii.gz"):
        assert any(f"out/{name}: output exists" in line for line in lines), lines
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_output_equal_to_the_input_is_one_line(tmp_path, folder):
    before = (folder / "a.nii.gz").read_bytes()
    res = _run("in/a.nii.gz", "in/a.nii.gz", "--overwrite", cwd=tmp_path)
    assert res.returncode != 0
    (line,) = _failures(res)
    assert "would replace the input" in line
    assert (folder / "a.nii.gz").read_bytes() == before
