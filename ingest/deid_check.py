"""The archive's second look: is a received object really de-identified?

The edge de-identifies; the archive does not trust that blindly. An object must declare
Patient Identity Removed = YES with a De-identification Method Code Sequence, and a scan of its
header (nested sequences included) must find no value in attributes the PS3.15 Basic Profile
always removes or empties, and no NHS-number-shaped identifier in any text.
"""

from __future__ import annotations

import re

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

# Attributes the Basic Profile removes (X) or empties (Z) whatever the options: a value here means
# the object was not de-identified, or not fully.
MUST_BE_EMPTY = (
    "PatientBirthDate", "PatientBirthTime", "PatientAddress", "PatientTelephoneNumbers",
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "MedicalRecordLocator", "MilitaryRank", "EthnicGroup",
    "PatientReligiousPreference", "ResponsiblePerson", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "InstitutionAddress", "AccessionNumber",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "RequestingPhysician", "InsurancePlanIdentification", "PatientInsurancePlanCodeSequence",
)
NHS_NUMBER = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")
MUST_BE_EMPTY_SET = frozenset(MUST_BE_EMPTY)
PIXEL_DATA = 0x7FE00010
TEXT_VRS = {"LO", "LT", "SH", "ST", "UT", "PN", "UC", "AE", "CS"}


def reasons_to_quarantine(ds: Dataset) -> list[str]:
    """Why `ds` may still identify a patient; empty when it passes.

    One walk over the header that reads raw bytes where it can: decoding every value of a
    large header costs more than the rest of receiving it.
    """
    reasons: list[str] = []
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        reasons.append("Patient Identity Removed (0012,0062) is not YES")
    if not ds.get("DeidentificationMethodCodeSequence"):
        reasons.append("no De-identification Method Code Sequence (0012,0064)")
    nhs_number_seen = False
    for where, tag, vr, raw in _walk(ds):
        keyword = keyword_for_tag(tag)
        if keyword in MUST_BE_EMPTY_SET and raw.strip(b" \x00"):
            reasons.append(f"{keyword} has a value{where}")
        elif not nhs_number_seen and (vr in TEXT_VRS or vr in (None, "UN")) and raw and _looks_like_nhs_number(
            raw.decode("latin-1")
        ):  # private tags sent in Implicit VR have no VR to go by
            reasons.append(f"an NHS number appears in {keyword or tag}{where}")
            nhs_number_seen = True
    return reasons


def _walk(ds: Dataset, where: str = ""):  # type: ignore[no-untyped-def]
    """(where, tag, VR, value bytes) of every element; sequences are entered, pixel data skipped."""
    for elem in ds.elements():
        tag = int(elem.tag)
        if tag == PIXEL_DATA:
            continue
        vr = elem.VR or dictionary_VR_or_none(tag)
        if vr == "SQ":
            sequence = ds[elem.tag].value
            keyword = keyword_for_tag(tag) or f"{tag:08X}"
            if keyword in MUST_BE_EMPTY_SET and len(sequence):
                yield where, tag, vr, b"items"
            for index, item in enumerate(sequence):
                yield from _walk(item, f"{where} in {keyword}[{index}]")
            continue
        value = elem.value
        if isinstance(elem, RawDataElement):
            raw = value or b""
        elif value is None:
            raw = b""
        else:
            raw = str(value).encode("utf-8", "replace")
        yield where, tag, vr, raw


def dictionary_VR_or_none(tag: int) -> str | None:  # noqa: N802 (VR is the standard's word)
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _looks_like_nhs_number(text: str) -> bool:
    """Ten digits whose modulus-11 check digit is right (NHS Digital's rule)."""
    for match in NHS_NUMBER.finditer(text):
        digits = [int(c) for c in "".join(match.groups())]
        total = sum(d * w for d, w in zip(digits[:9], range(10, 1, -1)))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check != 10 and check == digits[9]:
            return True
    return False
