"""Replacement UIDs: derived from the original with the project key, never reversible without it.

A derived UID is ``2.25.<n>`` where ``n`` is the first 128 bits of
HMAC-SHA256(secret, original) with the UUID version (8, custom) and variant bits set, so it is a
valid UUID-derived UID (ISO/IEC 9834-8, PS3.5 B.2). The same original UID maps to the same new
UID in every instance of a project: references in KOS, SR, presentation states and
referenced-image sequences keep resolving.

Structural UIDs are never replaced (PS3.15 E.3.9 Note 4): SOP Classes, Transfer Syntaxes, coding
schemes and anything under the DICOM root ``1.2.840.10008`` (well-known UIDs).
"""

from __future__ import annotations

import uuid

from pydicom.datadict import tag_for_keyword

from .keys import ProjectKey

DICOM_ROOT = "1.2.840.10008."
IMPLEMENTATION_VERSION_NAME = "CASEBANK"
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:casebank:ingest.deid').int}"
"""Implementation Class UID written in the new File Meta Information (a fixed UUID-derived UID)."""

STRUCTURAL_UID_KEYWORDS = (
    "AffectedSOPClassUID", "RequestedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "RTVCommunicationSOPClassUID", "PrivateInformationCreatorUID",
    "ReferencedSOPClassUIDInFile", "ReferencedTransferSyntaxUIDInFile",
    "ReferencedRelatedGeneralSOPClassUIDInFile", "SOPClassUID", "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID", "SOPClassesInStudy", "CodingSchemeUID",
    "ContextGroupExtensionCreatorUID", "ContextUID", "MappingResourceUID",
    "StoredInstanceTransferSyntaxUID", "ReferencedSOPClassUID", "SOPClassesSupported",
    "AvailableTransferSyntaxUID", "CreatorVersionUID", "FlowTransferSyntaxUID",
    "MACCalculationTransferSyntaxUID", "EncryptedContentTransferSyntaxUID",
    "PertinentSOPClassesInStudy", "PertinentSOPClassesInSeries", "SegmentationTemplateUID",
)
"""UI attributes that name a class, syntax or scheme rather than an instance."""

STRUCTURAL_UID_TAGS = frozenset(tag for tag in map(tag_for_keyword, STRUCTURAL_UID_KEYWORDS) if tag is not None)


def is_structural(tag: int, value: str) -> bool:
    """Whether the UI value must be kept as it is: a class/syntax attribute or a well-known UID."""
    return tag in STRUCTURAL_UID_TAGS or value.startswith(DICOM_ROOT)


def derive_uid(key: ProjectKey, uid: str) -> str:
    """The project's replacement for ``uid``."""
    raw = bytearray(key.digest("uid", uid.strip())[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8: custom (RFC 9562)
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return f"2.25.{int.from_bytes(raw, 'big')}"
