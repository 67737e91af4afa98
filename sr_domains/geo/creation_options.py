"""The user's GDAL creation options of the GeoTIFF output (``--co`` / ``creation_options=``),
checked before any work.

Refused, with the reason: options set from the input and the scale (size, type, CRS, ...);
lossy compression, which would change pixel values, nodata and saturated pixels included
(docs/value_fidelity.md): ``COMPRESS=JPEG``, ``WEBP`` unless lossless (``WEBP_LOSSLESS=YES``,
or the COG driver's ``QUALITY=100``), ``JXL`` with ``JXL_LOSSLESS=NO``, ``MAX_Z_ERROR`` other
than 0 (LERC), ``DISCARD_LSB``, and ``NBITS`` other than the type's; options that write
sidecars of the temp file, leave the GeoTIFF keys out, or reproject a COG; and what GDAL
itself refuses: an option its driver does not have, a value it does not expect, a codec that
cannot hold the data (JPEG of uint16, WEBP of one band), found by writing a 16x16 trial copy
in memory (:func:`trial`). A COG's overviews are averages, so ``OVERVIEW_*`` may be lossy.

Either driver's names may be used; each driver gets its own: ``ZLEVEL``/``ZSTD_LEVEL``/
``LZMA_PRESET`` and the COG's ``LEVEL``, ``WEBP_LOSSLESS=YES`` and the COG's ``QUALITY=100``,
``BLOCKXSIZE``/``BLOCKYSIZE`` and the COG's ``BLOCKSIZE`` (a COG's blocks are square).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError

try:
    import rasterio
    import rasterio.shutil
    from rasterio.errors import NotGeoreferencedWarning
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

#: Creation options sr_domains sets from the input and the scale; never given.
FIXED_OPTIONS = frozenset(
    {"DRIVER", "WIDTH", "HEIGHT", "COUNT", "DTYPE", "CRS", "TRANSFORM", "NODATA"}
)
#: What GDAL reads as "yes".
GDAL_TRUE = frozenset({"YES", "TRUE", "ON", "1"})
LOSSLESS = "use a lossless codec: COMPRESS=DEFLATE, ZSTD, LZW or LERC (with MAX_Z_ERROR=0)"
#: The GTiff driver's level option of each codec (the COG driver's ``LEVEL``).
LEVEL_NAMES = {"DEFLATE": "ZLEVEL", "ZSTD": "ZSTD_LEVEL", "LZMA": "LZMA_PRESET"}
LEVEL_NAMES |= {"LERC_DEFLATE": "ZLEVEL", "LERC_ZSTD": "ZSTD_LEVEL"}
#: GTiff option names the COG driver spells differently.
COG_NAMES = {name: "LEVEL" for name in LEVEL_NAMES.values()}
COG_NAMES |= {"JPEG_QUALITY": "QUALITY", "WEBP_LEVEL": "QUALITY"}
#: COG driver options about overviews and statistics, which a plain GeoTIFF has no use for.
COG_ONLY = frozenset({"OVERVIEWS", "RESAMPLING", "OVERVIEW_RESAMPLING", "STATISTICS"})
COG_ONLY |= {f"OVERVIEW_{k}" for k in ("COUNT", "COMPRESS", "PREDICTOR", "QUALITY")}
#: A COG is always tiled and pixel-interleaved: these are not passed to its driver.
NOT_FOR_COG = frozenset({"TILED", "INTERLEAVE", "PHOTOMETRIC"})
BLOCK_KEYS = ("BLOCKSIZE", "BLOCKXSIZE", "BLOCKYSIZE")
#: Most pixels between block rows (or columns) of both sizes that the writer buffers.
MAX_BLOCK_PERIOD = 4096
_SIDECAR = "writes a sidecar of the temp file, which is not kept; the GeoTIFF holds its "
_WARPING = ("TARGET_SRS", "RES", "EXTENT", "ZOOM_LEVEL", "ZOOM_LEVEL_STRATEGY", "ALIGNED_LEVELS")
_REPROJECTS = (
    "reprojects or resamples the COG, and the output keeps the input's grid (reproject the "
    "output afterwards, e.g. with gdalwarp)"
)
#: Options refused, and why.
REFUSED = {
    "TFW": _SIDECAR + "georeferencing",
    "RPB": _SIDECAR + "RPCs",
    "RPCTXT": _SIDECAR + "RPCs",
    "STREAMABLE_OUTPUT": "needs the blocks written in file order; they are written panel by panel",
    "DISCARD_LSB": "drops the low bits of every value (lossy)",
    **{k: _REPROJECTS for k in (*_WARPING, "ADD_ALPHA", "WARP_RESAMPLING")},
}


def _flags(api: bool) -> tuple[str, str, str]:
    """The names of ``--co``, ``--dtype`` and ``--cog`` in the API's or the CLI's words."""
    return ("creation_options", "dtype=", "cog=True") if api else ("--co", "--dtype", "--cog")


def normalize(
    creation: Mapping[str, object] | Iterable[tuple[str, object]] | None, *, api: bool = False
) -> dict[str, str]:
    """The options as ``{NAME: value}``: names upper-case, values text (a bool YES/NO);
    a name given twice (in any case) is refused."""
    co = _flags(api)[0]
    if creation is None:
        return {}
    if isinstance(creation, Mapping):
        items = list(creation.items())
    else:
        try:
            items = [(k, v) for k, v in creation]
        except (TypeError, ValueError):
            raise ConfigError(
                f"{co} must be a dict of GDAL creation options, e.g. {{'COMPRESS': 'ZSTD'}}, "
                f"got {creation!r}"
            ) from None
    out: dict[str, str] = {}
    for k, v in items:
        if not isinstance(k, str) or not k.strip():
            raise ConfigError(f"{co}: option names must be non-empty text, got {k!r}")
        if not isinstance(v, (str, int, float, np.number, np.bool_)):
            raise ConfigError(f"{co} {k.strip().upper()}: the value must be text or a number")
        key = k.strip().upper()
        if key in out:
            raise ConfigError(f"{co} {key} is given twice")
        out[key] = ("YES" if v else "NO") if isinstance(v, (bool, np.bool_)) else str(v).strip()
    return out


def webp_lossless(co: Mapping[str, str]) -> bool:
    """WEBP compression is lossless: ``WEBP_LOSSLESS=YES`` or the COG's ``QUALITY=100``."""
    return co.get("WEBP_LOSSLESS", "").upper() in GDAL_TRUE or co.get("QUALITY") == "100"


def lossy(co: Mapping[str, str]) -> str | None:
    """Why the options would change the full-resolution pixels (``COMPRESS=JPEG is lossy``),
    or None."""
    codec = co.get("COMPRESS", "").upper()
    if codec == "JPEG":
        return "COMPRESS=JPEG is lossy"
    if codec == "WEBP" and not webp_lossless(co):
        return "COMPRESS=WEBP is lossy unless WEBP_LOSSLESS=YES (for a COG: QUALITY=100)"
    if codec == "JXL" and co.get("JXL_LOSSLESS", "YES").upper() not in GDAL_TRUE:
        return f"COMPRESS=JXL with JXL_LOSSLESS={co['JXL_LOSSLESS']} is lossy"
    if "MAX_Z_ERROR" in co:
        try:
            exact = float(co["MAX_Z_ERROR"]) == 0
        except ValueError:
            exact = False
        if not exact:
            return f"MAX_Z_ERROR={co['MAX_Z_ERROR']} is lossy (LERC's error bound; 0 is exact)"
    return None


def check_options(co: Mapping[str, str], *, cog: bool | None, api: bool = False) -> None:
    """Refuse the options the module docs list (what GDAL refuses: :func:`trial`; ``NBITS``:
    :func:`check_nbits`). ``cog``: a COG is written (None: not known; what either driver
    takes passes)."""
    flag, dtype_flag, cog_flag = _flags(api)
    codec = co.get("COMPRESS", "DEFLATE").upper()
    for k, v in co.items():
        what, value = f"{flag} {k}={v}", v.upper()
        if k in FIXED_OPTIONS:
            raise ConfigError(f"{flag} {k} is set from the input and the scale; it cannot be given")
        if k == "PIXELTYPE":
            raise ConfigError(f"{what} sets the data type; choose it with {dtype_flag}")
        if k in REFUSED or (k == "TILING_SCHEME" and value != "CUSTOM"):
            raise ConfigError(f"{what}: {REFUSED.get(k, _REPROJECTS)}")
        if k == "PROFILE" and value != "GDALGEOTIFF":
            raise ConfigError(f"{what} leaves tags or georeferencing out of the file")
        if k == "LEVEL" and codec not in LEVEL_NAMES:
            raise ConfigError(f"{what} sets the DEFLATE, ZSTD or LZMA level; COMPRESS is {codec}")
        if k == "QUALITY" and codec not in ("WEBP", "JPEG"):
            raise ConfigError(f"{what} sets the WEBP quality; COMPRESS is {codec}")
        if cog is False and k in COG_ONLY:
            raise ConfigError(f"{what} applies to a Cloud-Optimized GeoTIFF only ({cog_flag})")
        if cog and (
            (k == "TILED" and value not in GDAL_TRUE) or (k == "INTERLEAVE" and value != "PIXEL")
        ):
            raise ConfigError(f"{what}: a COG ({cog_flag}) is always tiled and pixel-interleaved")
    problem = lossy(co)
    if problem:
        raise ConfigError(
            f"{flag} {problem}: pixel values would change, and nodata and saturated "
            f"pixels would not be kept (docs/value_fidelity.md); {LOSSLESS}"
        )
    block_sizes(co, cog=cog, api=api)


def check_nbits(co: Mapping[str, str], dtype: np.dtype) -> None:
    """Refuse ``NBITS`` other than the bits of ``dtype`` (fewer bits change the values)."""
    bits = dtype.itemsize * 8
    if "NBITS" in co and co["NBITS"] != str(bits):
        raise ConfigError(
            f"creation option NBITS={co['NBITS']} stores {dtype} values in other than {bits} "
            f"bits, which changes them; leave NBITS out"
        )


def block_sizes(
    co: Mapping[str, str], *, cog: bool | None = None, api: bool = False
) -> tuple[int | None, int | None]:
    """The block width and height given (``BLOCKXSIZE``, ``BLOCKYSIZE``; ``BLOCKSIZE`` sets
    both), each a multiple of 16; a COG's (``cog``) are square."""
    flag = _flags(api)[0]
    sizes: dict[str, int] = {}
    for k in BLOCK_KEYS:
        if k not in co:
            continue
        try:
            sizes[k] = int(co[k])
        except ValueError:
            raise ConfigError(f"{flag} {k} must be an integer, got {co[k]!r}") from None
        if sizes[k] < 16 or sizes[k] % 16:
            raise ConfigError(f"{flag} {k} must be a multiple of 16, got {sizes[k]}")
    both = sizes.get("BLOCKSIZE")
    x, y = sizes.get("BLOCKXSIZE", both), sizes.get("BLOCKYSIZE", both)
    if both is not None and x != y:
        raise ConfigError(f"{flag} BLOCKSIZE={both} sets both sizes; BLOCKXSIZE/BLOCKYSIZE differ")
    if cog and x != y:
        raise ConfigError(
            f"{flag} {', '.join(f'{k}={v}' for k, v in sizes.items())}: a COG's blocks are "
            f"square; pass BLOCKSIZE=N"
        )
    return x, y


def writer_block(x: int, y: int, *, api: bool = False) -> int:
    """The writer's block period: rows one flush covers and the column multiple panel cuts
    fall on, so that every write covers whole blocks (the least common multiple of the block
    width ``x`` and height ``y``)."""
    period = math.lcm(x, y)
    if period > max(x, y, MAX_BLOCK_PERIOD):
        raise ConfigError(
            f"{_flags(api)[0]} BLOCKXSIZE={x} and BLOCKYSIZE={y} line up only every {period} "
            "pixels, more than the writer buffers; choose sizes where one is a multiple of the "
            "other"
        )
    return period


def apply(profile: dict[str, Any], co: Mapping[str, str], *, api: bool = False) -> int:
    """Put the (checked) options ``co`` into the GTiff ``profile``, in the GTiff driver's names
    (COG-only options left out); returns :func:`writer_block`."""
    x, y = block_sizes(co, api=api)
    profile["blockxsize"] = x or profile["blockxsize"]
    profile["blockysize"] = y or profile["blockysize"]
    codec = co.get("COMPRESS", "DEFLATE").upper()
    for k, v in co.items():
        if k in BLOCK_KEYS or k in COG_ONLY:
            continue
        if k == "LEVEL":
            k = LEVEL_NAMES.get(codec, k)
        elif k == "QUALITY" and codec in ("WEBP", "JPEG"):
            k = "WEBP_LEVEL" if codec == "WEBP" else "JPEG_QUALITY"
            k, v = ("WEBP_LOSSLESS", "YES") if v == "100" and codec == "WEBP" else (k, v)
        profile[k.lower()] = v
    return writer_block(int(profile["blockxsize"]), int(profile["blockysize"]), api=api)


def cog_options(co: Mapping[str, str], *, float_data: bool) -> dict[str, Any]:
    """The COG driver's options: DEFLATE with a predictor, 512 px blocks, AVERAGE overviews,
    replaced by ``co`` in the COG driver's names (the metadata domains to copy are chosen
    per file: :func:`~sr_domains.geo.cog.to_cog`)."""
    options: dict[str, Any] = {
        "compress": "DEFLATE",
        "predictor": "FLOATING_POINT" if float_data else "STANDARD",
        "blocksize": 512,
        "overviews": "AUTO",
        "overview_resampling": "AVERAGE",
        "bigtiff": "IF_SAFER",
    }
    for k, v in co.items():
        if k in NOT_FOR_COG or k == "WEBP_LOSSLESS":
            continue
        options["blocksize" if k in BLOCK_KEYS else COG_NAMES.get(k, k).lower()] = v
    if co.get("COMPRESS", "").upper() == "WEBP" and webp_lossless(co):
        options["quality"] = "100"  # (the COG driver's lossless WEBP)
    return options


@contextlib.contextmanager
def _gdal_warnings() -> Iterator[list[str]]:
    """GDAL's warnings in this thread while the block runs (rasterio logs them), kept out of
    the log."""
    logger = logging.getLogger("rasterio._env")
    said: list[str] = []
    me = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        if record.thread != me:
            return True
        said.append(record.getMessage())
        return False

    level = logger.level
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)
    logger.addFilter(keep)
    try:
        yield said
    finally:
        logger.removeFilter(keep)
        logger.setLevel(level)


def _gdal_error(exc: BaseException) -> str:
    """The most telling message of a GDAL failure (rasterio chains the real one)."""
    texts = []
    e: BaseException | None = exc
    while e is not None:
        text = str(e).strip()
        if text and "previous exception" not in text:
            texts.append(text.splitlines()[0])
        e = e.__cause__ or e.__context__
    return texts[-1] if texts else type(exc).__name__


_UNSUPPORTED = re.compile(r"driver (\w+) does not support creation option (\w+)")
_VALUE_OF = re.compile(r"value for (\w+) creation option")


def trial(
    profile: Mapping[str, Any],
    given: Mapping[str, str],
    cog: Mapping[str, Any] | None = None,
    *,
    api: bool = False,
    names_only: bool = False,
) -> None:
    """Write a 16x16 copy of the output ``profile`` in memory (and its COG copy with the COG
    options ``cog``): refuse (naming the ``given`` options) what GDAL warns it does not know
    or accept, or cannot write (``names_only``: the failures are not refused)."""
    flag, _, cog_flag = _flags(api)
    prof = {k: v for k, v in profile.items() if k not in ("crs", "transform")}
    prof.update(width=16, height=16)
    name = f"sr_domains_co_{uuid.uuid4().hex}"
    stem = f"/vsimem/{name}"
    stage, failure = "GeoTIFF", None
    with _gdal_warnings() as said, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(f"{stem}.tif", "w", **prof) as ds:
                ds.write(np.zeros((ds.count, 16, 16), ds.dtypes[0]))
            if cog is not None:
                stage = "COG"
                rasterio.shutil.copy(f"{stem}.tif", f"{stem}.cog.tif", driver="COG", **cog)
        except Exception as exc:  # GDAL's refusal, whatever rasterio calls it
            failure = _gdal_error(exc).replace(f"{name}.tif: ", "")
        finally:
            for path in (f"{stem}.tif", f"{stem}.cog.tif"):
                with contextlib.suppress(Exception):
                    rasterio.shutil.delete(path)
    complaints = []
    for text in dict.fromkeys(said):
        unknown, value = _UNSUPPORTED.search(text), _VALUE_OF.search(text)
        if unknown:
            driver, opt = unknown.groups()
            hint = f" (a COG option: {cog_flag})" if driver == "GTiff" and opt in COG_ONLY else ""
            complaints.append(f"{flag} {opt}: GDAL's {driver} driver has no such option{hint}")
        elif value:
            opt = f"{value[1]}={given.get(value[1], '')}"
            complaints.append(f"{flag} {opt}: GDAL: {text.split(' in ', 1)[-1]}")
    if complaints:
        raise ConfigError("; ".join(complaints))
    if failure is not None and not names_only:
        listing = ", ".join(f"{k}={v}" for k, v in given.items())
        raise ConfigError(
            f"creation options {listing} cannot write {prof['count']} band(s) of "
            f"{prof['dtype']}{' as a COG' if stage == 'COG' else ''}: GDAL: {failure}"
        )


__all__ = [
    "BLOCK_KEYS",
    "COG_NAMES",
    "COG_ONLY",
    "FIXED_OPTIONS",
    "GDAL_TRUE",
    "LEVEL_NAMES",
    "MAX_BLOCK_PERIOD",
    "REFUSED",
    "apply",
    "block_sizes",
    "check_nbits",
    "check_options",
    "cog_options",
    "lossy",
    "normalize",
    "trial",
    "webp_lossless",
    "writer_block",
]
