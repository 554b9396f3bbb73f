"""Checks that a received object is whole and well-formed before anything of it is stored.

pydicom reads a truncated stream without complaint, so this compares each element's declared
length with what arrived, and the pixel data with what its header promises.
"""

from __future__ import annotations

import io
import re
import warnings

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.filereader import _read_file_meta_info
from pydicom.pixels.utils import get_expected_length
from pydicom.valuerep import VR

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"

UNDEFINED_LENGTH = 0xFFFFFFFF


class MalformedObject(ValueError):
    """The bytes are not a complete DICOM object; the message says what is wrong."""


def read_complete(encoded: bytes) -> Dataset:
    """Parse a Part 10 byte stream fully, raising MalformedObject if any part is missing or broken."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(encoded), defer_size=None)
        for warning in caught:
            if "End of file" in str(warning.message):
                raise MalformedObject(f"the object ends early: {warning.message}")
        _check_lengths(ds)  # values are decoded when read; the structure is checked here
    except MalformedObject:
        raise
    except Exception as exc:  # pydicom raises many types for broken input; all mean the same here
        raise MalformedObject(f"cannot parse DICOM: {exc}") from exc
    _check_pixel_data(ds)
    return ds


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


def _check_lengths(ds: Dataset) -> None:
    """Compare declared and arrived lengths on the raw elements; only sequences are decoded, to recurse."""
    for tag, raw in list(ds._dict.items()):
        if isinstance(raw, RawDataElement):
            if raw.length != UNDEFINED_LENGTH and raw.value is not None and len(raw.value) != raw.length:
                raise MalformedObject(
                    f"element {tag} is truncated: {len(raw.value)} of {raw.length} bytes arrived"
                )
            if raw.VR != "SQ":
                continue
        element = ds[tag]
        if element.VR == "SQ":
            for item in element.value:
                _check_lengths(item)


def _check_pixel_data(ds: Dataset) -> None:
    if "PixelData" not in ds:
        return
    data = ds.PixelData
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        try:
            fragments = list(generate_fragments(data))
        except Exception as exc:
            raise MalformedObject(f"encapsulated pixel data is broken: {exc}") from exc
        if not fragments:
            raise MalformedObject("encapsulated pixel data holds no fragments")
        return
    expected = get_expected_length(ds, "bytes")
    if len(data) < expected:
        raise MalformedObject(f"pixel data is truncated: {len(data)} of {expected} bytes arrived")


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
