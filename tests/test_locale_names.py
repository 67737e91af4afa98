"""File names and metadata text under a locale that is not UTF-8 (``LC_ALL=C`` with Python's
UTF-8 mode off): GDAL is given the name's UTF-8 bytes, outputs record names the same under
every locale, the script prints what its console cannot encode, and a name GDAL cannot be
given fails that file of a batch with a message instead of stopping it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.geo.gdal_paths import gdal_path  # noqa: E402
from sr_domains.recorded_names import recorded_name  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_nifti  # noqa: E402

C_LOCALE = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}


def _script(*args: str | Path, c_locale: bool) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **(C_LOCALE if c_locale else {"PYTHONUTF8": "1"})}
    argv = [sys.executable, "-m", "sr_domains", *map(str, args)]
    return subprocess.run(argv, capture_output=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def c_locale_is_ascii() -> None:
    probe = [sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"]
    got = subprocess.run(probe, capture_output=True, text=True, env={**os.environ, **C_LOCALE})
    if got.stdout.strip().lower() not in ("ascii", "ansi_x3.4-1968"):
        pytest.skip(f"the C locale here gives file names in {got.stdout.strip()}")


@pytest.mark.parametrize("name", ["scène.tif", "tête.nii.gz"])
def test_a_batch_made_under_the_c_locale_is_complete_under_utf8(tmp_path, name, c_locale_is_ascii):
    """rasterio could not encode the surrogate-escaped name (a traceback that stopped the
    batch), and the NIfTI provenance recorded it escaped, so a UTF-8 run saw the output as a
    foreign file ("output exists")."""
    folder = tmp_path / "in"
    folder.mkdir()
    if name.endswith(".tif"):
        make_geotiff(folder / name, width=16, height=16)
    else:
        make_nifti(folder / name, shape=(12, 10, 3))
    out = tmp_path / "out"
    first = _script("upscale", folder, out, "--no-progress", c_locale=True)
    assert first.returncode == 0 and b"Traceback" not in first.stderr, first.stderr
    if name.endswith(".tif"):
        with rasterio.open(out / name) as ds:
            assert ds.tags()["SR_DOMAINS_SOURCE"] == name and ds.width == 32
    again = _script("upscale", folder, out, "--no-progress", c_locale=False)
    assert again.returncode == 0, again.stderr
    assert b"0 written, 1 already complete" in again.stdout + again.stderr


def test_info_prints_metadata_its_c_locale_console_cannot_encode(tmp_path, c_locale_is_ascii):
    src = make_geotiff(tmp_path / "plain.tif", width=16, height=16)
    with rasterio.open(src, "r+") as ds:
        ds.set_band_description(1, "Bände 日本")
    r = _script("info", src, c_locale=True)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    assert b"B\\xe4nde \\u65e5\\u672c" in r.stdout


def test_a_name_gdal_cannot_be_given_fails_that_file_only(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_geotiff(folder / "ok.tif", width=16, height=16)
    latin1 = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.tif"))  # not UTF-8
    shutil.copy(folder / "ok.tif", latin1)
    out = tmp_path / "out"
    assert main(["upscale", str(folder), str(out), "--no-progress"]) == 1
    assert (out / "ok.tif").exists() and not (out / latin1.name).exists()
    with pytest.raises(InputFileError, match="not UTF-8"):
        gdal_path(latin1)


def test_recorded_names_are_the_utf8_text_of_the_bytes():
    assert recorded_name("/x/scène.tif") == "scène.tif"
    c_locale_form = os.fsencode("scène.tif").decode("ascii", "surrogateescape")
    assert recorded_name(Path("/x") / c_locale_form) == "scène.tif"
