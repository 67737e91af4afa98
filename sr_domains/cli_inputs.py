"""Which inputs one ``sr-domains upscale`` run takes from a folder or glob, and what it says
about the ones it leaves out (NIfTI beside a DICOM series, subfolders of a folder batch, other
domains beside a GeoTIFF batch)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import ConfigError, SRDomainsError

log = logging.getLogger(__name__)


def check_folder_output(output: str, src: Path, domain: str | None, distributed: bool) -> None:
    """Refuse an OUTPUT spelt as a folder (``out.tif/``) that is not one, for a single
    GeoTIFF or NIfTI input written as one file: ``Path`` drops the slash, and the output was
    written as a file of that name. An existing folder takes the output under the input's
    name, as before; on Dask a single NIfTI file is a batch, written into a folder."""
    if not output.endswith(("/", os.sep)) or os.path.isdir(output) or not src.is_file():
        return
    from .adapters import find_adapter

    try:
        name = find_adapter(src, domain).name
        one_file = batch_domain(src, domain, distributed) is None
    except SRDomainsError:  # (not ours to say: the run reports the input)
        return
    if name in ("geotiff", "nifti") and one_file:
        what = "is a file" if os.path.lexists(output.rstrip("/" + os.sep)) else "does not exist"
        raise ConfigError(
            f"{output}: names a folder (it ends with '/'), which {what}: create the folder to "
            "put the output in it, or drop the '/' to name the output file"
        )


def batch_domain(src: Path, domain: str | None, distributed: bool) -> str | None:
    """The domain of the batch ``sr-domains upscale`` makes of ``src`` (``"*"``: every
    domain, on Dask), or None for one input: on Dask every input but a single GeoTIFF (split
    in tiles) is a batch; in this process a folder or glob of NIfTI files or of GeoTIFFs is,
    and a DICOM folder is one series (several: ``--series`` picks one). The run and
    ``--dry-run`` both decide with it."""
    from .adapters import find_adapter

    if distributed:
        one_raster = src.is_file() and find_adapter(src, domain).name == "geotiff"
        return None if one_raster else (domain or "*")
    if is_nifti_batch(src, domain):
        return "nifti"
    name = find_adapter(src, domain).name  # (refuses what the run refuses, as it does)
    return name if name == "geotiff" and not src.is_file() else None


def is_nifti_batch(src: Path, domain: str | None) -> bool:
    """A folder holding NIfTI files (and no GeoTIFF batch or DICOM series, unless ``--domain
    nifti`` picks them), or a glob pattern naming NIfTI files: one batch, as with ``--workers``
    (resumable, with a run manifest), run in this process."""
    from .adapters import matching_domains
    from .medical.nifti import is_nifti_path

    if domain not in (None, "nifti"):
        return False
    if src.is_dir():
        if domain is None and matching_domains(src):  # a GeoTIFF batch or a DICOM series
            return False
        return any(is_nifti_path(f) and not f.is_dir() for f in src.iterdir())
    text = str(src)
    if os.path.lexists(src) or not any(ch in text for ch in "*?["):
        return False
    import glob

    named = [is_nifti_path(Path(f)) for f in glob.glob(text)]
    return any(named) if domain == "nifti" else bool(named) and all(named)


def check_one_domain(src: Path) -> None:
    """A folder batch of GeoTIFFs that would leave NIfTI files or a DICOM series in the same
    folder out is refused: without a word it would look like a finished run. (A DICOM folder
    is one input, a series; other files beside it are not its business.)"""
    from .adapters import matching_domains
    from .geo.adapter import SUFFIXES

    if not src.is_dir():
        return
    names = matching_domains(src)
    if names[:1] == ["dicom"]:
        _left_beside_series(src)
    else:
        _subfolders_left_out(src)
    if not names or names[0] != "geotiff":
        return
    rest = [f for f in src.iterdir() if f.is_file() and f.suffix.lower() not in SUFFIXES]
    others = set(names[1:]) | {n for f in rest for n in matching_domains(f)}
    others.discard("geotiff")  # a TIFF by content under another name: not in the batch either
    if others:
        listed = ["geotiff", *sorted(others)]
        raise ConfigError(
            f"{src}: holds {', '.join(listed)} inputs and a batch covers one domain: pass "
            f"--domain {'|'.join(listed)} to upscale one of them, or "
            "--workers N to upscale them all as one batch"
        )


def _left_beside_series(src: Path) -> None:
    """Warn that the NIfTI volumes and GeoTIFFs beside a DICOM series are not upscaled with it
    (the folder is read as one series; they are not ignored without a word)."""
    from .adapters import matching_domains

    beside = sorted(
        f.name
        for f in src.iterdir()
        if f.is_file() and set(matching_domains(f)) & {"nifti", "geotiff"}
    )
    if beside:
        shown = ", ".join(beside[:5]) + (f" and {len(beside) - 5} more" if len(beside) > 5 else "")
        log.warning(
            "%s: read as a DICOM series; left out: %s (--domain nifti / geotiff for them, "
            "or --workers N to upscale every input of the folder)",
            src,
            shown,
        )


def _subfolders_left_out(src: Path) -> None:
    """Warn that a folder batch takes the folder's own files: subfolders holding GeoTIFFs or
    NIfTI volumes are named (a DICOM series folder, by contrast, is read recursively)."""
    from .geo.names import BATCH_SUFFIXES
    from .medical.nifti import is_nifti_path

    def inputs_in(folder: Path) -> bool:
        try:
            return any(
                f.suffix.lower() in BATCH_SUFFIXES or is_nifti_path(f) for f in folder.iterdir()
            )
        except OSError:
            return False

    subs = sorted(d.name for d in src.iterdir() if d.is_dir() and inputs_in(d))
    if subs:
        log.warning(
            "%s: a folder batch takes the folder's own files; not searched: %s (give each "
            "subfolder, or a glob, as the input)",
            src,
            ", ".join(subs[:5]) + (f" and {len(subs) - 5} more" if len(subs) > 5 else ""),
        )


__all__ = ["check_one_domain", "is_nifti_batch"]
