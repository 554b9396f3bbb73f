"""A trial coordinator's matrix in Debian's headless Chromium: three subjects from two sites, one
failing QC; she opens the matrix, reads each cell's state in words, narrows it to site B with the
site filter, and passes the failed submission with its own form. Screenshots go to
test-artifacts/projects/."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..peers import LiveServer
from .test_browser_scenario import logged_in
from .test_project_pages import build_lung, research_export, send
from .test_viewer import CHROMIUM, CHROMIUM_ARGS, chromium, database_url  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.peers]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "projects"


def test_a_coordinator_reads_the_matrix_filters_it_by_site_and_passes_a_failed_submission(casebank, make_user, chromium):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    project_id = build_lung(casebank, make_user)
    send(casebank, research_export("CB-S1"))
    send(casebank, research_export("CB-S1", time_point="FU1", study_date="20250412"))
    send(casebank, research_export("CB-S2", series=(("MR", "MR brain"),)))  # no CT chest: QC fails
    send(casebank, research_export("CB-S3", site="B"), calling_ae="EDGE-B")
    send(casebank, research_export("CB-S4", site="B", time_point="week-2"), calling_ae="EDGE-B")  # not in the protocol
    with LiveServer(casebank) as live:
        cora = logged_in(chromium, live, "cora")
        cora.click("header a:text-is('Projects')")
        cora.click("a:text-is('lung')")
        cora.wait_for_url(f"{live.url}/projects/{project_id}")
        cora.screenshot(path=str(SHOTS / "0-project.png"), full_page=True)
        cora.click("a:text-is('Submissions by subject and time point')")
        cora.wait_for_url(f"{live.url}/projects/{project_id}/matrix")
        rows = cora.locator("table.matrix tbody tr")
        assert [rows.nth(i).get_attribute("data-subject") for i in range(rows.count())] == ["CB-S1", "CB-S2", "CB-S3", "CB-S4"]
        s2 = cora.locator("tr[data-subject='CB-S2'] td.qc").first
        assert s2.locator(".qc-words").inner_text().startswith("QC failed: expected series missing: CT")
        assert cora.locator("tr[data-subject='CB-S1'] td.qc").nth(1).locator(".qc-words").inner_text() == "QC passed"
        assert cora.locator("tr[data-subject='CB-S3'] td.qc").nth(1).inner_text() == "not yet"
        colours = {cell.get_attribute("data-state"): cell.evaluate("c => getComputedStyle(c).backgroundColor")
                   for cell in cora.locator("td.qc").all()}
        assert len({colours["passed"], colours["failed"]}) == 2  # the state shows in colour as well as in words
        cora.screenshot(path=str(SHOTS / "1-matrix.png"), full_page=True)

        cora.select_option("form[aria-label='Filter by site'] select[name=site]", "B")
        cora.click("form[aria-label='Filter by site'] button")
        cora.wait_for_url(f"{live.url}/projects/{project_id}/matrix?site=B")
        assert cora.locator("table.matrix tbody tr").count() == 2
        assert cora.locator("tr[data-subject='CB-S1']").count() == 0
        assert "2 subjects at site B" in cora.inner_text(".total")
        cora.screenshot(path=str(SHOTS / "2-matrix-site-B.png"), full_page=True)

        cora.goto(f"{live.url}/projects/{project_id}/matrix?site=A")
        cell = cora.locator("tr[data-subject='CB-S2'] td.qc").first
        cell.locator("button:text-is('Pass')").click()
        cora.wait_for_url(lambda url: "/matrix?site=A#submission-" in url)
        assert cora.locator("tr[data-subject='CB-S2'] td.qc").first.locator(".qc-words").inner_text() == "QC passed"
        cora.screenshot(path=str(SHOTS / "3-matrix-passed.png"), full_page=True)
