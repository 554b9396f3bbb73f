"""JSON shapes of the REST API (pydantic), and their construction from domain objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session

from archive.cases import CaseUpdate, Code
from archive.folders import Rights, folder_path
from archive.models import Case, Folder, Series


class RightsOut(BaseModel):
    view: bool
    edit: bool
    send: bool


class FolderRef(BaseModel):
    id: int
    path: str


class FolderOut(FolderRef):
    name: str
    kind: str
    parent_id: int | None
    storage_limit_bytes: int | None
    rights: RightsOut


# Bounds on what one request may store; larger texts answer 422 problem+json.
TITLE_MAX = 500
TEXT_MAX = 20_000
KEYWORD_MAX = 100
KEYWORDS_MAX = 50
CODES_MAX = 100
CUSTOM_FIELDS_MAX = 50
Keyword = Annotated[str, StringConstraints(max_length=KEYWORD_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]


class CodeIO(BaseModel):
    system: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)
    display: str = Field("", max_length=500)


class Author(BaseModel):
    name: str
    gmc: str


class SeriesOut(BaseModel):
    id: int
    study_instance_uid: str
    series_instance_uid: str
    series_number: int | None
    modality: str
    body_part: str
    description: str
    instance_count: int
    instance_ids: list[int]


class StudyOut(BaseModel):
    study_instance_uid: str
    study_date: str
    description: str
    procedure_code: str
    patient_age: str
    patient_sex: str
    patient_weight_kg: float | None
    series: list[SeriesOut]


class CaseSummary(BaseModel):
    id: int
    title: str
    status: str
    updated_at: datetime


class CaseOut(BaseModel):
    id: int
    title: str
    history: str
    findings: str
    differential: str
    diagnosis: str
    discussion: str
    keywords: list[str]
    codes: list[CodeIO]
    custom_fields: dict[str, Any]
    author: Author
    folder: FolderRef
    status: str  # complete | incomplete | needs_details | pending
    missing: list[str]  # SOP Instance UIDs the manifest named that never arrived
    notice: str
    teaching_extra: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    studies: list[StudyOut]
    series: list[SeriesOut]


class CaseUpdateIn(BaseModel):
    """PATCH body: fields left out are not changed."""

    title: str | None = Field(None, max_length=TITLE_MAX)
    history: Text | None = None
    findings: Text | None = None
    differential: Text | None = None
    diagnosis: Text | None = None
    discussion: Text | None = None
    keywords: list[Keyword] | None = Field(None, max_length=KEYWORDS_MAX)
    codes: list[CodeIO] | None = Field(None, max_length=CODES_MAX)
    custom_fields: dict[str, Any] | None = Field(None, max_length=CUSTOM_FIELDS_MAX)

    def to_domain(self) -> CaseUpdate:
        data = self.model_dump(exclude_unset=True)
        if self.codes is not None:
            data["codes"] = [Code(c.system, c.code, c.display) for c in self.codes]
        return CaseUpdate(**data)


class SearchHitOut(BaseModel):
    case_id: int
    title: str
    snippet: str = Field("", description="HTML-escaped text with the matches in <mark>")
    folder: FolderRef


class FacetValueOut(BaseModel):
    value: str
    count: int
    label: str = Field("", description="a readable name: folder path, ICD-10 / SNOMED CT display")


class SearchOut(BaseModel):
    total: int
    page: int = 1
    size: int = 20
    hits: list[SearchHitOut]
    facets: dict[str, list[FacetValueOut]] = Field(default_factory=dict)


class LoginIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str
    gmc: str
    is_admin: bool


class SessionOut(UserOut):
    csrf_token: str = Field(description="send as X-CSRF-Token on cookie-authenticated writes")


def folder_ref(session: Session, folder: Folder) -> FolderRef:
    return FolderRef(id=folder.id, path=folder_path(session, folder))


def folder_out(session: Session, folder: Folder, rights: Rights) -> FolderOut:
    return FolderOut(
        id=folder.id,
        path=folder_path(session, folder),
        name=folder.name,
        kind=folder.kind.value,
        parent_id=folder.parent_id,
        storage_limit_bytes=folder.storage_limit_bytes,
        rights=RightsOut(view=rights.view, edit=rights.edit, send=rights.send),
    )


def _series_out(study_uid: str, se: Series) -> SeriesOut:
    return SeriesOut(
        id=se.id,
        study_instance_uid=study_uid,
        series_instance_uid=se.series_instance_uid,
        series_number=se.series_number,
        modality=se.modality,
        body_part=se.body_part,
        description=se.description,
        instance_count=len(se.instances),
        instance_ids=[i.id for i in se.instances],
    )


def case_out(session: Session, case: Case) -> CaseOut:
    return CaseOut(
        id=case.id,
        title=case.title,
        history=case.history,
        findings=case.findings,
        differential=case.differential,
        diagnosis=case.diagnosis,
        discussion=case.discussion,
        keywords=list(case.keywords or []),
        codes=[CodeIO(system=c.system, code=c.code, display=c.display) for c in case.codes],
        custom_fields=dict(case.custom_fields or {}),
        author=Author(name=case.author_name, gmc=case.author_gmc),
        folder=folder_ref(session, case.folder),
        status=case.status.value,
        missing=list(case.missing or []),
        notice=case.notice,
        teaching_extra=dict(case.teaching_extra or {}),
        created_at=case.created_at,
        updated_at=case.updated_at,
        studies=[
            StudyOut(
                study_instance_uid=st.study_instance_uid,
                study_date=st.study_date,
                description=st.description,
                procedure_code=st.procedure_code,
                patient_age=st.patient_age,
                patient_sex=st.patient_sex,
                patient_weight_kg=st.patient_weight_kg,
                series=[_series_out(st.study_instance_uid, se) for se in st.series],
            )
            for st in case.studies
        ],
        series=[_series_out(st.study_instance_uid, se) for st in case.studies for se in st.series],
    )
