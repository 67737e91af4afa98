"""Domain adapters: how ``sr-domains upscale`` and ``info`` find the code for a file type.

Each adapter is a module with three functions::

    sniff(path: Path) -> bool                                   # is this input mine?
    info(path: Path) -> str                                     # human-readable summary
    upscale(src: Path, dst: Path, options: UpscaleOptions) -> list[Path]   # written outputs

The table below is explicit and the modules are imported only when used, so a missing optional
dependency (rasterio, nibabel, pydicom) only matters for the domain that needs it. Third-party
adapters can be added through the ``sr_domains.domains`` entry-point group.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from .errors import InputFileError
from .registry import Registry


@dataclass(frozen=True)
class DomainAdapter:
    """A lazily imported domain module (see module docs)."""

    name: str
    module: str
    description: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


@cache
def domain_registry() -> Registry[DomainAdapter]:
    """Known domains, in sniffing order."""
    reg: Registry[DomainAdapter] = Registry("domain", "sr_domains.domains")
    reg.add(
        "geotiff",
        DomainAdapter(
            "geotiff", "sr_domains.geo.adapter", "GeoTIFF rasters (single file, folder or glob)"
        ),
    )
    reg.add(
        "nifti",
        DomainAdapter(
            "nifti", "sr_domains.medical.nifti_adapter", "NIfTI-1/2 volumes (.nii, .nii.gz)"
        ),
    )
    reg.add(
        "dicom",
        DomainAdapter("dicom", "sr_domains.medical.dicom_adapter", "DICOM series (folder or file)"),
    )
    return reg


def matching_domains(path: Path) -> list[str]:
    """Every domain whose adapter recognises ``path``, in registry order (domains whose
    optional dependency is missing are left out)."""
    reg = domain_registry()
    found = []
    for name in reg.names_in_order():
        try:
            mod = reg.get(name).load()
        except ImportError:
            continue  # its optional dependency is missing; another adapter may match
        if mod.sniff(path):
            found.append(name)
    return found


def find_adapter(path: Path, domain: str | None = None) -> DomainAdapter:
    """The adapter for ``path`` (forced by ``domain`` when given)."""
    reg = domain_registry()
    if domain:
        return reg.get(domain)
    names = matching_domains(path)
    if names:
        return reg.get(names[0])
    text = str(path)
    if any(ch in text for ch in "*?[") and not path.exists():
        import glob

        found = glob.glob(text)
        if not found:
            raise InputFileError(path, "no file matches this pattern")
        raise InputFileError(
            path,
            f"matches {len(found)} file(s) but no batch of one domain (a glob of GeoTIFF "
            ".tif/.tiff or NIfTI .nii/.nii.gz files); pass --domain to pick one, or --workers "
            "N for a batch of every domain",
        )
    if not os.path.lexists(path):
        raise InputFileError(path, "no such file or folder")
    if not path.exists():
        raise InputFileError.missing(path)  # a broken link
    if _nifti_pair(path):
        raise InputFileError(
            path,
            "a NIfTI pair (.hdr/.img) is not supported; convert it to a single .nii or .nii.gz "
            "file first (e.g. nibabel: nib.save(nib.load(path), 'out.nii.gz'))",
        )
    raise InputFileError(
        path,
        "not a recognised input (GeoTIFF .tif/.tiff or another GDAL raster .jp2/.vrt, NIfTI "
        ".nii/.nii.gz, DICOM file or folder); "
        "pass --domain to force one, and check the matching extra is installed",
    )


def _nifti_pair(path: Path) -> bool:
    """Whether ``path`` is the ``.hdr`` or ``.img`` of a NIfTI-1 pair (magic ``ni1`` in the
    header, which a ``.img`` has beside it)."""
    suffix = path.suffix.lower()
    if suffix not in (".hdr", ".img"):
        return False
    hdr = (
        path if suffix == ".hdr" else path.with_suffix(".hdr" if path.suffix == ".img" else ".HDR")
    )
    try:
        with open(hdr, "rb") as fh:
            head = fh.read(348)
    except OSError:
        return False
    return len(head) == 348 and head[344:347] == b"ni1"
