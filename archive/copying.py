"""Copy a case into another folder (an LDM or exam set, say). The copy is a case of its own, so
it is edited, shared and deleted apart from the original; its DICOM objects are written again
with new Study, Series and SOP Instance UIDs (one consistent mapping, so references between the
copied objects, such as the manifest's, still resolve), because a UID names one object."""

from __future__ import annotations

import io
from collections.abc import Callable

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .blobs import BlobStore
from .cases import get_case
from .catalogue import fields_of
from .db import mark_case_changed
from .folders import folder_path, get_folder, require
from .errors import NotPermitted
from .models import Attachment, Case, CodedEntry, FolderKind, Instance, Series, Study, User
from .quota import check_limit, refuse_if_hard_limit_exceeded


def _remap_uids(ds: Dataset, new_uid: Callable[[str], str], known: set[str]) -> None:
    """Replace every UI value that names a copied object, through nested sequences."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _remap_uids(item, new_uid, known)
        elif element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            mapped = [new_uid(str(v)) if str(v) in known else str(v) for v in values]
            element.value = mapped if element.VM > 1 else mapped[0]


def copy_case(session: Session, blobs: BlobStore, user: User, case_id: int, target_folder_id: int) -> Case:
    """A copy of the case (texts, codes, catalogue values the target knows, images, attachments)
    in the target folder. Needs edit on the case and on the target; the target's storage
    limit applies as for any arriving case.

    Copying needs the edit right on the source too: a copy is a case its copier controls (shares,
    exports), so a view-only grantee copying would take the owner's images beyond the owner's reach."""
    source = get_case(session, user, case_id)
    require(session, user, source.folder, "edit")
    target = get_folder(session, user, target_folder_id)
    require(session, user, target, "edit")
    if source.folder.project_id != target.project_id or FolderKind.HOLD in (source.folder.kind, target.kind):
        raise NotPermitted("research cases stay in their project: they cannot be copied into or out of it")
    instances = [(st, se, i) for st in source.studies for se in st.series for i in se.instances]
    refuse_if_hard_limit_exceeded(session, target, sum(i.size_bytes for _, _, i in instances))

    known = {st.study_instance_uid for st in source.studies} | {se.series_instance_uid for st in source.studies
                                                                  for se in st.series} | {i.sop_instance_uid for _, _, i in instances}
    mapping: dict[str, str] = {}

    def new_uid(old: str) -> str:
        return mapping.setdefault(old, generate_uid())

    target_fields = {f.name for f in fields_of(session, target)}
    copy = Case(
        folder_id=target.id, title=source.title, history=source.history, findings=source.findings,
        diagnosis=source.diagnosis, differential=source.differential, discussion=source.discussion,
        keywords=list(source.keywords or []), author_name=source.author_name, author_gmc=source.author_gmc,
        status=source.status,
        custom_fields={k: v for k, v in (source.custom_fields or {}).items() if k in target_fields},
        teaching_extra=dict(source.teaching_extra or {}),
        notice=f"Copied from {folder_path(session, source.folder)} (case {source.id}).",
    )
    copy.codes = [CodedEntry(system=c.system, code=c.code, display=c.display) for c in source.codes]
    session.add(copy)
    session.flush()
    for study in source.studies:
        new_study = Study(case_id=copy.id, study_instance_uid=new_uid(study.study_instance_uid),
                          study_date=study.study_date, description=study.description,
                          procedure_code=study.procedure_code, patient_age=study.patient_age,
                          patient_sex=study.patient_sex, patient_weight_kg=study.patient_weight_kg)
        session.add(new_study)
        session.flush()
        for series in study.series:
            new_series = Series(study_id=new_study.id, series_instance_uid=new_uid(series.series_instance_uid),
                                series_number=series.series_number, modality=series.modality,
                                body_part=series.body_part, description=series.description,
                                default_window_center=series.default_window_center,
                                default_window_width=series.default_window_width, default_crop=series.default_crop)
            session.add(new_series)
            session.flush()
            for instance in series.instances:
                ds = dcmread(blobs.path(instance.blob_sha256))
                _remap_uids(ds, new_uid, known)
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                stored = blobs.put_bytes(buffer.getvalue())
                session.add(Instance(series_id=new_series.id, sop_instance_uid=str(ds.SOPInstanceUID),
                                     sop_class_uid=instance.sop_class_uid, transfer_syntax_uid=instance.transfer_syntax_uid,
                                     instance_number=instance.instance_number, size_bytes=stored.size,
                                     blob_sha256=stored.sha256))
    for attachment in session.scalars(select(Attachment).where(Attachment.case_id == source.id)):
        session.add(Attachment(case_id=copy.id, filename=attachment.filename, media_type=attachment.media_type,
                               size_bytes=attachment.size_bytes, blob_sha256=attachment.blob_sha256,
                               uploaded_by_id=user.id))
    session.flush()
    audit.record(session, user, "case.copied", "case", copy.id, source_case=source.id, folder_id=target.id)
    audit.record(session, user, "case.copied_out", "case", source.id, copy_case=copy.id, folder_id=target.id)
    mark_case_changed(session, copy.id)
    check_limit(session, target)
    return copy
