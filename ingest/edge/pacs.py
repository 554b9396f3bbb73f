"""The local PACS, as the export selector sees it: C-FIND to list a patient's studies, series and
images, and C-GET to fetch the chosen ones over the same kind of association. C-GET needs no
configuration on the PACS (C-MOVE would need the edge entered as a destination there)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from .outbox import Destination

# Storage classes a teaching file is made of, offered with compressed transfer syntaxes too, so
# the PACS sends what it holds unchanged (no transcoding, no second lossy generation).
COMMON_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX for processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # SC
    "1.2.840.10008.5.1.4.1.1.12.1",  # XA
    "1.2.840.10008.5.1.4.1.1.12.2",  # RF
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
)
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
)
MAX_CONTEXTS = 128


class PacsError(Exception):
    """The PACS could not be reached or refused a query; the message says which and why."""


@dataclass(frozen=True)
class StudyRow:
    study_uid: str
    patient_name: str
    patient_id: str
    birth_date: str
    date: str
    description: str
    accession: str
    modalities: str
    series_count: int
    instance_count: int


@dataclass(frozen=True)
class SeriesRow:
    series_uid: str
    number: str
    modality: str
    description: str
    instance_count: int


@dataclass(frozen=True)
class InstanceRow:
    sop_uid: str
    number: str
    sop_class_uid: str


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value or "")


def _int(value: object) -> int:
    """A count or number the PACS sent; 0 when absent or not a number."""
    try:
        return int(value or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


class Pacs:
    """One PACS reached as ``AE@HOST:PORT`` from the edge's own AE title."""

    def __init__(self, address: Destination, calling_ae: str = "CASEBANK-EDGE", timeout: float = 30) -> None:
        self.address = address
        self.calling_ae = calling_ae
        self.timeout = timeout

    def __str__(self) -> str:
        return f"{self.address.ae_title}@{self.address.host}:{self.address.port}"

    # --- C-FIND --------------------------------------------------------------------------------

    def find_studies(self, *, patient_id: str = "", patient_name: str = "", accession: str = "",
                     study_date: str = "", study_uid: str = "") -> list[StudyRow]:
        """Studies matching the keys given (Patient's Name takes ``*`` wildcards)."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        query.PatientID = patient_id
        query.PatientName = patient_name
        query.AccessionNumber = accession
        query.StudyDate = study_date
        for keyword in ("PatientBirthDate", "StudyDescription", "ModalitiesInStudy",
                        "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"):
            setattr(query, keyword, "")
        rows = [
            StudyRow(
                _text(ds, "StudyInstanceUID"), _text(ds, "PatientName"), _text(ds, "PatientID"),
                _text(ds, "PatientBirthDate"), _text(ds, "StudyDate"), _text(ds, "StudyDescription"),
                _text(ds, "AccessionNumber"), _text(ds, "ModalitiesInStudy"),
                _int(ds.get("NumberOfStudyRelatedSeries")), _int(ds.get("NumberOfStudyRelatedInstances")),
            )
            for ds in self._find(query)
        ]
        return sorted(rows, key=lambda r: (r.date, r.study_uid), reverse=True)

    def find_series(self, study_uid: str) -> list[SeriesRow]:
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        for keyword in ("SeriesInstanceUID", "SeriesNumber", "Modality", "SeriesDescription",
                        "NumberOfSeriesRelatedInstances"):
            setattr(query, keyword, "")
        rows = [
            SeriesRow(_text(ds, "SeriesInstanceUID"), _text(ds, "SeriesNumber"), _text(ds, "Modality"),
                      _text(ds, "SeriesDescription"), _int(ds.get("NumberOfSeriesRelatedInstances")))
            for ds in self._find(query)
        ]
        return sorted(rows, key=lambda r: (_int(r.number), r.series_uid))

    def find_instances(self, study_uid: str, series_uid: str) -> list[InstanceRow]:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        query.SOPInstanceUID = ""
        query.InstanceNumber = ""
        query.SOPClassUID = ""
        rows = [InstanceRow(_text(ds, "SOPInstanceUID"), _text(ds, "InstanceNumber"), _text(ds, "SOPClassUID"))
                for ds in self._find(query)]
        return sorted(rows, key=lambda r: (_int(r.number), r.sop_uid))

    def _find(self, query: Dataset) -> list[Dataset]:
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate(self.address.host, self.address.port, ae_title=self.address.ae_title)
        if not assoc.is_established:
            raise PacsError(f"the PACS {self} did not accept an association for C-FIND")
        found: list[Dataset] = []
        try:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                code = getattr(status, "Status", None)
                if code is None:
                    raise PacsError(f"the PACS {self} stopped answering a C-FIND")
                if code in (0xFF00, 0xFF01) and identifier is not None:
                    found.append(identifier)
                elif code not in (0x0000, 0xFF00, 0xFF01):
                    comment = status.get("ErrorComment", "")
                    raise PacsError(f"the PACS {self} refused a C-FIND: status 0x{code:04X} {comment}".strip())
        finally:
            assoc.release()
        return found

    # --- C-GET ---------------------------------------------------------------------------------

    def retrieve(self, study_uid: str, picks: dict[str, list[str]] | None = None) -> list[bytes]:
        """The chosen objects as the PACS holds them (encoded, with File Meta Information).

        ``picks`` maps a Series Instance UID to the SOP Instance UIDs chosen in it (an empty list
        for the whole series); no picks fetches the whole study. Raises PacsError when the PACS
        refuses or fails any sub-operation: a selection is fetched whole or not at all.
        """
        received: list[bytes] = []

        def on_store(event: evt.Event) -> int:
            received.append(event.encoded_dataset(include_meta=True))
            return 0x0000

        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.maximum_pdu_size = 0
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        roles = []
        for sop_class in COMMON_STORAGE:
            ae.add_requested_context(sop_class, list(TRANSFER_SYNTAXES))
            roles.append(build_role(sop_class, scp_role=True))
        for context in StoragePresentationContexts:
            if len(ae.requested_contexts) >= MAX_CONTEXTS:
                break
            if context.abstract_syntax not in COMMON_STORAGE:
                ae.add_requested_context(context.abstract_syntax, list(TRANSFER_SYNTAXES[:2]))
                roles.append(build_role(context.abstract_syntax, scp_role=True))
        assoc = ae.associate(self.address.host, self.address.port, ae_title=self.address.ae_title,
                             ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        if not assoc.is_established:
            raise PacsError(f"the PACS {self} did not accept an association for C-GET")
        try:
            for query in _get_queries(study_uid, picks or {}):
                for status, _identifier in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                    code = getattr(status, "Status", None)
                    if code is None:
                        raise PacsError(f"the PACS {self} stopped answering a C-GET")
                    failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                    if code not in (0x0000, 0xFF00) or failed:
                        comment = status.get("ErrorComment", "")
                        raise PacsError(
                            f"the PACS {self} could not send every object: status 0x{code:04X}, "
                            f"{failed} failed {comment}".strip()
                        )
        finally:
            assoc.release()
        if not received:
            raise PacsError(f"the PACS {self} holds nothing for study {study_uid}")
        return received


def _get_queries(study_uid: str, picks: dict[str, list[str]]) -> list[Dataset]:
    """One STUDY query, or one SERIES query for whole series plus one IMAGE query per series
    with single images chosen (UID list matching, PS3.4 C.2.2.2.2)."""
    def query(level: str, **keys: object) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        ds.StudyInstanceUID = study_uid
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
        return ds

    if not picks:
        return [query("STUDY")]
    whole = [series for series, sops in picks.items() if not sops]
    queries = [query("SERIES", SeriesInstanceUID=whole)] if whole else []
    queries += [query("IMAGE", SeriesInstanceUID=series, SOPInstanceUID=sops) for series, sops in picks.items() if sops]
    return queries
