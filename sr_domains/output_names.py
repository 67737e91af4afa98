"""Names an output may have, and the names made beside it.

* **Line breaks** (``\\n``, ``\\r``, VT, FF, FS/GS/RS, NEL, U+2028/U+2029: where
  ``str.splitlines`` breaks) are refused in an output path: ``sr-domains upscale`` prints the
  outputs it wrote one per line on stdout, and a line break in a name would make two lines of
  one path. Other characters (a tab, ESC) are printed as they are. Inputs may have any name.
* **Long names.** A name beside an output (temporary, lock, keep-aside) adds a tag to the
  output's name and would pass the file system's limit (``NAME_MAX``, 255 bytes) for a name
  near it. Such names are made from :func:`name_key`: the output's name, or, when long, its
  first bytes, ``~`` and a hash of the whole name, so each output keeps its own names.
* **Bytes that are not UTF-8.** GDAL is given paths as UTF-8: a GeoTIFF output whose path
  holds a name made under another encoding (Latin-1 ``é``, byte 0xe9, which Python holds as
  ``\\udce9``) is refused before any work (:func:`check_gdal_name`). NIfTI and DICOM outputs,
  written by Python, may have such names. A character no file name can hold (a lone
  surrogate outside those, from the Python API) is refused for every output.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from .errors import UnsafeOutputError

#: ``NAME_MAX`` where the file system does not say (Linux, macOS, Windows: 255).
NAME_MAX = 255
#: Bytes kept for what is added to :func:`name_key` (``.`` + tag + ``PID-XXXXXXXX`` + the
#: output's suffix + what GDAL adds to a temp file, such as ``.msk.ovr.tmp``).
ROOM = 64
#: Bytes a temporary file's name adds to :func:`name_key` besides the output's extension:
#: ``.`` + ``.sr-tmp-`` + ``PID-XXXXXXXX`` (a 7-digit PID) + 16 for what writers and GDAL add
#: to a temp file (``.raw.nii``, ``.part12.tif``, ``.msk.ovr.tmp``).
TEMP_TAIL = 1 + 8 + 8 + 8 + 16
#: Hex digits of the hash in a shortened key.
HASH_DIGITS = 12
#: How a shortened key ends: a short name that ends so is hashed too, so that it never shares
#: the names of the long one whose key it spells.
_KEY_END = re.compile(rf"~[0-9a-f]{{{HASH_DIGITS}}}$")
#: Line breaks of ``str.splitlines`` that are not control characters.
_LINE_BREAKS = frozenset("\u2028\u2029")
#: Every character ``str.splitlines`` breaks a line at (what one-path-per-line output cannot
#: hold).
_SPLITS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def name_max(path: str | os.PathLike[str]) -> int:
    """``NAME_MAX`` of the file system of the nearest existing folder holding ``path``."""
    folder = Path(path).parent
    while not folder.is_dir() and folder.parent != folder:
        folder = folder.parent
    return _pathconf(os.fspath(folder))


@functools.lru_cache(maxsize=64)
def _pathconf(folder: str) -> int:
    try:
        value = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # (not POSIX, or not said)
        return NAME_MAX
    return value if value > 0 else NAME_MAX


def _size(text: str) -> int:
    return len(os.fsencode(text))


def name_key(path: str | os.PathLike[str]) -> str:
    """What names made beside ``path`` start from: its name when it leaves :data:`ROOM` bytes
    below ``NAME_MAX`` (and does not end like a shortened key), else its first bytes (whole
    characters), ``~`` and the first :data:`HASH_DIGITS` hex digits of the SHA-256 of the
    whole name (the same for every run)."""
    name = Path(path).name
    limit = max(name_max(path) - ROOM, 2 * HASH_DIGITS)
    if _size(name) <= limit and not _KEY_END.search(name):  # (one like a key: hashed too)
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:HASH_DIGITS]
    budget, head = limit - 1 - HASH_DIGITS, []
    for ch in name:
        budget -= _size(ch)
        if budget < 0:
            break
        head.append(ch)
    return f"{''.join(head)}~{digest}"


def control_characters(text: str) -> list[str]:
    """The control characters and line separators in ``text``, each once, escaped
    (``['\\\\n']``)."""
    found = (c for c in text if c in _LINE_BREAKS or unicodedata.category(c) == "Cc")
    return [ascii(c)[1:-1] for c in dict.fromkeys(found)]


def line_breaks(text: str) -> list[str]:
    """The characters of ``text`` that ``str.splitlines`` breaks a line at, each once,
    escaped (``['\\\\n']``)."""
    return [ascii(c)[1:-1] for c in dict.fromkeys(c for c in text if c in _SPLITS)]


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` for one line of output: its line breaks backslash-escaped (an output never
    has any: :func:`check_name`), every other character as it is."""
    return "".join(ascii(c)[1:-1] if c in _SPLITS else c for c in os.fspath(path))


def undecodable(path: str | os.PathLike[str]) -> bytes:
    """The first part of ``path`` (a folder's name or the file's) whose bytes are not UTF-8,
    or ``b""`` (every part is; GDAL can be given the path)."""
    for part in Path(path).parts:
        try:
            raw = os.fsencode(part)
        except UnicodeEncodeError:  # (no name on disk: never UTF-8)
            raw = part.encode("utf-8", "surrogatepass")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return b""


def check_gdal_name(dst: str | os.PathLike[str]) -> None:
    """Refuse, before any work, an output path GDAL cannot be given (:func:`undecodable`): the
    run would fail only when writing the finished output, naming its temporary file.

    Raises:
        UnsafeOutputError: naming the output and the part of its path that is not UTF-8.
    """
    raw = undecodable(dst)
    if raw:
        raise UnsafeOutputError(
            shown(dst),
            f"GDAL writes this GeoTIFF and must be given its path in UTF-8, but {raw!r} is not "
            "UTF-8 (a name in another encoding, such as Latin-1): choose another output name "
            "or folder (a batch names each output after its input: rename that input)",
        )


def full_suffix(path: str | os.PathLike[str]) -> str:
    """``.nii.gz`` for compressed names, else the last suffix (writers pick formats by it)."""
    p = Path(path)
    return "".join(p.suffixes[-2:]) if p.name.lower().endswith(".gz") else p.suffix


def check_name(dst: str | os.PathLike[str], *, kind: str = "file") -> None:
    """Refuse, before any work, an output path ``dst`` with a line break, or a name
    that the file system, or a temporary file beside it (``kind="file"``: it keeps the output's
    extension), cannot hold.

    Raises:
        UnsafeOutputError: naming the output and what is wrong with its name.
    """
    try:
        os.fsencode(dst)
    except UnicodeEncodeError as exc:  # (the Python API: a lone surrogate no name holds)
        raise UnsafeOutputError(
            ascii(os.fspath(dst))[1:-1],
            f"the output path holds {exc.object[exc.start : exc.end]!a}, which no file "
            "name can hold: choose another output name",
        ) from None
    bad = line_breaks(os.fspath(dst))
    if bad:
        raise UnsafeOutputError(
            shown(dst),
            f"the output path holds a line break ({', '.join(bad)}); sr-domains prints "
            "the outputs it writes one per line and never writes such a name: choose another "
            "output name (or --suffix), or rename the input",
        )
    name, limit = Path(dst).name, name_max(dst)
    if _size(name) > limit:
        raise UnsafeOutputError(
            dst,
            f"the name is {_size(name)} bytes long and the file system holds at most {limit}: "
            "choose a shorter output name (or --suffix)",
        )
    suffix = full_suffix(dst) if kind == "file" else ""
    if _size(name_key(dst)) + TEMP_TAIL + _size(suffix) > limit:
        raise UnsafeOutputError(
            dst,
            f"its extension {suffix!r} is too long for the temporary file written beside it "
            f"(at most {limit} bytes a name): choose another name",
        )


def check_names(out_dir: str | os.PathLike[str], outputs: Sequence[tuple[str, str]]) -> None:
    """A batch's :func:`check_name` of every ``(output, kind)`` before any work: one error
    naming each output refused (a batch that went on would end with those inputs failed)."""
    refused = []
    for dst, kind in outputs:
        try:
            check_name(dst, kind=kind)
        except UnsafeOutputError as exc:
            refused.append(exc)
    if len(refused) == 1:
        raise refused[0]
    if refused:
        raise UnsafeOutputError(
            out_dir,
            f"{len(refused)} outputs cannot have their names: "
            + "; ".join(str(e) for e in refused[:10])
            + ("; ..." if len(refused) > 10 else ""),
        )


__all__ = [
    "NAME_MAX",
    "ROOM",
    "TEMP_TAIL",
    "check_gdal_name",
    "check_name",
    "check_names",
    "control_characters",
    "full_suffix",
    "line_breaks",
    "name_key",
    "name_max",
    "shown",
    "undecodable",
]
