"""The pages of research projects, trials and cohorts: the list, a project's overview with its
forms, the submission matrix, the project search that saves cohorts, and a cohort with its
versions. Research exports arrive through the archive's real intake, as an enrolled site's export
manager sends them; a non-member (an admin too) finds none of these pages."""

from __future__ import annotations

import html
import io
import re

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from archive import cohorts, projects, users
from archive.filing import Sender
from archive.models import (
    CohortVersion,
    ProjectMember,
    ProjectRole,
    QcState,
    TrialSubmission,
)
from ingest.tce.manifest import build_manifest

from .. import dicom_data
from ..senders import register_ae
from .test_pages import page_login

HTML = {"accept": "text/html"}


def research_export(subject: str, *, study_date: str = "20250110", time_point: str = "baseline",
                    series: tuple[tuple[str, str], ...] = (("CT", "CT chest"),), protocol: str = "LUNG-01",
                    site: str = "A", project: str = "lung") -> list[Dataset]:
    """What a site's export manager sends for a project: pseudonymised objects with the Clinical
    Trial attributes, and a research manifest naming the project (as in tests/archive/test_projects.py)."""
    images = dicom_data.study(["CT_small.dcm"] * len(series))
    for ds, (modality, description) in zip(images, series):
        ds.PatientID = ds.PatientName = subject
        ds.Modality, ds.SeriesDescription, ds.StudyDate = modality, description, study_date
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
        ds.ClinicalTrialProtocolID, ds.ClinicalTrialSponsorName = protocol, "NIHR"
        ds.ClinicalTrialSiteID, ds.ClinicalTrialSubjectID = site, subject
        ds.ClinicalTrialTimePointID = time_point
    manifest = build_manifest(images, purpose="research", description=f"screening\nproject: {project}")
    for keyword in ("ClinicalTrialProtocolID", "ClinicalTrialSiteID", "ClinicalTrialTimePointID", "ClinicalTrialSponsorName"):
        setattr(manifest, keyword, images[0].data_element(keyword).value)
    manifest.ClinicalTrialSubjectID = manifest.PatientID
    return [*images, manifest]


def send(casebank, objects: list[Dataset], calling_ae: str = "EDGE-A") -> int:
    """Send through the archive's intake as the edge `calling_ae`; the case the manifest completed."""
    sender = Sender(calling_ae=calling_ae, called_ae="CASEBANK", address="127.0.0.1")
    outcomes = []
    for ds in objects:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        outcomes.append(casebank.intake.accept(buffer.getvalue(), sender))
    assert all(o.ok for o in outcomes), [o.comment for o in outcomes]
    return outcomes[-1].case_id


def build_lung(casebank, make_user) -> int:
    """Project lung: PI pat, researcher rita, coordinator cora, uploader ulla, viewer vic; olga and
    nina belong to no project, root is an admin who is not a member. Sites A (EDGE-A) and B (EDGE-B);
    time points baseline (CT:*chest*) and FU1 (day 90 ± 30)."""
    for name in ("root", "pat", "rita", "cora", "ulla", "vic", "olga", "nina"):
        make_user(name, admin=name == "root")
    register_ae(casebank, "EDGE-A", "edge", host="127.0.0.1")
    register_ae(casebank, "EDGE-B", "edge", host="127.0.0.1")
    with casebank.database.session() as session:
        get = lambda name: users.get_user(session, name)
        project = projects.create_project(session, get("root"), "lung", protocol_id="LUNG-01", title="Lung screening",
                                          principal_investigator=get("pat"))
        site = projects.enrol_site(session, get("pat"), project, "A", name="Hospital A", contact_email="a@trial.example",
                                   ae_titles=["EDGE-A"])
        projects.enrol_site(session, get("pat"), project, "B", name="Hospital B", ae_titles=["EDGE-B"])
        projects.set_member(session, get("pat"), project, get("rita"), ProjectRole.RESEARCHER)
        projects.set_member(session, get("pat"), project, get("cora"), ProjectRole.COORDINATOR)
        projects.set_member(session, get("pat"), project, get("ulla"), ProjectRole.SITE_UPLOADER, site)
        projects.set_member(session, get("pat"), project, get("vic"), ProjectRole.VIEWER)
        projects.define_time_point(session, get("pat"), project, "baseline", label="Baseline",
                                   expected_series=[{"modality": "CT", "description": "*chest*"}])
        projects.define_time_point(session, get("pat"), project, "FU1", label="Follow-up 1", day=90, window_days=30)
        return project.id


@pytest.fixture
def lung(casebank, make_user) -> dict[str, int]:
    """The project with three subjects: CB-S1 (site A, CT chest: QC passes), CB-S2 (site A, MR only:
    QC fails) and CB-S3 (site B, CT chest: QC passes)."""
    project_id = build_lung(casebank, make_user)
    return {
        "project": project_id,
        "s1": send(casebank, research_export("CB-S1")),
        "s2": send(casebank, research_export("CB-S2", series=(("MR", "MR brain"),))),
        "s3": send(casebank, research_export("CB-S3", site="B"), calling_ae="EDGE-B"),
    }


def make_cohort(casebank, lung, owner: str = "rita", filters: tuple[str, ...] = ("modality:CT",)) -> int:
    with casebank.database.session() as session:
        user = users.get_user(session, owner)
        project = projects.get_project(session, user, lung["project"])
        return cohorts.create_cohort(session, user, "CT baselines", project=project, filters=list(filters)).id


def main_of(page: str) -> str:
    """A page's content without its header (which carries the session's CSRF token)."""
    return page[page.index("<main>"):]


def subjects_in(page: str) -> list[str]:
    return re.findall(r'<tr data-subject="([^"]+)">', page)


def cell_of(page: str, submission_id: int) -> str:
    start = page.index(f'id="submission-{submission_id}"')
    return page[start:page.index("</td>", start)]


def submission_of(casebank, case_id: int) -> int:
    with casebank.database.session() as session:
        return session.scalars(select(TrialSubmission.id).where(TrialSubmission.case_id == case_id)).one()


def test_a_member_sees_the_project_page_the_matrix_and_a_cohort(client, casebank, lung):
    pid = lung["project"]
    cohort_id = make_cohort(casebank, lung)
    page_login(client, "rita")
    listing = client.get("/projects").text
    assert f'<a href="/projects/{pid}">lung</a>' in listing and "LUNG-01" in listing and "researcher" in listing
    assert 'aria-label="New project"' not in listing  # admins only
    assert '<a class="nav-link" href="/projects">Projects</a>' in client.get("/").text

    overview = client.get(f"/projects/{pid}")
    assert overview.status_code == 200
    page = overview.text
    assert "Lung screening" in page and "you are its <strong>researcher</strong>" in page
    assert '<tr data-member="pat">' in page and "principal investigator" in page and "site uploader" in page
    assert '<tr data-site="A"><td>A</td><td>Hospital A</td>' in page and "a@trial.example" in page and "EDGE-B" in page
    assert "<code>CT:*chest*</code>" in page and "± 30 days" in page
    assert f'href="/projects/{pid}/matrix"' in page and f'href="/projects/{pid}/search"' in page
    assert f'<a href="/cohorts/{cohort_id}">CT baselines</a>' in page
    assert 'aria-label="Add a member"' not in page and 'aria-label="Enrol a site"' not in page  # the PI's forms
    assert 'id="held"' not in page  # coordinators only

    matrix = client.get(f"/projects/{pid}/matrix").text
    assert subjects_in(matrix) == ["CB-S1", "CB-S2", "CB-S3"]
    s1, s2 = submission_of(casebank, lung["s1"]), submission_of(casebank, lung["s2"])
    assert "QC passed" in cell_of(matrix, s1) and f'href="/cases/{lung["s1"]}"' in cell_of(matrix, s1)
    assert "QC failed: expected series missing: CT with description &#39;*chest*&#39;" in cell_of(matrix, s2)
    assert 'class="qc qc-failed"' in matrix and 'class="qc qc-none" data-state="none"><span class="qc-words">not yet' in matrix
    assert 'class="qc-form"' not in matrix  # a researcher does not decide QC

    search = client.get(f"/projects/{pid}/search", params={"filter": "modality:CT"}).text
    assert "2 cases" in search and "CB-S1 · Baseline" in search and "CB-S2" not in search
    assert 'aria-label="Save as live cohort"' in search

    cohort = client.get(f"/cohorts/{cohort_id}").text
    assert "CT baselines" in cohort and '<span class="chip">Modality: CT</span>' in cohort
    assert f'<a href="/cases/{lung["s1"]}">CB-S1 · Baseline</a>' in cohort and f'/cases/{lung["s2"]}"' not in cohort
    assert "Not frozen yet" in cohort and 'aria-label="Freeze a version"' in cohort
    assert client.get(f"/cases/{lung['s1']}").status_code == 200  # the links lead somewhere


def test_the_search_page_saves_a_live_cohort(client, casebank, lung):
    pid = lung["project"]
    page_login(client, "rita")
    saved = client.post(f"/projects/{pid}/cohorts", data={"name": "CT chests", "q": "", "filter": ["modality:CT"]},
                        follow_redirects=False)
    assert saved.status_code == 303
    cohort_id = int(saved.headers["location"].rsplit("/", 1)[1])
    assert saved.headers["location"] == f"/cohorts/{cohort_id}"
    with casebank.database.session() as session:
        cohort = cohorts.get_cohort(session, users.get_user(session, "rita"), cohort_id)
        assert (cohort.project_id, cohort.filters, cohort.text) == (pid, ["modality:CT"], "")
    page = client.get(f"/cohorts/{cohort_id}").text
    assert "2 cases" in page and "CB-S3 · Baseline" in page

    page_login(client, "vic")  # a viewer looks but makes no cohorts
    search = client.get(f"/projects/{pid}/search").text
    assert "3 cases" in search and 'aria-label="Save as live cohort"' not in search
    refused = client.post(f"/projects/{pid}/cohorts", data={"name": "mine", "filter": ["modality:CT"]}, headers=HTML)
    assert refused.status_code == 403 and "vic may not make cohorts in project lung" in refused.text
    assert "3 cases" not in refused.text and "2 cases" in refused.text  # the same search, re-rendered


def test_non_members_and_admins_who_are_not_members_find_none_of_the_pages(client, casebank, lung):
    pid = lung["project"]
    cohort_id = make_cohort(casebank, lung)
    s2 = submission_of(casebank, lung["s2"])
    pages = [f"/projects/{pid}", "/projects/lung", f"/projects/{pid}/matrix", f"/projects/{pid}/matrix?site=A",
             f"/projects/{pid}/search", f"/projects/{pid}/search?q=CB-S1", f"/cohorts/{cohort_id}",
             f"/cohorts/{cohort_id}?from=1&to=live"]
    posts = [(f"/projects/{pid}/members", {"username": "olga", "role": "pi"}),
             (f"/projects/{pid}/members/rita/remove", {}),
             (f"/projects/{pid}/sites", {"site_id": "Z"}),
             (f"/projects/{pid}/time-points", {"code": "FU2"}),
             (f"/projects/{pid}/qc", {"submission_id": str(s2), "decision": "pass"}),
             (f"/projects/{pid}/cohorts", {"name": "stolen", "filter": "modality:CT"}),
             (f"/cohorts/{cohort_id}/versions", {"note": "stolen"})]
    page_login(client, "rita")
    assert client.get(f"/projects/{pid}").status_code == 200  # it is there, for its members
    missing = client.get("/projects/99999", headers=HTML)
    assert missing.status_code == 404
    for name in ("olga", "root"):
        page_login(client, name)
        for url in pages:
            response = client.get(url, headers=HTML)
            assert response.status_code == 404, (name, url)
            assert "<h1>Not Found</h1>" in response.text and "CB-S" not in response.text and "Hospital A" not in response.text
        assert main_of(client.get(f"/projects/{pid}", headers=HTML).text) == main_of(missing.text).replace("99999", str(pid))
        for url, data in posts:
            assert client.post(url, data=data, headers=HTML).status_code == 404, (name, url)
    with casebank.database.session() as session:  # nothing the refused forms asked for happened
        members = {m.user.username for m in session.scalars(select(ProjectMember).where(ProjectMember.project_id == pid))}
        assert members == {"pat", "rita", "cora", "ulla", "vic"}
        assert session.get(TrialSubmission, s2).state is QcState.FAILED
        assert session.scalars(select(CohortVersion)).all() == []
    page_login(client, "olga")
    assert "lung" not in client.get("/projects").text
    page_login(client, "root")
    listing = client.get("/projects").text
    assert '<tr data-project="lung">' in listing and "not a member" in listing and f'href="/projects/{pid}"' not in listing


def test_the_home_page_does_not_list_the_projects_folders_to_a_non_member(client, casebank, lung):
    page_login(client, "rita")
    assert "Project lung" in client.get("/").text  # a member sees the collection among her folders
    for name in ("olga", "root"):
        page_login(client, name)
        home = client.get("/").text
        assert "Project lung" not in home and "CB-S1" not in home and "Held" not in home
        found = client.get("/search", params={"q": "CB-S1"}).text
        assert '<p class="total">0 cases for “CB-S1”</p>' in found and "CB-S1 · Baseline" not in found


def test_the_pi_adds_changes_and_removes_a_member_through_the_forms(client, casebank, lung):
    pid = lung["project"]
    page_login(client, "pat")
    page = client.get(f"/projects/{pid}").text
    assert 'aria-label="Add a member"' in page and 'aria-label="Enrol a site"' in page and 'aria-label="Define a time point"' in page
    added = client.post(f"/projects/{pid}/members", data={"username": "nina", "role": "viewer", "site": ""},
                        follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == f"/projects/{pid}#members"
    page = client.get(f"/projects/{pid}").text
    assert re.search(r'<tr data-member="nina">\s*<td>Dr Nina <small>\(nina\)</small></td>\s*<td>viewer</td>', page)

    changed = client.post(f"/projects/{pid}/members", data={"username": "nina", "role": "site_uploader", "site": "B",
                                                             "form": "member:nina"}, follow_redirects=False)
    assert changed.status_code == 303
    assert re.search(r'<tr data-member="nina">\s*<td>[^<]*<small>\(nina\)</small></td>\s*<td>site uploader</td>\s*<td>B</td>',
                     client.get(f"/projects/{pid}").text)
    client.post(f"/projects/{pid}/sites", data={"site_id": "C", "name": "Hospital C", "contact_email": "c@trial.example",
                                                "ae_titles": "EDGE-C, EDGE-C2"})
    client.post(f"/projects/{pid}/time-points", data={"code": "FU2", "label": "Follow-up 2", "day": "180",
                                                      "window_days": "30", "expected_series": "CT:*chest*, MR"})
    page = client.get(f"/projects/{pid}").text
    assert '<tr data-site="C"><td>C</td><td>Hospital C</td>' in page and "EDGE-C, EDGE-C2" in page
    assert '<tr data-time-point="FU2">' in page and "<code>CT:*chest*</code>, <code>MR</code>" in page

    removed = client.post(f"/projects/{pid}/members/nina/remove", follow_redirects=False)
    assert removed.status_code == 303 and 'data-member="nina"' not in client.get(f"/projects/{pid}").text
    with casebank.database.session() as session:
        project = session.get_one(projects.Project, pid)
        assert "nina" not in {m.user.username for m in projects.members_of(session, project)}
        assert [s.site_id for s in projects.sites_of(session, project)] == ["A", "B", "C"]
        point = projects.time_points_of(session, project)[-1]
        assert (point.code, point.day, point.window_days) == ("FU2", 180, 30)
        assert point.expected_series == [{"modality": "CT", "description": "*chest*"}, {"modality": "MR", "description": "*"}]

    page_login(client, "cora")  # a coordinator checks submissions but does not manage members
    page = client.get(f"/projects/{pid}").text
    assert 'aria-label="Add a member"' not in page and 'id="held"' in page
    refused = client.post(f"/projects/{pid}/members", data={"username": "nina", "role": "viewer"}, headers=HTML)
    assert refused.status_code == 403 and "cora may not add members in project lung" in refused.text
    assert 'data-member="nina"' not in refused.text


def test_a_refused_form_shows_the_message_beside_it_and_keeps_what_was_typed(client, casebank, lung):
    pid = lung["project"]
    page_login(client, "pat")
    bad = client.post(f"/projects/{pid}/members", data={"username": "nobody", "role": "coordinator"}, headers=HTML)
    assert bad.status_code == 422
    page = bad.text
    form = page[page.index('aria-label="Add a member"'):]
    form = form[:form.index("</form>")]
    assert "no user named &#39;nobody&#39;" in page[page.index("<h3>Add a member</h3>"):page.index('aria-label="Add a member"')]
    assert 'name="username" required maxlength="64" value="nobody"' in form
    assert '<option value="coordinator" selected>' in form
    assert "Lung screening" in page and '<tr data-member="rita">' in page  # the whole page, not an error page

    uploader = client.post(f"/projects/{pid}/members", data={"username": "nina", "role": "site uploader"}, headers=HTML)
    assert uploader.status_code == 422 and "a site uploader sends for one site: name it" in uploader.text

    point = client.post(f"/projects/{pid}/time-points", headers=HTML, data={
        "code": "FU2", "label": "Follow-up 2", "day": "ninety", "window_days": "30", "expected_series": "CT:*chest*"})
    assert point.status_code == 422 and "day &#39;ninety&#39; must be a whole number of days" in point.text
    assert 'value="Follow-up 2"' in point.text and 'value="ninety"' in point.text
    series = client.post(f"/projects/{pid}/time-points", headers=HTML, data={"code": "FU2", "expected_series": "C-T chest"})
    assert series.status_code == 422 and "must look like MODALITY or MODALITY:DESCRIPTION-PATTERN" in series.text
    assert 'value="C-T chest"' in series.text
    site = client.post(f"/projects/{pid}/sites", headers=HTML, data={"site_id": "D", "ae_titles": "A-VERY-LONG-AE-TITLE-X"})
    assert site.status_code == 422 and "must be 1-16 characters" in site.text and 'value="A-VERY-LONG-AE-TITLE-X"' in site.text
    with casebank.database.session() as session:
        project = session.get_one(projects.Project, pid)
        assert [p.code for p in projects.time_points_of(session, project)] == ["baseline", "FU1"]
        assert [s.site_id for s in projects.sites_of(session, project)] == ["A", "B"]

    page_login(client, "root")  # the admin's new-project form
    taken = client.post("/projects", headers=HTML, data={"name": "liver", "protocol_id": "LUNG-01", "title": "Liver",
                                                          "principal_investigator": "pat"})
    assert taken.status_code == 422 and "protocol ID LUNG-01 already belongs to another project" in taken.text
    assert 'value="liver"' in taken.text and 'value="Liver"' in taken.text and 'value="pat"' in taken.text
    made = client.post("/projects", data={"name": "liver", "protocol_id": "LIVER-01", "principal_investigator": "pat"},
                       follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/projects"  # root is not a member
    page_login(client, "pat")
    assert "liver" in client.get("/projects").text


def test_the_matrix_site_filter_narrows_the_rows_and_a_coordinator_decides_qc(client, casebank, lung):
    pid = lung["project"]
    s1, s2 = submission_of(casebank, lung["s1"]), submission_of(casebank, lung["s2"])
    page_login(client, "cora")
    everything = client.get(f"/projects/{pid}/matrix").text
    assert subjects_in(everything) == ["CB-S1", "CB-S2", "CB-S3"]
    only_b = client.get(f"/projects/{pid}/matrix", params={"site": "B"}).text
    assert subjects_in(only_b) == ["CB-S3"] and '<option value="B" selected>' in only_b and "at site B" in only_b
    assert subjects_in(client.get(f"/projects/{pid}/matrix", params={"site": "A"}).text) == ["CB-S1", "CB-S2"]
    assert 'class="qc-form"' in cell_of(everything, s2) and 'class="qc-form"' not in cell_of(everything, s1)

    short = client.post(f"/projects/{pid}/qc", headers=HTML, data={"submission_id": str(s2), "decision": "fail",
                                                                   "reason": "bad", "site": "A"})
    assert short.status_code == 422 and subjects_in(short.text) == ["CB-S1", "CB-S2"]
    cell = cell_of(short.text, s2)
    assert "a failed QC needs a reason the site can act on" in cell and 'value="bad"' in cell

    passed = client.post(f"/projects/{pid}/qc", data={"submission_id": str(s2), "decision": "pass", "site": "A"},
                         follow_redirects=False)
    assert passed.status_code == 303 and passed.headers["location"] == f"/projects/{pid}/matrix?site=A#submission-{s2}"
    assert "QC passed" in cell_of(client.get(f"/projects/{pid}/matrix").text, s2)
    with casebank.database.session() as session:
        entry = session.get(TrialSubmission, s2)
        assert entry.state is QcState.PASSED and entry.decided_by == "cora"

    page_login(client, "rita")
    refused = client.post(f"/projects/{pid}/qc", headers=HTML, data={"submission_id": str(s1), "decision": "fail",
                                                                     "reason": "motion artefact"})
    assert refused.status_code == 403 and "rita may not decide QC in project lung" in refused.text
    page_login(client, "ulla")  # a site uploader is a member, but sees no submissions
    assert client.get(f"/projects/{pid}", headers=HTML).status_code == 200
    assert client.get(f"/projects/{pid}/matrix", headers=HTML).status_code == 403


def test_freezing_through_the_form_creates_version_1_and_the_diff_shows_what_arrived_later(client, casebank, lung):
    cohort_id = make_cohort(casebank, lung)
    page_login(client, "rita")
    frozen = client.post(f"/cohorts/{cohort_id}/versions", data={"note": "for the abstract"}, follow_redirects=False)
    assert frozen.status_code == 303 and frozen.headers["location"] == f"/cohorts/{cohort_id}#version-1"
    with casebank.database.session() as session:
        [version] = session.scalars(select(CohortVersion).where(CohortVersion.cohort_id == cohort_id)).all()
        assert version.number == 1 and version.note == "for the abstract"
        assert sorted(e["case_id"] for e in version.entries) == sorted([lung["s1"], lung["s3"]])
    page = client.get(f"/cohorts/{cohort_id}").text
    row = page[page.index('<tr id="version-1"'):]
    row = row[:row.index("</tr>")]
    assert re.search(r"<td>1</td><td>Dr Rita <small>\(rita\)</small></td>", row)
    assert "<td>2</td><td>4</td><td>for the abstract</td>" in row  # per case: the CT image and the export's manifest
    assert f'<a href="/api/cohorts/{cohort_id}/versions/1/export">Download (DICOMDIR + CSV + FHIR)</a>' in row

    later = send(casebank, research_export("CB-S4"))  # a case arrives after freezing
    changes = client.get(f"/cohorts/{cohort_id}", params={"from": "1", "to": "live"}).text
    section = changes[changes.index('id="changes"'):]
    assert "From version 1 to the live cohort" in section and "Added (1)" in section and "Removed" not in section
    assert f'<a href="/cases/{later}">CB-S4 · Baseline</a>' in section
    client.post(f"/cohorts/{cohort_id}/versions", data={"note": ""})
    same = client.get(f"/cohorts/{cohort_id}", params={"from": "2", "to": "live"}).text
    assert "No change." in same
    between = client.get(f"/cohorts/{cohort_id}", params={"from": "1", "to": "2"}).text
    assert "From version 1 to version 2" in between and f'/cases/{later}">CB-S4' in between
    missing = client.get(f"/cohorts/{cohort_id}", params={"from": "7", "to": "live"})
    assert missing.status_code == 200 and f"cohort {cohort_id} has no version 7" in missing.text

    page_login(client, "vic")  # a viewer sees the cohort but freezes nothing
    page = client.get(f"/cohorts/{cohort_id}").text
    assert 'aria-label="Freeze a version"' not in page and '<tr id="version-2"' in page
    refused = client.post(f"/cohorts/{cohort_id}/versions", data={"note": "mine"}, headers=HTML)
    assert refused.status_code == 403 and "vic may not freeze cohorts in project lung" in refused.text
    assert '<tr id="version-3"' not in refused.text and html.escape("CB-S4 · Baseline") in refused.text
