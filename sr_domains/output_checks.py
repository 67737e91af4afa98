"""Which outputs may be written (rules 1 and 2 of :mod:`sr_domains.io_safety`), checked without
touching any file: an output equal to, inside or holding an input is refused; an existing output
is replaced only with ``overwrite``, and a non-empty folder only when its manifest lists every
entry; the folder that will hold the output must be writable."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from . import model_files
from .errors import ConfigError, OutputExistsError, UnsafeOutputError, is_gdal_virtual
from .output_names import check_name

#: Manifest file written into every output folder (its presence marks the folder as ours).
MANIFEST = ".sr_domains.json"

#: Run manifest of a batch (:mod:`sr_domains.distributed`), in its output folder.
RUN_MANIFEST = "sr-domains-run.jsonl"
#: How every run manifest record starts (the first key of ``TaskResult.to_json``).
RECORD_START = b'{"input": '

Kind = Literal["file", "dir"]
PathArg = str | os.PathLike[str]


def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))


def _within(child: Path, parent: Path) -> bool:
    return child != parent and parent in child.parents


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(dst: PathArg, inputs: Sequence[PathArg], *, kind: Kind) -> None:
    """Refuse an output that is, holds or lies inside an input (rule 1; no file is touched),
    a GDAL virtual path (``/vsimem/``, ``/vsis3/``...: no temp file and rename there), and a
    name that cannot be written (:func:`~sr_domains.output_names.check_name`)."""
    if is_gdal_virtual(dst):
        raise UnsafeOutputError(
            dst,
            "GDAL virtual file systems are not written to: an output is written to a temp file "
            "beside it and renamed into place; write to a folder on disk and copy it there",
        )
    check_name(dst, kind=kind)
    dst = Path(dst)
    d = _real(dst)
    for src in inputs:
        src = Path(src)
        s = _real(src)
        if d == s or _same_file(dst, src):
            raise UnsafeOutputError(
                dst, f"the output would replace the input {src}; choose another output"
            )
        if s.is_dir() and _within(d, s):
            raise UnsafeOutputError(
                dst, f"lies inside the input folder {src}; choose an output outside it"
            )
        if kind == "dir" and _within(s, d):
            raise UnsafeOutputError(
                dst, f"holds the input {src}; choose an output that does not contain the inputs"
            )


#: Names of files an image tool writes: a new batch output folder is not named like one.
FILE_SUFFIXES = (
    ".tif",
    ".tiff",
    ".jp2",
    ".j2k",
    ".vrt",
    ".nii",
    ".nii.gz",
    ".dcm",
    ".img",
    ".hdr",
    ".png",
    ".jpg",
    ".jpeg",
)


def check_batch_folder(out_dir: PathArg) -> None:
    """Refuse a batch output folder that does not exist yet and is named like a file
    (``out/result.tif``): the batch would make a folder of that name, which the next tool
    takes for a raster (an existing folder of any name is the user's choice)."""
    out_dir = Path(out_dir)
    name = out_dir.name.lower()
    ext = next((e for e in FILE_SUFFIXES if name.endswith(e) and name != e), "")
    if ext and not os.path.lexists(out_dir):
        raise ConfigError(
            f"{out_dir}: the input is a batch, so its outputs go to a folder, but this name "
            f"ends in {ext} like a file; give a folder (e.g. "
            f"{out_dir.parent / out_dir.name[: -len(ext)]})"
        )


def read_manifest(folder: PathArg) -> dict[str, Any] | None:
    """The manifest of an output folder, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def is_run_manifest(path: Path) -> bool:
    """A batch's run manifest: JSON lines, each a task record (``input``, ``output``,
    ``status``) or one cut short (a run killed while appending its record)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")  # (as the run's readers)
    except OSError:
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    keys = {"input", "output", "status"}

    def record(line: str) -> bool:
        try:
            r = json.loads(line)
        except ValueError:
            return line.encode("utf-8").startswith(RECORD_START)
        return isinstance(r, dict) and keys <= r.keys()

    return bool(lines) and all(map(record, lines))


def foreign_entries(folder: PathArg) -> list[str]:
    """Entries of ``folder`` that its manifest does not list (all of them without one); a
    batch's run manifest (:data:`RUN_MANIFEST`, beside a DICOM series a batch of that one
    series wrote into the folder itself) is ours too."""
    names = sorted(os.listdir(folder))
    manifest = read_manifest(folder)
    ours = set(manifest["files"]) if manifest else set()
    if RUN_MANIFEST in names and is_run_manifest(Path(folder) / RUN_MANIFEST):
        ours.add(RUN_MANIFEST)
    return [n for n in names if n != MANIFEST and n not in ours]


#: What an entry that is neither a file nor a folder is (by ``stat``'s file type).
_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_entry(path: PathArg) -> str:
    """What ``path`` is when it is (or links to) a named pipe, socket or device, by its
    ``stat`` alone (nothing is opened); "" for a file, a folder or nothing there."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # (missing, a broken link: nothing there to open)
        return ""
    return next((what for test, what in _SPECIAL if test(mode)), "")


def check_entry(dst: PathArg) -> None:
    """Refuse a named pipe, socket or device at an output's name (or a link to one)
    (:func:`special_entry`): it is never opened (opening a FIFO waits for a writer, for ever)
    and never replaced, even with ``overwrite``: outputs are renamed into place, not written
    into what is there."""
    what = special_entry(dst)
    if what:
        raise UnsafeOutputError(
            dst,
            f"is {what}, not a file; it is never opened or replaced, even with --overwrite "
            "(outputs are renamed into place): remove it yourself or choose another name",
        )


def never_replaced(dst: PathArg, *, kind: Kind = "file") -> str:
    """What is at a batch output's exact name that is never replaced, even with
    ``overwrite``, or "": a named pipe, socket or device (:func:`special_entry`), or a folder
    where the output is a file (a single-file run writes into a folder it is given as the
    output; a batch names each output itself)."""
    what = special_entry(dst)
    if not what and kind == "file" and os.path.isdir(dst):
        return "a folder"
    return what


def check_batch_output(dst: PathArg, *, kind: Kind = "file") -> None:
    """Refuse what is at the exact name a batch task writes and never is replaced
    (:func:`never_replaced`)."""
    check_entry(dst)
    if never_replaced(dst, kind=kind) == "a folder":
        raise UnsafeOutputError(
            dst,
            "is a folder where the batch writes an output file; it is never replaced or "
            "written into, even with --overwrite: move it or choose another output folder",
        )


def check_existing(dst: PathArg, *, kind: Kind, overwrite: bool, fmt: str | None = None) -> None:
    """Refuse an existing output unless it may be replaced (rule 2); a named pipe, socket or
    device there always (:func:`check_entry`); a file of another format than the output's
    (``fmt``, a model format of :data:`~sr_domains.model_files.LABELS`, else told by the
    suffix: :func:`other_format`) even with ``overwrite``."""
    dst = Path(dst)
    check_entry(dst)
    if kind == "dir":
        if os.path.lexists(dst) and not dst.is_dir():
            raise UnsafeOutputError(dst, "exists and is not a folder; outputs go into a folder")
        if not dst.is_dir() or not os.listdir(dst):
            return
        if not overwrite:
            raise OutputExistsError(dst)
        foreign = foreign_entries(dst)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            why = (
                "it has no sr_domains manifest"
                if read_manifest(dst) is None
                else "they are not in its sr_domains manifest"
            )
            raise UnsafeOutputError(
                dst,
                f"holds entries sr_domains did not write ({shown}; {why}); it is never "
                "replaced, even with --overwrite: remove it yourself or choose another folder",
            )
        return
    if dst.is_dir():
        raise UnsafeOutputError(dst, "is a folder; give an output file name")
    if os.path.lexists(dst) and not overwrite:
        raise OutputExistsError(dst)
    if overwrite and dst.is_file() and (what := other_format(dst, fmt)) is not None:
        found = model_files.kind(dst) if _model_format(dst, fmt) else ""
        raise UnsafeOutputError(
            dst,
            f"exists and is not {'an' if what == 'ONNX' else 'a'} {what} file"
            f"{f': it is {found}' if found else ''}; it is never replaced, even with "
            "--overwrite: remove it yourself or choose another name",
        )


#: Leading bytes of the file formats an output of that suffix may replace.
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NIFTI_SIZES = tuple(n.to_bytes(4, o) for n in (348, 540) for o in ("little", "big"))


def _model_format(path: Path, fmt: str | None) -> str | None:
    """The model format an output named ``path`` is written in (``fmt``, else by suffix)."""
    if fmt is not None:
        return fmt if fmt in model_files.LABELS else None
    return next(
        (f for s, f in model_files.BY_SUFFIX.items() if path.name.lower().endswith(s)), None
    )


def other_format(path: Path, fmt: str | None = None) -> str | None:
    """The format an output named ``path`` has (``GeoTIFF``, ``NIfTI``, ``PNG``, and the model
    files ``TorchScript``, ``torch.export ExportedProgram``, ``ONNX``, ``safetensors``: ``fmt``
    when given, see :mod:`~sr_domains.model_files`) when the existing file there is not one (a
    report, a text file named ``out.nii``, a training checkpoint named ``model.pt``); None
    when it is, when it is empty, or for other suffixes (not checked)."""
    model = _model_format(path, fmt)
    name = path.name.lower()
    if model is not None:
        what, ok = model_files.LABELS[model], lambda _: model_files.is_format(path, model)
    elif name.endswith((".tif", ".tiff")):
        what, ok = "GeoTIFF", lambda head: head[:4] in _TIFF
    elif name.endswith(".nii.gz"):
        what, ok = "gzipped NIfTI", lambda head: head[:2] == b"\x1f\x8b"
    elif name.endswith(".nii"):
        what, ok = "NIfTI", lambda head: head[:4] in _NIFTI_SIZES
    elif name.endswith(".png"):
        what, ok = "PNG", lambda head: head[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None  # (unreadable: the write itself reports it)
    return None if not head or ok(head) else what


def check_writable(dst: PathArg) -> None:
    """Refuse early when the folder that will hold ``dst`` (or its nearest existing parent)
    cannot be written: read-only file system or no permission."""
    dst = Path(dst)
    folder = dst.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not folder.is_dir():
        raise UnsafeOutputError(dst, f"{folder} is not a folder")
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if read_only:
        raise OSError(errno.EROFS, f"cannot write in {folder} (read-only file system)", str(dst))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, f"cannot write in {folder} (permission denied)", str(dst))


def preflight(
    dst: PathArg,
    inputs: Sequence[PathArg] = (),
    *,
    kind: Kind = "file",
    overwrite: bool = False,
    fmt: str | None = None,
) -> None:
    """All checks that need no lock (rules 1 and 2, and a writable folder): call before any
    expensive work; ``fmt`` as in :func:`check_existing`."""
    check_paths(dst, inputs, kind=kind)
    check_existing(dst, kind=kind, overwrite=overwrite, fmt=fmt)
    check_writable(dst)


def check_model_output(
    path: PathArg, inputs: Sequence[PathArg] = (), *, overwrite: bool = False
) -> None:
    """``--save-model PATH``: a ``.safetensors`` file that replaces none of ``inputs`` (the
    ``--weights`` it starts from included, even with ``overwrite``) and no existing file
    without ``overwrite``; checked before the minutes of fitting."""
    if Path(path).suffix.lower() != ".safetensors":
        raise ConfigError(f"{path}: --save-model writes a .safetensors file")
    preflight(path, inputs, kind="file", overwrite=overwrite)


__all__ = [
    "FILE_SUFFIXES",
    "MANIFEST",
    "RECORD_START",
    "RUN_MANIFEST",
    "Kind",
    "PathArg",
    "check_batch_folder",
    "check_batch_output",
    "check_entry",
    "check_existing",
    "check_model_output",
    "check_paths",
    "check_writable",
    "foreign_entries",
    "is_run_manifest",
    "never_replaced",
    "other_format",
    "preflight",
    "read_manifest",
    "special_entry",
]
