"""One GeoTIFF job: the model, profile, value rules, band order and output spec decided once per
file (:func:`prepare_job`), and the pixels streamed through them (:func:`write_pixels`), for the
whole image or a band of output rows (the distributed split). The profile and value side:
:mod:`sr_domains.geo.job_values`; the central window read once:
:mod:`sr_domains.geo.job_samples`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..engine_build import resolve_network as network_of
from ..errors import BandMismatchError, TooSmallToAdaptError
from ..inference import Upscaler
from ..intensity import IntensityProfile, work_dtype
from ..made_with import weights_made, weights_provenance
from ..models.base import SRModel
from ..noise_gate import choose_for_noise, chosen_by_default, noise_variant
from ..options import UpscaleOptions
from ..panels import iter_hr_blocks
from ..run_recipe import for_source, recipe_of
from ..source_stamp import stamp_of
from ..spectral import declares_reflectance
from ..strict_json import provenance_json
from ..value_domain import ValueRules, build_rules
from .band_checks import match_bands, refuse_palette, warn_class_map
from .dtype_checks import check_output_nodata, warn_clipping_dtype, warn_value_range
from .gdal_cache import GDAL_CACHE_MB, capped_block_cache
from .gdal_paths import raster_inputs
from .georef import read_georef, scale_georef
from .job_samples import ADAPT_WINDOW, adaptation_sample, central_window, noise_sample
from .job_values import fit_profile, physical_zero, say_ratios_off, values_tag
from .output_spec import (
    TAG_PREFIX,
    OutputSpec,
    build_spec,
    customize_spec,
    provenance_tags,
)
from .reader import RasterSource
from .stored_bits import keep_nbits, stored_bits, stored_range
from .writer import write_block, write_bytes

try:
    import rasterio
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc


@contextmanager
def gdal_env() -> Iterator[None]:
    """GDAL's settings for reading and writing: internal masks, GDAL's block cache capped at
    :data:`GDAL_CACHE_MB` for the process while jobs run (:mod:`sr_domains.geo.gdal_cache`).

    ``GTIFF_POINT_GEO_IGNORE`` is off whatever the user's setting: with it on, GDAL reads and
    writes a PixelIsPoint file's tiepoint as a pixel corner, so the output grid, scaled about
    that point, was a quarter input pixel off (x2) when read back as GDAL reads by default."""
    with (
        capped_block_cache(),
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GTIFF_POINT_GEO_IGNORE=False),
    ):
        yield


def resolve_network(
    model: SRModel | str | None, weights: str | Path | None, *, scale: int, n_bands: int
) -> SRModel:
    """The network for ``n_bands`` selected bands (:func:`sr_domains.engine_build.
    resolve_network`); a given model of other bands is a :class:`BandMismatchError`."""
    if isinstance(model, SRModel) and weights is None and model.in_channels not in (1, n_bands):
        raise BandMismatchError(model.in_channels, n_bands, "{n} are selected (--bands)")
    return network_of(model, weights, scale=scale, n_bands=n_bands)


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
    warn_value_range(rs, values)  # a --value-range the data leave (reads the sample)
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
        out_dtype=o.dtype,
    )
    say_ratios_off(rs.path, rules, band_min, zero, values, up.auto_spectral(rs.n_bands))
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


def input_stamp(path: Path) -> dict[str, Any] | None:
    """The stamp (:func:`~sr_domains.source_stamp.stamp_of`) of the files a run reads for
    ``path`` (a VRT's sources too), or None when they are no plain local files."""
    try:
        return stamp_of(raster_inputs(path))
    except OSError:
        return None


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
            dtype=rs.dtype,
            write_bytes=write_bytes(spec, rs.dtype, work_dtype(rs.dtype), s),
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
    "ADAPT_WINDOW",
    "GDAL_CACHE_MB",
    "GeotiffJob",
    "adaptation_sample",
    "central_window",
    "fit_profile",
    "gdal_env",
    "input_stamp",
    "noise_sample",
    "physical_zero",
    "prepare_job",
    "resolve_network",
    "values_tag",
    "weights_provenance",
    "write_pixels",
]
