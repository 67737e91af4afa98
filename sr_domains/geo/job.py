"""One GeoTIFF job: the model, profile, value rules, band order and output spec decided once per
file (:func:`prepare_job`), and the pixels streamed through them (:func:`write_pixels`), for the
whole image or a band of output rows (the distributed split)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..engine_build import resolve_network as network_of
from ..errors import BandMismatchError, TooSmallToAdaptError
from ..inference import Upscaler, default_profile
from ..intensity import IntensityProfile, profile_from_any, resolve_recipe
from ..made_with import weights_made, weights_provenance
from ..models.base import SRModel
from ..nodata_fill import fill_invalid
from ..noise_gate import (
    CENTRAL_WINDOW,
    central_box,
    choose_for_noise,
    chosen_by_default,
    gate_sample,
    noise_variant,
)
from ..options import UpscaleOptions
from ..panels import iter_hr_blocks
from ..run_recipe import for_source, recipe_of
from ..source_stamp import stamp_of
from ..spectral import declares_reflectance
from ..strict_json import provenance_json
from ..value_domain import ValueRules, build_rules
from .band_checks import match_bands, refuse_palette, warn_class_map
from .dtype_checks import check_output_nodata, warn_clipping_dtype
from .gdal_paths import raster_inputs
from .georef import read_georef, scale_georef
from .output_spec import (
    TAG_PREFIX,
    OutputSpec,
    build_spec,
    customize_spec,
    provenance_tags,
)
from .reader import RasterSource
from .stored_bits import keep_nbits, stored_bits, stored_range
from .writer import write_block

try:
    import rasterio
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)

#: GDAL block cache while upscaling (MB). Small on purpose: blocks are written whole, in order.
GDAL_CACHE_MB = 64


def gdal_env() -> Any:
    """The ``rasterio.Env`` used for reading and writing (bounded cache, internal masks).

    ``GTIFF_POINT_GEO_IGNORE`` is off whatever the user's setting: with it on, GDAL reads and
    writes a PixelIsPoint file's tiepoint as a pixel corner, so the output grid, scaled about
    that point, was a quarter input pixel off (x2) when read back as GDAL reads by default."""
    return rasterio.Env(
        GDAL_CACHEMAX=GDAL_CACHE_MB, GDAL_TIFF_INTERNAL_MASK=True, GTIFF_POINT_GEO_IGNORE=False
    )


def resolve_network(
    model: SRModel | str | None, weights: str | Path | None, *, scale: int, n_bands: int
) -> SRModel:
    """The network for ``n_bands`` selected bands (:func:`sr_domains.engine_build.
    resolve_network`); a given model of other bands is a :class:`BandMismatchError`."""
    if isinstance(model, SRModel) and weights is None and model.in_channels not in (1, n_bands):
        raise BandMismatchError(model.in_channels, n_bands, "{n} are selected (--bands)")
    return network_of(model, weights, scale=scale, n_bands=n_bands)


def fit_profile(
    src: RasterSource, net: SRModel, profile: str | IntensityProfile | None
) -> tuple[IntensityProfile, np.ndarray]:
    """The intensity profile (fitted once on a whole-file sample when needed) and the per-band
    far fill value for invalid pixels (mean of valid pixels, normalized units; next to valid
    data the fill continues it, :mod:`sr_domains.nodata_fill`)."""
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


def values_tag(rules: ValueRules | None, source: Path) -> str:
    """The ``SR_DOMAINS_VALUES`` tag (written last): the rules applied and what they changed."""
    if rules is None:
        return provenance_json({"clamp": False})
    stats = rules.stats
    if stats.envelope + stats.domain + stats.spectral:
        log.info("%s: %s", source.name, stats.describe())
    kept = bool(rules.spectral) and stats.spectral > 0  # (no pixel it could apply to: model)
    return provenance_json(
        {
            "band_ratios": "bicubic" if kept else "model",
            **({"band_ratio_zero": list(rules.zero)} if kept and rules.zero else {}),
            "envelope": rules.envelope,
            "domain": rules.domain.to_dict() if rules.domain is not None else None,
            "pinned": [list(p) for p in rules.pinned[:1]],
            "clamped": stats.to_dict(),
        }
    )


def physical_zero(rs: RasterSource, fitted: IntensityProfile) -> list[float] | None:
    """Per selected band, the stored value of zero reflectance when it is not 0
    (:func:`sr_domains.spectral.physical_zero`: the file's band scales/offsets, a physical
    profile)."""
    from ..spectral import physical_zero as zero_of

    scales = [rs.ds.scales[i - 1] for i in rs.indexes]
    offsets = [rs.ds.offsets[i - 1] for i in rs.indexes]
    return zero_of(scales, offsets, fitted.recipe, fitted.scale, fitted.offset)


@dataclass
class GeotiffJob:
    """Everything decided once per file, before any pixel is written."""

    net: SRModel
    up: Upscaler
    fitted: IntensityProfile
    fill: np.ndarray
    rules: ValueRules | None
    order: list[int] | None
    spec: OutputSpec


def prepare_job(
    rs: RasterSource,
    options: UpscaleOptions,
    *,
    model: SRModel | None = None,
    profile: IntensityProfile | None = None,
) -> GeotiffJob:
    """Resolve the model, fit the profile, infer the value rules and band order, adapt the
    model to the file when asked, and build the output spec with its provenance (see
    :func:`~sr_domains.geo.upscale_geotiff`); ``model`` and ``profile``: a built model and a
    fitted profile used instead of ``options.model`` and ``options.profile``."""
    o = options
    chosen: SRModel | str | None = model if model is not None else o.model
    scale, weights, values, adapt = o.scale, o.weights, o.values, o.adapt
    refuse_palette(rs)
    check_output_nodata(rs, o.dtype)  # (before any work: may read the file once)
    if o.dtype is not None:
        warn_clipping_dtype(rs, np.dtype(o.dtype))
    stamp = input_stamp(rs.path)  # after the cheap refusals: it reads the whole input
    georef = read_georef(rs.ds, rs.path)
    try:
        net = resolve_network(chosen, weights, scale=scale, n_bands=rs.n_bands)
    except BandMismatchError as exc:  # this file's bands: name it
        raise exc.naming(rs.path) from exc
    up = Upscaler(
        net, tile=o.tile, overlap=o.overlap, batch_size=o.batch_size, device=o.device, amp=o.amp
    )
    n_out = up.out_channels(rs.n_bands)
    fitted, fill = fit_profile(rs, net, profile if profile is not None else o.profile)
    order = match_bands(rs, net) if up.band_mode(rs.n_bands) == "joint" else None
    # one read of the central window for the class-code check, the gate and --adapt
    window = central_window(rs) if rs.dtype.kind in "iu" else None
    if window is not None:
        warn_class_map(rs, window)
    zero = physical_zero(rs, fitted)
    reflectance = declares_reflectance(fitted.recipe)
    # band offsets: the rule needs every valid value above their zero (an exact minimum)
    exact = zero is not None and not reflectance
    band_min = rs.domain_minimum(exact=exact) if values.clamp else [0.0]
    bits = stored_bits(rs)  # (NBITS=12 in uint16: the domain and saturation are 12-bit)
    rules = build_rules(
        values,
        band_min,
        dtype=rs.dtype,
        physical_zero=zero,
        reflectance=reflectance,
        stored_range=stored_range(bits),
    )
    _say_ratios_off(rs.path, rules, band_min, zero, values, up.auto_spectral(rs.n_bands))
    made = weights_made(chosen, weights, net, scale, rs.n_bands)
    noise = None
    if chosen_by_default(chosen, weights) and noise_variant(net) is not None:
        up, noise = choose_for_noise(up, [noise_sample(rs, fitted, window)])
        if noise is not None and up.model is not net:
            net = up.model
            made = made.blended(noise, net)
    report = None
    if adapt is not None:
        from ..adapt.input_adapt import adapt_engine

        sample = adaptation_sample(rs, fitted, fill, order, window)
        try:
            up, report = adapt_engine(up, [sample], adapt, progress=o.progress)
        except TooSmallToAdaptError as exc:  # the file it is about
            raise exc.naming(rs.path) from None
        made = made.adapted(True, up.model is not net, up.model)
        net = up.model
    prov = provenance_tags(
        version=__version__,
        model=net,
        model_name=made.weights,
        weights_sha256=made.sha256,
        weights_hash_of=made.hash_of,
        scale=scale,
        profile_json=provenance_json(fitted.to_dict()),
        tile=up.tiling.tile,
        overlap=up.tiling.overlap,
        source=rs.path,
        bands=rs.indexes,
        fill_json=provenance_json([round(float(v), 6) for v in fill]),
        source_stamp_json=provenance_json(stamp) if stamp is not None else "",
    )
    if made.base_sha256:  # the file a blend or adaptation started from: resume compares it
        prov[f"{TAG_PREFIX}BASE_WEIGHTS_SHA256"] = made.base_sha256
    if report is not None:
        prov[f"{TAG_PREFIX}ADAPT"] = provenance_json(report.to_dict())
    if noise is not None:
        prov[f"{TAG_PREFIX}NOISE"] = provenance_json(noise.to_dict())
    # the other options that change the output: a resumed batch compares them (run_recipe)
    recipe = recipe_of(o, "geotiff", profile=profile)
    prov[f"{TAG_PREFIX}RECIPE"] = for_source(recipe, rs.dtype.name)
    spec = build_spec(rs, scale_georef(georef, scale), scale, n_out, prov)
    customize_spec(spec, o.dtype, dict(o.creation_options) or None, rs.path)
    keep_nbits(spec, rules, bits, rs)
    return GeotiffJob(net, up, fitted, fill, rules, order, spec)


def _say_ratios_off(
    path: Path, rules: ValueRules | None, band_min: Any, zero: Any, values: Any, wanted: bool
) -> None:
    """Warn when valid values below the bands' zero switch the band-ratio rule off for a run
    that would take it (``wanted``: ``--spectral auto`` would apply it; ``--spectral bicubic``
    asks for it): a few slightly negative reflectances (Landsat Collection 2) would otherwise
    lose bicubic's ratios without a word."""
    if rules is None or rules.spectral is not False or values.spectral == "model":
        return
    if values.spectral == "auto" and not wanted:
        return
    mins = np.asarray(band_min, np.float64)
    floor = np.zeros_like(mins) if zero is None else np.asarray(zero, np.float64)
    if mins.size < 2 or floor.shape != mins.shape:
        return
    below = ",".join(str(i + 1) for i in range(mins.size) if mins[i] < floor[i])
    if not below:
        return
    if zero is not None:  # band offsets: where zero is, known
        how = "--spectral bicubic imposes them, leaving those pixels out one by one"
        log.warning(
            "%s: band(s) %s hold valid values below their zero (band offsets): band ratios "
            "are not imposed for this file; %s (as for data a reflectance profile declares)",
            path,
            below,
            how,
        )
    else:
        log.warning(
            "%s: band(s) %s hold valid values below zero, and nothing says where their zero "
            "is (band offsets, a reflectance profile): band ratios are not imposed",
            path,
            below,
        )


def input_stamp(path: Path) -> dict[str, Any] | None:
    """The stamp (:func:`~sr_domains.source_stamp.stamp_of`) of the files a run reads for
    ``path`` (a VRT's sources too), or None when they are no plain local files."""
    try:
        return stamp_of(raster_inputs(path))
    except OSError:
        return None


#: Largest window (LR pixels per side) read from a raster to adapt the model on.
ADAPT_WINDOW = CENTRAL_WINDOW


def central_window(rs: RasterSource) -> tuple[np.ndarray, np.ndarray]:
    """``(values, valid)`` of the raster's central :data:`ADAPT_WINDOW` square (the whole
    raster when smaller): read once per file for the class-code check, the noise gate and
    ``--adapt``."""
    top, left, th, tw = central_box(*rs.shape, ADAPT_WINDOW)
    values, valid = rs.read_window(top, left, th, tw)
    return values, np.broadcast_to(np.asarray(valid, bool), values.shape)


def noise_sample(
    rs: RasterSource, fitted: IntensityProfile, window: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The central window (:func:`central_window`) normalized, invalid pixels NaN: what the
    noise gate (:mod:`sr_domains.noise_gate`) estimates the noise on."""
    values, valid = window if window is not None else central_window(rs)
    return gate_sample(values, valid, fitted)


def adaptation_sample(
    rs: RasterSource,
    fitted: IntensityProfile,
    fill: np.ndarray,
    order: list[int] | None,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """A normalized ``(C, h, w)`` window of the raster to adapt the model on: the central
    window (:func:`central_window`), invalid pixels filled as the network will see them
    (:mod:`sr_domains.nodata_fill`, far value ``fill``), bands in the order the model takes
    them."""
    values, valid = window if window is not None else central_window(rs)
    x = fitted.normalize(values).astype(np.float32)
    ok = valid & np.isfinite(x)
    x = fill_invalid(x, ~ok, fill) if not ok.all() else x
    return x[order] if order is not None else x


def write_pixels(
    job: GeotiffJob,
    rs: RasterSource,
    out: Any,
    *,
    progress: bool = False,
    rows: tuple[int, int] | None = None,
) -> None:
    """Stream the output through the job into the open dataset ``out``: the whole image, or
    only HR rows ``[r0, r1)`` written at row ``r - r0`` of ``out`` (a part file)."""
    up, spec = job.up, job.spec
    s = up.scale
    h, w = rs.shape
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=h * s * w * s, unit="px", unit_scale=True, desc=rs.path.name)
    shift = rows[0] if rows is not None else 0
    try:
        for row0, col0, block in iter_hr_blocks(
            up,
            rs.read_window,
            rs.shape,
            rs.n_bands,
            profile=job.fitted,
            fill=job.fill,
            flush_rows=spec.block,
            align=spec.block // math.gcd(spec.block, s),
            on_block=bar.update if bar is not None else None,
            rules=job.rules,
            band_order=job.order,
            rows=rows,
        ):
            cols = block.shape[2]
            x0, x1 = col0 // s, (col0 + cols) // s
            # one output block row at a time bounds the temporaries of casting and masking
            for r in range(0, block.shape[1], spec.block):
                part = block[:, r : r + spec.block]
                top = row0 + r
                y0, y1 = top // s, -(-(top + part.shape[1]) // s)
                lr = rs.read(Window(x0, y0, x1 - x0, y1 - y0))
                write_block(out, spec, top, col0, part, lr, s, out_row0=top - shift)
            del block, part
    finally:
        if bar is not None:
            bar.close()


__all__ = [
    "GDAL_CACHE_MB",
    "GeotiffJob",
    "fit_profile",
    "gdal_env",
    "prepare_job",
    "resolve_network",
    "values_tag",
    "weights_provenance",
    "write_pixels",
]
