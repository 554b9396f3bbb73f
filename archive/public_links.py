"""Public links: an editor publishes a case as an anonymised page anyone with the link may open.

The link's token is random and shown once; only its SHA-256 is stored (like API tokens), so the
database alone cannot open a page. A link may expire and can be revoked; an unknown, revoked or
expired token is one and the same NotFound. Research (project) cases are never published.

Every image is read again from the blob store and put through the archive's door check
(:func:`ingest.deid_check.reasons_to_quarantine`) when the link is made: an object an admin
released from quarantine, or one the check has since learnt to refuse, is left out and named. Only
the instances that passed (``PublicLink.instance_ids``) are ever served under the link. The page
shows the teaching text and the images; never the author, GMC number, folder or sender.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom.dataset import Dataset
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest.deid_check import reasons_to_quarantine
from ingest.validation import MalformedObject, read_complete

from . import audit, security
from .blobs import BlobStore
from .display import image_series
from .errors import InvalidInput, NotFound, NotPermitted
from .folders import not_found, require
from .mail import OutgoingMail, queue_mail
from .models import Case, FolderKind, Instance, PublicLink, User, utcnow

PUBLIC_ACTOR = "public"  # the audit actor of page views: nobody is logged in
PATH = "/p/"
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
REASONS_SHOWN = 3  # per left-out image, for the editor; the audit keeps them all

CLEAN_PIXEL_DATA = "113101"
CLEAN_RECOGNIZABLE_VISUAL_FEATURES = "113102"


@dataclass(frozen=True)
class LeftOut:
    """An image the door check refused for the public page, and why."""

    instance_id: int
    series: str  # "CT series 2", as the editor knows it
    reasons: list[str]


@dataclass(frozen=True)
class Published:
    """What :func:`publish` made. Unpacks as ``(link, token)``; ``left_out`` names the refused images."""

    link: PublicLink
    token: str
    left_out: list[LeftOut]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.link, self.token))


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored one is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_live(link: PublicLink, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return link.revoked_at is None and (link.expires_at is None or _aware(link.expires_at) > now)


def state_of(link: PublicLink, now: datetime | None = None) -> str:
    if link.revoked_at is not None:
        return "revoked"
    return "live" if is_live(link, now) else "expired"


def url_of(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{PATH}{token}"


def _editable_case(session: Session, actor: User, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(not_found(f"case {case_id}"))
    require(session, actor, case.folder, "edit", subject=f"case {case_id}")
    return case


def _is_research(case: Case) -> bool:
    return case.folder.project_id is not None or case.folder.kind in (FolderKind.PROJECT, FolderKind.HOLD)


def public_reasons(ds: Dataset) -> list[str]:
    """Why ``ds`` may not go on a public page; empty when it may.

    The door check, and two declarations about the pixels the door does not judge: burned-in
    text, and features (a face) that recognise the patient, unless the object says they were cleaned."""
    reasons = reasons_to_quarantine(ds)
    codes = {str(item.get("CodeValue", "")).strip() for item in ds.get("DeidentificationMethodCodeSequence") or []}
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES" and CLEAN_PIXEL_DATA not in codes:
        reasons.append("Burned In Annotation (0028,0301) is YES and Clean Pixel Data (113101) is not declared")
    if str(ds.get("RecognizableVisualFeatures", "")).upper() == "YES" and CLEAN_RECOGNIZABLE_VISUAL_FEATURES not in codes:
        reasons.append("Recognizable Visual Features (0028,0302) is YES and Clean Recognizable Visual Features "
                       "(113102) is not declared")
    return reasons


def publishable_images(session: Session, blobs: BlobStore, case: Case) -> tuple[list[int], list[LeftOut]]:
    """The image instances of ``case`` that pass :func:`public_reasons`, in display order, and
    those that do not. Documents (SR, KO, PR, ...) and objects without pixels are not images."""
    passed: list[int] = []
    left_out: list[LeftOut] = []
    for study in case.studies:
        for series in image_series(study.series):
            label = f"{series.modality} series {series.series_number if series.series_number is not None else series.id}"
            for instance in series.instances:
                try:
                    ds = read_complete(blobs.read(instance.blob_sha256))
                except (MalformedObject, OSError) as exc:
                    left_out.append(LeftOut(instance.id, label, [f"cannot be read again: {exc}"]))
                    continue
                if "PixelData" not in ds:
                    continue
                reasons = public_reasons(ds)
                if reasons:
                    left_out.append(LeftOut(instance.id, label, reasons))
                else:
                    passed.append(instance.id)
    return passed, left_out


def publish(
    session: Session, blobs: BlobStore, actor: User, case_id: int, expires_at: datetime | None = None,
) -> Published:
    """A new public link to ``case_id``; needs the edit right on its folder. Each image is checked
    again; those that fail are left out (and named), and if none pass nothing is published."""
    case = _editable_case(session, actor, case_id)
    if _is_research(case):
        raise NotPermitted(f"case {case_id} belongs to a research project: research cases are never published")
    if expires_at is not None and _aware(expires_at) <= utcnow():
        raise InvalidInput("the expiry of a public link must be in the future")
    passed, left_out = publishable_images(session, blobs, case)
    if not passed:
        why = "it has no images" if not left_out else (
            f"none of its {len(left_out)} image(s) passes the de-identification check: "
            + "; ".join(r for item in left_out[:2] for r in item.reasons[:1]))
        raise InvalidInput(f"case {case_id} cannot be published: {why}")
    token = secrets.token_urlsafe(32)
    link = PublicLink(case_id=case.id, token_sha256=security.token_digest(token), created_by_id=actor.id,
                      expires_at=expires_at, views=0, instance_ids=passed)
    session.add(link)
    session.flush()
    audit.record(
        session, actor, "case.published", "case", case.id, public_link_id=link.id,
        expires_at=expires_at.isoformat() if expires_at else None, images=len(passed),
        left_out=[{"instance_id": o.instance_id, "series": o.series, "reasons": o.reasons} for o in left_out],
    )
    return Published(link, token, left_out)


def list_links(session: Session, actor: User, case_id: int) -> list[PublicLink]:
    """Every link of ``case_id``, newest first (revoked and expired ones too); for its editors."""
    _editable_case(session, actor, case_id)
    return list(session.scalars(select(PublicLink).where(PublicLink.case_id == case_id).order_by(PublicLink.id.desc())))


def _editable_link(session: Session, actor: User, link_id: int) -> PublicLink:
    link = session.get(PublicLink, link_id)
    if link is None:
        raise NotFound(not_found(f"public link {link_id}"))
    require(session, actor, link.case.folder, "edit", subject=f"public link {link_id}")
    return link


def revoke(session: Session, actor: User, link_id: int) -> PublicLink:
    """The link stops working at once; revoking it again changes nothing."""
    link = _editable_link(session, actor, link_id)
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        session.flush()
        audit.record(session, actor, "case.public_link_revoked", "case", link.case_id, public_link_id=link.id,
                     views=link.views)
    return link


def resolve(session: Session, token: str) -> PublicLink:
    """The live link of ``token``: unknown, revoked and expired tokens get the same NotFound."""
    link = session.scalar(select(PublicLink).where(PublicLink.token_sha256 == security.token_digest(token)))
    if link is None or not is_live(link) or _is_research(link.case):
        raise NotFound("this link does not exist")
    return link


def public_instance(session: Session, link: PublicLink, instance_id: int) -> Instance:
    """An instance the link serves: one that passed the check when it was published, still in the case."""
    instance = session.get(Instance, instance_id) if instance_id in (link.instance_ids or []) else None
    if instance is None or instance.series.study.case_id != link.case_id:
        raise NotFound("this image does not exist")
    return instance


def record_view(session: Session, link: PublicLink) -> None:
    """One page view: counted in the database (not lost to a concurrent view) and audited."""
    session.execute(update(PublicLink).where(PublicLink.id == link.id).values(views=PublicLink.views + 1))
    audit.record(session, PUBLIC_ACTOR, "case.public_viewed", "public_link", link.id, case_id=link.case_id)


def email_link(
    session: Session, actor: User, link_id: int, to_address: str, base_url: str, token: str,
) -> OutgoingMail:
    """Mail the link to ``to_address`` once the transaction commits.

    Only the token's hash is stored, so the caller passes the token it was given when publishing;
    it must be this link's, and the link must still be live."""
    link = _editable_link(session, actor, link_id)
    to = to_address.strip()
    if not EMAIL.fullmatch(to) or len(to) > 254:
        raise InvalidInput(f"{to_address!r} is not an e-mail address")
    if not secrets.compare_digest(security.token_digest(token.strip()), link.token_sha256):
        raise InvalidInput(f"that is not the token of public link {link_id}")
    if not is_live(link):
        raise InvalidInput(f"public link {link_id} was {state_of(link)}: publish the case again")
    title = " ".join((link.case.title or "Untitled case").split())
    until = f"until {_aware(link.expires_at):%d %B %Y}" if link.expires_at else "until it is withdrawn"
    sender = " ".join(actor.display_name.split()) or actor.username
    mail = OutgoingMail(
        to=to,
        subject=f"[Casebank] Teaching case: {title}"[:200],
        body=(
            f"{sender} shares an anonymised teaching case with you:\n\n"
            f"{title}\n{url_of(base_url, token)}\n\n"
            f"The link opens the images and teaching text without a login and works {until}.\n"
        ),
    )
    queue_mail(session, mail)
    audit.record(session, actor, "case.public_link_emailed", "case", link.case_id, public_link_id=link.id, to=to)
    return mail
