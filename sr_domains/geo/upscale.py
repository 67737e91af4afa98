"""``upscale_geotiff`` (one file) and ``upscale_many`` (a folder or glob, resumable)."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import ConfigError, InputFileError, OutputExistsError
from ..inference import Upscaler, default_profile
from ..intensity import IntensityProfile, profile_from_any, resolve_recipe
from ..io_safety import atomic_output, check_paths, preflight, remove_temp, temp_name
from ..models.base import SRModel
from ..panels import iter_hr_blocks
from ..value_domain import ValueOptions, ValueRules, build_rules
from .georef import read_georef, scale_georef
from .reader import RasterSource, open_dataset
from .writer import (
    TAG_PREFIX,
    OutputSpec,
    adopt_sidecars,
    build_spec,
    create,
    provenance_tags,
    remove_sidecars,
    to_cog,
    write_block,
    write_error,
)

try:
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import RasterioError
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)

#: GDAL block cache while upscaling (MB). Small on purpose: blocks are written whole, in order.
GDAL_CACHE_MB = 64
TIFF_SUFFIXES = (".tif", ".tiff")


def gdal_env() -> Any:
    """The ``rasterio.Env`` used for reading and writing (bounded cache, internal masks)."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB, GDAL_TIFF_INTERNAL_MASK=True)


# -- model, profile, provenance -----------------------------------------------------------------
def resolve_network(
    model: SRModel | str | None, weights: str | Path | None, *, scale: int, n_bands: int
) -> SRModel:
    """The network to run: a given :class:`SRModel`, else :func:`sr_domains.pretrained.
    resolve_model` (shipped weights, a checkpoint or an architecture name)."""
    if isinstance(model, SRModel) and weights is None:
        if model.scale != scale:
            raise ConfigError(f"the model upscales x{model.scale} but x{scale} was requested")
        if model.in_channels not in (1, n_bands):
            raise ConfigError(
                f"the model takes {model.in_channels} band(s) but {n_bands} are selected; "
                "select matching bands (--bands) or use a single-channel model"
            )
        return model
    from ..pretrained import resolve_model

    try:
        return resolve_model(model, weights, scale=scale, n_bands=n_bands)
    except ModuleNotFoundError as exc:  # model zoo / checkpoints not installed yet
        if exc.name and exc.name.startswith("sr_domains"):
            raise ConfigError(
                f"cannot load a model here ({exc.name} is not available): no shipped weights "
                "yet; pass a model object (Python API) or --weights/--model once available"
            ) from exc
        raise


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_state(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def weights_provenance(
    model: SRModel | str | None, weights: str | Path | None, net: SRModel, scale: int, n: int
) -> tuple[str, str, str]:
    """``(name, sha256, "file" | "state_dict")`` of the weights actually used."""
    if weights is not None:
        p = Path(weights)
        return p.name, _sha256_file(p), "file"
    if not isinstance(model, SRModel):
        try:
            from ..pretrained import default_pretrained, list_pretrained

            entries = {e.name: e for e in list_pretrained()}
            entry = entries.get(model) if model else default_pretrained(scale, n)
            if entry is not None:
                return entry.name, _sha256_file(entry.path), "file"
        except Exception:  # provenance lookup must never break a run
            pass
    card = getattr(net, "card", None)
    name = card.get("name") if isinstance(card, dict) else getattr(card, "name", None)
    name = name or (model if isinstance(model, str) else "in-memory")
    return str(name), _sha256_state(net), "state_dict"


def fit_profile(
    src: RasterSource, net: SRModel, profile: str | IntensityProfile | None
) -> tuple[IntensityProfile, np.ndarray]:
    """The intensity profile (fitted once on a whole-file sample when needed) and the per-band
    fill value for invalid pixels (mean of valid pixels, normalized units)."""
    spec: Any = profile if profile is not None else default_profile(net, src.dtype)
    needs_data = not isinstance(spec, IntensityProfile) and resolve_recipe(spec).needs_data
    values = valid = None
    if needs_data or src.may_have_invalid:
        values, valid = src.sample()
    fitted = profile_from_any(
        spec, values if needs_data else None, dtype=src.dtype, valid_mask=valid
    )
    fill = np.zeros(src.n_bands, np.float32)
    if values is not None:
        x = fitted.normalize(values)
        ok = valid & np.isfinite(x)
        sums = np.where(ok, x, 0).sum(axis=(1, 2), dtype=np.float64)
        counts = ok.sum(axis=(1, 2))
        fill = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32)
        if fitted.recipe.split(":")[0].strip().lower() == "identity" and ok.any():
            lo, hi = float(x[ok].min()), float(x[ok].max())
            if lo < -1.0 or hi > 2.0:
                log.warning(
                    "%s: values span %.4g..%.4g but the 'identity' profile feeds them to the "
                    "network unchanged; pass --profile (e.g. percentile, range:LO,HI, "
                    "reflectance) if the model expects roughly [0, 1]",
                    src.path.name,
                    lo,
                    hi,
                )
    return fitted, fill


def match_bands(rs: RasterSource, net: SRModel) -> list[int] | None:
    """The order in which to feed the selected bands to a joint model so that their meaning
    (colour interpretation or description) matches the model card's ``bands``; None when
    they already match or when either side does not say. A contradiction is logged."""
    card = getattr(net, "card", None)
    want = card.get("bands") if isinstance(card, dict) else getattr(card, "bands", None)
    want = [str(b).lower() for b in (want or [])]
    have = rs.band_semantics()
    if len(want) != len(have) or not want or any(h is None for h in have) or have == want:
        return None
    named = ", ".join(f"{i}={h}" for i, h in zip(rs.indexes, have))
    if sorted(have) == sorted(want) and len(set(want)) == len(want):
        log.info("%s: bands %s are fed to the model as %s", rs.path.name, named, ", ".join(want))
        return [have.index(b) for b in want]
    log.warning(
        "%s: the selected bands are %s but the model expects %s; select matching bands with "
        "--bands (e.g. the file's %s) or use a model for these bands",
        rs.path.name,
        named,
        ", ".join(want),
        ",".join(str(rs.indexes[have.index(b)]) for b in want if b in have) or "bands",
    )
    return None


def values_tag(rules: ValueRules | None, source: Path) -> str:
    """The ``SR_DOMAINS_VALUES`` tag (written last): the rules applied and what they changed."""
    if rules is None:
        return json.dumps({"clamp": False})
    stats = rules.stats
    if stats.envelope + stats.domain:
        log.info("%s: %s", source.name, stats.describe())
    return json.dumps(
        {
            "envelope": rules.envelope,
            "domain": rules.domain.to_dict() if rules.domain is not None else None,
            "pinned": [list(p) for p in rules.pinned[:1]],
            "clamped": stats.to_dict(),
        }
    )


def _refuse_palette(src: RasterSource) -> None:
    for i in src.indexes:
        if src.ds.colorinterp[i - 1] == ColorInterp.palette:
            raise InputFileError(
                src.path,
                f"band {i} has a colour table (categorical/paletted data), which cannot be "
                "super-resolved; expand it first, e.g. gdal_translate -expand rgb",
            )


# -- single file --------------------------------------------------------------------------------
def upscale_geotiff(
    src: str | Path,
    dst: str | Path,
    *,
    scale: int = 2,
    model: SRModel | str | None = None,
    weights: str | Path | None = None,
    bands: Sequence[int] | None = None,
    profile: str | IntensityProfile | None = None,
    nodata: float | None = None,
    cog: bool = False,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    values: ValueOptions | None = None,
) -> Path:
    """Super-resolve a GeoTIFF into a georeferenced GeoTIFF on top of the original.

    Args:
        src: input raster (GeoTIFF, or anything GDAL reads).
        dst: output GeoTIFF (parent folders are created).
        scale: 2, 3 or 4; the output transform is ``transform * Affine.scale(1/scale)``.
        model: an :class:`~sr_domains.models.SRModel`, a shipped weights or architecture name,
            or None for the shipped default.
        weights: checkpoint path (overrides ``model`` weights).
        bands: 1-based bands to process (default: all but an alpha band).
        profile: intensity recipe (``dtype``, ``reflectance``, ``s2l2a``, ``percentile:1,99``,
            ...) or a fitted profile; default: the model card's, else ``dtype`` for integer and
            ``identity`` for float data. Data-dependent recipes are fitted once per file.
        nodata: nodata override (default: the file's).
        cog: write a Cloud-Optimized GeoTIFF with overviews.
        tile, overlap, batch_size, device, amp: see :class:`~sr_domains.inference.Upscaler`.
        overwrite: replace an existing ``dst`` (never the input).
        progress: show a progress bar.
        values: value-fidelity options (:class:`~sr_domains.value_domain.ValueOptions`); by
            default outputs stay within the local input range and the physical domain
            (non-negative input stays non-negative), and saturated pixels stay saturated.

    Returns:
        ``dst``, written atomically (temp file in the same folder, renamed when complete).
    """
    src, dst = Path(src), Path(dst)
    if scale not in (2, 3, 4):
        raise ConfigError(f"scale must be 2, 3 or 4, got {scale}")
    preflight(dst, [src], kind="file", overwrite=overwrite)
    with gdal_env(), RasterSource(src, tuple(bands) if bands else None, nodata) as rs:
        _refuse_palette(rs)
        georef = read_georef(rs.ds, rs.path)
        net = resolve_network(model, weights, scale=scale, n_bands=rs.n_bands)
        up = Upscaler(
            net, tile=tile, overlap=overlap, batch_size=batch_size, device=device, amp=amp
        )
        n_out = up.out_channels(rs.n_bands)
        fitted, fill = fit_profile(rs, net, profile)
        order = match_bands(rs, net) if up.band_mode(rs.n_bands) == "joint" else None
        clamp = values is None or values.clamp
        rules = build_rules(values, rs.band_minimum() if clamp else [0.0], dtype=rs.dtype)
        w_name, w_sha, w_of = weights_provenance(model, weights, net, scale, rs.n_bands)
        prov = provenance_tags(
            version=__version__,
            model=net,
            model_name=w_name,
            weights_sha256=w_sha,
            weights_hash_of=w_of,
            scale=scale,
            profile_json=json.dumps(fitted.to_dict()),
            tile=up.tiling.tile,
            overlap=up.tiling.overlap,
            source=rs.path,
            bands=rs.indexes,
            fill_json=json.dumps([round(float(v), 6) for v in fill]),
        )
        spec = build_spec(rs, scale_georef(georef, scale), scale, n_out, prov)
        with atomic_output(dst, [src], overwrite=overwrite) as tmp:
            stage = temp_name(dst, ".tif") if cog else tmp
            try:
                with create(stage, spec) as out:
                    _write_pixels(rs, up, spec, out, fitted, fill, progress, rules, order)
                    out.update_tags(**{f"{TAG_PREFIX}VALUES": values_tag(rules, rs.path)})
                if cog:
                    to_cog(stage, tmp, spec)
            except RasterioError as exc:
                raise write_error(exc, dst) from exc
            finally:
                if cog:
                    remove_temp(stage)
            remove_sidecars(dst)  # a stale one would override the new file's metadata
            if cog:
                adopt_sidecars(tmp, dst)
    log.info("wrote %s", dst)
    return dst


def _write_pixels(
    rs: RasterSource,
    up: Upscaler,
    spec: OutputSpec,
    out: Any,
    fitted: IntensityProfile,
    fill: np.ndarray,
    progress: bool,
    rules: ValueRules | None = None,
    band_order: list[int] | None = None,
) -> None:
    s = up.scale
    h, w = rs.shape
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=h * s * w * s, unit="px", unit_scale=True, desc=rs.path.name)
    try:
        for row0, col0, block in iter_hr_blocks(
            up,
            rs.read_window,
            rs.shape,
            rs.n_bands,
            profile=fitted,
            fill=fill,
            flush_rows=spec.block,
            align=spec.block // math.gcd(spec.block, s),
            on_block=bar.update if bar is not None else None,
            rules=rules,
            band_order=band_order,
        ):
            cols = block.shape[2]
            x0, x1 = col0 // s, (col0 + cols) // s
            # one output block row at a time bounds the temporaries of casting and masking
            for r in range(0, block.shape[1], spec.block):
                part = block[:, r : r + spec.block]
                top = row0 + r
                y0, y1 = top // s, -(-(top + part.shape[1]) // s)
                lr = rs.read(Window(x0, y0, x1 - x0, y1 - y0))
                write_block(out, spec, top, col0, part, lr, s)
            del block, part
    finally:
        if bar is not None:
            bar.close()


# -- batch ------------------------------------------------------------------------------------
def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by a folder (its ``*.tif``/``*.tiff``), a glob pattern, a file, or a list."""
    if isinstance(inputs, (list, tuple)):
        return [p for item in inputs for p in expand_inputs(item)]
    text = str(inputs)
    p = Path(text)
    if p.is_dir():
        found = [q for q in p.iterdir() if q.suffix.lower() in TIFF_SUFFIXES]
    elif any(ch in text for ch in "*?["):
        found = [Path(q) for q in glob.glob(text)]
    else:
        return [p]
    return sorted(q for q in found if q.is_file() and not q.name.startswith("."))


def output_status(dst: Path, src: Path, scale: int) -> str:
    """``"missing"``, ``"complete"`` (a finished output of ``src`` at ``scale``), ``"damaged"``
    (ours for this source and scale, but unreadable or cut short: redo it) or ``"foreign"``.

    Outputs are renamed into place only when complete, but a file can still be damaged later
    (a copy cut short, a disk error), so the header is not trusted alone: our provenance tags
    for this source and scale, the tag written last (``SR_DOMAINS_VALUES``), the expected size,
    and every block of every band readable.
    """
    if not dst.exists():
        return "missing"
    try:
        with open_dataset(src) as ds:
            want = (ds.height * scale, ds.width * scale)
    except (InputFileError, OSError):
        return "foreign"
    try:
        ds = open_dataset(dst)
    except (InputFileError, OSError, RasterioError):
        return "foreign"  # cannot even tell whose it is
    with ds:
        tags = ds.tags()
        ours = (
            tags.get(f"{TAG_PREFIX}SYNTHETIC") == "super-resolved"
            and tags.get(f"{TAG_PREFIX}SOURCE") == src.name
            and tags.get(f"{TAG_PREFIX}SCALE") == str(scale)
        )
        if not ours:
            return "foreign"
        if (ds.height, ds.width) != want or f"{TAG_PREFIX}VALUES" not in tags:
            return "damaged"
        try:
            rows = max(ds.block_shapes[0][0], 1)
            for y0 in range(0, ds.height, rows):  # bounded memory: one block row at a time
                ds.read(window=Window(0, y0, ds.width, min(rows, ds.height - y0)))
        except (OSError, RasterioError):
            return "damaged"
    return "complete"


def is_complete(dst: Path, src: Path, scale: int) -> bool:
    """True when ``dst`` is a finished, fully readable output of ``src`` at ``scale``."""
    return output_status(dst, src, scale) == "complete"


def upscale_many(
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    scale: int = 2,
    overwrite: bool = False,
    **kwargs: Any,
) -> list[Path]:
    """Upscale every GeoTIFF in a folder / glob / list into ``out_dir`` (same file names).

    Resumable: an output that is already complete (see :func:`output_status`) is skipped, one
    of ours that is damaged or cut short is redone; any other existing output is an error
    unless ``overwrite``. A file that cannot be read is
    reported and the batch goes on; the error raised at the end lists the failures.

    Returns:
        The outputs written by this call (skipped ones are not listed).
    """
    files = expand_inputs(inputs)
    if not files:
        raise InputFileError(str(inputs), "no GeoTIFF files found (*.tif, *.tiff)")
    out_dir = Path(out_dir)
    names = [f.name for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"several inputs are named {dupes}; outputs would collide")
    roots = [Path(inputs)] if isinstance(inputs, (str, Path)) and Path(inputs).is_dir() else []
    check_paths(out_dir, [*roots, *files], kind="dir")
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder; batch outputs go to a folder")
    todo = []
    for f in files:
        dst = out_dir / f.name
        status = "missing" if overwrite else output_status(dst, f, scale)
        if status == "complete":
            log.info("skipping %s: %s is complete", f, dst)
            continue
        if status == "foreign":
            raise OutputExistsError(dst)
        if status == "damaged":
            log.warning("%s is an incomplete or damaged output of %s: redoing it", dst, f)
        todo.append((f, dst, status == "damaged"))
    written, failed = [], []
    for f, dst, redo in todo:
        try:
            written.append(
                upscale_geotiff(f, dst, scale=scale, overwrite=overwrite or redo, **kwargs)
            )
        except InputFileError as exc:
            log.error("%s", exc)
            failed.append(exc)
    if failed:
        listing = "; ".join(str(e) for e in failed)
        raise InputFileError(None, f"{len(failed)} of {len(todo)} file(s) failed: {listing}")
    return written


__all__ = [
    "expand_inputs",
    "fit_profile",
    "is_complete",
    "output_status",
    "upscale_geotiff",
    "upscale_many",
]
