"""Public entry points: :func:`upscale_dicom_series` (and :func:`upscale_nifti`, from
:mod:`sr_domains.medical.nifti_upscale`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..api_options import keyword_options
from ..engine_build import upscaler_of
from ..errors import ConfigError, SRDomainsError
from ..inference import Upscaler
from ..intensity import IntensityProfile
from ..io_safety import atomic_output, check_paths, preflight
from ..made_with import MADE_KEY, Made, Requested
from ..models.base import SRModel
from ..options import AdaptOptions, UpscaleOptions, check_supported
from ..output_checks import check_model_output
from ..source_stamp import INPUT_CHANGED, SOURCE_STAMP_KEY, input_changed, series_stamp
from ..value_domain import ValueOptions, ValueRules, build_rules
from ..value_facts import zero_facts
from ..value_range_check import warn_outside_range
from .common import (
    check_through_plane,
    describe_profile,
    fit_profile,
    middle_indexes,
    provenance,
    volume_made,
    weights_for_volume,
)
from .dicom_grid import slice_grid
from .dicom_read import load_dicom_series
from .dicom_series import DicomSeries
from .dicom_write import write_series_files
from .geometry import scale_factors, upscaled_affine
from .model_paths import check_model_outside
from .nifti import check_output_name
from .nifti_upscale import run_nifti, upscale_nifti
from .pydicom_logs import warnings_once
from .volume import upscale_volume

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
ModelArg = SRModel | Upscaler | str | None
ProfileArg = str | IntensityProfile | dict[str, Any] | None


def upscale_dicom_series(
    src: PathLike,
    dst: PathLike,
    *,
    series_uid: str | None = None,
    scale: int = 2,
    model: ModelArg = None,
    weights: PathLike | None = None,
    through_plane: bool = False,
    profile: ProfileArg = None,
    overwrite: bool = False,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "auto",
    progress: bool = False,
    values: ValueOptions | None = None,
    adapt: AdaptOptions | bool | int | None = None,
) -> list[Path]:
    """Super-resolve a DICOM series in-plane and write it as a derived series.

    Args:
        src: a folder (scanned recursively) or a single file (e.g. an enhanced multi-frame
            image). Compressed transfer syntaxes are decoded through pylibjpeg.
        dst: output folder; written to a temporary folder next to it and renamed when
            complete (never half-written).
        series_uid: the SeriesInstanceUID to use when the folder holds several series.
        scale: 2, 3 or 4 (rows and columns; the slice axis too with ``through_plane``).
        model, weights, profile, overwrite, tile, overlap, batch_size, device, amp, progress:
            as in :func:`upscale_nifti`; the default profile is the model card's, else ``ct``
            for CT and ``mr`` otherwise.
        through_plane: also upscale the slice axis (multi-planar averaging; new slices get
            positions by the same voxel-centre rule).
        values: value fidelity (:class:`~sr_domains.value_domain.ValueOptions`); by default
            outputs stay within the local input range and the physical domain (CT >= -1024 HU
            or the input minimum, non-negative MR stays non-negative), exact-zero background
            stays zero and padding (``PixelPaddingValue``) is written back exactly.
        adapt: fine-tune the model on slices of this series first
            (:class:`~sr_domains.options.AdaptOptions`, True for the default, or a number of
            steps, as ``--adapt [STEPS]``; docs/adaptation.md); the report is summarized in
            ``DerivationDescription``.

    Returns:
        The written files in spatial order (one per slice; one file for enhanced input).
    """
    options, net, fitted = keyword_options(
        scale=scale,
        model=model,
        weights=weights,
        profile=profile,
        values=values,
        series_uid=series_uid,
        through_plane=through_plane,
        overwrite=overwrite,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        amp=amp,
        progress=progress,
        adapt=adapt,
    )
    return run_dicom_series(src, dst, options, model=net, profile=fitted)


@warnings_once
def run_dicom_series(
    src: PathLike,
    dst: PathLike,
    options: UpscaleOptions,
    *,
    model: SRModel | Upscaler | None = None,
    profile: IntensityProfile | dict[str, Any] | None = None,
) -> list[Path]:
    """:func:`upscale_dicom_series` with its options as one object, as the CLI passes them
    (``model``, ``profile``: a built model or upscaler and a fitted profile used instead of
    ``options.model``/``options.profile``)."""
    if options.isotropic is not None:
        raise ConfigError("--isotropic runs through sr_domains.medical.isotropic_dicom")
    check_supported(options, "DICOM", {"through_plane", "series_uid"})
    src, dst = Path(src), Path(dst)
    scale, through_plane = options.scale, options.through_plane
    check_output_name(dst, "dicom")
    preflight(dst, [src], kind="dir", overwrite=options.overwrite)
    check_saved_model(options, src, dst)
    series = load_dicom_series(src, options.series_uid)
    check_paths(dst, series.files, kind="dir")  # (links into the output folder: its files)
    stamp = series_stamp(series.files)  # (a resume redoes the output if the input changes)
    if through_plane:
        check_through_plane(src, tuple(series.shape), "series")
    volume = series.read_volume(padding_as_nan=True)  # decoding errors surface first
    up = upscaler_of(options, model)
    stored = series.stored_dtype
    default = "ct" if series.modality == "CT" else "mr"
    spec = profile if profile is not None else options.profile
    prof = fit_profile(spec, up.model, volume, default=default, dtype=stored)
    rules = series_rules(series, volume, options.values)
    made = volume_made(up, options, model, profile, through_plane=through_plane)
    chosen = weights_for_volume(
        up,
        made,
        options,
        model=model,
        planes=lambda: [volume[k] for k in middle_indexes(volume.shape[0])],
        profile=prof,
        source=src,
    )
    up, made, noise, report = chosen.up, chosen.made, chosen.noise, chosen.report
    out = upscale_volume(
        volume, up, profile=prof, axes=(1, 2), through_plane=through_plane, rules=rules
    )
    base = slice_grid(series).affine if through_plane else series.affine  # (dicom_grid)
    affine = upscaled_affine(base, (1, 2), scale, through_plane)
    prov = provenance(up, prof, scale_factors((1, 2), scale, through_plane), "")
    what = "rows, columns and slices" if through_plane else "rows and columns"
    derivation = (
        f"Super-resolution x{scale} of {what} by {prov['software']}; model {prov['model']}"
        + (f" ({prov['weights']})" if prov["weights"] else "")
        + f"; intensity profile {describe_profile(prof)}; source series {series.series_uid}"
        + (f"; values: {rules.stats.describe()}" if rules is not None else "; values unclamped")
        + (f"; {report.describe()}" if report is not None else "")
        + (f"; {noise.describe()}" if noise is not None else "")
    )
    manifest: dict[str, Any] = {
        "series_uid": series.series_uid,
        "derivation": derivation,
        MADE_KEY: made.to_dict(),  # what a resumed batch compares (sr_domains.made_with)
        SOURCE_STAMP_KEY: stamp,  # the series' own files, as they were read
    }
    if report is not None:
        manifest["adapt"] = report.to_dict()
    if noise is not None:
        manifest["noise"] = noise.to_dict()
    with atomic_output(
        dst, [src], kind="dir", overwrite=options.overwrite, manifest=manifest
    ) as tmp:
        files = write_series_files(series, out, affine, tmp, scale=scale, derivation=derivation)
    return [dst / f.name for f in files]


def check_saved_model(options: UpscaleOptions, src: Path, dst: Path) -> None:
    """Refuse ``adapt.save_model`` inside the input or the output folder before any work, as
    the CLI does: the model would join the input's files or be a foreign entry that makes the
    run (and every later ``overwrite``) refuse the output folder."""
    adapt = options.adapt
    if adapt is not None and adapt.save_model is not None:
        check_model_output(adapt.save_model, [src], overwrite=adapt.overwrite)
        check_model_outside(adapt.save_model, dst)


def dicom_output_check(
    dst: PathLike,
    src: PathLike,
    series_uid: str | None = None,
    scale: int | None = None,
    requested: Requested | None = None,
) -> tuple[str, str]:
    """``(status, why)``: ``"missing"`` (absent or an empty folder), ``"complete"`` (our derived
    series of ``src``: manifest source and series match, every listed file present, a Part-10
    DICOM that parses with all of its pixel data, made as ``requested`` asks), ``"damaged"``
    (ours, files missing or cut short), ``"other"`` (ours, made otherwise: ``why`` says how) or
    ``"foreign"``: resumable batches.
    Without ``requested`` and ``scale`` any finished series of ``src`` counts as complete.
    A series whose source files changed since it was made (the stamp its manifest recorded,
    :mod:`sr_domains.source_stamp`) is ``"damaged"``, with ``why`` saying so.

    The source matches by path, or by folder name and series UID: a run records the path as
    it was given, relative to where it ran (a Dask worker is given absolute paths)."""
    from ..io_safety import read_manifest
    from .dicom_read import has_dicm_preamble

    dst = Path(dst)
    if not dst.is_dir() or not any(dst.iterdir()):
        return ("missing" if not dst.exists() or dst.is_dir() else "foreign"), ""
    manifest = read_manifest(dst)
    if manifest is None or not _same_source(manifest, Path(src), series_uid):
        return "foreign", ""
    if series_uid is not None and manifest.get("series_uid") != series_uid:
        return "foreign", ""
    files = [dst / f for f in manifest["files"] if f.lower().endswith(".dcm")]
    if not files or not all(f.is_file() and has_dicm_preamble(f) for f in files):
        return "damaged", ""
    if _series_changed(manifest, Path(src)):
        return "damaged", INPUT_CHANGED
    if requested is not None and scale is not None:
        why = requested.differs(Made.from_dict(manifest.get(MADE_KEY)), scale)
        if why:
            return "other", why
    if not all(_whole_file(f) for f in files):  # a copy cut short keeps its preamble
        return "damaged", ""
    return "complete", ""


def _series_changed(manifest: dict[str, Any], src: Path) -> bool:
    """Whether the files of the manifest's series under ``src`` differ from the stamp it
    recorded (none: an earlier version, unchanged; an unreadable input: left to the run)."""
    recorded = manifest.get(SOURCE_STAMP_KEY)
    uid = manifest.get("series_uid")
    if not isinstance(recorded, dict) or not isinstance(uid, str):
        return False
    try:
        files = load_dicom_series(src, uid).files
    except (SRDomainsError, OSError):
        return False
    return input_changed(recorded, files)


def _whole_file(path: Path) -> bool:
    """True when ``path`` (a file our writer made: uncompressed, Explicit VR Little Endian)
    parses and holds every byte of its pixel data; pydicom reads a file cut short inside the
    pixel data without an error, with fewer bytes."""
    from .dicom_series import _pydicom

    try:
        ds = _pydicom().dcmread(path)
        want = (
            int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
            * int(ds.get("NumberOfFrames", 1) or 1) * (int(ds.BitsAllocated) // 8)
        )  # fmt: skip
        return len(ds.PixelData) >= want
    except Exception:  # any parse error: not a whole file
        return False


def _same_source(manifest: dict[str, Any], src: Path, series_uid: str | None) -> bool:
    sources = manifest.get("sources")
    if not isinstance(sources, list) or len(sources) != 1:
        return False
    had = Path(str(sources[0]))
    if os.path.abspath(had) == os.path.abspath(src):
        return True
    named = had.name and had.name == src.resolve().name
    return bool(named and series_uid is not None and manifest.get("series_uid") == series_uid)


def dicom_output_status(dst: PathLike, src: PathLike, series_uid: str | None = None) -> str:
    """The status of :func:`dicom_output_check` (any scale and weights)."""
    return dicom_output_check(dst, src, series_uid)[0]


def series_rules(
    series: DicomSeries, volume: np.ndarray, values: ValueOptions | None
) -> ValueRules | None:
    """Value-fidelity rules of a series (:mod:`sr_domains.value_domain`): CT keeps HU above
    min(-1024, input minimum); other modalities stay non-negative when the input is, and their
    exact-zero background stays zero; the stored range (:attr:`DicomSeries.stored_range`:
    ``BitsStored``, not the 16-bit words holding it) bounds everything and its top is kept as
    saturation when the series has one rescale (of slope 1 for the saturation). Warns when
    the volume leaves the user's value range (padding, NaN here, left out)."""
    warn_outside_range(series.source, volume, None, values, "dicom")
    zero = zero_facts(volume, floating=False)  # an integer value grid: exact
    ct = series.modality == "CT"
    pairs = {(s.slope, s.intercept) for s in series.slices}
    (m, b) = next(iter(pairs)) if len(pairs) == 1 else (1.0, 0.0)
    return build_rules(
        values,
        [zero.minimum],
        dtype=series.stored_dtype if len(pairs) == 1 else None,
        stored_range=series.stored_range if len(pairs) == 1 else None,
        slope=m,
        inter=b,
        ct=ct,
        background_zero=not ct and zero.background,
    )


__all__ = [
    "check_saved_model",
    "dicom_output_check",
    "dicom_output_status",
    "run_dicom_series",
    "run_nifti",
    "series_rules",
    "upscale_dicom_series",
    "upscale_nifti",
]
