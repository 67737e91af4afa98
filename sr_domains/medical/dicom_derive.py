"""Tags every derived DICOM image gets (classic and enhanced), and writing one to disk.

Kept: Patient, Study, Frame of Reference, equipment, acquisition and window tags. New:
SeriesInstanceUID, SeriesNumber (:func:`derived_series_number`, per kind and scale),
series/content dates, DerivationDescription (provenance), SeriesDescription suffix,
ContributingEquipmentSequence, 16-bit pixel description (8 bits allocated for an 8-bit source
whose written values fit its 8 stored bits). Dropped (no longer true of the new pixels):
private tags, icon, overlays (a WARNING names each group), Modality LUT (applied on read:
the pixels are modality values, rescale 1/0), smallest/largest pixel values. Tags in pixel
coordinates: :mod:`.dicom_pixel_coords`. LossyImageCompression "01" once any source file
was lossy compressed (its own "01", a lossy transfer syntax, or an irreversible JPEG 2000 /
HTJ2K codestream), the source's ratio and method kept. Written uncompressed, Explicit VR Little
Endian (a big endian source included), Part-10 file meta. Used by :mod:`.dicom_write` and
:mod:`.dicom_enhanced`, which import it and not each other's internals.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .dicom_ds import ds_number
from .dicom_pixel_coords import Warn, warner
from .dicom_series import DicomSeries
from .dicom_series_number import (
    SERIES_NUMBER_KINDS,
    SERIES_NUMBER_OFFSET,
    SERIES_NUMBER_OFFSETS,
    SERIES_NUMBER_STRIDE,
    derived_kind,
    derived_series_number,
    series_scale_part,
)

log = logging.getLogger(__name__)

#: Lossy transfer syntaxes and their LossyImageCompressionMethod. JPEG 2000 and HTJ2K that
#: "may be lossy" (:data:`_MAYBE_LOSSY_TS`) are lossy when the codestream says so.
_LOSSY_TS = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",  # JPEG extended
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",  # JPEG 2000
    "1.2.840.10008.1.2.4.93": "ISO_15444_1",  # JPEG 2000 Part 2 multi-component
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",  # HTJ2K
}
_MAYBE_LOSSY_TS = {
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.203",
}
_SOC_SIZ = b"\xff\x4f\xff\x51"  # JPEG 2000 codestream start, image size marker
_COD, _SOT = 0xFF52, 0xFF90  # coding style default (holds the wavelet), first tile part
#: Item size of the binary VRs whose bytes follow the file's byte order.
_BINARY_ITEM = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_PIXEL_DATA = 0x7FE00010
_DROP = (
    "IconImageSequence",
    "ModalityLUTSequence",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "PlanarConfiguration",
    "DataSetTrailingPadding",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "PixelDataProviderURL",
)


def stale_spacing(ds: Any, spacing: float, factor: float) -> bool:
    """Whether ``SpacingBetweenSlices`` must be (re)written as ``spacing``: a through-plane
    output (``factor`` != 1), or a source value that disagrees with the slice positions (an
    in-plane output keeps the source's text when it agrees, to 1e-4 mm)."""
    if factor != 1:
        return True
    if "SpacingBetweenSlices" not in ds:
        return False
    try:
        return abs(float(ds.SpacingBetweenSlices) - spacing) > 1e-4 * max(1.0, abs(spacing))
    except (TypeError, ValueError):
        return True


def now_stamp() -> tuple[str, str]:
    """``(date, time)`` of now as DICOM DA / TM strings."""
    t = _dt.datetime.now()
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S.%f")


def derived_warner(series: DicomSeries, info: dict[str, Any]) -> Warn:
    """The ``warn(tag, why)`` of one derived series: one WARNING per tag removed, naming the
    source (:func:`.dicom_pixel_coords.warner`)."""
    return warner(str(series.source), info.setdefault("removed_tags_warned", set()))


def _strip(ds: Any, warn: Warn) -> None:
    ds.remove_private_tags()
    for key in _DROP:
        if key in ds:
            delattr(ds, key)
    overlays = [e.tag for e in ds if 0x6000 <= e.tag.group <= 0x60FF and e.tag.group % 2 == 0]
    for group in sorted({t.group for t in overlays}):
        warn(f"overlay {group:04X} (OverlayData)", "(drawn on the source's pixel grid)")
    for tag in overlays:
        del ds[tag]


def j2k_irreversible(codestream: bytes) -> bool | None:
    """Whether a JPEG 2000 / HTJ2K codestream (or a JP2 file holding one) is irreversible,
    i.e. lossy: the transformation byte of its COD marker segment (marker, Lcod, Scod, SGcod
    (4), levels, block width, height, style, transformation) is not 1, the reversible 5/3
    wavelet (0 is the irreversible 9/7; Part 2 kernels are taken as lossy). None when no COD
    is found in the main header."""
    pos = codestream.find(_SOC_SIZ)
    if pos < 0:
        return None
    pos += 2
    while pos + 4 <= len(codestream):
        marker = int.from_bytes(codestream[pos : pos + 2], "big")
        if marker == _COD:
            return codestream[pos + 13] != 1 if pos + 13 < len(codestream) else None
        if marker == _SOT or marker >> 8 != 0xFF:
            return None
        pos += 2 + int.from_bytes(codestream[pos + 2 : pos + 4], "big")
    return None


def _first_fragment(path: Path, ds: Any) -> bytes:
    """The first fragment of the encapsulated pixel data of a file (from ``ds`` when loaded)."""
    from io import BytesIO

    import pydicom
    from pydicom.encaps import generate_fragments, parse_basic_offsets

    data = ds.get_item("PixelData", keep_deferred=True).value
    if not isinstance(data, bytes):  # deferred: read the file again
        data = pydicom.dcmread(path).PixelData
    buf = BytesIO(data)
    parse_basic_offsets(buf)
    return next(generate_fragments(buf), b"")


def _lossy_method(path: Path, ds: Any) -> str | None:
    """Whether one source file is lossy: its own LossyImageCompression "01", a lossy transfer
    syntax, or JPEG 2000 / HTJ2K "may be lossy" with an irreversible codestream. Returns the
    method of the transfer syntax ("" when the syntax is not lossy), or None when not lossy."""
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    if ds.get("LossyImageCompression") == "01":
        return _LOSSY_TS.get(ts, "")
    if ts not in _LOSSY_TS:
        return None
    if ts not in _MAYBE_LOSSY_TS:
        return _LOSSY_TS[ts]
    try:
        irreversible = j2k_irreversible(_first_fragment(path, ds))
    except Exception as exc:  # (decoding has read it) be safe: lossy
        log.warning("%s: cannot read the JPEG 2000 codestream (%s); taken as lossy", path, exc)
        return _LOSSY_TS[ts]
    if irreversible is None:
        log.warning("%s: no JPEG 2000 wavelet (COD) found; taken as lossy", path)
    return None if irreversible is False else _LOSSY_TS[ts]


def lossy_history(series: DicomSeries) -> str | None:
    """None when no source file of ``series`` was ever lossy compressed, else the
    LossyImageCompressionMethod of the first lossy one ("" when unknown). Once lossy, always
    marked (PS3.3 C.7.6.1.1.5)."""
    files = {s.path: s.ds for s in series.slices}
    methods = (_lossy_method(p, ds) for p, ds in files.items())
    return next((m for m in methods if m is not None), None)


def derive_common(ds: Any, series: DicomSeries, info: dict[str, Any]) -> None:
    """Tags shared by classic and enhanced outputs."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    _strip(ds, derived_warner(series, info))
    ds.SeriesInstanceUID = info["series_uid"]
    if ds.get("SeriesNumber") not in (None, ""):
        number = derived_series_number(
            int(ds.SeriesNumber), info.get("kind", "in-plane"), info["scale"]
        )
        if number is None and "series_number_warned" not in info:
            info["series_number_warned"] = True
            log.warning(
                "%s: SeriesNumber %s is out of the IS range; the derived one is left empty",
                series.slices[0].path.parent,
                ds.SeriesNumber,
            )
        ds.SeriesNumber = number
    date, time = info["now"]
    for d, t in (("SeriesDate", "SeriesTime"), ("ContentDate", "ContentTime")):
        setattr(ds, d, date)
        setattr(ds, t, time)
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SeriesDescription = derived_description(series.description, info["label"])
    # once per series and character set (one warning; slices may differ in character set)
    texts = info.setdefault("derivation_text", {})
    charset = str(ds.get("SpecificCharacterSet"))
    if charset not in texts:
        texts[charset] = _cut_escaped(in_character_set(ds, info["derivation"]), 1024)
    ds.DerivationDescription = texts[charset]
    if "lossy" not in info:  # once per series (the classic writer calls this per slice)
        info["lossy"] = lossy_history(series)
    if info["lossy"] is not None:
        ds.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in ds and info["lossy"]:
            ds.LossyImageCompressionMethod = info["lossy"]
    eq = Dataset()
    eq.Manufacturer = "sr_domains"
    eq.SoftwareVersions = __version__
    eq.ContributionDateTime = date + time
    eq.ContributionDescription = "super-resolution"[:64]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "109103",
        "DCM",
        "Modifying Equipment",
    )
    eq.PurposeOfReferenceCodeSequence = Sequence([code])
    prev = list(ds.get("ContributingEquipmentSequence", []))
    ds.ContributingEquipmentSequence = Sequence([*prev, eq])
    ds.SamplesPerPixel = 1
    bits = int(info.get("bits", 16))
    kept = int(info.get("bits_stored", bits))
    if kept <= 8 and all(int(s.ds.get("BitsAllocated", 0) or 0) == 8 for s in series.slices):
        bits = 8  # an 8-bit source stays 8-bit (pixels narrowed by save_derived)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, kept, kept - 1
    ds.PixelRepresentation = int(info["signed"])


def source_ref(ds: Any) -> Any:
    """A SourceImageSequence item referencing the image ``ds``."""
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return ref


def _file_meta(ds: Any) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"SRDOMAINS_{__version__}"[:16]
    ds.file_meta = meta


def _to_little_endian(ds: Any) -> None:
    """Make a dataset read from a big endian file writable as little endian.

    pydicom re-encodes decoded values (US, FL, ...) itself but writes the bytes of OW, OF, OL,
    OD and OV elements as they are and refuses to convert such a dataset; the new pixel data
    (native little endian bytes) is left alone."""
    implicit, little = ds.original_encoding
    if little is not False:
        return
    malformed = []
    for elem in ds.iterall():
        size = _BINARY_ITEM.get(elem.VR)
        if size and isinstance(elem.value, bytes) and elem.tag != _PIXEL_DATA:
            if len(elem.value) % size:
                malformed.append(elem)
                continue
            elem.value = np.frombuffer(elem.value, f">u{size}").astype(f"<u{size}").tobytes()
    for elem in malformed:  # cannot be swapped: an empty value rather than wrong numbers
        log.warning(
            "%s %s: %d bytes is not a whole number of values, emptied",
            elem.tag,
            elem.VR,
            len(elem.value),
        )
        elem.value = b""
    ds.set_original_encoding(implicit, True)


def save_derived(ds: Any, path: Path) -> None:
    """Write a derived image as a Part-10 file, uncompressed Explicit VR Little Endian."""
    _file_meta(ds)
    _to_little_endian(ds)
    _narrow_pixels(ds, path)
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)


def _narrow_pixels(ds: Any, path: Path) -> None:
    """Pack the writers' 16-bit words into bytes (``OB``) where :func:`derive_common` kept
    ``BitsAllocated`` 8: an 8-bit source whose written values all fit its 8 stored bits
    (:func:`~sr_domains.medical.dicom_values.kept_bits_stored`), so none wraps."""
    if int(ds.get("BitsAllocated", 16)) != 8 or "PixelData" not in ds:
        return
    n = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
    if len(ds.PixelData) != 2 * n:
        raise RuntimeError(f"{path}: {len(ds.PixelData)} bytes are not 16-bit words of {n}")
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    words = np.frombuffer(ds.PixelData, "<i2" if signed else "<u2")
    ds.PixelData = words.astype("i1" if signed else "u1").tobytes()
    ds["PixelData"].VR = "OB"


def nearest_source(k: int, factor: float, n_src: int) -> int:
    """Index of the source slice nearest to output slice ``k`` when ``n_src`` slices become
    ``factor`` times as many (centre rule)."""
    return int(min(max(round((k + 0.5) / factor - 0.5), 0), n_src - 1))


def in_character_set(ds: Any, text: str) -> str:
    """``text`` as the dataset's SpecificCharacterSet can hold it: characters it cannot
    encode (a model card named in Japanese, written into a Latin-1 or a default-repertoire
    series) are written as ``\\uXXXX`` escapes, instead of pydicom's ``?`` (with a warning per
    file) or bytes invalid in the series' repertoire."""
    if text.isascii():
        return text
    from pydicom.charset import python_encoding

    given = ds.get("SpecificCharacterSet") or "ISO_IR 6"
    names = [given] if isinstance(given, str) else list(given)
    codec = python_encoding.get(names[0] or "ISO_IR 6") if len(names) == 1 else None
    if names[0] in ("", "ISO_IR 6", "ISO 2022 IR 6"):
        codec = "ascii"  # (the default repertoire; pydicom maps it to iso8859)
    try:
        text.encode(codec or "ascii")
        return text
    except (UnicodeEncodeError, LookupError):
        pass
    log.warning(
        "SpecificCharacterSet %s cannot hold all of %r: written with \\u escapes",
        given,
        text[:60],
    )
    try:
        return text.encode(codec or "ascii", "backslashreplace").decode(codec or "ascii")
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


def _cut_escaped(text: str, n: int) -> str:
    """``text[:n]`` without a ``\\x``/``\\u`` escape cut in half at its end."""
    import re

    return re.sub(r"\\(x[0-9a-f]?|u[0-9a-f]{0,3}|U[0-9a-f]{0,7})?$", "", text[:n])


def derived_description(description: str, label: str) -> str:
    """``"<description> <label>"`` within SeriesDescription's 64 characters (LO): a long
    description is cut at its end, so its start (what a viewer lists) is kept with the label
    (it was cut at the front)."""
    if not description:
        return label[:64]
    room = max(0, 64 - len(label) - 1)
    return f"{description[:room].rstrip()} {label}".strip()[:64]


__all__ = [
    "SERIES_NUMBER_KINDS",
    "SERIES_NUMBER_OFFSET",
    "SERIES_NUMBER_OFFSETS",
    "SERIES_NUMBER_STRIDE",
    "derive_common",
    "derived_description",
    "derived_kind",
    "derived_series_number",
    "derived_warner",
    "ds_number",
    "in_character_set",
    "j2k_irreversible",
    "lossy_history",
    "nearest_source",
    "now_stamp",
    "save_derived",
    "series_scale_part",
    "source_ref",
    "stale_spacing",
]
