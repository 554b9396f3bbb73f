"""The real OHIF v3 viewer (the prebuilt app of the npm package @ohif/app, `make ohif`) served from
another origin, pointed at a live archive over DICOMweb with a bearer token, in Debian's headless
Chromium: the study list shows the demo studies and the viewer draws each of them, with WADO-RS and
with WADO-URI image loading, and not one request fails."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from archive import users

from .. import dicom_data
from ..ingest.test_tce_receiver import teaching
from ..peers import LiveServer, free_port
from ..senders import register_ae
from .test_viewer import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.peers]

ROOT = Path(__file__).resolve().parents[2]
OHIF_DIST = ROOT / ".cache" / "ohif" / "node_modules" / "@ohif" / "app" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "ohif"

# every canvas on the page: the largest share of lit pixels (a viewport with an image drawn)
LIT_CANVAS = """() => {
  let best = 0;
  for (const canvas of document.querySelectorAll('canvas')) {
    if (!canvas.width || !canvas.height) continue;
    let data;
    try { data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data; }
    catch (e) { continue; }
    let lit = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 24) lit += 1;
    best = Math.max(best, lit / (data.length / 4));
  }
  return best;
}"""

# The OHIF data source has no bearer-token setting of its own (requestOptions.auth is not read by
# the DICOMweb data source): an extension defined inline sets the user authentication service's
# Authorization header, which OHIF sends on QIDO, WADO-RS, WADO-URI and thumbnail requests.
APP_CONFIG = """window.config = {
  routerBasename: '/',
  extensions: [{
    id: 'casebank-bearer-token',
    preRegistration: ({ servicesManager }) => {
      servicesManager.services.userAuthenticationService.setServiceImplementation({
        getAuthorizationHeader: () => ({ Authorization: 'Bearer ' + %(token)s }),
      });
    },
  }],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  investigationalUseDialog: { option: 'never' },
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 25 },
  showErrorDetails: 'always',
  defaultDataSourceName: 'casebank',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'casebank',
    configuration: {
      friendlyName: 'Casebank',
      name: 'casebank',
      qidoRoot: %(root)s,
      wadoRoot: %(root)s,
      wadoUriRoot: %(root)s,
      qidoSupportsIncludeField: true,
      imageRendering: %(rendering)s,
      thumbnailRendering: %(thumbnails)s,
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: { enabled: true },
      omitQuotationForMultipartRequest: true,
    },
  }],
};
"""


class _OhifHandler(http.server.SimpleHTTPRequestHandler):
    """The app's static files, our app-config.js, and index.html for the app's own routes."""

    app_config = b""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/app-config.js":
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Content-Length", str(len(self.app_config)))
            self.end_headers()
            self.wfile.write(self.app_config)
            return
        if not (OHIF_DIST / path.lstrip("/")).is_file():
            self.path = "/index.html"  # the SPA's routes: /, /viewer?StudyInstanceUIDs=...
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


class OhifServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        handler = type("Handler", (_OhifHandler,), {})
        self.handler = handler
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), functools.partial(handler, directory=str(OHIF_DIST)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def configure(self, root: str, token: str, rendering: str, thumbnails: str) -> None:
        values = {"root": root, "token": token, "rendering": rendering, "thumbnails": thumbnails}
        self.handler.app_config = (APP_CONFIG % {k: json.dumps(v) for k, v in values.items()}).encode()

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The browser exercises OHIF against the API, not the database: SQLite only."""
    return f"sqlite:///{tmp_path / 'casebank.sqlite3'}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not (OHIF_DIST / "index.html").is_file():
        pytest.fail("the OHIF app is missing: run `make ohif` (npm ci of tests/ohif into .cache/ohif)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nOHIF screenshots in {ARTIFACTS}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def ohif_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings, ohif_port):  # type: ignore[no-untyped-def]
    """The archive allows OHIF's origin (another port is another origin: CORS is exercised)."""
    return settings.model_copy(update={"cors_origins": f"http://127.0.0.1:{ohif_port}"})


DEMO = (
    (("CT_small.dcm", "CT_small.dcm"), "CT chest"),
    (("MR_small.dcm",), "MR knee"),
    (("SC_rgb_jpeg_dcmtk.dcm",), "JPEG photograph"),
)


@pytest.fixture
def demo(casebank, live, make_user):  # type: ignore[no-untyped-def]
    """Demo studies sent as TCE exports over DICOM through the real intake, and alice's token."""
    make_user("alice")
    studies = []
    for files, description in DEMO:
        images = dicom_data.study(list(files), description=description)
        report, manifest = dicom_data.tce_export(images, teaching())
        send(live, [*images, report, manifest])
        studies.append(images[0])
    with casebank.database.session() as db:
        token = users.issue_token(db, users.get_user(db, "alice"))
    return studies, token


def send(live: LiveServer, objects: list) -> None:
    """C-STORE from a trusted PACS, each object offered in its own transfer syntax (JPEG too)."""
    from pynetdicom import AE

    register_ae(live.casebank, "PACS1", "pacs", host="127.0.0.1")
    ae = AE(ae_title="PACS1")
    for sop_class, syntax in sorted({(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in objects}):
        ae.add_requested_context(sop_class, syntax)
    association = ae.associate("127.0.0.1", live.dicom_port, ae_title=live.ae_title)
    assert association.is_established
    try:
        assert [association.send_c_store(ds).Status for ds in objects] == [0] * len(objects)
    finally:
        association.release()


def watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"failed {r.method} {r.url}: {r.failure}"))
    return failed


@pytest.mark.parametrize("rendering,thumbnails", [("wadors", "thumbnail"), ("wadouri", "wadors")])
def test_ohif_lists_and_draws_every_demo_study(chromium, demo, live: LiveServer, ohif_port, rendering, thumbnails):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    studies, token = demo
    with OhifServer(ohif_port) as ohif:
        ohif.configure(f"{live.url}/dicomweb", token, rendering, thumbnails)
        context = chromium.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        failed, errors, asked = watch(page), [], []
        page.on("request", lambda r: asked.append(r.url) if r.url.startswith(live.url) else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{ohif.url}/")
        for ds in studies:
            page.get_by_text(str(ds.StudyDescription), exact=True).first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / f"{rendering}-study-list.png"))
        assert failed == [], failed

        for number, ds in enumerate(studies, start=1):
            page.goto(f"{ohif.url}/viewer?StudyInstanceUIDs={ds.StudyInstanceUID}")
            try:
                page.wait_for_function(f"() => ({LIT_CANVAS})() > 0.02", timeout=60_000)
            except PlaywrightTimeout:
                page.screenshot(path=str(ARTIFACTS / f"{rendering}-study-{number}-failed.png"))
                raise AssertionError(f"{ds.StudyDescription}: nothing drawn; failed requests {failed}, "
                                     f"page errors {errors}") from None
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / f"{rendering}-study-{number}.png"))
            assert failed == [], (ds.StudyDescription, failed)
        context.close()
    assert failed == [], failed
    root = f"{live.url}/dicomweb"
    if rendering == "wadouri":  # images as OHIF builds WADO-URI: {wadoUriRoot}?requestType=WADO&...
        assert any(url.startswith(f"{root}?requestType=WADO&") for url in asked), asked
        assert not any("/frames/" in url for url in asked), asked
    else:
        assert any("/frames/" in url for url in asked), asked
        assert any("/thumbnail?accept=image%2Fjpeg" in url for url in asked), asked  # PS3.18 8.3.3.1
