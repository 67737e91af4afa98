"""What a dry run reads of an input: its bands, voxel type and default profile, refused as
the run refuses it.

A GeoTIFF is checked from its headers (colour table, nodata and ``--dtype``, ``--value-range``,
creation options, blocks past the end of the file); a NIfTI file or a DICOM series is read
through with the run's own readers and checks (voxel type, label image, data cut short,
``--through-plane`` and ``--isotropic`` requirements, a ``--value-range`` the data leave).
Used by :mod:`sr_domains.dry_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .options import UpscaleOptions


def read_input(domain: str, src: Path, options: UpscaleOptions) -> tuple[int | None, Any, str]:
    """``(bands, dtype, default profile)`` of an input, refused as the run refuses it
    (:class:`~sr_domains.errors.SRDomainsError` naming the file): unreadable, a colour table, an
    unsupported voxel type, a label image, the data cut short. A GeoTIFF is checked from its
    headers; NIfTI voxels and DICOM pixels are read with the run's readers."""
    if domain == "geotiff":
        import numpy as np

        from .geo.band_checks import refuse_palette
        from .geo.dtype_checks import (
            check_output_nodata,
            warn_clipping_dtype,
            warn_value_range,
        )
        from .geo.job import gdal_env
        from .geo.output_spec import check_creation
        from .geo.reader import RasterSource

        with gdal_env(), RasterSource(src, options.bands, options.nodata) as rs:
            refuse_palette(rs)
            check_output_nodata(rs, options.dtype)
            if options.dtype is not None:  # a cast to one value is refused (reads a sample)
                warn_clipping_dtype(rs, np.dtype(options.dtype))
            warn_value_range(rs, options.values)  # a --value-range the data leave
            check_creation(
                rs, options.scale, options.dtype, options.creation_options, cog=options.cog
            )
            refuse_cut_short(rs.ds, src)
            return rs.n_bands, rs.dtype, "mr"
    from .medical.common import check_through_plane
    from .medical.isotropic_io import thickness_used
    from .value_range_check import warn_outside_range

    if domain == "dicom":
        from .medical.dicom_read import load_dicom_series

        series = load_dicom_series(src, options.series_uid)
        if options.through_plane:
            check_through_plane(src, tuple(series.shape), "series")
        volume = series.read_volume(padding_as_nan=True)  # decoding errors, data cut short
        warn_outside_range(series.source, volume, None, options.values, "dicom")  # as the run
        if options.isotropic is not None and thickness_used(options.isotropic):
            from .medical.isotropic_api import series_thickness

            series_thickness(series)  # a header thickness that is none (as the run refuses)
        return None, None, "ct" if series.modality == "CT" else "mr"
    if domain == "nifti":
        from .medical.nifti import check_upscalable
        from .medical.nifti_io import open_source

        source = open_source(src)  # unreadable, voxel type, header claims beyond the file
        check_upscalable(source)  # a label image
        if options.through_plane and options.isotropic is None:
            check_through_plane(src, tuple(source.image.shape))
        # voxel data cut short (a gzip stream: to its checksum); the run's whole-file sample
        scan = source.scan()
        warn_outside_range(source.path, scan.sample, None, options.values, "nifti")
        if options.isotropic is not None:
            from .medical.isotropic_api import check_spacing_known

            check_spacing_known(source)  # an unknown voxel spacing, as the run refuses it
        if options.isotropic is not None and thickness_used(options.isotropic):
            from .medical.isotropic_io import thickness_from_sidecar

            thickness_from_sidecar(src)  # its sidecar's, as the run refuses it
        return None, source.dtype, "mr"
    return None, None, "mr"


def refuse_cut_short(ds: Any, src: Path) -> None:
    """Refuse a GeoTIFF whose blocks end past the end of the file (a copy cut short), from the
    block offsets in its header: the run fails on it reading the pixels."""
    from .errors import InputFileError

    if ds.driver != "GTiff":
        return
    rows, cols = ds.block_shapes[0]
    n_y, n_x = -(-ds.height // max(rows, 1)), -(-ds.width // max(cols, 1))
    size = Path(src).stat().st_size
    bands = ds.indexes if ds.interleaving is not None and ds.interleaving.name == "BAND" else [1]
    for b in bands:
        for y in range(n_y):
            for x in range(n_x):
                offset = ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=b)
                length = ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=b)
                end = int(offset or 0) + int(length or 0)
                if end > size:
                    raise InputFileError(
                        src,
                        f"cut short: band {b} block ({x}, {y}) ends at byte {end}, past the "
                        f"file's {size} bytes; is the file corrupt?",
                    )


__all__ = ["read_input", "refuse_cut_short"]
