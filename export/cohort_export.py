"""A frozen cohort version as one zip: a DICOMDIR file-set, a CSV catalogue, a FHIR bundle, a README.

The images are exactly the instances the version lists, read from the blob store by content hash
(and checked against it), never what a case holds now. Everything textual comes from pseudonymous
fields only: the case's author (name, GMC number, a claimed author) and the ATFI author's
affiliation and contact never leave.

Reading the database (:func:`export_source`) is kept apart from writing the zip (:func:`write_export`)
so a long export holds no transaction open; :func:`write_cohort_export` does both and audits it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet, RecordNode
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit
from archive.blobs import CHUNK, BlobStore
from archive import users
from archive.cohorts import get_version, project_of
from archive.errors import Conflict
from archive.models import Case, Cohort, CohortVersion, Series, Study, User
from terminology.systems import ACR, ICD10, SNOMED, canonical_system

from . import fhir

Progress = Callable[[int, int], None]
"""Called with (steps done, steps in all): one step per instance staged and one per file zipped."""

ATFI_FIELDS = ("category", "level", "organ_system", "pathology", "anatomy", "modality", "diagnosis_confirmed")
"""ATFI fields of ``Case.teaching_extra`` that are exported; the rest (claimed_author, the author's
affiliation and contact, anything unknown) are left out, as they may name the author."""

CSV_COLUMNS = (
    "case_id", "title", "subject_id", "protocol_id", "site_id", "time_point_id", "time_point_description",
    "study_instance_uids", "study_dates", "modalities", "body_parts", "series", "instances",
    "diagnosis", "icd10_codes", "snomed_codes", "acr_codes", "other_codes",
)
MEMBERS = ("DICOMDIR", "cohort.csv", "fhir-bundle.json", "README.txt")


class ExportFailed(Conflict):
    """A frozen instance could not be exported (its blob is missing or is not what was frozen):
    answered as a problem naming the instance, never half a zip."""


@dataclass(frozen=True)
class CaseFacts:
    """One case of the version: its frozen entry and the pseudonymous fields of the case now."""

    entry: dict[str, Any]
    pseudonym: str
    pseudonym_from_trial: bool
    diagnosis: str = ""
    codes: tuple[tuple[str, str, str], ...] = ()
    custom_fields: dict[str, Any] = field(default_factory=dict)
    teaching: dict[str, str] = field(default_factory=dict)
    body_parts: dict[str, str] = field(default_factory=dict)  # series UID -> Body Part Examined

    @property
    def case_id(self) -> int:
        return int(self.entry["case_id"])


@dataclass(frozen=True)
class ExportSource:
    """Everything an export needs from the database, read in one short transaction."""

    cohort_id: int
    cohort_name: str
    number: int
    frozen_at: datetime
    frozen_by: str
    note: str
    query: dict[str, Any]
    project: str
    cases: tuple[CaseFacts, ...]

    def instances(self) -> Iterator[tuple[CaseFacts, dict[str, Any], dict[str, Any], int, list[Any]]]:
        """(case, study, series, position in the series from 1, instance) for every listed instance."""
        for case in self.cases:
            for study in case.entry["studies"]:
                for series in study["series"]:
                    for position, instance in enumerate(series["instances"], start=1):
                        yield case, study, series, position, instance


@dataclass(frozen=True)
class ExportCounts:
    cases: int
    subjects: int
    studies: int
    series: int
    instances: int
    bytes: int


def export_source(session: Session, version: CohortVersion) -> ExportSource:
    """Read what the export of `version` needs. Rights are the caller's (``cohorts.get_version``)."""
    cohort = session.get_one(Cohort, version.cohort_id)
    project = project_of(session, cohort)
    frozen_by = session.get(User, version.frozen_by_id)
    return ExportSource(
        cohort_id=cohort.id, cohort_name=cohort.name, number=version.number, frozen_at=version.frozen_at,
        frozen_by=frozen_by.username if frozen_by else "", note=version.note or "", query=dict(version.query or {}),
        project=f"{project.name} ({project.protocol_id})" if project else "",
        cases=tuple(_case_facts(session, entry) for entry in version.entries),
    )


def _case_facts(session: Session, entry: dict[str, Any]) -> CaseFacts:
    subjects = [s for s in _trial_values(entry, "subject_id") if s]
    pseudonym, from_trial = (subjects[0], True) if subjects else (f"case-{entry['case_id']}", False)
    case = session.get(Case, entry["case_id"])
    if case is None:  # deleted since freezing: the frozen entry (and its blobs) still stand
        return CaseFacts(entry, pseudonym, from_trial)
    extra = case.teaching_extra or {}
    body_parts = dict(session.execute(
        select(Series.series_instance_uid, Series.body_part).join(Study, Study.id == Series.study_id)
        .where(Study.case_id == case.id, Series.body_part != "")).tuples().all())
    return CaseFacts(
        entry, pseudonym, from_trial,
        diagnosis=case.diagnosis or "",
        codes=tuple((c.system, c.code, c.display or "") for c in case.codes),
        custom_fields=dict(case.custom_fields or {}),
        teaching={k: str(extra[k]) for k in ATFI_FIELDS if extra.get(k) not in (None, "")},
        body_parts=body_parts,
    )


def _trial_values(entry: dict[str, Any], key: str) -> list[str]:
    """The distinct values of one Clinical Trial attribute over a case's studies, in order."""
    values: list[str] = []
    for study in entry["studies"]:
        value = str((study.get("trial") or {}).get(key) or "").strip()
        if value not in values:
            values.append(value)
    return values


def write_cohort_export(
    session: Session, blobs: BlobStore, actor: User, version: CohortVersion,
    out: BinaryIO | Path, progress: Progress | None = None,
) -> ExportCounts:
    """Write the export of `version` to `out` and audit it in `session` (the caller commits)."""
    source = export_source(session, version)
    counts = write_export(blobs, source, out, progress)
    record_export(session, actor, source, counts)
    return counts


def record_export(session: Session, actor: User, source: ExportSource, counts: ExportCounts) -> None:
    audit.record(session, actor, "cohort.exported", "cohort", source.cohort_id, version=source.number,
                 cases=counts.cases, studies=counts.studies, series=counts.series, instances=counts.instances,
                 bytes=counts.bytes)


def write_export(blobs: BlobStore, source: ExportSource, out: BinaryIO | Path, progress: Progress | None = None) -> ExportCounts:
    """The zip of `source` into `out` (a path or a writable binary file); needs no database."""
    listed = sum(1 for _ in source.instances())
    unique = len({instance[0] for *_, instance in source.instances()})
    done, total = 0, listed + unique

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    with tempfile.TemporaryDirectory(prefix="casebank-export-") as tmp:
        root = Path(tmp) / "fileset"
        size = write_file_set(blobs, source, root, step)
        with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                name = path.relative_to(root).as_posix()
                zf.write(path, name, compress_type=zipfile.ZIP_STORED)  # images: mostly compressed already
                if name != "DICOMDIR":
                    step()
            zf.writestr("cohort.csv", catalogue_csv(source), compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr("fhir-bundle.json", fhir.to_json(cohort_bundle(source)), compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr("README.txt", readme(source), compress_type=zipfile.ZIP_DEFLATED)
    return ExportCounts(
        cases=len(source.cases), subjects=len({c.pseudonym for c in source.cases}),
        studies=sum(len(c.entry["studies"]) for c in source.cases),
        series=sum(len(st["series"]) for c in source.cases for st in c.entry["studies"]),
        instances=listed, bytes=size,
    )


# -- the DICOMDIR file-set -------------------------------------------------------------------------


def write_file_set(blobs: BlobStore, source: ExportSource, root: Path, step: Callable[[], None]) -> int:
    """Every listed instance in a pydicom FileSet written at `root`; returns the bytes read.

    An instance listed twice (two cases holding the same SOP Instance UID) is written once."""
    fs = FileSet()
    fs.ID = f"COHORT{source.cohort_id}V{source.number}"[:16]
    size = 0
    study_numbers: dict[str, int] = {}
    try:
        for case, study, series, position, instance in source.instances():
            number = study_numbers.setdefault(study["study_instance_uid"], len(study_numbers) + 1)
            ds = read_frozen(blobs, instance)
            size += int(instance[3])
            add_to_file_set(fs, ds, _invented(case, study, series, number, position))
            step()
        fs.write(root)
    finally:
        fs.clear()  # the FileSet keeps a staged copy of every instance in its own temp dir until cleared
    return size


def read_frozen(blobs: BlobStore, instance: list[Any]) -> Dataset:
    """The instance as frozen: its blob, checked against the recorded hash and SOP Instance UID."""
    sop_uid, _sop_class, sha256 = instance[0], instance[1], instance[2]
    try:
        with blobs.open(sha256) as f:
            hasher = hashlib.sha256()
            while chunk := f.read(CHUNK):
                hasher.update(chunk)
            if hasher.hexdigest() != sha256:
                raise ExportFailed(f"instance {sop_uid}: its blob does not match the frozen hash")
            f.seek(0)
            ds = dcmread(f)
    except FileNotFoundError:
        raise ExportFailed(f"instance {sop_uid}: its blob {sha256} is missing from the store") from None
    if str(ds.get("SOPInstanceUID", "")) != sop_uid:
        raise ExportFailed(f"instance {sop_uid}: its blob holds another instance")
    return ds


def _invented(case: CaseFacts, study: dict[str, Any], series: dict[str, Any], study_number: int,
              position: int) -> dict[str, object]:
    """Directory record values for Type 1 attributes an instance may lack after de-identification
    (Study ID emptied, dates removed...). They go into the DICOMDIR's records only, never the files."""
    date = study.get("study_date") or "19000101"
    return {
        "PatientID": case.pseudonym, "StudyID": str(study_number), "StudyDate": date, "StudyTime": "000000",
        "Modality": series.get("modality") or "OT", "SeriesNumber": series.get("series_number") or 1,
        "InstanceNumber": position, "ContentDate": date, "ContentTime": "000000",
    }


def add_to_file_set(fs: FileSet, ds: Dataset, invented: dict[str, object]) -> None:
    """Add `ds` unchanged, with directory records made by pydicom's own record creators from a
    view of `ds` in which missing or empty Type 1 record attributes are filled from `invented`."""
    view = Dataset()
    for element in ds:
        view.add(element)  # the elements are shared; filled ones are replaced below, never changed
    view.file_meta = ds.file_meta
    for keyword, value in invented.items():
        if keyword not in view or view[keyword].VM == 0:
            if keyword in view:
                del view[keyword]
            setattr(view, keyword, value)
    # FileSet._recordify is what FileSet.add uses (pydicom is pinned in pyproject.toml)
    records = list(fs._recordify(view))
    leaf = parent = RecordNode(records[0])
    for record in records[1:]:
        leaf = RecordNode(record)
        leaf.parent = parent
        parent = leaf
    fs.add_custom(ds, leaf)


# -- the CSV catalogue ------------------------------------------------------------------------------


def catalogue_csv(source: ExportSource) -> str:
    """One row per case: pseudonym, trial attributes, images, diagnosis, codes, ATFI and catalogue fields."""
    atfi = [k for k in ATFI_FIELDS if any(k in c.teaching for c in source.cases)]
    custom = sorted({name for c in source.cases for name in c.custom_fields})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, *(f"atfi:{k}" for k in atfi), *(f"field:{k}" for k in custom)])
    for case in source.cases:
        writer.writerow([*_csv_row(case), *(case.teaching.get(k, "") for k in atfi),
                         *(_cell(case.custom_fields.get(k)) for k in custom)])
    return buffer.getvalue()


def _csv_row(case: CaseFacts) -> list[object]:
    studies = case.entry["studies"]
    series = [se for st in studies for se in st["series"]]
    trial_subjects = [s for s in _trial_values(case.entry, "subject_id") if s]
    by_system: dict[str, list[str]] = {ICD10: [], SNOMED: [], ACR: [], "": []}
    for system, code, _display in case.codes:
        name = canonical_system(system)
        by_system[name if name in by_system else ""].append(code if name in by_system else f"{name}:{code}")
    return [
        case.case_id, case.entry.get("title", ""), _join(trial_subjects or [case.pseudonym]),
        *(_join(_trial_values(case.entry, k)) for k in ("protocol_id", "site_id", "time_point_id", "time_point_description")),
        _join(st["study_instance_uid"] for st in studies), _join(st.get("study_date", "") for st in studies),
        _join(se.get("modality", "") for se in series),
        _join(case.body_parts.get(se["series_instance_uid"], "") for se in series),
        len(series), sum(len(se["instances"]) for se in series), case.diagnosis,
        _join(by_system[ICD10]), _join(by_system[SNOMED]), _join(by_system[ACR]), _join(by_system[""]),
    ]


def _join(values: object) -> str:
    """Distinct non-empty values, in order, joined by '; '."""
    seen: list[str] = []
    for value in values:  # type: ignore[attr-defined]
        text = str(value or "").strip()
        if text and text not in seen:
            seen.append(text)
    return "; ".join(seen)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return _join(value)
    return str(value)


# -- the FHIR bundle --------------------------------------------------------------------------------


def cohort_bundle(source: ExportSource, resource_id: str | None = None) -> Any:
    """A ``collection`` Bundle: the cohort's Group, a Patient per subject, an ImagingStudy per study
    and a Condition per coded diagnosis (or one for a diagnosis given as text only)."""
    base = ("cohort", source.cohort_id, source.number)
    patients: dict[str, str] = {}
    entries: list[tuple[str, Any]] = []
    for case in source.cases:
        if case.pseudonym not in patients:
            patients[case.pseudonym] = fhir.stable_urn(*base, "patient", case.pseudonym)
            entries.append((patients[case.pseudonym], fhir.patient(case.pseudonym, case.pseudonym_from_trial)))
    group_urn = fhir.stable_urn(*base, "group")
    name = f"cohort {source.cohort_name} version {source.number}"
    entries.insert(0, (group_urn, fhir.group(name, patients.values(), source.cohort_id, source.number)))
    for case in source.cases:
        entries.extend(case_resources(case, patients[case.pseudonym], base))
    return fhir.collection(entries, fhir.stable_urn(*base, "bundle"), resource_id=resource_id)


def case_resources(case: CaseFacts, patient_urn: str, base: tuple[object, ...]) -> list[tuple[str, Any]]:
    subject = fhir.subject_reference(case.pseudonym, case.pseudonym_from_trial, patient_urn)
    resources: list[tuple[str, Any]] = []
    for study in case.entry["studies"]:
        urn = fhir.stable_urn(*base, "case", case.case_id, "study", study["study_instance_uid"])
        resources.append((urn, fhir.imaging_study(study, subject)))
    evidence = [url for url, _ in resources]
    confirmed = case.teaching.get("diagnosis_confirmed", "")
    for n, code in enumerate(case.codes):
        urn = fhir.stable_urn(*base, "case", case.case_id, "condition", n, *code[:2])
        resources.append((urn, fhir.condition(subject, code, evidence=evidence, confirmed=confirmed)))
    if not case.codes and case.diagnosis.strip():
        urn = fhir.stable_urn(*base, "case", case.case_id, "condition", "text")
        resources.append((urn, fhir.condition(subject, None, case.diagnosis.strip(), evidence, confirmed)))
    return resources


# -- the README -------------------------------------------------------------------------------------


def readme(source: ExportSource) -> str:
    query = source.query or {}
    filters = ", ".join(query.get("filters") or []) or "(none)"
    studies = sum(len(c.entry["studies"]) for c in source.cases)
    instances = sum(1 for _ in source.instances())
    lines = [
        f"Casebank cohort export: {source.cohort_name}, version {source.number}",
        "",
        f"Cohort:     {source.cohort_id} ({source.cohort_name})" + (f", project {source.project}" if source.project else ""),
        f"Version:    {source.number}",
        f"Frozen by:  {source.frozen_by}",
        f"Frozen at:  {source.frozen_at.isoformat(timespec='seconds')}",
        f"Query:      text {json.dumps(query.get('text') or '')}; filters {filters}",
    ]
    if source.note:
        lines.append(f"Note:       {source.note}")
    lines += [
        f"Contents:   {len(source.cases)} case(s), {len({c.pseudonym for c in source.cases})} subject(s), "
        f"{studies} stud(y/ies), {instances} instance(s)",
        "",
        "DICOMDIR and its folders  the frozen instances exactly as archived (already de-identified), in a",
        "                          DICOM File-set. Where an instance lacks a Type 1 attribute a directory",
        "                          record needs (Study ID, dates...), the record holds an invented value",
        "                          (Study ID = the study's number here, date 19000101, time 000000); the",
        "                          files themselves are unchanged.",
        "cohort.csv                one row per case: pseudonym, trial site and time point, images, diagnosis,",
        "                          ICD-10 / SNOMED CT / ACR codes, ATFI fields (atfi:*) and catalogue fields",
        "                          (field:*).",
        "fhir-bundle.json          a FHIR R5 collection Bundle: a Group for the cohort version, a Patient per",
        "                          subject (pseudonym only), an ImagingStudy per study, a Condition per",
        "                          diagnosis.",
        "",
        "Subjects are identified by pseudonym only: the Clinical Trial Subject ID, or case-<id> when the",
        "study carried none. No author names or registration numbers are included.",
        "",
    ]
    return "\n".join(lines)


# -- for the CLI and the jobs API ---------------------------------------------------------------------


def export_version_to_path(
    casebank: Any, username: str, cohort_id: int, number: int, out_path: Path, progress: Progress | None = None,
) -> Path:
    """Export version `number` of cohort `cohort_id` as `username` sees it into the zip `out_path`.

    The database is read in one short session; the zip is written to ``<out_path>.partial`` and
    renamed when complete, so an interrupted export never leaves a zip that looks whole. An
    existing `out_path` is refused rather than overwritten. Audited once the zip is in place."""
    out_path = Path(out_path)
    if out_path.exists():
        raise Conflict(f"{out_path} exists already; give another name or remove it")
    with casebank.database.session() as session:
        actor = users.get_user(session, username)
        source = export_source(session, get_version(session, actor, cohort_id, number))
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        counts = write_export(casebank.blobs, source, partial, progress)
        partial.replace(out_path)
    finally:
        partial.unlink(missing_ok=True)
    with casebank.database.session() as session:
        record_export(session, users.get_user(session, username), source, counts)
    return out_path


def export_filename(source: ExportSource) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in source.cohort_name).strip("-") or "cohort"
    return f"{safe}-v{source.number}.zip"
