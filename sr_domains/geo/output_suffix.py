"""How a GeoTIFF output may be named: ``.tif``/``.tiff``, or the input's own suffix when the
input is a TIFF too, never the suffix of another format."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..io_safety import full_suffix
from .gdal_paths import check_gdal_names
from .names import starts_like_tiff

#: Names a GeoTIFF output has (any case).
TIFF_SUFFIXES = (".tif", ".tiff")


#: Suffixes of formats other than TIFF: never given to a GeoTIFF output, even when the input
#: is a TIFF that carries one (a misnamed file: the output would be misnamed too).
OTHER_FORMATS = frozenset(
    {
        *(".nii", ".nii.gz", ".hdr", ".img", ".dcm", ".dicom", ".mha", ".mhd", ".nrrd", ".nhdr"),
        *(".png", ".jpg", ".jpeg", ".jp2", ".j2k", ".gif", ".bmp", ".webp", ".heic"),
        *(".nc", ".h5", ".hdf", ".hdf5", ".zarr", ".vrt", ".npy", ".npz"),
        *(".safetensors", ".pt", ".pth", ".pt2", ".onnx"),
    }
)


def check_output_name(dst: Path, src: Path) -> None:
    """Refuse a GeoTIFF output named like another format (``out.png``, ``out.nii.gz``,
    ``out.jp2``): the next tool trusts the name. ``.tif``/``.tiff`` are accepted, and the
    input's own suffix when the input is a TIFF too (recognised by its content, e.g.
    ``scene.dat``) unless that suffix names another format (a TIFF misnamed ``.nii``: its
    output would be too, :data:`OTHER_FORMATS`). An input or output path GDAL cannot be given
    (not UTF-8) is refused first (:func:`~sr_domains.geo.gdal_paths.check_gdal_names`)."""
    check_gdal_names(src, dst)
    ext = full_suffix(dst).lower()
    own = ext == full_suffix(src).lower() and starts_like_tiff(src) and ext not in OTHER_FORMATS
    if ext not in TIFF_SUFFIXES and not own:
        raise ConfigError(
            f"{dst}: a GeoTIFF is written, so the output name must end in .tif or .tiff"
            + (f" (not {ext})" if ext else "")
        )


__all__ = ["OTHER_FORMATS", "TIFF_SUFFIXES", "check_output_name"]
