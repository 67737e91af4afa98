"""``--dry-run`` refuses the NIfTI and DICOM inputs the run refuses, with the run's message and
exit status 1: a voxel type the run does not read (RGB, complex), a label image, a file that is
not NIfTI, voxel data cut short (plain or gzip) and a DICOM file whose pixel data is cut short."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")

from sr_domains import inference  # noqa: E402
from sr_domains.cli import main  # noqa: E402

LINE = re.compile(r"^(?:nifti|dicom): \S+ -> \S+ \[(.*)\]$", re.M)


@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(inference, "resolve_device", lambda device="auto": torch.device("cpu"))


def _save(path: Path, data: np.ndarray, intent: str | None = None) -> Path:
    img = nib.Nifti1Image(data, np.eye(4))
    if intent:
        img.header.set_intent(intent)
    nib.save(img, path)
    return path


def _rgb(d: Path) -> Path:
    rgb = np.zeros((8, 8, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    return _save(d / "rgb.nii", rgb)


def _complex(d: Path) -> Path:
    return _save(d / "complex.nii", np.ones((8, 8, 2), np.complex64))


def _label(d: Path) -> Path:
    return _save(d / "label.nii", np.ones((8, 8, 2), np.int16), intent="label")


def _text(d: Path) -> Path:
    (d / "x.nii").write_text("not an image\n")
    return d / "x.nii"


def _cut(d: Path, name: str, keep: Callable[[int], int]) -> Path:
    whole = _save(d / f"whole_{name}", np.random.default_rng(0).random((16, 16, 4), np.float32))
    data = whole.read_bytes()
    (d / name).write_bytes(data[: keep(len(data))])
    whole.unlink()
    return d / name


def _truncated(d: Path) -> Path:
    return _cut(d, "cut.nii", lambda n: n // 2)


def _truncated_gz(d: Path) -> Path:
    return _cut(d, "cut.nii.gz", lambda n: n - 200)


def _dicom_truncated(d: Path) -> Path:
    data = pytest.importorskip("pydicom.data")
    return Path(shutil.copy(data.get_testdata_file("MR_truncated.dcm"), d / "MR_truncated.dcm"))


def _flat(d: Path) -> Path:  # one slice: nothing to upscale through
    return _save(d / "flat.nii", np.random.default_rng(2).random((16, 16, 1), np.float32))


def _two_d(d: Path) -> Path:  # a 2-D file: one slice too
    return _save(d / "plane.nii", np.random.default_rng(3).random((16, 12), np.float32))


def _one_slice_series(d: Path) -> Path:
    data = pytest.importorskip("pydicom.data")
    (d / "one").mkdir()
    shutil.copy(data.get_testdata_file("CT_small.dcm"), d / "one" / "CT_small.dcm")
    return d / "one"


THROUGH = ["--through-plane"]
CASES = {
    "through_plane_nifti": (_flat, "through-plane SR needs >= 2 voxels", THROUGH),
    "through_plane_dicom": (_one_slice_series, "through-plane SR needs >= 2 voxels", THROUGH),
    "through_plane_2d": (_two_d, "the volume is 16x12", THROUGH),
    "rgb": (_rgb, "unsupported voxel type"),
    "complex": (_complex, "unsupported voxel type complex64"),
    "label": (_label, "label image"),
    "text": (_text, "not a readable NIfTI file"),
    "truncated": (_truncated, "truncated file"),
    "truncated_gz": (_truncated_gz, "truncated or corrupt gzip data"),
    "dicom_truncated": (_dicom_truncated, "cannot decode the pixel data"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_dry_run_refuses_what_the_run_refuses(case, tmp_path, capsys):
    make, problem, *extra = CASES[case]
    args = extra[0] if extra else []
    src = make(tmp_path)
    dst = tmp_path / ("out" if src.suffix == ".dcm" else "out" + "".join(src.suffixes))
    code = main(["upscale", str(src), str(dst), "--dry-run", *args])
    out = capsys.readouterr().out
    actions = LINE.findall(out)
    assert code == 1 and len(actions) == 1, out
    assert actions[0].startswith(f"error: {src}: ") and problem in actions[0], actions[0]
    assert not dst.exists()
    # the run fails on it with the same message
    assert main(["upscale", str(src), str(dst), *args]) == 1
    err = capsys.readouterr().err
    assert actions[0].removeprefix("error: ") in err, err
    assert not dst.exists()


def test_the_dry_run_still_plans_a_good_nifti(tmp_path, capsys):
    src = _save(tmp_path / "good.nii.gz", np.random.default_rng(1).random((16, 16, 3), np.float32))
    code = main(["upscale", str(src), str(tmp_path / "out.nii.gz"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and LINE.findall(out) == ["would write"], out


def test_the_dry_run_reads_a_study_folder_as_the_run_does(tmp_path, capsys):
    """A study folder (series in subfolders) is one series in this process, as the run reads
    it: an existing output is refused, not "skipped: complete", and two series need
    ``--series``; only on Dask (``--workers``) is it a batch of its series."""
    pytest.importorskip("pydicom")
    from sr_domains.testing.dicom import make_dicom_series

    one, two = tmp_path / "one", tmp_path / "two"
    make_dicom_series(one / "s1", n_slices=3, rows=16, cols=16)
    make_dicom_series(two / "s1", n_slices=3, rows=16, cols=16)
    make_dicom_series(two / "s2", n_slices=3, rows=16, cols=16, series_uid="1.2.3.4.5", seed=1)
    out = tmp_path / "out"
    assert main(["upscale", str(one), str(out), "--scale", "2"]) == 0
    capsys.readouterr()

    def planned(src: Path, *extra: str, dst: Path = out) -> tuple[int, list[str]]:
        code = main(["upscale", str(src), str(dst), "--scale", "2", "--dry-run", *extra])
        return code, LINE.findall(capsys.readouterr().out)

    assert planned(one) == (1, ["refused: exists (pass --overwrite)"])
    assert main(["upscale", str(one), str(out), "--scale", "2"]) == 1  # as the run
    assert "output exists" in capsys.readouterr().err
    assert planned(one, "--workers", "1") == (0, ["would skip: complete"])

    code = main(["upscale", str(two), str(tmp_path / "new"), "--scale", "2", "--dry-run"])
    text = capsys.readouterr().out
    assert code == 1 and f"[error: {two}: holds 2 series" in text, text
    assert planned(two, "--series", "1.2.3.4.5", dst=tmp_path / "new") == (0, ["would write"])
    code, actions = planned(two, "--workers", "1", dst=tmp_path / "new")
    assert code == 0 and actions == ["would write", "would write"], actions
