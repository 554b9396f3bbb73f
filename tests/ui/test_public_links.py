"""Public links of cases: an editor publishes a case filed through the real intake as an anonymised
page; anyone with the link opens it without a login and finds the teaching text and the images,
never the author, the GMC number, the sender or a DICOM identifier. Each image is put through the
door check again when the link is made. Revoked, expired and unknown links are the same 404; every
publish, view and revoke is audited; "Email this case" arrives at a real SMTP server."""

from __future__ import annotations

import html
import io
import re
import time
from datetime import timedelta
from email import message_from_bytes

import pytest
from PIL import Image
from pydicom.uid import generate_uid
from sqlalchemy import select, update

from archive import cases, folders, public_links, users
from archive.cases import CaseUpdate
from archive.errors import InvalidInput, NotFound
from archive.models import AuditEvent, Case, Instance, PublicLink, QuarantinedObject, utcnow
from ingest.intake import Sender, release_from_quarantine
from ingest.tce.atfi import TeachingFileInfo

from .. import dicom_data
from api.app import create_app

from ..conftest import login
from ..csrf_client import BrowserLikeClient
from ..peers import smtp_server
from ..senders import register_ae
from .test_pages import page_login
from .test_project_pages import build_lung, research_export
from .test_project_pages import send as send_research
from .test_quarantine_pages import HOSPITAL, encode

AUTHOR, AUTHOR_GMC = "Jones^Ann^^Dr", "7000001"  # the ATFI's author; alice (the first user) has GMC 7000001 too
SECRETS = ("Jones", "Ann Jones", AUTHOR_GMC, "Dr Alice", "alice", "PACS1", "hospital.example", HOSPITAL, "PSEUDO")
BASE_URL = "https://casebank.example.org"


@pytest.fixture
def smtp():
    with smtp_server() as inbox:
        yield inbox


@pytest.fixture
def settings(settings, smtp):
    """The archive mails through the test's aiosmtpd and names itself by a public base URL."""
    return settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": BASE_URL})


@pytest.fixture
def client(casebank):
    """Over https, as behind the public base URL: the session cookie is Secure there."""
    with BrowserLikeClient(create_app(casebank), base_url="https://testserver") as test_client:
        yield test_client


def teaching_export(title: str, files: tuple[str, ...] = ("CT_small.dcm", "MR_small.dcm"), tweak=None):
    """Images (changed by ``tweak``), the ATFI report naming the author and GMC, and the KOS manifest,
    as a PACS sends them."""
    images = dicom_data.study(list(files), description="CT abdomen")
    if tweak:
        tweak(images)
    info = TeachingFileInfo(author_name=AUTHOR, author_gmc=AUTHOR_GMC, abstract=title, diagnosis="Hepatocellular carcinoma",
                            findings="Arterially enhancing liver mass with washout", history="Cirrhosis, rising AFP",
                            discussion="LI-RADS 5 observation", codes=(("I10", "C22.0", "Liver cell carcinoma"),))
    report, manifest = dicom_data.tce_export(images, info)
    return images, report, manifest


def intake(casebank, objects, ae: str = "PACS1") -> list:
    sender = Sender(calling_ae=ae, called_ae="CASEBANK", address="127.0.0.1")
    outcomes = [casebank.intake.accept(encode(ds), sender) for ds in objects]
    assert all(o.ok for o in outcomes), [o.comment for o in outcomes]
    return outcomes


def filed_case(casebank, title: str = "Liver mass in cirrhosis", files=("CT_small.dcm", "MR_small.dcm"), tweak=None) -> int:
    """A teaching case sent by a trusted PACS through the archive's intake; lands in alice's folder."""
    register_ae(casebank, "PACS1", "pacs", host="127.0.0.1")
    images, report, manifest = teaching_export(title, files, tweak)
    intake(casebank, [*images, report, manifest])
    with casebank.database.session() as session:
        case = session.scalars(select(Case).where(Case.title == title)).one()
        assert case.author_gmc == AUTHOR_GMC and "Jones" in case.author_name  # what the page must not show
        return case.id


def publish(client, case_id: int, **body):
    return client.post(f"/api/cases/{case_id}/public-links", json=body)


def token_of(url: str) -> str:
    return url.rsplit("/p/", 1)[1]


def assert_anonymous(data: bytes, what: str) -> None:
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} in {what}"


def actions(casebank) -> list[str]:
    with casebank.database.session() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("case.publi%")).order_by(AuditEvent.id)))


def test_the_public_page_shows_the_teaching_text_and_images_to_anyone_and_nothing_of_the_author(client, casebank, make_user):
    make_user("alice")
    case_id = filed_case(casebank)
    login(client, "alice")
    made = publish(client, case_id, expires_in_days=30)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["url"].startswith(f"{BASE_URL}/p/") and body["images"] == 2 and body["left_out"] == []
    assert body["expires_at"] and body["token"] == token_of(body["url"])
    with casebank.database.session() as session:
        link = session.get(PublicLink, body["id"])
        assert link.token_sha256 != body["token"] and body["token"] not in link.token_sha256  # only the hash is kept
        assert len(link.token_sha256) == 64 and len(link.instance_ids) == 2

    client.cookies.clear()  # nobody is logged in
    page = client.get(f"/p/{body['token']}", follow_redirects=False)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in page.headers  # an anonymous visit starts no session
    assert "noindex" in page.headers["x-robots-tag"]
    text = html.unescape(page.text)
    words_only = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    for words in ("Liver mass in cirrhosis", "Cirrhosis, rising AFP", "Arterially enhancing liver mass with washout",
                  "Hepatocellular carcinoma", "LI-RADS 5 observation", "Liver cell carcinoma (ICD-10 C22.0)"):
        assert words in words_only, words
    assert_anonymous(page.content, "the page")
    assert "Contributed by" not in text and "GMC" not in text and "1.2.826" not in text  # no author, no UIDs
    assert text.index('class="public-images"') < text.index('class="public-text')  # images first

    # Open Graph and Twitter cards: an absolute thumbnail under the configured base URL
    meta = dict(re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)"', page.text))
    assert meta["og:title"] == "Liver mass in cirrhosis" and meta["og:type"] == "article"
    assert meta["og:description"] == "Hepatocellular carcinoma"
    assert meta["og:image"] == f"{BASE_URL}/p/{body['token']}/thumbnail.jpg" == meta["twitter:image"]
    assert meta["twitter:card"] == "summary_large_image"

    thumbnail = client.get(f"/p/{body['token']}/thumbnail.jpg")
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    card = Image.open(io.BytesIO(thumbnail.content))
    assert card.size == (1200, 630) and card.convert("L").getextrema()[1] > 50  # not blank
    assert_anonymous(thumbnail.content, "the thumbnail")

    urls = re.findall(r'data-urls="([^"]+)"', page.text)
    assert len(urls) == 2  # one stack per image series; the report and manifest are documents
    for url in " ".join(urls).split():
        image = client.get(html.unescape(url))
        assert image.status_code == 200 and image.headers["content-type"] == "image/png", url
        assert Image.open(io.BytesIO(image.content)).convert("L").getextrema()[1] > 50
        assert_anonymous(image.content, url)
    first_image = html.unescape(urls[0].split()[0])
    assert client.get(f"{first_image}?frame=99").status_code == 404  # CT_small has one frame

    with casebank.database.session() as session:
        assert session.get(PublicLink, body["id"]).views == 1  # the page, not its images


def test_only_editors_publish_and_research_cases_never(client, casebank, make_user):
    alice, bob, _carol = make_user("alice"), make_user("bob"), make_user("carol")
    case_id = filed_case(casebank)
    with casebank.database.session() as session:
        folders.grant(session, session.get(type(alice), alice.id), folders.personal_folder(session, alice),
                      session.get(type(bob), bob.id), view=True)
    login(client, "bob")  # may view, not edit
    refused = publish(client, case_id)
    assert refused.status_code == 403 and "bob may not edit case" in refused.json()["detail"]
    assert client.get(f"/api/cases/{case_id}/public-links").status_code == 403
    assert 'id="share-public"' not in client.get(f"/cases/{case_id}").text
    login(client, "carol")  # may not even see it
    assert publish(client, case_id).status_code == 404
    assert actions(casebank) == []

    lung = build_lung(casebank, make_user)
    research_case = send_research(casebank, research_export("CB-S1"))
    login(client, "pat")  # the project's principal investigator may edit its collection
    with casebank.database.session() as session:
        assert session.get(Case, research_case).folder.project_id == lung
    never = publish(client, research_case)
    assert never.status_code == 403 and "research" in never.json()["detail"]
    assert 'id="share-public"' not in client.get(f"/cases/{research_case}").text


def test_a_case_without_images_cannot_be_published(client, casebank, make_user):
    alice = make_user("alice")
    with casebank.database.session() as session:
        user = users.get_user(session, "alice")
        case_id = cases.create_case(session, user, folders.personal_folder(session, alice).id,
                                    CaseUpdate(title="Text only", findings="Nothing to see")).id
    login(client, "alice")
    answer = publish(client, case_id)
    assert answer.status_code == 422 and "has no images" in answer.json()["detail"]


def test_publishing_checks_every_image_again_and_leaves_out_the_ones_that_fail(client, casebank, make_user):
    """An image the door check holds, released by an admin into the case (the archive's own call),
    stays out of the public page; so does one that declares burned-in text with no pixel cleaning."""
    alice, root = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        users.bind_ae(session, "PACS1", session.get(type(alice), alice.id))

    def burned_in(images):
        images[1].BurnedInAnnotation = "YES"  # the door keeps it; a public page may not

    case_id = filed_case(casebank, tweak=burned_in)
    with casebank.database.session() as session:
        study_uid = session.scalars(select(Case).where(Case.id == case_id)).one().studies[0].study_instance_uid
    [leaky] = dicom_data.study(["CT_small.dcm"])
    leaky.StudyInstanceUID, leaky.InstitutionName = study_uid, HOSPITAL  # the Basic Profile removes it
    leaky.SeriesInstanceUID = generate_uid()
    [held] = intake(casebank, [leaky])
    assert held.quarantined
    with casebank.database.session() as session:
        entry_id = session.scalars(select(QuarantinedObject.id)).one()
    filed = release_from_quarantine(casebank.intake, root.id, entry_id)
    assert filed.case_id == case_id  # the admin judged it fit for the archive: it joins the case

    login(client, "alice")
    body = publish(client, case_id).json()
    assert body["images"] == 1
    reasons = {o["instance_id"]: " ".join(o["reasons"]) for o in body["left_out"]}
    with casebank.database.session() as session:
        by_uid = {i.sop_instance_uid: i.id for i in session.scalars(select(Instance))}
    assert "InstitutionName (0008,0080)" in reasons[by_uid[leaky.SOPInstanceUID]]
    assert "Burned In Annotation" in " ".join(reasons.values()) and len(reasons) == 2
    with casebank.database.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "case.published")).all()
        assert {o["instance_id"] for o in event.detail["left_out"]} == set(reasons)

    client.cookies.clear()
    page = client.get(f"/p/{body['token']}").text
    served = {int(i) for i in re.findall(r"/instances/(\d+)/rendered", page)}
    assert len(served) == 1 and not served & set(reasons)
    for instance_id in reasons:  # asked for by id, the refused images are not there
        assert client.get(f"/p/{body['token']}/instances/{instance_id}/rendered").status_code == 404
    assert HOSPITAL not in page


def test_a_case_whose_every_image_fails_the_check_is_not_published(client, casebank, make_user):
    make_user("alice")

    def burned_in(images):
        for ds in images:
            ds.BurnedInAnnotation = "YES"

    case_id = filed_case(casebank, tweak=burned_in)
    login(client, "alice")
    refused = publish(client, case_id)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "cannot be published" in detail and "none of its 2 image(s)" in detail and "Burned In Annotation" in detail
    with casebank.database.session() as session:
        assert session.scalars(select(PublicLink)).all() == []
    assert actions(casebank) == []


def test_revoked_expired_and_unknown_links_are_the_same_404_and_all_is_audited(client, casebank, make_user):
    make_user("alice")
    case_id = filed_case(casebank)
    login(client, "alice")
    first = publish(client, case_id).json()
    second = publish(client, case_id, expires_in_days=1).json()
    listed = client.get(f"/api/cases/{case_id}/public-links").json()
    assert [(l["id"], l["state"], l["views"]) for l in listed] == [(second["id"], "live", 0), (first["id"], "live", 0)]

    client.cookies.clear()
    assert client.get(f"/p/{first['token']}").status_code == 200
    image = html.unescape(re.search(r'data-urls="([^" ]+)', client.get(f"/p/{first['token']}").text).group(1))
    thumbnail = f"/p/{first['token']}/thumbnail.jpg"
    assert client.get(thumbnail).status_code == 200 and client.get(image).status_code == 200

    login(client, "alice")
    assert client.delete(f"/api/public-links/{first['id']}").status_code == 204
    assert client.delete(f"/api/public-links/{first['id']}").status_code == 204  # already revoked: nothing more
    with casebank.database.session() as session:
        session.execute(update(PublicLink).where(PublicLink.id == second["id"]).values(expires_at=utcnow() - timedelta(minutes=1)))
    listed = {l["id"]: (l["state"], l["views"]) for l in client.get(f"/api/cases/{case_id}/public-links").json()}
    assert listed == {first["id"]: ("revoked", 2), second["id"]: ("expired", 0)}

    client.cookies.clear()
    answers = [client.get(f"/p/{token}") for token in (first["token"], second["token"], "no-such-token-" + "x" * 30)]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.text for a in answers}) == 1 and "does not work" in answers[0].text  # one page for all three
    assert "Liver" not in answers[0].text
    assert client.get(thumbnail).status_code == 404
    assert client.get(image).status_code == 404

    assert actions(casebank) == ["case.published", "case.published", "case.public_viewed", "case.public_viewed",
                                 "case.public_link_revoked"]
    with casebank.database.session() as session:
        views = session.scalars(select(AuditEvent).where(AuditEvent.action == "case.public_viewed")).all()
        assert {(v.actor, v.object_type, v.object_id) for v in views} == {("public", "public_link", str(first["id"]))}
        revoked = session.scalars(select(AuditEvent).where(AuditEvent.action == "case.public_link_revoked")).one()
        assert revoked.actor == "user:alice" and revoked.object_id == str(case_id) and revoked.detail["views"] == 2


def test_email_this_case_arrives_with_a_working_link(client, casebank, make_user, smtp):
    make_user("alice"), make_user("bob")
    case_id = filed_case(casebank)
    page_login(client, "alice")
    case_page = client.get(f"/cases/{case_id}").text
    assert 'id="share-public"' in case_page and f'action="/cases/{case_id}/public-links"' in case_page
    created = client.post(f"/cases/{case_id}/public-links", data={"expires_in_days": "7", "email": "student@uni.example"})
    assert created.status_code == 200, created.text
    url = html.unescape(re.search(r'class="public-url" readonly value="([^"]+)"', created.text).group(1))
    assert url.startswith(f"{BASE_URL}/p/") and "Sent to student@uni.example" in created.text

    deadline = time.monotonic() + 10
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    [envelope] = smtp.messages
    assert envelope.rcpt_tos == ["student@uni.example"]
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"] == "[Casebank] Teaching case: Liver mass in cirrhosis"
    body = mail.get_payload(decode=True).decode()
    assert url in body and "Dr Alice shares an anonymised teaching case" in body
    assert AUTHOR_GMC not in body and "Jones" not in body  # the case's author stays out of it too

    link_id = int(re.search(r'action="/public-links/(\d+)/email"', created.text).group(1))
    again = client.post(f"/public-links/{link_id}/email", data={"to": "second@uni.example", "token": token_of(url)})
    assert again.status_code == 200 and "Sent to second@uni.example" in again.text
    login(client, "alice")
    wrong = client.post(f"/api/public-links/{link_id}/email", json={"to": "x@uni.example", "token": "guess"})
    assert wrong.status_code == 422 and "not the token" in wrong.json()["detail"]
    bad = client.post(f"/api/public-links/{link_id}/email", json={"to": "not an address", "token": token_of(url)})
    assert bad.status_code == 422
    login(client, "bob")  # not an editor of the case
    assert client.post(f"/api/public-links/{link_id}/email", json={"to": "x@uni.example", "token": token_of(url)}).status_code == 404
    deadline = time.monotonic() + 10
    while len(smtp.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m.rcpt_tos for m in smtp.messages] == [["student@uni.example"], ["second@uni.example"]]

    client.cookies.clear()
    assert client.get(url.removeprefix(BASE_URL)).status_code == 200
    with casebank.database.session() as session:
        emailed = session.scalars(select(AuditEvent).where(AuditEvent.action == "case.public_link_emailed")).all()
        assert [e.detail["to"] for e in emailed] == ["student@uni.example", "second@uni.example"]


def test_the_domain_refuses_a_past_expiry_and_resolves_only_live_tokens(casebank, make_user):
    alice = make_user("alice")
    case_id = filed_case(casebank)
    with casebank.database.session() as session:
        user = session.get(type(alice), alice.id)
        with pytest.raises(InvalidInput, match="must be in the future"):
            public_links.publish(session, casebank.blobs, user, case_id, utcnow() - timedelta(days=1))
    with casebank.database.session() as session:
        user = session.get(type(alice), alice.id)
        link, token = public_links.publish(session, casebank.blobs, user, case_id)
        assert public_links.resolve(session, token).id == link.id
        public_links.revoke(session, user, link.id)
        with pytest.raises(NotFound):
            public_links.resolve(session, token)
