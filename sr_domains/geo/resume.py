"""Whether an existing GeoTIFF output is a finished one of this run (a resumed batch skips it),
one of ours to redo, one made otherwise, or somebody else's file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..made_with import Made, Requested
from ..output_checks import check_batch_output, check_entry
from ..output_names import undecodable
from ..recorded_names import recorded_name
from ..run_manifest import file_sha256, recorded_sha
from ..run_recipe import for_source
from ..source_stamp import INPUT_CHANGED, OTHER_INPUT, input_changed, other_input
from .gdal_paths import open_dataset, raster_inputs
from .names import starts_like_tiff
from .output_spec import TAG_PREFIX
from .reader import default_bands

try:
    from rasterio.errors import RasterioError
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc


def output_check(
    dst: Path,
    src: Path,
    scale: int,
    requested: Requested | None = None,
    *,
    intact: bool = False,
) -> tuple[str, str]:
    """``(status, why)``: :func:`output_status`, and for ``"other"`` how the output was made
    otherwise than ``requested``. ``intact``: the file's bytes are known to be those of a
    finished output (its checksum equals the one a run manifest recorded for it), so its blocks
    are not decoded again; the tags are checked all the same. A named pipe, socket or device
    there is refused, never opened (:func:`~sr_domains.output_checks.check_entry`)."""
    check_entry(dst)
    if not dst.exists():
        return "missing", ""
    raw = undecodable(dst)
    if raw:  # (GDAL would be asked for other bytes: whose it is cannot be told)
        return "foreign", f"GDAL cannot open this output: {raw!r} in its name is not UTF-8"
    try:
        with open_dataset(src) as ds:
            want = (ds.height * scale, ds.width * scale)
            bands, src_dtype = default_bands(ds), ds.dtypes[0]
    except (InputFileError, OSError):
        return "foreign", ""
    try:
        ds = open_dataset(dst)
    except (InputFileError, OSError, RasterioError):
        return "foreign", unreadable_why(dst)  # cannot even tell whose it is
    with ds:
        tags = ds.tags()
        synthetic = tags.get(f"{TAG_PREFIX}SYNTHETIC") == "super-resolved"
        if not synthetic or tags.get(f"{TAG_PREFIX}SOURCE") != recorded_name(src):
            return "foreign", ""
        made_x = tags.get(f"{TAG_PREFIX}SCALE")
        if made_x != str(scale):  # ours, of another scale: never replaced, as a NIfTI's
            why = f"made x{made_x}, not x{scale}" if made_x else ""
            return ("other" if requested is not None and why else "foreign"), why
        stamp = tags.get(f"{TAG_PREFIX}SOURCE_STAMP")
        changed = _input_changed(stamp, src)
        if changed:
            return changed
        if (ds.height, ds.width) != want:  # (no stamp, as before stamps: the input may have
            return _other_size(ds, want) if stamp else ("damaged", "")  # changed size: redo)
        if f"{TAG_PREFIX}VALUES" not in tags:
            return "damaged", ""
        made = Made.from_tags(tags, TAG_PREFIX)
        if requested is not None:  # (--dtype of the input's own type: the default, see for_source)
            made = replace(made, recipe=for_source(made.recipe, src_dtype))
            requested = replace(requested, recipe=for_source(requested.recipe, src_dtype))
        why = requested.differs(made, scale, bands) if requested is not None else ""
        if why:
            return "other", why
        if intact:
            return "complete", ""
        try:
            _read_blocks(ds)
        except (OSError, RasterioError):
            return "damaged", ""
    return "complete", ""


def _other_size(ds: Any, want: tuple[int, int]) -> tuple[str, str]:
    """``(status, why)`` of a TIFF with our tags but not the output's size: cutting a TIFF
    short does not change its size, and outputs are renamed into place only when complete,
    so one that reads whole is somebody's (a clipped copy that kept our tags): ``"foreign"``,
    never replaced without ``--overwrite``; one whose blocks do not read is ``"damaged"``."""
    try:
        _read_blocks(ds)
    except (OSError, RasterioError):
        return "damaged", ""
    size, expected = f"{ds.width}x{ds.height}", f"{want[1]}x{want[0]}"
    return "foreign", f"a readable raster of {size} px, not the {expected} px output"


def _read_blocks(ds: Any) -> None:
    """Read every block of every band (bounded memory: one block row at a time)."""
    rows = max(ds.block_shapes[0][0], 1)
    for y0 in range(0, ds.height, rows):
        ds.read(window=Window(0, y0, ds.width, min(rows, ds.height - y0)))


def _input_changed(tag: str | None, src: Path) -> tuple[str, str] | None:
    """``(status, why)`` when the files read for ``src`` (a VRT's sources too) differ from the
    stamp the output's ``SR_DOMAINS_SOURCE_STAMP`` tag recorded: ``"damaged"`` (redo it) when
    they are the same files, changed since; ``"other"`` (never replaced without
    ``--overwrite``) when the output was made from other files of the same name. None: the
    same (or no stamp: an earlier version, unchanged)."""
    if not tag:
        return None
    try:
        recorded = json.loads(tag)
        files = raster_inputs(src)
        if not input_changed(recorded, files):
            return None
    except (ValueError, InputFileError, OSError):
        return None
    return ("other", OTHER_INPUT) if other_input(recorded, files) else ("damaged", INPUT_CHANGED)


def batch_check(
    dst: Path, src: Path, scale: int, requested: Requested | None = None
) -> tuple[str, str, str]:
    """:func:`output_check` for an output of a batch, with its run manifest: ``(status, why,
    sha256)``, the checksum when it was read ("" otherwise). A file whose bytes are those a
    run recorded for it is not decoded again to see that every block reads (one read of a
    skipped output, not two); a TIFF that cannot be whole (:func:`_cut_short`: it does not
    open or read, or our tags at its end are gone) whose checksum differs from the recorded
    one is ours, cut short: ``"damaged"`` (redo it), not somebody else's file. A TIFF that
    reads, without our tags, is somebody's own raster saved under the output's name (a
    record of the name vouches for nothing then): ``"foreign"``, never replaced without
    ``--overwrite``. A folder, named pipe, socket or device at the output's name is refused
    (:func:`~sr_domains.output_checks.check_batch_output`).

    An input or output name GDAL cannot be given (not UTF-8,
    :func:`~sr_domains.geo.gdal_paths.check_gdal_names`) is not opened: ``"missing"``, so
    the batch refuses that file alone when it comes to write it, naming the output (or the
    input) and the bytes, as it does when no file is there and as the batch runner does
    before this check; an existing file at that name is left as it is."""
    check_batch_output(dst)
    if undecodable(dst) or undecodable(src):  # (not an output a batch of others must wait on)
        return "missing", "", ""
    recorded = recorded_sha(src, dst) if dst.is_file() else ""
    sha = file_sha256([dst]) if recorded else ""
    intact = bool(recorded) and sha == recorded
    status, why = output_check(dst, src, scale, requested, intact=intact)
    ours = status == "foreign" and recorded and not intact and starts_like_tiff(dst)
    if ours and _cut_short(dst):  # a run's manifest says ours, and the file cannot be whole
        return "damaged", "", sha
    return status, why, sha


def _cut_short(path: Path) -> bool:
    """Whether a TIFF cannot be a whole file: GDAL does not open it, a block does not read, or
    its writer tag names sr_domains while the ``SR_DOMAINS_*`` tags, which GDAL keeps at the
    file's end, are gone (the tail of one of our outputs cut off: no other file is written
    so). A TIFF that reads, without our writer tag, is somebody's own raster."""
    try:
        with open_dataset(path) as ds:
            tags = ds.tags()
            if tags.get("TIFFTAG_SOFTWARE", "").startswith("sr_domains ") and not any(
                k.startswith(TAG_PREFIX) for k in tags
            ):
                return True
            _read_blocks(ds)
    except (InputFileError, OSError, RasterioError):
        return True
    return False


def unreadable_why(path: Path) -> str:
    """What to say about an existing output that cannot be opened: a TIFF that does not read
    may be an earlier output cut short (a copy interrupted), which only the user can tell
    when no run manifest recorded it (:func:`batch_check` asks the manifest)."""
    if not starts_like_tiff(path):
        return ""
    return "a TIFF that cannot be read: if it is an earlier output cut short, delete it"


def output_status(dst: Path, src: Path, scale: int, requested: Requested | None = None) -> str:
    """``"missing"``, ``"complete"`` (a finished output of ``src`` at ``scale``), ``"damaged"``
    (ours for this source and scale, but unreadable or cut short: redo it), ``"other"`` (a
    finished output of ours made otherwise than ``requested``: other weights or bands) or
    ``"foreign"``. An output whose input changed since it was made (the stamp its
    ``SR_DOMAINS_SOURCE_STAMP`` tag recorded, :mod:`sr_domains.source_stamp`) is
    ``"damaged"`` too: :func:`output_check` says why.

    Outputs are renamed into place only when complete, but a file can still be damaged later
    (a copy cut short, a disk error), so the header is not trusted alone: our provenance tags
    for this source and scale, the tag written last (``SR_DOMAINS_VALUES``), the expected size,
    and every block of every band readable. A file with our tags but another size that reads
    whole is ``"foreign"`` (a clipped copy: cutting a TIFF short does not change its size).
    """
    return output_check(dst, src, scale, requested)[0]


def is_complete(dst: Path, src: Path, scale: int) -> bool:
    """True when ``dst`` is a finished, fully readable output of ``src`` at ``scale``."""
    return output_status(dst, src, scale) == "complete"


__all__ = [
    "batch_check",
    "is_complete",
    "output_check",
    "output_status",
    "starts_like_tiff",
]
