""":func:`upscale_nifti`: a NIfTI file in, a super-resolved NIfTI file out, in bounded memory.

When the in-plane axes are the first two (slices along the third axis, the usual storage, and
what dcm2niix writes for every acquisition plane) and the slice axis is not upscaled, the file
is **streamed**: planes are read, super-resolved and written in file order, a few at a time, so
peak memory does not depend on the number of slices or volumes. Other axis choices and
``through_plane`` need whole volumes in memory; that need is checked against the available
memory first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..api_options import keyword_options
from ..engine_build import upscaler_of
from ..errors import ConfigError
from ..inference import Upscaler
from ..intensity import IntensityProfile
from ..io_safety import atomic_output, preflight
from ..label_like import LABEL_LIKE_VALUES, warn_label_like  # noqa: F401  (re-exported)
from ..made_with import MADE_KEY, Made, Requested
from ..models.base import SRModel
from ..options import AdaptOptions, UpscaleOptions, check_supported
from ..output_checks import check_batch_output
from ..recorded_names import recorded_name
from ..source_stamp import (
    INPUT_CHANGED,
    OTHER_INPUT,
    SOURCE_STAMP_KEY,
    input_changed,
    other_input,
    stamp_of,
)
from ..value_domain import ValueOptions, ValueRules
from .common import (
    check_through_plane,
    fit_profile,
    middle_indexes,
    provenance,
    volume_made,
    weights_for_volume,
)
from .geometry import check_axes, scale_factors
from .nifti import (
    check_output_name,
    check_upscalable,
    iter_planes,
    nifti_default_axes,
    output_header,
)
from .nifti_io import CHUNK_PLANES, NiftiSource, check_memory, load_nifti, open_source
from .nifti_rules import values_record, volume_rules  # (values_record: also isotropic)
from .nifti_write import PlaneWriter, pending_slot
from .volume import upscale_image, upscale_stack

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
ModelArg = SRModel | Upscaler | str | None
ProfileArg = str | IntensityProfile | dict[str, Any] | None


def upscale_nifti(
    src: PathLike,
    dst: PathLike,
    *,
    scale: int = 2,
    model: ModelArg = None,
    weights: PathLike | None = None,
    axes: tuple[int, int] | None = None,
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
) -> Path:
    """Super-resolve a 3-D or 4-D NIfTI file slice by slice; the output lines up with the input.

    Args:
        src: input ``.nii``/``.nii.gz`` (NIfTI-1 or -2, any orientation, sform or qform).
        dst: output ``.nii``/``.nii.gz``; written to a temporary file and renamed when complete.
        scale: 2, 3 or 4.
        model: a built :class:`~sr_domains.models.SRModel`, a reusable
            :class:`~sr_domains.inference.Upscaler`, a shipped weights name, or None for the
            shipped default weights.
        weights: checkpoint path (overrides ``model``'s weights).
        axes: in-plane axes (0-based, array order); default: the two with the finest spacing.
        through_plane: also upscale the slice axis (multi-planar averaging).
        profile: intensity recipe or fitted profile; default: the model card's, else ``mr``
            (robust 0.5-99.5 percentile, fitted once over the whole file).
        overwrite: replace an existing ``dst`` (never the input).
        tile, overlap, batch_size, device, amp: see :class:`~sr_domains.inference.Upscaler`.
        progress: show a progress bar over slices.
        values: value fidelity (:class:`~sr_domains.value_domain.ValueOptions`); by default
            outputs stay within the local input range and the physical domain (a non-negative
            volume stays non-negative, integer range through ``scl_slope``/``scl_inter``), and
            exact-zero background stays exactly zero; each volume of a 4-D file by its own
            values (a magnitude volume beside a phase volume stays non-negative).
        adapt: fine-tune the model on planes of this volume first
            (:class:`~sr_domains.options.AdaptOptions`, True for the default, or a number of
            steps, as ``--adapt [STEPS]``; docs/adaptation.md); the report goes into the
            provenance extension (``adapt``).

    Returns:
        The written path. Its affine equals ``affine @ T`` (voxel-centre rule): corners of the
        field of view unchanged, spacing divided by ``scale`` on the upscaled axes.
    """
    options, net, fitted = keyword_options(
        scale=scale,
        model=model,
        weights=weights,
        profile=profile,
        values=values,
        axes=tuple(axes) if axes is not None else None,
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
    return run_nifti(src, dst, options, model=net, profile=fitted)


def run_nifti(
    src: PathLike,
    dst: PathLike,
    options: UpscaleOptions,
    *,
    model: SRModel | Upscaler | None = None,
    profile: IntensityProfile | dict[str, Any] | None = None,
) -> Path:
    """:func:`upscale_nifti` with its options as one object, as the CLI passes them
    (``model``, ``profile``: a built model or upscaler and a fitted profile used instead of
    ``options.model``/``options.profile``)."""
    if options.isotropic is not None:
        raise ConfigError("--isotropic runs through sr_domains.medical.isotropic_nifti")
    check_supported(options, "NIfTI", {"axes", "through_plane"})
    src, dst = Path(src), Path(dst)
    check_output_name(dst, "nifti")
    preflight(dst, [src], kind="file", overwrite=options.overwrite)
    source = open_source(src)  # (first: a missing or broken input says what it is)
    stamp = stamp_of([src])  # (a resume redoes the output if the input changes)
    check_upscalable(source)
    shape3 = source.shape[:3]
    axes, through_plane = options.axes, options.through_plane
    if axes is not None:
        ax = check_axes(axes)
    else:  # (an unknown spacing, pixdim 0, is not compared: array order)
        ax = nifti_default_axes(source.path, source.header, source.affine, shape3)
    if through_plane:
        check_through_plane(src, tuple(source.image.shape))
    factors = scale_factors(ax, options.scale, through_plane)
    streaming = not through_plane and tuple(sorted(ax)) == (0, 1)
    if not streaming:  # input, output and one temporary estimate in memory
        out_vox = int(np.prod(source.shape, dtype=np.int64)) * int(np.prod(factors))
        n_in = source.nbytes // source.dtype.itemsize
        size = source.work_dtype.itemsize  # (8 for float64 and 32-bit integer volumes)
        check_memory(size * (n_in + 2 * out_vox), f"{src}: SR")
    # streaming shows a bar over slices instead of one over tiles
    up = upscaler_of(options, model, progress=not streaming)
    scan, volume_scans = source.scan_volumes()  # (one pass: the file's and each volume's)
    warn_label_like(src, scan.sample, source.dtype)
    spec = profile if profile is not None else options.profile
    prof = fit_profile(spec, up.model, scan.sample, default="mr", dtype=source.dtype)
    ct = prof.recipe.lower().startswith("ct")
    # value rules per volume, as each would get saved alone (a magnitude and a phase volume
    # have different domains); the profile stays one for the file (module nifti_rules)
    rules = volume_rules(options.values, source, scan, volume_scans, ct=ct)
    axes_text = ",".join(map(str, ax))
    made = volume_made(up, options, model, profile, axes=axes_text, through_plane=through_plane)
    chosen = weights_for_volume(
        up,
        made,
        options,
        model=model,
        planes=lambda: adaptation_planes(source, ax),
        profile=prof,
        source=src,
    )
    up, made, noise, report = chosen.up, chosen.made, chosen.noise, chosen.report
    mode = "axes " + ",".join(map(str, ax)) + (" +through-plane" if through_plane else "")
    out_shape = tuple(int(n * f) for n, f in zip(shape3, factors)) + source.shape[3:]
    header_shape = out_shape[:2] if source.image.ndim == 2 else out_shape
    prov = provenance(up, prof, factors, mode)
    prov["source"] = recorded_name(src)
    prov[SOURCE_STAMP_KEY] = stamp
    if report is not None:
        prov["adapt"] = report.to_dict()
    if noise is not None:
        prov["noise"] = noise.to_dict()
    prov[MADE_KEY] = made.to_dict()  # what a resumed batch compares (sr_domains.made_with)
    prov["values"] = pending_slot(source.n_volumes)  # filled in once the voxels are written
    hdr = output_header(source, header_shape, factors, prov)
    n_planes = out_shape[2] * source.n_volumes
    with (
        atomic_output(dst, [src], overwrite=options.overwrite) as tmp,
        PlaneWriter(tmp, hdr, n_planes) as writer,
    ):
        if streaming:
            _stream(source, up, prof, writer, rules, progress=options.progress)
        else:
            data = source.read_all()
            out, _ = upscale_image(
                data,
                source.affine,
                up,
                profile=prof,
                axes=ax,
                through_plane=through_plane,
                rules=rules,
            )
            del data
            for chunk in iter_planes(out):
                writer.write(chunk)
        writer.pending = values_record(rules, writer)
    if writer.clipped:
        log.warning("%s: %d voxel(s) clipped to the %s range", dst, writer.clipped, source.dtype)
    log.info("wrote %s %s", dst, out_shape)
    return dst


def adaptation_planes(source: NiftiSource, axes: tuple[int, int]) -> list[np.ndarray]:
    """Planes of the first volume spanned by the in-plane ``axes`` (physical units), evenly
    spread over the middle of the other axis: what ``--adapt`` learns from."""
    if tuple(sorted(axes)) == (0, 1):
        want = set(middle_indexes(source.shape[2]))
        picked = []
        for k, plane in enumerate(source.planes()):
            if k in want:
                picked.append(plane)
            if k >= max(want):
                break
        return picked
    z = source.shape[2]
    first = np.empty(source.shape[:3], np.float32, order="F")  # the first volume only
    for k, plane in enumerate(source.planes()):
        if k >= z:
            break
        first[:, :, k] = plane
    other = ({0, 1, 2} - set(axes)).pop()
    vol = np.moveaxis(first, (axes[0], axes[1], other), (0, 1, 2))
    return [vol[:, :, k].copy() for k in middle_indexes(vol.shape[2])]  # (not views of it)


#: What a resume says about an existing output that does not even open as NIfTI.
UNREADABLE = "not a readable NIfTI file: if it is an earlier output cut short, delete it"


def nifti_output_check(
    dst: PathLike, src: PathLike, scale: int, requested: Requested | None = None
) -> tuple[str, str]:
    """``(status, why)``: ``"missing"``, ``"complete"`` (our output of ``src``, every voxel
    readable, made as ``requested`` asks), ``"damaged"`` (ours but cut short, even too short to
    open), ``"other"`` (ours, made otherwise: ``why`` says how) or ``"foreign"``: resumable
    batches. Without ``requested`` an output of ``src`` at ``scale`` counts as complete. An
    output whose input changed since it was made (:mod:`sr_domains.source_stamp`) is ``"damaged"``,
    with ``why`` saying so. A folder, named pipe, socket or device at the output's name is
    refused (:func:`~sr_domains.output_checks.check_batch_output`), never opened."""
    dst, src = Path(dst), Path(src)
    check_batch_output(dst)
    if not dst.exists():
        return "missing", ""
    try:
        out = open_source(dst)
    except (OSError, ValueError):  # a file cut short fails the header-vs-size check
        try:
            ours = _provenance(load_nifti(dst).header).get("source") == recorded_name(src)
        except (OSError, ValueError):  # not even a header
            return "foreign", UNREADABLE if _starts_like_nifti(dst) else ""
        return ("damaged" if ours else "foreign"), ""
    prov = _provenance(out.header)
    if prov.get("source") != recorded_name(src):
        return "foreign", ""
    if requested is None and prov.get("scale") != scale:
        return "foreign", ""
    if input_changed(prov.get(SOURCE_STAMP_KEY), [src]):
        if other_input(prov.get(SOURCE_STAMP_KEY), [src]):  # (a.nii.gz, then b/a.nii.gz)
            return "other", OTHER_INPUT
        return "damaged", INPUT_CHANGED
    if not isinstance(prov.get("values"), dict):  # the placeholder was never filled in
        return "damaged", ""
    if requested is not None:
        why = requested.differs(Made.from_dict(prov.get(MADE_KEY)), scale)
        if why:
            return "other", why
    try:
        for _plane in out.planes():
            pass
    except (OSError, EOFError, ValueError):
        return "damaged", ""
    return "complete", ""


def _provenance(header: Any) -> dict[str, Any]:
    """Our JSON provenance (the NIfTI "comment" extension, code 6) of a header, or {}: the
    last one sr_domains wrote (appended last; an input's own JSON comment, or the provenance
    of an earlier SR of an input that is itself an output, come before it)."""
    import json

    for ext in reversed(header.extensions):
        if ext.get_code() == 6:
            try:
                prov = json.loads(ext.get_content())
            except ValueError:
                continue
            if isinstance(prov, dict) and str(prov.get("software", "")).startswith("sr_domains"):
                return prov
    return {}


def _starts_like_nifti(path: Path) -> bool:
    """A file that starts like a NIfTI-1/2 header (``sizeof_hdr`` 348 or 540, either byte
    order) or a gzip stream (``.nii.gz``); a user's text or image file of another kind does
    not."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    sizes = {int.from_bytes(head, "little"), int.from_bytes(head, "big")}
    return head[:2] == b"\x1f\x8b" or bool(sizes & {348, 540})


def nifti_output_status(
    dst: PathLike, src: PathLike, scale: int, requested: Requested | None = None
) -> str:
    """The status of :func:`nifti_output_check`."""
    return nifti_output_check(dst, src, scale, requested)[0]


def _stream(
    source: NiftiSource,
    up: Upscaler,
    prof: IntensityProfile,
    writer: PlaneWriter,
    rules: Sequence[ValueRules | None],
    *,
    progress: bool,
) -> None:
    """Read, super-resolve and write planes in file order, :data:`CHUNK_PLANES` at a time and
    never across volumes: volume ``v`` (planes ``[v*Z, (v+1)*Z)``) gets ``rules[v]``.
    (Axes are sorted, :func:`~sr_domains.medical.geometry.check_axes`: planes go to the model
    as stored.)"""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=source.n_planes, unit="slice", desc=source.path.name)
    z = source.shape[2]
    try:
        buf: list[np.ndarray] = []
        for k, plane in enumerate(source.planes(), start=1):
            buf.append(plane)
            if len(buf) == CHUNK_PLANES or k % z == 0 or k == source.n_planes:
                out = upscale_stack(np.stack(buf), up, prof, rules[(k - 1) // z])
                writer.write(out)
                if bar is not None:
                    bar.update(len(buf))
                buf = []
    finally:
        if bar is not None:
            bar.close()


__all__ = ["nifti_output_check", "nifti_output_status", "run_nifti", "upscale_nifti"]
