"""The archive's second look: is a received object really de-identified?

The edge de-identifies; the archive does not trust that blindly. An object must declare
Patient Identity Removed = YES with a De-identification Method Code Sequence, and a scan of its
header (nested sequences included) must find no value in attributes the PS3.15 Basic Profile
always removes or empties, and no NHS-number-shaped identifier in any text.
"""

from __future__ import annotations

import re

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
    """Why `ds` may still identify a patient; empty when it passes. One walk over the header."""
    reasons: list[str] = []
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        reasons.append("Patient Identity Removed (0012,0062) is not YES")
    if not ds.get("DeidentificationMethodCodeSequence"):
        reasons.append("no De-identification Method Code Sequence (0012,0064)")
    nhs_number_seen = False
    for where, elem in _walk(ds):
        if elem.keyword in MUST_BE_EMPTY_SET and not _is_empty(elem):
            reasons.append(f"{elem.keyword} has a value{where}")
        elif not nhs_number_seen and elem.VR in TEXT_VRS and elem.value not in (None, ""):
            if _looks_like_nhs_number(str(elem.value)):
                reasons.append(f"an NHS number appears in {elem.keyword or elem.tag}{where}")
                nhs_number_seen = True
    return reasons


def _walk(ds: Dataset, where: str = ""):  # type: ignore[no-untyped-def]
    for elem in ds:
        if elem.tag == PIXEL_DATA:
            continue
        yield where, elem
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                yield from _walk(item, f"{where} in {elem.keyword or elem.tag}[{index}]")


def _is_empty(elem) -> bool:  # type: ignore[no-untyped-def]
    value = elem.value
    if elem.VR == "SQ":
        return len(value) == 0
    return value is None or str(value).strip() == ""


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
