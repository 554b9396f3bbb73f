"""Checks that an object is whole and well-formed before anything of it is stored or written.

pydicom reads a truncated stream without complaint, so this compares each element's declared
length with what arrived, and the pixel data with what its header promises. The archive's door
(:func:`read_complete`, Part 10 streams) and the de-identifier's file reader
(:func:`read_file`, which also takes a bare data set without File Meta Information) share these
checks.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_description, dictionary_has_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import parse_fragments
from pydicom.filereader import _read_file_meta_info
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MPEGTransferSyntaxes,
)
from pydicom.valuerep import VR

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
TRUNCATION_WARNING = "End of file"
"""What pydicom warns, instead of raising, when a stream stops inside a sequence or an
undefined-length value ("End of file reached before delimiter (FFFE,E0DD) found")."""

_SYNTAX_OF_ENCODING = {
    (True, True): ImplicitVRLittleEndian, (False, True): ExplicitVRLittleEndian, (False, False): ExplicitVRBigEndian,
}


class MalformedObject(ValueError):
    """The bytes are not a complete DICOM object; the message says what is wrong."""


class NotDicom(MalformedObject):
    """The bytes do not read as a DICOM data set at all."""


def read_complete(encoded: bytes) -> Dataset:
    """Parse a Part 10 byte stream fully, raising MalformedObject if any part is missing or broken."""
    return _parse(encoded, force=False)


def read_file(path: Path) -> Dataset:
    """Read a DICOM file whole: Part 10, or a bare data set without preamble and File Meta.

    A bare data set is accepted only if it reads as one: pydicom will parse nearly any bytes
    when forced, so it must at least name a valid SOP Class UID. Its File Meta Information is
    as read (empty for a bare data set); :func:`infer_transfer_syntax` completes it.

    Raises
    ------
    NotDicom
        The file is not DICOM.
    MalformedObject
        It is, but truncated or broken; the message says where.
    """
    encoded = path.read_bytes()
    part10 = encoded[128:132] == b"DICM"
    try:
        ds = _parse(encoded, force=not part10, decode_all=True)
    except MalformedObject as exc:
        if not part10:
            raise NotDicom(f"no DICOM preamble, and the bytes do not parse as a data set: {exc}") from exc
        raise
    if not part10 and not ds.file_meta and not is_valid_uid(str(ds.get("SOPClassUID", "") or "")):
        raise NotDicom("no DICOM preamble or File Meta Information, and no SOP Class UID")
    return ds


def infer_transfer_syntax(ds: Dataset) -> UID | None:
    """Give ``ds`` the Transfer Syntax UID it was read with when its File Meta lacks one; that UID.

    pydicom reads such a data set by looking at its first bytes (implicit or explicit VR, byte
    order); the syntax is that encoding. Compressed pixel data cannot be told apart that way:
    MalformedObject then.
    """
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    ds.file_meta = meta
    if "TransferSyntaxUID" in meta:
        return None
    if PIXEL_DATA in ds and ds[PIXEL_DATA].is_undefined_length:
        raise MalformedObject("no Transfer Syntax UID, and the pixel data is encapsulated: its compression is unknown")
    syntax = _SYNTAX_OF_ENCODING.get(tuple(ds.original_encoding))  # type: ignore[arg-type]
    if syntax is None:
        raise MalformedObject(f"no Transfer Syntax UID, and the encoding read {ds.original_encoding} has none")
    meta.TransferSyntaxUID = syntax
    return syntax


def _parse(encoded: bytes, *, force: bool, decode_all: bool = False) -> Dataset:
    """Read, check lengths and pixel data; pydicom's truncation warnings become MalformedObject.

    ``decode_all`` converts every value too, so that a value pydicom cannot read fails here
    and not later; the door leaves raw values alone, which is faster.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(encoded), defer_size=None, force=force)
            try:
                _check_end(ds, len(encoded))
                _check_lengths(ds)  # values are decoded when read; the structure is checked here
                if decode_all:
                    for _ in ds.iterall():
                        pass
            finally:
                _raise_on_truncation(caught)
        _check_pixel_data(ds)
    except MalformedObject:
        raise
    except Exception as exc:  # pydicom raises many types for broken input; all mean the same here
        raise MalformedObject(f"cannot parse DICOM: {exc}") from exc
    return ds


def _raise_on_truncation(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        if TRUNCATION_WARNING in str(warning.message):
            raise MalformedObject(f"the object ends early: {warning.message}")


def read_meta(encoded: bytes) -> FileMetaDataset:
    """The File Meta Information alone, to decide on the transfer syntax before parsing the rest."""
    try:
        stream = io.BytesIO(encoded)
        stream.seek(128)
        if stream.read(4) != b"DICM":
            raise MalformedObject("not a DICOM Part 10 stream: no DICM prefix")
        return _read_file_meta_info(stream)  # the public reader wants a path; this one takes a stream
    except MalformedObject:
        raise
    except Exception as exc:
        raise MalformedObject(f"cannot parse the file meta information: {exc}") from exc


def _element_name(tag: int) -> str:
    name = dictionary_description(tag) if dictionary_has_tag(tag) else "element"
    return f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _check_end(ds: Dataset, size: int) -> None:
    """The last element ends where the bytes do.

    pydicom stops without a word when fewer than 8 bytes are left (a file cut inside an element
    header) or at a stray delimiter, so the rest of the object would silently be missing.
    """
    syntax = str((getattr(ds, "file_meta", None) or {}).get("TransferSyntaxUID", ""))
    if not ds._dict or syntax in DEFLATED:
        return  # deflated: positions are in the inflated stream
    tag = max(ds._dict)
    raw = ds._dict[tag]
    if not isinstance(raw, RawDataElement) or raw.value_tell is None:
        return
    delimiter = 8 if raw.length == UNDEFINED_LENGTH else 0
    end = raw.value_tell + (len(raw.value or b"") if delimiter else raw.length) + delimiter
    if end < size:
        raise MalformedObject(
            f"the object ends early: {size - end} byte(s) after {_element_name(tag)} are not a whole element"
        )


def _check_lengths(ds: Dataset) -> None:
    """Compare declared and arrived lengths on the raw elements; only sequences are decoded, to recurse."""
    for tag, raw in list(ds._dict.items()):
        if isinstance(raw, RawDataElement):
            if raw.length != UNDEFINED_LENGTH and raw.value is not None and len(raw.value) != raw.length:
                raise MalformedObject(
                    f"{_element_name(tag)} is truncated: {len(raw.value)} of {raw.length} bytes arrived"
                )
            if raw.VR != "SQ":
                continue
        element = ds[tag]
        if element.VR == "SQ":
            for item in element.value:
                _check_lengths(item)


def _check_pixel_data(ds: Dataset) -> None:
    """Pixel Data holds what Rows, Columns, samples, bits and frames promise.

    Native data may be longer (a padding byte to even length, or excess the standard lets a
    reader ignore), never shorter. Encapsulated data must hold whole fragment items, at least
    one per frame (PS3.5 A.4; video syntaxes put all frames in one stream).
    """
    if PIXEL_DATA not in ds:
        return
    data = ds.PixelData
    meta = getattr(ds, "file_meta", None) or {}
    syntax = meta.get("TransferSyntaxUID")
    encapsulated = UID(syntax).is_encapsulated if syntax else ds[PIXEL_DATA].is_undefined_length
    if encapsulated:
        _check_fragments(ds, data, str(syntax or ""))
        return
    missing = [k for k in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel") if k not in ds]
    if missing:
        raise MalformedObject(f"Pixel Data without {', '.join(missing)}: its length cannot be checked")
    try:
        expected = get_expected_length(ds, "bytes")
    except Exception as exc:  # values pydicom cannot use as numbers
        raise MalformedObject(f"Pixel Data whose size attributes are unusable: {exc}") from exc
    if not isinstance(expected, int):
        image = ", ".join(f"{k}={ds.get(k)!r}" for k in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "NumberOfFrames"))
        raise MalformedObject(f"Pixel Data whose size attributes are not numbers ({image})")
    if len(data) < expected:
        raise MalformedObject(f"Pixel Data (7FE0,0010) is truncated: {len(data)} of {expected} bytes arrived")


def _check_fragments(ds: Dataset, data: bytes, syntax: str) -> None:
    try:
        count, offsets = parse_fragments(data)
    except Exception as exc:
        raise MalformedObject(f"encapsulated pixel data is broken: {exc}") from exc
    for number, offset in enumerate(offsets):
        declared = struct.unpack("<L", data[offset + 4:offset + 8])[0]
        arrived = len(data) - offset - 8
        if declared > arrived:
            what = "Basic Offset Table" if number == 0 else f"fragment {number}"
            raise MalformedObject(f"encapsulated pixel data is cut off: {what} declares {declared} bytes, {arrived} arrived")
    fragments = count - 1  # the first item is the Basic Offset Table
    if fragments < 1:
        raise MalformedObject("encapsulated pixel data holds no fragments")
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError) as exc:
        raise MalformedObject(f"Number of Frames (0028,0008) is not a number: {ds.get('NumberOfFrames')!r}") from exc
    if fragments < frames and syntax not in MPEGTransferSyntaxes:
        raise MalformedObject(f"encapsulated pixel data is cut off: {fragments} fragment(s) for {frames} frames")


# --- UIDs (PS3.5 9.1) ----------------------------------------------------------------------------

UID_MAX_LENGTH = 64
_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
DATASET_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
META_UIDS = ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")


def is_valid_uid(value: str) -> bool:
    """Digits and dots, no empty component, no leading zero in a component, at most 64 characters."""
    return len(value) <= UID_MAX_LENGTH and _UID_PATTERN.fullmatch(value) is not None


def invalid_uid(ds: Dataset) -> str | None:
    """The keyword of the first identifying UID that is present but not a valid UID, else None.

    UIDs name files, URLs and database keys downstream, so anything but a PS3.5 UID is refused
    here rather than escaped everywhere (a SOP Instance UID of ``../../etc/passwd`` was acknowledged)."""
    for keyword in DATASET_UIDS:
        value = ds.get(keyword)
        if value is not None and not is_valid_uid(str(value)):
            return keyword
    meta = getattr(ds, "file_meta", None) or {}
    for keyword in META_UIDS:
        value = meta.get(keyword)
        if value is not None and not is_valid_uid(str(value)):
            return keyword
    return None


# --- the bytes against the transfer syntax -------------------------------------------------------

_VRS = frozenset(vr.value.encode() for vr in VR if vr.value.isalpha() and len(vr.value) == 2)
DEFLATED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}


def dataset_offset(encoded: bytes) -> int:
    """Where the data set begins in a Part 10 stream (after the preamble and file meta)."""
    stream = io.BytesIO(encoded)
    stream.seek(132)
    _read_file_meta_info(stream)
    return stream.tell()


def check_encoding(encoded: bytes, transfer_syntax: str) -> None:
    """Raise MalformedObject if the data set's bytes are not in the VR encoding its syntax names.

    pydicom silently switches to the encoding it finds, so an Explicit VR data set sent on an
    Implicit VR context would be stored under the wrong transfer syntax and break every reader
    that trusts the file meta. The first data element tells: Explicit VR puts two VR letters
    after the tag, Implicit VR a 4-byte length there."""
    if transfer_syntax in DEFLATED:
        return  # compressed bytes: the inflated stream is checked by parsing
    start = dataset_offset(encoded)
    head = encoded[start:start + 8]
    if len(head) < 8:
        return  # an empty data set: the identity checks refuse it
    looks_explicit = head[4:6] in _VRS
    implicit_length = int.from_bytes(head[4:8], "little")
    fits_implicit = implicit_length == UNDEFINED_LENGTH or implicit_length <= len(encoded) - start - 8
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        if looks_explicit and not fits_implicit:
            raise MalformedObject("Explicit VR bytes on an Implicit VR transfer syntax")
    elif not looks_explicit:
        raise MalformedObject("Implicit VR bytes on an Explicit VR transfer syntax")
