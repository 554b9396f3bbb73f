"""The index document of a case: its texts, codes with their ancestors and synonyms, DICOM
fields, custom catalogue fields, folder, dates and likes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archive.answers import expand, words
from archive.models import Case
from terminology.systems import canonical_system

from .index import CaseDocument

if TYPE_CHECKING:
    from terminology import Terminology

NON_IMAGE_MODALITIES = frozenset({"KO", "SR", "PR", "DOC", "REG", "SEG", "RWV", "AU", "ECG"})
"""Manifests, reports and other non-image series: not what "modality" means to a radiologist."""
TRIAL_FACETS = frozenset({"site_id", "subject_id", "time_point_id"})
"""Clinical Trial attributes offered as catalogue values in a project's search (trial_site_id=A)."""
AGE = re.compile(r"^(\d{1,3})([DWMY])$")


def age_band(dicom_age: str) -> str:
    """A DICOM Age String as a decade band: ``045Y`` -> ``40-49``, under a year -> ``0-9``, ``90+``."""
    match = AGE.match(dicom_age.strip().upper())
    if not match:
        return ""
    years = int(match.group(1)) if match.group(2) == "Y" else 0
    if years >= 90:
        return "90+"
    low = years // 10 * 10
    return f"{low}-{low + 9}"


ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def custom_number(value: object) -> float | None:
    """A custom field's value for range filters: numbers as they are, ISO dates as YYYYMMDD."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = ISO_DATE.match(value) if isinstance(value, str) else None
    return float("".join(match.groups())) if match else None


def _number_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def radiology_synonyms(names: list[str]) -> list[str]:
    """The names the reviewed synonyms file (terminology/data/radiology_synonyms.csv) groups with one
    of `names` (a whole-name match on the normalised words), except `names` themselves: "Liver cell
    carcinoma" brings hepatocellular carcinoma, hepatoma, HCC... so everyday words find the case
    without a licensed SNOMED CT release."""
    given = {words(name) for name in names if name}
    return [name for name in expand(n for n in names if n) if words(name) not in given]


def document_for(case: Case, *, likes: int = 0, terminology: Terminology | None = None) -> CaseDocument:
    series = [s for study in case.studies for s in study.series]
    codes: set[str] = set()
    code_texts: list[str] = []
    by_system: dict[str, set[str]] = {"ICD10": set(), "SNOMED": set(), "ACR": set()}
    chapters: set[str] = set()
    blocks: set[str] = set()
    for entry in case.codes:
        system = canonical_system(entry.system)
        code = entry.code.strip()
        codes.add(f"{system}|{code}")
        by_system.setdefault(system, set()).add(code)
        if entry.display:
            code_texts.append(entry.display)
        if terminology is None:
            continue
        codes.update(f"{system}|{ancestor}" for ancestor in terminology.ancestors(system, code))
        concept = terminology.lookup(system, code)
        if concept is not None:
            code_texts += [concept.display, *concept.synonyms]
        if system == "ICD10":
            chapters.update(filter(None, [terminology.icd10_chapter(code)]))
            blocks.update(filter(None, [terminology.icd10_block(code)]))
    code_texts += radiology_synonyms([*code_texts, case.diagnosis])
    ages = [age_band(study.patient_age) for study in case.studies if study.patient_age]
    sexes = [study.patient_sex.strip().upper()[:1] for study in case.studies if study.patient_sex.strip()]
    custom = [f"{name}={_number_text(value)}" for name, value in sorted((case.custom_fields or {}).items())
              if value not in (None, "", [])]
    custom += sorted({f"trial_{name}={value}" for study in case.studies for name, value in (study.trial or {}).items()
                      if name in TRIAL_FACETS and value})
    numbers = {name: number for name, value in (case.custom_fields or {}).items()
               if (number := custom_number(value)) is not None}
    return CaseDocument(
        case_id=case.id,
        folder_id=case.folder_id,
        title=case.title,
        history=case.history,
        findings=case.findings,
        diagnosis=case.diagnosis,
        differential=case.differential,
        discussion=case.discussion,
        keywords=tuple(case.keywords or ()),
        codes=tuple(sorted(codes)),
        code_texts=tuple(dict.fromkeys(t for t in code_texts if t)),
        icd10=tuple(sorted(by_system["ICD10"])),
        icd10_chapters=tuple(sorted(chapters)),
        icd10_blocks=tuple(sorted(blocks)),
        snomed=tuple(sorted(by_system["SNOMED"])),
        acr=tuple(sorted(by_system["ACR"])),
        modalities=tuple(sorted({s.modality.upper() for s in series if s.modality} - NON_IMAGE_MODALITIES)),
        body_parts=tuple(sorted({s.body_part.upper() for s in series if s.body_part})),
        procedure_codes=tuple(sorted({st.procedure_code for st in case.studies if st.procedure_code})),
        study_descriptions=tuple(s.description for s in case.studies if s.description),
        sex=sexes[0] if sexes else "",
        age_band=ages[0] if ages else "",
        custom=tuple(custom),
        custom_numbers=numbers,
        author=case.author_gmc or case.author_name,
        created=case.created_at,
        updated=case.updated_at,
        likes=likes,
    )
