"""The index document of a case."""

from __future__ import annotations

from archive.models import Case

from .index import CaseDocument


def document_for(case: Case) -> CaseDocument:
    series = [s for study in case.studies for s in study.series]
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
        codes=tuple(f"{c.system}|{c.code} {c.display}".strip() for c in case.codes),
        modalities=tuple(sorted({s.modality for s in series if s.modality})),
        body_parts=tuple(sorted({s.body_part for s in series if s.body_part})),
        study_descriptions=tuple(s.description for s in case.studies if s.description),
    )
