"""Checks that a received object is whole and well-formed before anything of it is stored.

pydicom reads a truncated stream without complaint, so this compares each element's declared
length with what arrived, and the pixel data with what its header promises.
"""

from __future__ import annotations

import io
import warnings

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import _read_file_meta_info
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_fragments
from pydicom.pixels.utils import get_expected_length

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
