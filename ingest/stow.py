"""DICOMweb STOW-RS (PS3.18 10.5): multipart/related in, a DICOM JSON store report out."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydicom.dataset import Dataset

from .intake import Outcome

PART_HEADER_END = b"\r\n\r\n"


class BadStowRequest(ValueError):
    """The request body is not a multipart/related message of DICOM parts."""


def boundary_of(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "multipart/related":
        raise BadStowRequest(f"Content-Type must be multipart/related, not {media_type or 'missing'}")
    type_param = re.search(r'type="?([^";]+)"?', content_type, re.I)
    if type_param and type_param.group(1).strip().lower() != "application/dicom":
        raise BadStowRequest(f"only type=application/dicom parts are accepted, not {type_param.group(1)}")
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.I)
    if not match:
        raise BadStowRequest("the multipart/related Content-Type has no boundary")
    return match.group(1).strip()


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The bodies of the parts, in order (RFC 2046 framing)."""
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise BadStowRequest("the body holds no multipart parts for its boundary")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # the close delimiter
            break
        header_end = chunk.find(PART_HEADER_END)
        if header_end < 0:
            raise BadStowRequest("a part has no header section")
        headers = chunk[:header_end].decode("latin-1").lower()
        if "content-type" in headers and "application/dicom" not in headers:
            raise BadStowRequest("a part is not application/dicom")
        content = chunk[header_end + len(PART_HEADER_END):]
        parts.append(content[:-2] if content.endswith(b"\r\n") else content)
    if not parts:
        raise BadStowRequest("the body holds no parts")
    return parts


def store_report(outcomes: Sequence[Outcome], retrieve_base: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """The HTTP status and the DICOM JSON body: one Referenced SOP item per stored instance."""
    report = Dataset()
    stored, failed = [], []
    for outcome in outcomes:
        item = Dataset()
        item.ReferencedSOPClassUID = outcome.sop_class_uid or "1.2.840.10008.5.1.4.1.1.7"
        item.ReferencedSOPInstanceUID = outcome.sop_instance_uid or "0"
        if outcome.ok:
            item.RetrieveURL = f"{retrieve_base}/instances/{outcome.sop_instance_uid}"
            stored.append(item)
        else:
            item.FailureReason = outcome.status
            failed.append(item)
    if stored:
        report.ReferencedSOPSequence = stored
    if failed:
        report.FailedSOPSequence = failed
    http_status = 200 if not failed else (409 if not stored else 202)
    return http_status, report.to_json_dict()
