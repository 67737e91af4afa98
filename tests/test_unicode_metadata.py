"""Non-ASCII and unusual metadata kept end to end: NIfTI ``descrip`` bytes, provenance found
beside an input's own JSON comment (resume), DICOM SeriesDescription with a backslash or at
its 64-character limit, and paths a console cannot encode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from sr_domains.cli import main  # noqa: E402
from sr_domains.medical.dicom_derive import derived_description  # noqa: E402
from sr_domains.testing.dicom import make_dicom_series  # noqa: E402
from sr_domains.testing.medical import make_nifti  # noqa: E402

OWN = "T1 Größe ü – 3T".encode()  # UTF-8


def _with_header(path: Path, descrip: bytes | None = None, comment: dict | None = None):
    img = nib.load(path)
    img = nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header)
    if descrip is not None:
        img.header["descrip"] = descrip
    if comment is not None:
        ext = nib.nifti1.Nifti1Extension("comment", json.dumps(comment).encode())
        img.header.extensions.append(ext)
    nib.save(img, path)
    return path


def test_nifti_descrip_keeps_its_own_bytes(tmp_path):
    """Every non-ASCII byte of the source's descrip became ``?``."""
    src = _with_header(make_nifti(tmp_path / "a.nii.gz", shape=(12, 10, 3)), descrip=OWN)
    assert main(["upscale", str(src), str(tmp_path / "b.nii.gz"), "--no-progress"]) == 0
    got = bytes(nib.load(tmp_path / "b.nii.gz").header["descrip"].item()).split(b"\x00")[0]
    assert got.startswith(b"SR x2") and got.endswith(b" | " + OWN), got


def test_a_long_utf8_descrip_is_cut_on_a_character(tmp_path):
    long = ("ü" * 60).encode()  # 120 bytes
    src = _with_header(make_nifti(tmp_path / "a.nii.gz", shape=(12, 10, 3)), descrip=long)
    assert main(["upscale", str(src), str(tmp_path / "b.nii.gz"), "--no-progress"]) == 0
    got = bytes(nib.load(tmp_path / "b.nii.gz").header["descrip"].item()).split(b"\x00")[0]
    assert len(got) <= 80 and got.decode("utf-8").endswith("ü")


@pytest.mark.parametrize("case", ["own JSON comment", "an output upscaled again"])
def test_a_resumed_batch_finds_its_own_provenance(tmp_path, capsys, case):
    """The first JSON comment was read as ours: an input with its own made the second run
    refuse ("output exists"), and an input that is an earlier output was redone each time
    ("its input changed")."""
    folder = tmp_path / "in"
    folder.mkdir()
    src = make_nifti(folder / "a.nii.gz", shape=(12, 10, 3))
    if case == "own JSON comment":
        _with_header(src, comment={"note": "scanner export", "software": "dcm2niix"})
    else:
        first = tmp_path / "first.nii.gz"
        assert main(["upscale", str(src), str(first), "--no-progress"]) == 0
        src.unlink()
        first.rename(src)
    argv = ["upscale", str(folder), str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    said = capsys.readouterr()
    out = said.out + said.err
    assert "0 written, 1 already complete, 0 failed" in out, out


def test_dicom_series_description_with_a_backslash_and_at_its_limit(tmp_path):
    """A backslash (two values to pydicom) was written as ``"['T2', 'FLAIR é'] SR x2"``; a
    description at 64 characters lost its start."""
    for desc, want_start in (("T2\\FLAIR é", "T2\\FLAIR é"), ("Séquence très longue " * 4, "Séq")):
        folder = tmp_path / "s"
        make_dicom_series(folder, n_slices=2, rows=12, cols=10)
        for f in folder.iterdir():
            ds = pydicom.dcmread(f)
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.SeriesDescription = desc
            ds.save_as(f)
        out = tmp_path / "o"
        assert main(["upscale", str(folder), str(out), "--no-progress"]) == 0
        (first, *_) = sorted(out.glob("*.dcm"))
        got = pydicom.dcmread(first).SeriesDescription
        text = "\\".join(got) if isinstance(got, pydicom.multival.MultiValue) else str(got)
        assert text.startswith(want_start) and text.endswith("SR x2") and len(text) <= 64, text
        for p in (folder, out):
            for f in p.iterdir():
                f.unlink()
            p.rmdir()


def test_derived_description_cuts_the_description_not_the_label():
    assert derived_description("", "SR x2") == "SR x2"
    assert derived_description("T1", "SR x2") == "T1 SR x2"
    long = derived_description("x" * 70, "SR x2")
    assert long == "x" * 58 + " SR x2" and len(long) == 64


def test_the_script_prints_paths_its_console_cannot_encode(tmp_path):
    pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "scène 日本.tif", width=16, height=16)
    dst = tmp_path / "sortie ×2.tif"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    argv = [sys.executable, "-m", "sr_domains", "upscale", str(src), str(dst), "--no-progress"]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "sortie \\xd72.tif" in r.stdout and dst.exists()


@pytest.mark.parametrize("charset", ["ISO_IR 100", None, "ISO_IR 192"])
def test_derivation_description_fits_the_series_character_set(tmp_path, charset, caplog):
    """A model card named "Modèle 脳" went into a Latin-1 series as ``Modèle ?`` (pydicom's
    replacement, a warning per file) and into a default-repertoire series as Latin-1 bytes."""
    from sr_domains.checkpoint import ModelCard, save_checkpoint
    from sr_domains.models import create_model

    net = create_model("edsr", in_channels=1, scale=2, n_blocks=1, n_feats=8)
    card = ModelCard(name="Modèle 脳", profile={"recipe": "percentile:0.5,99.5"})
    weights = save_checkpoint(net, tmp_path / "w.safetensors", card)
    folder = tmp_path / "s"
    make_dicom_series(folder, n_slices=2, rows=12, cols=10)
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        if charset is None:
            ds.pop("SpecificCharacterSet", None)
        else:
            ds.SpecificCharacterSet = charset
        ds.save_as(f)
    argv = ["upscale", str(folder), str(tmp_path / "o"), "--weights", str(weights)]
    assert main([*argv, "--no-progress"]) == 0
    for f in sorted((tmp_path / "o").glob("*.dcm")):
        raw = pydicom.dcmread(f)["DerivationDescription"]
        text = str(raw.value)
        if charset == "ISO_IR 192":
            assert "Modèle 脳" in text
        elif charset == "ISO_IR 100":
            assert "Modèle \\u8133" in text
        else:
            assert "Mod\\xe8le \\u8133" in text and text.isascii()
    if charset != "ISO_IR 192":
        assert caplog.text.count("cannot hold") == 1  # (once per series)


def test_slices_of_two_character_sets_each_get_text_they_can_hold(tmp_path):
    """The text checked against the first slice's character set was reused for every slice:
    the Latin-1 slices of a series that starts with a UTF-8 one got pydicom's ``?``."""
    from sr_domains.checkpoint import ModelCard, save_checkpoint
    from sr_domains.models import create_model

    net = create_model("edsr", in_channels=1, scale=2, n_blocks=1, n_feats=8)
    card = ModelCard(name="Modèle 脳", profile={"recipe": "percentile:0.5,99.5"})
    weights = save_checkpoint(net, tmp_path / "w.safetensors", card)
    folder = tmp_path / "s"
    make_dicom_series(folder, n_slices=4, rows=12, cols=10)
    for i, f in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = "ISO_IR 192" if i % 2 == 0 else "ISO_IR 100"
        ds.save_as(f)
    argv = ["upscale", str(folder), str(tmp_path / "o"), "--weights", str(weights)]
    assert main([*argv, "--no-progress"]) == 0
    seen = set()
    for f in sorted((tmp_path / "o").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        text = str(ds.DerivationDescription)
        want = "Modèle 脳" if ds.SpecificCharacterSet == "ISO_IR 192" else "Modèle \\u8133"
        assert want in text, (ds.SpecificCharacterSet, text)
        seen.add(ds.SpecificCharacterSet)
    assert seen == {"ISO_IR 192", "ISO_IR 100"}


def test_an_input_holding_a_placeholder_of_its_own_keeps_it(tmp_path):
    """An input that is an earlier output cut short holds our placeholder: it was filled in
    with this run's values, ours was left a placeholder, and every resume redid the output."""
    from sr_domains.medical.nifti_write import pending_slot

    src = make_nifti(tmp_path / "a.nii.gz", shape=(12, 10, 3))
    _with_header(src)
    img = nib.load(src)
    ext = nib.nifti1.Nifti1Extension("comment", json.dumps(pending_slot()).encode())
    img.header.extensions.append(ext)
    nib.save(img, src)
    dst = tmp_path / "b.nii.gz"
    assert main(["upscale", str(src), str(dst), "--no-progress"]) == 0
    comments = [e.get_content() for e in nib.load(dst).header.extensions if e.get_code() == 6]
    theirs, ours = json.loads(comments[-2]), json.loads(comments[-1])
    assert isinstance(theirs, str) and theirs.startswith("@@sr_domains:pending@@")
    assert isinstance(ours["values"], dict)


def test_a_series_line_shows_the_description_as_stored():
    """``info`` and error messages showed a description with a backslash as a repr,
    ``'T2\\\\FLAIR é'`` (the backslash doubled)."""
    from sr_domains.medical.dicom_read import SeriesSummary

    line = str(SeriesSummary("1.2.3", "T2\\FLAIR é", "MR", 2, ()))
    assert "'T2\\FLAIR é'" in line and "\\\\" not in line
