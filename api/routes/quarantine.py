"""Admin review of quarantined objects: list, inspect, release or delete; every action audited.

Non-admins get 404, as for a missing entry. Senders see their own held objects at /api/me/held."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel
from pydicom import dcmread
from starlette.concurrency import run_in_threadpool

from archive import quarantine
from ingest.intake import delete_from_quarantine, release_from_quarantine

from ..deps import CasebankDep, CredentialsDep

router = APIRouter(tags=["quarantine"])


class QuarantinedOut(BaseModel):
    id: int
    sop_instance_uid: str
    sop_class_uid: str
    size_bytes: int
    reasons: list[str]
    calling_ae: str
    called_ae: str
    state: str
    received_at: datetime


class QuarantinedDetail(QuarantinedOut):
    header: dict  # type: ignore[type-arg]  # DICOM JSON of the header, pixel data left out


def _out(entry) -> QuarantinedOut:  # type: ignore[no-untyped-def]
    return QuarantinedOut(
        id=entry.id, sop_instance_uid=entry.sop_instance_uid, sop_class_uid=entry.sop_class_uid,
        size_bytes=entry.size_bytes, reasons=list(entry.reasons), calling_ae=entry.calling_ae,
        called_ae=entry.called_ae, state=entry.state.value, received_at=entry.received_at,
    )


class HeldOut(BaseModel):
    """What a sender may know of an object held at the door: when, what, why; never the header."""

    id: int
    sop_instance_uid: str
    sop_class_uid: str
    reasons: list[str]
    received_at: datetime


class HeldNotice(BaseModel):
    notice: str  # "1 object held at the door: <reason>", "" when nothing is held
    held: list[HeldOut]


@router.get("/api/me/held", response_model=HeldNotice)
def my_held_objects(cb: CasebankDep, credentials: CredentialsDep) -> HeldNotice:
    """Objects the caller sent (STOW, or from an AE bound to them) that the door check holds."""
    with cb.database.session() as session:
        held = quarantine.held_for_sender(session, credentials.user(session))
        return HeldNotice(notice=quarantine.sender_notice(held), held=[
            HeldOut(id=e.id, sop_instance_uid=e.sop_instance_uid, sop_class_uid=e.sop_class_uid,
                    reasons=list(e.reasons), received_at=e.received_at)
            for e in held
        ])


@router.get("/api/admin/quarantine", response_model=list[QuarantinedOut])
def list_quarantine(cb: CasebankDep, credentials: CredentialsDep) -> list[QuarantinedOut]:
    with cb.database.session() as session:
        return [_out(e) for e in quarantine.list_held(session, credentials.user(session))]


@router.get("/api/admin/quarantine/{entry_id}", response_model=QuarantinedDetail)
def inspect_quarantined(entry_id: int, cb: CasebankDep, credentials: CredentialsDep) -> QuarantinedDetail:
    with cb.database.session() as session:
        entry = quarantine.get(session, credentials.user(session), entry_id)
        summary = _out(entry)
        sha256 = entry.blob_sha256
    with cb.blobs.open(sha256) as f:
        header = dcmread(f, stop_before_pixels=True).to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda _e: "")
    return QuarantinedDetail(**summary.model_dump(), header=header)


@router.post("/api/admin/quarantine/{entry_id}/release", status_code=204)
async def release_quarantined(entry_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """File the object as if it had just arrived; only for objects an admin judged safe."""
    with cb.database.session() as session:
        admin_id = credentials.user(session).id
    await run_in_threadpool(release_from_quarantine, cb.intake, admin_id, entry_id)
    return Response(status_code=204)


@router.delete("/api/admin/quarantine/{entry_id}", status_code=204)
async def delete_quarantined(entry_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        admin_id = credentials.user(session).id
    await run_in_threadpool(delete_from_quarantine, cb.intake, admin_id, entry_id)
    return Response(status_code=204)
