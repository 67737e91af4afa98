"""A DICOM file whose pixel data no pydicom plugin can decode is refused with sr_domains' one
error line naming the file; pydicom's per-plugin failures (ERROR records with a traceback,
``LOGGER.exception``) go to the log at DEBUG only, from the CLI (also with ``-q`` and
``--dry-run``) and from the library."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.data import get_testdata_file  # noqa: E402

from sr_domains.cli import main  # noqa: E402
from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.medical import load_dicom_series  # noqa: E402

DECODER_LOGGER = "pydicom.pixels.decoders.base"


@pytest.fixture
def undecodable(tmp_path: Path) -> Path:
    """A folder holding pydicom's 12-bit JPEG Extended test file (libjpeg and Pillow refuse
    it; skipped where some installed plugin can decode it)."""
    src = get_testdata_file("JPEG-lossy.dcm")
    if src is None:
        pytest.skip("pydicom's test file JPEG-lossy.dcm is not available")
    logger = logging.getLogger(DECODER_LOGGER)
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # (this probe's own failures are not the test's)
    try:
        _ = pydicom.dcmread(src).pixel_array
    except Exception:  # as wanted: no plugin can
        decodes = False
    else:
        decodes = True
    finally:
        logger.setLevel(level)
    if decodes:
        pytest.skip("an installed pydicom plugin decodes JPEG-lossy.dcm")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(src, folder / "JPEG-lossy.dcm")
    return folder


def _noise(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at WARNING or above that carry a traceback, or that come from pydicom's
    decoders at ERROR."""
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and (r.exc_info is not None or (r.name == DECODER_LOGGER and r.levelno >= logging.ERROR))
    ]


@pytest.mark.parametrize("extra", [[], ["-q"]])
def test_undecodable_pixel_data_prints_one_error_and_no_traceback(
    undecodable, tmp_path, capsys, caplog, extra
):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "out"
    assert main([*extra, "upscale", str(undecodable), str(out), "--scale", "2"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"sr-domains: error: {undecodable / 'JPEG-lossy.dcm'}: ")
    assert "cannot decode the pixel data" in first
    assert _noise(caplog) == []
    assert not out.exists()


def test_dry_run_lists_the_error_without_decoder_tracebacks(undecodable, tmp_path, capsys, caplog):
    caplog.set_level(logging.WARNING)
    main(["upscale", str(undecodable), str(tmp_path / "out"), "--scale", "2", "--dry-run"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "cannot decode the pixel data" in captured.out
    assert _noise(caplog) == []


def test_library_keeps_decoder_failures_at_debug(undecodable, caplog):
    caplog.set_level(logging.DEBUG)
    filters = list(logging.getLogger(DECODER_LOGGER).filters)
    series = load_dicom_series(undecodable)
    with pytest.raises(InputFileError, match="cannot decode the pixel data"):
        series.read_volume()
    assert _noise(caplog) == []
    debug = [
        r
        for r in caplog.records
        if r.name == "sr_domains.medical.pydicom_logs" and r.levelno == logging.DEBUG
    ]
    assert debug, "pydicom's decoder failures are kept in the log at DEBUG"
    assert all("JPEG-lossy.dcm: a pydicom decoding plugin failed" in r.getMessage() for r in debug)
    assert logging.getLogger(DECODER_LOGGER).filters == filters  # the filter is removed
