"""DICOMweb STOW-RS (PS3.18 10.5): multipart/related in, a DICOM JSON store report out.

The body is never held whole: `PartSpooler` splits it as it streams in and writes each part to a
temp file in the blob store's temp folder (swept at start if a process dies mid-request). The
request is refused once it passes CASEBANK_MAX_STOW_BYTES; a part larger than
CASEBANK_MAX_OBJECT_BYTES stops being written and is reported as a Failed SOP item.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset

from . import status
from .intake import Outcome
from .validation import MalformedObject, read_meta

PART_HEADER_END = b"\r\n\r\n"
MAX_PART_HEADER_BYTES = 16 << 10  # part headers are a few lines; more is not a STOW request
HEAD_BYTES = 64 << 10  # kept in memory per part: enough for the file meta of a refused part
UNKNOWN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"


class BadStowRequest(ValueError):
    """The request body is not a multipart/related message of DICOM parts."""


class StowTooLarge(ValueError):
    """The request body passed CASEBANK_MAX_STOW_BYTES."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds the limit of {limit} bytes (CASEBANK_MAX_STOW_BYTES)")
        self.limit = limit


def boundary_of(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "multipart/related":
        raise BadStowRequest(f"Content-Type must be multipart/related, not {media_type or 'missing'}")
    type_param = re.search(r'type="?([^";]+)"?', content_type, re.IGNORECASE)
    if type_param and type_param.group(1).strip().lower() != "application/dicom":
        raise BadStowRequest(f"only type=application/dicom parts are accepted, not {type_param.group(1)}")
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if not match:
        raise BadStowRequest("the multipart/related Content-Type has no boundary")
    return match.group(1).strip()


@dataclass
class SpooledPart:
    """One part's body, on disk unless it was too large (then only its size and first bytes)."""

    path: Path | None
    size: int = 0
    head: bytearray = field(default_factory=bytearray)

    @property
    def too_large(self) -> bool:
        return self.path is None

    def read(self) -> bytes:
        assert self.path is not None
        return self.path.read_bytes()

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class PartSpooler:
    """A streaming RFC 2046 splitter: `feed` chunks as they arrive, then `finish`.

    The stream is read as if it began with CRLF, so the first delimiter needs no special case;
    a preamble before it and an epilogue after the close delimiter are ignored."""

    def __init__(self, boundary: str, tmp_dir: Path, *, max_part_bytes: int, max_total_bytes: int,
                 prefix: str = "stow-") -> None:
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.tmp_dir, self.prefix = tmp_dir, prefix
        self.max_part_bytes, self.max_total_bytes = max_part_bytes, max_total_bytes
        self.parts: list[SpooledPart] = []
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"  # -> "delimiter-line" -> "headers" -> "body" -> ... -> "done"
        self._total = 0
        self._file: BinaryIO | None = None

    def feed(self, chunk: bytes) -> None:
        self._total += len(chunk)
        if self._total > self.max_total_bytes:
            raise StowTooLarge(self.max_total_bytes)
        if self._state != "done":
            self._buffer += chunk
            while self._step():
                pass

    def finish(self) -> list[SpooledPart]:
        if self._state != "done":
            raise BadStowRequest("the body ends before the close delimiter of its multipart message"
                                 if self.parts else "the body holds no multipart parts for its boundary")
        if not self.parts:
            raise BadStowRequest("the body holds no parts")
        return self.parts

    def discard(self) -> None:
        """Remove every temp file, whatever state the parse stopped in."""
        self._close_file()
        for part in self.parts:
            part.discard()

    # --- the state machine: each step consumes what it can and says whether to go on ---

    def _step(self) -> bool:
        return {"preamble": self._preamble, "delimiter-line": self._delimiter_line,
                "headers": self._headers, "body": self._body}.get(self._state, lambda: False)()

    def _preamble(self) -> bool:
        at = self._buffer.find(self.delimiter)
        if at < 0:
            del self._buffer[:max(0, len(self._buffer) - len(self.delimiter) + 1)]
            return False
        del self._buffer[:at + len(self.delimiter)]
        self._state = "delimiter-line"
        return True

    def _delimiter_line(self) -> bool:
        """After a delimiter: "--" closes the message, else padding up to CRLF starts a part."""
        if len(self._buffer) < 2:
            return False
        if self._buffer[:2] == b"--":
            self._state = "done"
            self._buffer.clear()
            return False
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_PART_HEADER_BYTES:
                raise BadStowRequest("a multipart delimiter line does not end")
            return False
        del self._buffer[:end + 2]
        self._state = "headers"
        return True

    def _headers(self) -> bool:
        if self._buffer[:2] == b"\r\n":  # a part without headers
            header_text, consumed = "", 2
        else:
            end = self._buffer.find(PART_HEADER_END)
            if end < 0:
                if len(self._buffer) > MAX_PART_HEADER_BYTES:
                    raise BadStowRequest("a part has no header section")
                return False
            header_text, consumed = self._buffer[:end].decode("latin-1").lower(), end + len(PART_HEADER_END)
        if "content-type" in header_text and "application/dicom" not in header_text:
            raise BadStowRequest("a part is not application/dicom")
        del self._buffer[:consumed]
        self._open_part()
        self._state = "body"
        return True

    def _body(self) -> bool:
        at = self._buffer.find(self.delimiter)
        if at < 0:  # all but a possible partial delimiter at the end belongs to the part
            keep = len(self.delimiter) - 1
            if len(self._buffer) > keep:
                self._write(self._buffer[:len(self._buffer) - keep])
                del self._buffer[:len(self._buffer) - keep]
            return False
        self._write(self._buffer[:at])
        del self._buffer[:at + len(self.delimiter)]
        self._close_file()
        self._state = "delimiter-line"
        return True

    def _open_part(self) -> None:
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix=self.prefix)
        self._file = os.fdopen(fd, "wb")
        self.parts.append(SpooledPart(Path(name)))

    def _write(self, data: bytes | bytearray) -> None:
        part = self.parts[-1]
        part.size += len(data)
        if len(part.head) < HEAD_BYTES:
            part.head += data[:HEAD_BYTES - len(part.head)]
        if part.path is None:
            return  # already too large: count, do not keep
        if part.size > self.max_part_bytes:
            self._close_file()
            part.discard()
            part.path = None
            return
        assert self._file is not None
        self._file.write(data)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def too_large_outcome(part: SpooledPart, limit: int) -> Outcome:
    """A Failed SOP item for a part that was not kept, named from its file meta when readable."""
    sop_class = sop_instance = ""
    try:
        meta = read_meta(bytes(part.head))
        sop_class = str(meta.get("MediaStorageSOPClassUID", ""))
        sop_instance = str(meta.get("MediaStorageSOPInstanceUID", ""))
    except MalformedObject:
        pass
    comment = f"object of {part.size} bytes exceeds the limit of {limit} bytes (CASEBANK_MAX_OBJECT_BYTES)"
    return Outcome(status.REFUSED_OUT_OF_RESOURCES, comment, sop_class, sop_instance)


def store_report(outcomes: Sequence[Outcome], retrieve_base: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """The HTTP status and the DICOM JSON body: one Referenced SOP item per stored instance."""
    report = Dataset()
    stored, failed = [], []
    for outcome in outcomes:
        item = Dataset()
        item.ReferencedSOPClassUID = outcome.sop_class_uid or UNKNOWN_SOP_CLASS
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
