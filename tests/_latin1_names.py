"""Names GDAL cannot be given (not UTF-8) and the CLI run in-process with byte streams, shared
by the tests of such names."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from sr_domains.cli import main


def latin1(folder: Path, name: bytes) -> Path:
    """``folder/name`` for a name whose bytes are not UTF-8 (Latin-1 ``é``), as Python holds
    it."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


def cli(monkeypatch, *args: str | Path) -> tuple[int, bytes, bytes]:
    """``sr-domains ARGS``: status, stdout and stderr bytes (a name's undecodable bytes go out
    as they are, as the script's own streams write them)."""
    streams = [io.BytesIO(), io.BytesIO()]
    for name, raw in zip(("stdout", "stderr"), streams):
        text = io.TextIOWrapper(raw, "utf-8", errors="surrogateescape", write_through=True)
        monkeypatch.setattr(sys, name, text)
    code = main([str(a) for a in args])
    return code, streams[0].getvalue(), streams[1].getvalue()
