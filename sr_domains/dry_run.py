"""``sr-domains upscale --dry-run``: what would be written, by which model, with which profile.

Nothing is written. A GeoTIFF is checked from its headers; a NIfTI file or a DICOM series is read
through as the run reads it (with the run's own checks), so a voxel type, a label image or data
cut short is found as the run finds it. For each input: the domain, the output path and what
would happen to it (written; in a batch, skipped because complete or redone because damaged;
refused because it exists, or replaced with ``--overwrite``, as the run decides;
``error: ...`` for an input the run would fail on: unreadable, a colour table, a voxel type
or label image the run refuses, its data cut short), the model
(shipped weights name or checkpoint, architecture, scale, bands, weights sha256) and the
intensity profile recipe with where it comes from.

What is read of each input is :mod:`sr_domains.dry_run_inputs`; what the run would find at an
output's name and do with it, :mod:`sr_domains.dry_run_outputs`; this module plans the inputs
and writes the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from .dry_run_inputs import read_input
from .dry_run_outputs import GEOTIFF_BATCH_NEVER as GEOTIFF_BATCH_NEVER
from .dry_run_outputs import absent, action_of, output_status, unsafe_reason
from .errors import BandMismatchError, SRDomainsError
from .io_safety import weights_sha256
from .options import UpscaleOptions, check_save_model_batch, saved_model_path

log = logging.getLogger(__name__)


@dataclass
class PlannedOutput:
    """One line of a dry run."""

    domain: str
    src: str
    dst: str
    action: str
    model: str = ""
    profile: str = ""

    def to_text(self) -> str:
        lines = [f"{self.domain}: {self.src} -> {self.dst} [{self.action}]"]
        if self.model:
            lines.append(f"  model {self.model}")
        if self.profile:
            lines.append(f"  profile {self.profile}")
        return "\n".join(lines)


def _describe_model(options: UpscaleOptions, n_bands: int | None) -> tuple[str, str | None]:
    """``(description, card profile recipe)`` of the model ``options`` select."""
    from .model_label import card_name
    from .pretrained import default_pretrained, list_pretrained, resolve_model

    net = resolve_model(options.model, options.weights, scale=options.scale, n_bands=n_bands)
    card = getattr(net, "card", None)
    name = card_name(net)
    source = None
    if options.weights is not None:
        source = Path(options.weights)
    else:
        entries = {e.name: e for e in list_pretrained()}
        entry = entries.get(options.model or "") or default_pretrained(options.scale, n_bands or 1)
        source = entry.path if entry is not None else None
    sha = (
        f", weights sha256 {weights_sha256(source)[:12]}..."
        if source is not None and source.exists()
        else ""
    )
    prof = getattr(card, "profile", None) if card is not None else None
    recipe = prof.get("recipe") if isinstance(prof, dict) else None
    text = (
        f"{name or options.model or 'default'} ({getattr(net, 'arch', type(net).__name__)} "
        f"x{net.scale}, {net.in_channels} band(s) in){sha}"
    )
    from .noise_gate import chosen_by_default, noise_variant

    variant = noise_variant(net) if chosen_by_default(options.model, options.weights) else None
    if variant is not None:  # (the run measures each input's noise; the dry run reads none)
        text += f"; blended towards {variant} if the input is noisy (noise gate)"
    return text, recipe


def _plan_one(
    domain: str, src: Path, dst: Path, options: UpscaleOptions, batch: str = "tasks"
) -> PlannedOutput:
    """One input's line; ``batch``: part of a folder or glob (resumable; ``"geotiff"``: this
    process's GeoTIFF batch, ``"tasks"``: the batch runner's), else (``""``) a single input,
    whose existing output is refused or replaced, never skipped or redone, as the run does.
    An input the run would fail on: ``error: ...`` (unless the run refuses its output before
    any work, or skips it as complete without reading it)."""
    try:
        n_bands, dtype, default = read_input(domain, src, options)
        problem = ""
    except SRDomainsError as exc:
        n_bands, dtype, default, problem = None, None, "mr", str(exc)
    if batch:
        status, why = output_status(domain, src, dst, options)
    else:  # a single input does not resume: an existing output is the user's to replace
        status, why = ("missing" if absent(dst) else "foreign"), ""
    action = action_of(status, options.overwrite, why)
    try:
        unsafe = unsafe_reason(domain, src, dst, options.cog, batch, options.overwrite)
    except SRDomainsError as exc:  # (a VRT naming a missing source: the run fails on it)
        unsafe, problem = "", problem or str(exc)
    if unsafe:  # the run refuses it whatever --overwrite says
        action = f"refused: {unsafe}"
    if problem:  # (a refused output stops the run first; a complete one is not read)
        kept = action.startswith(("refused", "would skip"))
        return PlannedOutput(domain, str(src), str(dst), action if kept else f"error: {problem}")
    try:
        model, recipe = _describe_model(options, n_bands)
    except BandMismatchError as exc:  # this file's bands: named, as the run names them
        return PlannedOutput(domain, str(src), str(dst), f"error: {exc.naming(src)}")
    except SRDomainsError as exc:
        return PlannedOutput(domain, str(src), str(dst), f"error: {exc}")
    if options.profile is not None:
        profile = f"{options.profile} (given)"
    elif recipe:
        profile = f"{recipe} (the model card's)"
    elif domain == "geotiff":
        import numpy as np

        kind = "integer" if np.dtype(dtype).kind in "ui" else "float"
        profile = f"{'dtype' if kind == 'integer' else 'identity'} (default for {kind} data)"
    else:
        profile = f"{default} (default for this modality)"
    if options.adapt is not None:
        model += f"; adapted to each input ({options.adapt.steps} steps)"
    if options.isotropic is not None:
        model = "a network fitted to each volume (--isotropic)"
    return PlannedOutput(domain, str(src), str(dst), action, model, profile)


def dry_run(
    src: Path,
    dst: Path,
    options: UpscaleOptions,
    domain: str | None = None,
    distributed: bool = False,
) -> str:
    """The dry-run report of ``sr-domains upscale SRC DST`` (module docs); ``distributed``:
    of the run on Dask (``--workers``/``--scheduler``)."""
    return report(plan(src, dst, options, domain, distributed), options)


def report(planned: list[PlannedOutput], options: UpscaleOptions) -> str:
    """The text of a dry run's ``planned`` outputs."""
    head = f"dry run: {len(planned)} output(s), scale x{options.scale}; nothing written"
    return "\n".join([head, *(p.to_text() for p in planned)])


def would_fail(planned: list[PlannedOutput]) -> bool:
    """Whether the run would stop on one of ``planned`` (an output refused, an input or model
    error): ``sr-domains upscale --dry-run`` then exits with status 1, as the run would."""
    return any(p.action.startswith(("refused", "error")) for p in planned)


def plan(
    src: Path,
    dst: Path,
    options: UpscaleOptions,
    domain: str | None = None,
    distributed: bool = False,
) -> list[PlannedOutput]:
    """What ``sr-domains upscale SRC DST`` would do with each output (module docs), in this
    process or, with ``distributed``, on Dask: the batch of the same inputs the run plans
    (:func:`~sr_domains.batch_tasks.plan_tasks`; there a DICOM series folder is a batch of one
    and resumes). A batch the run refuses before any work is refused alike (ConfigError: two
    inputs to one output; with ``--cog``, two outputs sharing one ``STEM.IMD``)."""
    from .cli_inputs import batch_domain as decide

    batch_domain = decide(src, domain, distributed)
    if batch_domain is None:
        return [_plan_single(src, dst, options, domain)]
    from .batch_tasks import plan_tasks

    found = None if batch_domain == "*" else batch_domain
    tasks = plan_tasks(str(src), dst, options.suffix, options.series_uid, found)
    check_save_model_batch(saved_model_path(options), len(tasks))  # as the run refuses it
    if options.cog:  # (two COGs of one stem would keep their IMD in one STEM.IMD: refused)
        from .geo.sidecar_plan import refuse_imd_clashes

        refuse_imd_clashes([(t.src, t.dst) for t in tasks if t.domain == "geotiff"])
    style = "geotiff" if batch_domain == "geotiff" else "tasks"
    planned = [_plan_one(t.domain, Path(t.src), Path(t.dst), options, style) for t in tasks]
    if batch_domain == "geotiff":  # (this process's GeoTIFF batch checks every output first)
        return _stopped_if_refused(planned)
    return planned


def _stopped_if_refused(planned: list[PlannedOutput]) -> list[PlannedOutput]:
    """A GeoTIFF batch in this process refuses its outputs before any work, all at once: with
    one refused, nothing else is written or skipped either."""
    refused = sum(p.action.startswith("refused") for p in planned)
    if not refused:
        return planned
    stop = f"not run: the batch stops before any work ({refused} output(s) refused)"
    return [replace(p, action=stop) if p.action.startswith("would") else p for p in planned]


def _plan_single(
    src: Path, dst: Path, options: UpscaleOptions, domain: str | None
) -> PlannedOutput:
    """The line of one input (a file, or a DICOM folder: one series)."""
    from .adapters import find_adapter

    name = find_adapter(src, domain).name
    out = dst
    if name == "geotiff" and dst.is_dir():
        from .geo.names import geotiff_output_name

        out = dst / geotiff_output_name(src, options.suffix)
    elif name == "nifti" and dst.is_dir():
        from .options import output_name

        out = dst / output_name(src.name, options.suffix)
    return _plan_one(name, src, out, options, batch="")


__all__ = ["PlannedOutput", "dry_run", "plan", "report", "would_fail"]
