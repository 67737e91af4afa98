""":func:`make_isotropic`: the public entry point for NIfTI files and DICOM series.

>>> from sr_domains.medical import make_isotropic
>>> make_isotropic("t2.nii.gz", "t2_iso.nii.gz")                      # doctest: +SKIP
>>> make_isotropic("t2_dicom/", "t2_iso/", target_spacing=1.0)        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..api_options import keyword_options
from ..errors import ConfigError, InputFileError
from ..io_safety import atomic_output, check_paths, preflight
from ..made_with import MADE_KEY
from ..options import (
    DEFAULT_BUDGET_MINUTES,
    InternalOptions,
    IsotropicOptions,
    UpscaleOptions,
    check_supported,
)
from ..output_checks import check_model_output
from ..recorded_names import recorded_name
from ..run_recipe import recipe_of
from ..source_stamp import SOURCE_STAMP_KEY, series_stamp, stamp_of
from ..value_domain import ValueOptions
from .geometry import check_axes, slice_axis, voxel_sizes
from .isotropic import plan_isotropic
from .isotropic_io import (
    ProfileArg,
    VolumeJob,
    checked_thickness,
    fit_intensity,
    resolve_slice_profile,
    sidecar_of,
    thickness_from_sidecar,
)
from .model_paths import check_model_outside
from .nifti import check_output_name, check_upscalable, is_nifti_path, iter_planes, output_header
from .pydicom_logs import warnings_once

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def make_isotropic(
    src: PathLike,
    dst: PathLike,
    *,
    target_spacing: float | None = None,
    slice_profile: str = "gaussian",
    slice_thickness: float | None = None,
    budget_minutes: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    save_model: PathLike | None = None,
    weights: PathLike | None = None,
    warm_start: bool = True,
    fusion: str = "mean",
    axes: tuple[int, int] | None = None,
    series_uid: str | None = None,
    profile: ProfileArg = None,
    values: ValueOptions | None = None,
    overwrite: bool = False,
    progress: bool = False,
    device: str = "auto",
) -> list[Path]:
    """Make an anisotropic NIfTI volume or DICOM series isotropic by self-supervised
    through-plane super-resolution (see ``docs/medical.md``, "Isotropic volumes").

    Args:
        src: a ``.nii``/``.nii.gz`` file, or a DICOM series (folder or file).
        dst: the output ``.nii``/``.nii.gz`` file, or folder for a DICOM series.
        target_spacing: output spacing in mm (default: the finest in-plane spacing).
        slice_profile: ``"gaussian"`` or ``"rect"`` (FWHM = the slice thickness),
            ``"estimate"`` (fitted from the data; the FWHM is logged and recorded), or the path
            of a profile file (two columns: offset mm, weight).
        slice_thickness: thickness in mm (default: DICOM SliceThickness, a NIfTI's BIDS JSON
            sidecar ``SliceThickness``, else the slice spacing).
        budget_minutes: training time (default 4 minutes; 0 with ``weights`` = apply as is).
        steps: exact training steps instead of a time budget (bit-for-bit repeatable).
        seed: seed of the initialisation and training batches.
        save_model: also save the fitted model (``.safetensors``) for reuse with ``weights``.
        weights: a model saved by ``save_model`` (fine-tuned within the budget, or applied as
            is with ``budget_minutes=0``).
        warm_start: start from the shipped gray in-plane weights (ignored with ``weights``).
        fusion: fuse the two orthogonal estimates by ``"mean"`` or ``"fba"``.
        axes: in-plane axes of a NIfTI volume (default: the slice axis is the coarsest one).
        series_uid: the series to use when a DICOM folder holds several.
        profile: intensity profile (default ``mr``; ``ct`` for CT series).
        values: value fidelity (default on, as for every medical output).
        overwrite: replace an existing output (never the input).
        progress: tqdm bars for training (with ETA) and application.
        device: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ...

    Returns:
        The written paths (one NIfTI file, or the DICOM files in spatial order).
    """
    iso = IsotropicOptions(target_spacing, slice_profile, slice_thickness, fusion)
    internal = InternalOptions(
        budget_minutes=DEFAULT_BUDGET_MINUTES if budget_minutes is None else float(budget_minutes),
        steps=steps,
        seed=seed,
        save_model=None if save_model is None else Path(save_model),
        warm_start=warm_start,
    )
    options, _, fitted = keyword_options(
        weights=weights,
        profile=profile,
        values=values,
        isotropic=iso,
        internal=internal,
        axes=tuple(axes) if axes is not None else None,
        series_uid=series_uid,
        overwrite=overwrite,
        progress=progress,
        device=device,
    )
    src, dst = Path(src), Path(dst)
    if is_nifti_path(src):
        return [isotropic_nifti(src, dst, options, profile=fitted)]
    return isotropic_dicom(src, dst, options, profile=fitted)


def check_isotropic(options: UpscaleOptions, domain: str, supported: set[str]) -> IsotropicOptions:
    """Refuse the options ``--isotropic`` does not use on an input of ``domain``: the domain
    options other than ``supported``, ``--model`` (the network is fitted to the input;
    ``--weights`` may name a model saved with ``--save-model``) and the tiling options."""
    if options.isotropic is None:
        raise ConfigError("isotropic SR needs options.isotropic (IsotropicOptions)")
    check_supported(options, domain, {*supported, "isotropic"})
    if options.model is not None:
        raise ConfigError(
            "--model does not apply to --isotropic (pass --weights MODEL to reuse "
            "a model saved with --save-model)"
        )
    tiling = (options.tile, options.overlap, options.batch_size, options.amp)
    if tiling != (None, None, None, "auto"):
        raise ConfigError("--tile, --overlap, --batch-size and --amp do not apply to --isotropic")
    return options.isotropic


def _check_model_path(
    path: Path | None,
    inputs: list[Path],
    overwrite: bool,
    weights: PathLike | None,
    folder: Path | None = None,
) -> None:
    if path is not None:
        extra = [] if weights is None else [Path(weights)]
        check_model_output(path, [*inputs, *extra], overwrite=overwrite)
        if folder is not None:
            check_model_outside(path, folder)


def check_spacing_known(source: Any) -> None:
    """Refuse a NIfTI header whose voxel size is unknown: no qform/sform and no spatial unit
    (nibabel then invents an affine from ``pixdim``), a ``pixdim`` of 0 that no sform states
    (nibabel reads it as 1 mm: the rule of ``upscale_nifti`` and the MONAI transforms,
    :func:`~sr_domains.medical.nifti.unstated_spacing_axes`), or a unit other than
    millimetres. No option states the input's spacing (``target_spacing`` is the output's)."""
    from .nifti import unstated_spacing_axes

    hdr = source.header
    _, qcode = hdr.get_qform(coded=True)
    _, scode = hdr.get_sform(coded=True)
    unit = hdr.get_xyzt_units()[0]
    if int(qcode) == 0 and int(scode) == 0 and unit in ("unknown", ""):
        raise InputFileError(
            source.path,
            "unknown voxel spacing (no qform/sform and no spatial unit in the header); "
            "fix the header (e.g. fslorient / nibabel) before making it isotropic",
        )
    if unit not in ("mm", "unknown", ""):
        raise InputFileError(source.path, f"spatial unit {unit!r}: only mm headers are supported")
    unknown = sorted(unstated_spacing_axes(source.path, hdr))
    if unknown:
        which = ", ".join(f"axis {a} (pixdim[{a + 1}] = 0)" for a in unknown)
        raise InputFileError(
            source.path,
            f"unknown voxel spacing on {which}, read by nibabel as 1 mm, and no sform states "
            "it: isotropic SR cannot plan a grid; state it in the header (pixdim, or an sform "
            "with code > 0)",
        )


def isotropic_nifti(
    src: PathLike,
    dst: PathLike,
    options: UpscaleOptions,
    *,
    profile: ProfileArg = None,
) -> Path:
    """:func:`make_isotropic` for a NIfTI file (3-D, or 4-D volume by volume with the model
    fitted on the first volume with content), with its options as one object
    (``options.isotropic`` and ``options.internal``, as the CLI passes them; ``profile``: a
    fitted profile used instead of ``options.profile``)."""
    from .nifti_io import check_memory, open_source
    from .nifti_rules import values_record, volume_rules
    from .nifti_write import PlaneWriter, pending_slot

    iso = check_isotropic(options, "NIfTI", {"axes"})
    src, dst = Path(src), Path(dst)
    internal, weights, overwrite = options.internal, options.weights, options.overwrite
    axes, values = options.axes, options.values
    check_output_name(dst, "nifti")
    preflight(dst, [src], kind="file", overwrite=overwrite)
    _check_model_path(internal.save_model, [src, dst], overwrite, weights)
    source = open_source(src)  # (first: a missing or broken input says what it is)
    stamp = stamp_of([src])  # (a resume redoes the output if the input changes)
    check_upscalable(source)
    if source.image.ndim < 3 or source.shape[2] < 2:
        raise InputFileError(  # (the file's own shape: a 2-D image is no (H, W, 1) volume)
            src,
            f"isotropic SR needs a 3-D volume of at least 2 slices, got shape "
            f"{tuple(source.image.shape)}",
        )
    check_spacing_known(source)
    k = slice_axis(check_axes(axes)) if axes is not None else None
    try:
        plan = plan_isotropic(
            source.shape[:3], voxel_sizes(source.affine), slice_axis=k,
            target_spacing=iso.target_spacing, where=str(src),
        )  # fmt: skip
    except ConfigError as exc:
        raise InputFileError(src, str(exc).split(": ", 1)[-1]) from exc
    log.info("%s: %s", src, plan.describe())
    out_shape = (*plan.out_shape, *source.shape[3:])
    vox_out = int(np.prod(plan.out_shape, dtype=np.int64))
    n_in = source.nbytes // source.dtype.itemsize
    size = source.work_dtype.itemsize  # (8 for float64 and 32-bit integer volumes)
    check_memory(size * (n_in + 4 * vox_out), f"{src}: isotropic SR")
    data = source.read_all()
    # volumes in file order (the 4th axis fastest), as the writer writes them (in C order a
    # 5-D file's volumes went to the wrong places)
    flat = data.reshape(*source.shape[:3], -1, order="F")
    scan, volume_scans = source.scan_volumes()  # (one pass: the file's and each volume's)
    spec = profile if profile is not None else options.profile
    intensity = fit_intensity(spec, scan.sample, source.dtype)
    # value rules per volume, as each would get saved alone (module nifti_rules)
    ct = intensity.recipe.lower().startswith("ct")
    rules = volume_rules(values, source, scan, volume_scans, ct=ct)
    job = VolumeJob(
        plan,
        resolve_slice_profile(iso, plan, lambda: thickness_from_sidecar(src), str(src)),
        intensity,
        rules[0],
        iso=iso,
        internal=internal,
        weights=weights,
        progress=options.progress,
        device=options.device,
        source=src,
        thickness_from=f"SliceThickness of the sidecar {sidecar_of(src)}",
    )
    # fits the model (on the first volume with content); its provenance goes into the header
    fit_v, first = job.process_first(flat, rules)
    prov = job.provenance(recorded_name(src), recipe_of(options, "nifti", profile=profile))
    if flat.shape[-1] > 1:
        prov["fit_volume"] = fit_v
    prov[SOURCE_STAMP_KEY] = stamp
    # filled in once the voxels are written: a finished output
    prov["values"] = pending_slot(source.n_volumes)
    hdr = output_header(source, out_shape, plan.factors, prov)
    n_planes = plan.out_shape[2] * flat.shape[-1]
    with (
        atomic_output(dst, [src], overwrite=overwrite) as tmp,
        PlaneWriter(tmp, hdr, n_planes) as w,
    ):
        for v in range(flat.shape[-1]):
            job.rules = rules[v]
            out = first if v == fit_v else job.process(flat[..., v])
            for chunk in iter_planes(out):
                w.write(chunk)
        w.pending = values_record(rules, w)
    if internal.save_model is not None:
        job.save_model(internal.save_model, overwrite, src.name)
    log.info("wrote %s %s", dst, out_shape)
    return dst


@warnings_once
def isotropic_dicom(
    src: PathLike,
    dst: PathLike,
    options: UpscaleOptions,
    *,
    profile: ProfileArg = None,
) -> list[Path]:
    """:func:`make_isotropic` for a DICOM series: a derived series with the new slice count
    (positions along the slice direction, SliceThickness and SpacingBetweenSlices = the
    target spacing, SliceLocation refitted, new UIDs); options as in
    :func:`isotropic_nifti`."""
    from .api import series_rules
    from .dicom_grid import slice_grid
    from .dicom_read import load_dicom_series
    from .dicom_write import write_series_files

    iso = check_isotropic(options, "DICOM", {"series_uid"})
    src, dst = Path(src), Path(dst)
    internal, weights, overwrite = options.internal, options.weights, options.overwrite
    check_output_name(dst, "dicom")
    preflight(dst, [src], kind="dir", overwrite=overwrite)
    _check_model_path(internal.save_model, [src, dst], overwrite, weights, folder=dst)
    series = load_dicom_series(src, options.series_uid)
    check_paths(dst, series.files, kind="dir")  # (links into the output folder: its files)
    stamp = series_stamp(series.files)  # (a resume redoes the output if the input changes)
    if not series.has_geometry or series.n_slices < 3:
        raise InputFileError(
            src,
            f"isotropic SR needs >= 3 slices with positions, got {series.n_slices} "
            + ("" if series.has_geometry else "without ImagePositionPatient"),
        )
    grid = slice_grid(series)  # (positions written rounded: the fitted line, not the ends)
    spacing = (grid.spacing, *(float(v) for v in series.pixel_spacing))
    try:
        plan = plan_isotropic(
            series.shape, spacing, slice_axis=0, target_spacing=iso.target_spacing
        )
    except ConfigError as exc:
        raise InputFileError(src, str(exc)) from exc
    volume = series.read_volume(padding_as_nan=True)
    stored = series.stored_dtype
    default = "ct" if series.modality == "CT" else "mr"
    spec = profile if profile is not None else options.profile
    intensity = fit_intensity(spec if spec is not None else default, volume, stored)

    def header_thick() -> float | None:
        return series_thickness(series)

    rules = series_rules(series, volume, options.values)
    job = VolumeJob(
        plan,
        resolve_slice_profile(iso, plan, header_thick, str(src)),
        intensity,
        rules,
        iso=iso,
        internal=internal,
        weights=weights,
        progress=options.progress,
        device=options.device,
        source=src,
        thickness_from=f"SliceThickness (0018,0050) of {series.slices[0].path}",
    )
    out = job.process_first(volume[..., None], [rules])[1]
    prov = job.provenance(series.series_uid, recipe_of(options, "dicom", profile=profile))
    fitted = prov["slice_profile"]
    derivation = (
        f"Isotropic {plan.target:.4g} mm: self-supervised through-plane super-resolution "
        f"x{plan.slice_factor:.4g} by {prov['software']}; slice profile "
        f"{fitted['kind']} FWHM {fitted['fwhm_mm']:.4g} mm ({fitted['source']}); "
        f"{prov.get('training', {}).get('steps', 0)} steps, seed {internal.seed}; "
        f"source series {series.series_uid}"
    )
    manifest = {
        "series_uid": series.series_uid,
        "derivation": derivation,
        MADE_KEY: prov[MADE_KEY],
        SOURCE_STAMP_KEY: stamp,
    }
    affine = plan.affine(grid.affine)
    with atomic_output(dst, [src], kind="dir", overwrite=overwrite, manifest=manifest) as tmp:
        files = write_series_files(
            series,
            out,
            affine,
            tmp,
            scale=1,
            derivation=derivation,
            plane_factors=(plan.factors[1], plan.factors[2]),
            slice_thickness=plan.target,
            label=f"ISO {plan.target:.3g}mm",
            slice_factor=plan.slice_factor,
        )
    if internal.save_model is not None:
        job.save_model(internal.save_model, overwrite, series.series_uid)
    return [dst / f.name for f in files]


def series_thickness(series: Any) -> float | None:
    """A DICOM series' header slice thickness in mm (its first slice's ``SliceThickness``, or
    the enhanced file's functional-group one where the top-level tag is absent or 0:
    :func:`~.dicom_series.header_thickness`); None when absent or 0 (:func:`checked_thickness`)."""
    from .dicom_series import header_thickness

    first = series.slices[0]
    thick = header_thickness(first.ds, first.frame_item)
    return checked_thickness(thick, first.path, "SliceThickness (0018,0050)")


__all__ = [
    "check_isotropic",
    "check_model_outside",
    "isotropic_dicom",
    "isotropic_nifti",
    "make_isotropic",
    "series_thickness",
]
