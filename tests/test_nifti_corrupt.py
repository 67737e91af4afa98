"""Truncated or corrupt ``.nii.gz`` input: a one-line InputFileError naming the file (never a
raw ``EOFError`` / ``zlib.error`` traceback), a batch that goes on with the other files, and
``sr-domains info`` reporting the problem. Real nibabel files, the real CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import read_nifti  # noqa: E402
from sr_domains.testing.medical import make_nifti  # noqa: E402

FAST = ["--device", "cpu", "--tile", "64", "--no-progress"]
GZIP_PROBLEM = "truncated or corrupt gzip data"


def good(path: Path) -> Path:
    return make_nifti(path, shape=(20, 16, 8), dtype="int16")


def truncated(path: Path) -> Path:
    """A ``.nii.gz`` cut inside its deflate stream (``head -c``): the header still reads."""
    src = good(path.with_name("whole_" + path.name))
    data = src.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    src.unlink()
    return path


def flipped_voxel(path: Path) -> tuple[Path, np.ndarray]:
    """A ``.nii.gz`` of stored (uncompressed) deflate blocks with one voxel byte flipped: the
    stream still inflates, to a wrong value; only the gzip checksum tells. Returns the file and
    the voxels it should hold."""
    src = good(path.with_name("whole_" + path.name))
    img = nib.load(src)
    raw = gzip.decompress(src.read_bytes())
    offset = int(img.dataobj.offset)
    body = bytearray(gzip.compress(raw, compresslevel=0, mtime=0))
    mid = (offset + len(raw)) // 2  # a voxel byte in the middle of the phantom
    window = raw[mid - 16 : mid + 16]
    assert body.count(window) == 1  # stored blocks: the voxel bytes appear as they are
    body[body.find(window) + 16] ^= 0xFF
    path.write_bytes(bytes(body))
    want = np.asarray(img.dataobj)
    src.unlink()
    return path, want


def test_truncated_gz_read_names_the_file(tmp_path):
    t = truncated(tmp_path / "t.nii.gz")
    with pytest.raises(InputFileError, match=GZIP_PROBLEM) as info:
        read_nifti(t)
    assert info.value.path == str(t)
    assert isinstance(info.value.__cause__, EOFError)


def test_corrupt_deflate_data_names_the_file(tmp_path):
    src = good(tmp_path / "whole.nii.gz")
    body = bytearray(src.read_bytes())
    for k in range(len(body) * 4 // 5, len(body) * 4 // 5 + 40):  # late in the stream
        body[k] ^= 0x5A
    bad = tmp_path / "c.nii.gz"
    bad.write_bytes(bytes(body))
    with pytest.raises(InputFileError, match=GZIP_PROBLEM) as info:
        read_nifti(bad)
    assert info.value.path == str(bad)


def test_checksum_mismatch_is_not_read_as_good_values(tmp_path):
    """Before: the planes were read and the flipped voxel used silently (the stream was never
    read to its end, where gzip checks the CRC)."""
    bad, want = flipped_voxel(tmp_path / "f.nii.gz")
    assert np.asarray(nib.load(bad).dataobj).shape == want.shape  # the header is fine
    with pytest.raises(InputFileError, match=GZIP_PROBLEM + ".*CRC"):
        read_nifti(bad)


def test_cli_upscale_truncated_gz_one_line_error(tmp_path, capsys):
    t = truncated(tmp_path / "t.nii.gz")
    out = tmp_path / "o.nii.gz"
    assert main(["upscale", str(t), str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert f"{t}: {GZIP_PROBLEM}" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".o", "o.nii"))]


def test_cli_info_reports_truncated_and_corrupt_files(tmp_path, capsys):
    t = truncated(tmp_path / "t.nii.gz")
    f, _ = flipped_voxel(tmp_path / "f.nii.gz")
    for path in (t, f):
        for extra in ([], ["--json"]):
            assert main(["info", str(path), *extra]) == 1, (path, extra)
            err = capsys.readouterr().err
            assert f"{path}: {GZIP_PROBLEM}" in err
            assert "Traceback" not in err
    plain = good(tmp_path / "p.nii")  # an uncompressed file cut short
    plain.write_bytes(plain.read_bytes()[:-100])
    assert main(["info", str(plain)]) == 1
    assert f"{plain}: the header claims 20x16x8 int16 voxels" in capsys.readouterr().err
    ok = good(tmp_path / "ok.nii.gz")
    assert main(["info", str(ok)]) == 0
    assert "shape      20 x 16 x 8" in capsys.readouterr().out


def test_batch_goes_on_past_a_truncated_file(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    truncated(folder / "a_trunc.nii.gz")
    good(folder / "b_good.nii.gz")
    flipped_voxel(folder / "c_flip.nii.gz")
    out = tmp_path / "out"
    assert main(["upscale", str(folder), str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in ("a_trunc.nii.gz", "c_flip.nii.gz"):
        assert f"{folder / name}: {GZIP_PROBLEM}" in err
    assert nib.load(out / "b_good.nii.gz").shape[:2] == (40, 32)
    assert not (out / "a_trunc.nii.gz").exists()
    assert not (out / "c_flip.nii.gz").exists()
    records = [json.loads(line) for line in (out / "sr-domains-run.jsonl").read_text().splitlines()]
    status = {Path(r["input"]).name: r["status"] for r in records}
    assert status == {"a_trunc.nii.gz": "failed", "b_good.nii.gz": "ok", "c_flip.nii.gz": "failed"}
