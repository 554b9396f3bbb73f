"""The edge's own web page: a TCE Export Selector for PACS that lack one (find a study, pick what
to send, fill the teaching-file form), the preview a person confirms before anything leaves,
what is held and why, and what waits in the outbox."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from ingest.deid.pixels import PixelCleaningFailed, Region
from ingest.edge.files import write_durably
from ingest.edge.pacs import PacsError
from ingest.edge.preview import (
    KEPT,
    SOURCES,
    preview_images,
    render_after,
    render_before,
    report_texts,
)
from ingest.edge.selections import SelectionError
from ingest.edge.selector import DELAY_REASONS, ExportForm, SelectionFormError, compose
from ingest.edge.service import Edge
from ingest.edge.users import EdgeUser
from ingest.validation import read_complete
from ui import STATIC, TEMPLATES

from . import csrf
from .headers import SecurityHeaders

templates = Jinja2Templates(directory=str(TEMPLATES))
csrf.install_globals(templates.env)
SESSION_USER = "edge_user"
LOGIN = {"layout": "edge_base.html", "heading": "Export manager: log in"}


class LoginRequired(Exception):
    pass


def current_user(request: Request) -> EdgeUser:
    user = request.app.state.edge.users.get(request.session.get(SESSION_USER, ""))
    if user is None:
        raise LoginRequired
    return user


User = Annotated[EdgeUser, Depends(current_user)]


def _secret(edge: Edge) -> str:
    """The session-signing secret, made once per edge and kept in its data folder."""
    path = edge.config.data / "session-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, secrets.token_hex(32).encode())
    return path.read_text().strip()


async def verify_csrf(request: Request) -> None:
    """Forms of the edge's pages carry the session's CSRF token; another origin's posts are refused."""
    try:
        await csrf.verify(request, None)
    except csrf.CsrfRefused as exc:
        raise HTTPException(403, str(exc)) from exc


def create_edge_app(edge: Edge) -> FastAPI:
    app = FastAPI(title="Casebank edge", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None,
                  dependencies=[Depends(verify_csrf)])
    app.add_middleware(SessionMiddleware, secret_key=_secret(edge), session_cookie="casebank_edge", same_site="strict")
    app.add_middleware(SecurityHeaders, https=False)  # the archive's CSP: no inline scripts on the edge's pages either

    app.state.edge = edge

    @app.exception_handler(LoginRequired)
    def to_login(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return Response('{"title": "Log in first", "status": 401}', 401, media_type="application/problem+json")
        return RedirectResponse(f"/login?next={request.url.path}", 303)

    def page(request: Request, name: str, user: EdgeUser | None, status_code: int = 200, **context: object) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": user, "edge": edge, **context}, status_code=status_code)

    def status() -> dict[str, object]:
        outbox = edge.outbox.state()
        return {
            "ae_title": edge.config.ae_title,
            "archive": f"{edge.config.archive.ae_title}@{edge.config.archive.host}:{edge.config.archive.port}",
            "pacs": str(edge.pacs) if edge.pacs else None,
            "outbox": {**asdict(outbox), "refused": edge.outbox.refused()},
            "selections": [
                {"manifest": s.manifest_uid, "state": s.state, "note": s.note, "objects": len(s.references) + 1,
                 **({"title": s.title, "author": s.author, "destination": s.destination} if s.title else {})}
                for s in edge.manager.selections()
            ],
        }

    # --- Login -----------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", None, next=next, **LOGIN)

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()],
              next: Annotated[str, Form()] = "/") -> Response:
        user = edge.users.authenticate(username.strip(), password)
        if user is None:
            return page(request, "login.html", None, 401, next=next, error="Wrong user name or password.", **LOGIN)
        request.session[SESSION_USER] = user.username
        return RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", 303)

    @app.get("/api/session/csrf", include_in_schema=False)
    def csrf_token(request: Request) -> dict[str, str]:
        """This browser session's CSRF token (the pages carry it in their forms)."""
        return {"csrf_token": csrf.csrf_token(request)}

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", 303)

    # --- Status ----------------------------------------------------------------------------------

    @app.get("/api/edge/status")
    def edge_status(_user: User) -> dict[str, object]:
        """Selections with their state (waiting, review, held with its reason, released, failed) and the outbox."""
        return status()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def edge_page(request: Request, user: User) -> HTMLResponse:
        return page(request, "edge.html", user, status=status())

    # --- Export selector -------------------------------------------------------------------------

    def pacs_or_404():  # type: ignore[no-untyped-def]
        if edge.pacs is None:
            raise HTTPException(404, "No PACS is configured for this edge (casebank edge run --pacs AE@HOST:PORT).")
        return edge.pacs

    @app.get("/studies", response_class=HTMLResponse, include_in_schema=False)
    def find_studies(request: Request, user: User, patient_id: str = "", patient_name: str = "",
                     accession: str = "") -> HTMLResponse:
        query = {"patient_id": patient_id.strip(), "patient_name": patient_name.strip(), "accession": accession.strip()}
        if not any(query.values()):
            return page(request, "edge_studies.html", user, query=query, studies=None,
                        error="Give a patient ID, a name or an accession number.")
        name = query["patient_name"]
        if name and "*" not in name:
            name = name.replace(" ", "^") + "*"
        try:
            studies = pacs_or_404().find_studies(patient_id=query["patient_id"], patient_name=name,
                                                 accession=query["accession"])
        except PacsError as exc:
            return page(request, "edge_studies.html", user, 502, query=query, studies=None, error=str(exc))
        return page(request, "edge_studies.html", user, query=query, studies=studies)

    @app.get("/studies/{study_uid}", response_class=HTMLResponse, include_in_schema=False)
    def study_page(request: Request, user: User, study_uid: str, series: str = "") -> HTMLResponse:
        return study_view(request, user, study_uid, open_series=series)

    def study_view(request: Request, user: EdgeUser, study_uid: str, *, open_series: str = "",
                   form: ExportForm | None = None, error: str = "", status_code: int = 200) -> HTMLResponse:
        """The study with its series (and one series' images) and the export form; a PACS that
        does not answer is shown as an error on the page (502)."""
        pacs = pacs_or_404()
        try:
            study = next(iter(pacs.find_studies(study_uid=study_uid)), None)
            rows = pacs.find_series(study_uid)
            images = pacs.find_instances(study_uid, open_series) if open_series else []
        except PacsError as exc:
            study, rows, images, error, status_code = None, [], [], error or str(exc), 502
        return page(request, "edge_study.html", user, status_code, study=study, study_uid=study_uid, series=rows,
                    open_series=open_series, images=images, delays=DELAY_REASONS, projects=edge.projects(),
                    form=form or {}, error=error)

    @app.get("/studies/{study_uid}/series/{series_uid}/images", include_in_schema=False)
    def series_images(_user: User, study_uid: str, series_uid: str) -> list[dict[str, str]]:
        """The images of one series, for picking single images on the study page."""
        try:
            rows = pacs_or_404().find_instances(study_uid, series_uid)
        except PacsError as exc:
            raise HTTPException(502, str(exc)) from exc
        return [{"sop_uid": r.sop_uid, "number": r.number} for r in rows]

    @app.post("/studies/{study_uid}/export", include_in_schema=False)
    def export(request: Request, user: User, study_uid: str,
               title: Annotated[str, Form()] = "", history: Annotated[str, Form()] = "",
               findings: Annotated[str, Form()] = "", differential: Annotated[str, Form()] = "",
               diagnosis: Annotated[str, Form()] = "", discussion: Annotated[str, Form()] = "",
               keywords: Annotated[str, Form()] = "", destination: Annotated[str, Form()] = "personal",
               folder: Annotated[str, Form()] = "", project: Annotated[str, Form()] = "", time_point: Annotated[str, Form()] = "",
               delay_reason: Annotated[str, Form()] = "",
               series: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI reads it, never mutates it)
               image: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006
        """Fetch what was ticked (nothing ticked: the whole study), write the ATFI report and the
        manifest, and open the preview."""
        pacs = pacs_or_404()
        form = ExportForm(
            title=title, history=history, findings=findings, differential=differential, diagnosis=diagnosis,
            discussion=discussion, keywords=tuple(keywords.replace(";", ",").split(",")),
            destination=destination, folder=folder, project=project, time_point=time_point, delay_reason=delay_reason,
        )
        picks: dict[str, list[str]] = {uid: [] for uid in series}
        for pick in image:  # "SERIES_UID/SOP_UID"
            series_uid, _, sop_uid = pick.partition("/")
            if series_uid not in series:
                picks.setdefault(series_uid, []).append(sop_uid)
        try:
            form.check(edge.projects())
            objects = compose(pacs.retrieve(study_uid, picks), form, user)
            selection = edge.manager.submit(objects, title=form.title.strip(), author=f"{user.readable_name} (GMC {user.gmc})",
                                            destination=form.destination_text)
        except PacsError as exc:
            return study_view(request, user, study_uid, form=form, error=str(exc), status_code=502)
        except (SelectionFormError, SelectionError) as exc:
            return study_view(request, user, study_uid, form=form, error=str(exc), status_code=400)
        return RedirectResponse(f"/selections/{selection.manifest_uid}", 303)

    # --- Preview and confirmation ----------------------------------------------------------------

    def selection_or_404(manifest_uid: str):  # type: ignore[no-untyped-def]
        try:
            return edge.manager.get(manifest_uid)
        except SelectionError as exc:
            raise HTTPException(404, str(exc)) from exc

    @app.get("/selections/{manifest_uid}", response_class=HTMLResponse, include_in_schema=False)
    def preview_page(request: Request, user: User, manifest_uid: str, error: str = "") -> HTMLResponse:
        selection = selection_or_404(manifest_uid)
        objects = [read_complete(edge.manager.object_path(uid).read_bytes()) for uid in selection.references
                   if edge.manager.object_path(uid).is_file()]
        images = preview_images(selection, edge.manager.object_path)
        return page(request, "edge_preview.html", user, selection=selection, images=images,
                    cleaned=[i for i in images if i.cleaned], unchanged=[i for i in images if not i.cleaned],
                    legend=[*SOURCES.values(), KEPT], texts=report_texts(objects, edge.manager.profile), error=error)

    def image_of(manifest_uid: str, sop_uid: str):  # type: ignore[no-untyped-def]
        selection = selection_or_404(manifest_uid)
        if sop_uid not in selection.references or not edge.manager.object_path(sop_uid).is_file():
            raise HTTPException(404, f"image {sop_uid} is not part of this selection")
        return selection, edge.manager.object_path(sop_uid)

    def png(content: bytes) -> Response:  # identified pixels: never kept by the browser
        return Response(content, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/selections/{manifest_uid}/images/{sop_uid}/before.png", include_in_schema=False)
    def image_before(_user: User, manifest_uid: str, sop_uid: str) -> Response:
        """The original first frame with the rectangles outlined; it never leaves the edge."""
        selection, path = image_of(manifest_uid, sop_uid)
        return png(render_before(path, selection.regions_of(sop_uid), selection.kept_of(sop_uid)))

    @app.get("/selections/{manifest_uid}/images/{sop_uid}/after.png", include_in_schema=False)
    def image_after(_user: User, manifest_uid: str, sop_uid: str) -> Response:
        """The first frame as it will leave, cleaned with the current rectangles."""
        selection, path = image_of(manifest_uid, sop_uid)
        record = selection.cleaning.get(sop_uid)
        regions = selection.regions_of(sop_uid) if record is None or record.scanned else []
        try:
            return png(render_after(path, regions))
        except PixelCleaningFailed as exc:
            raise HTTPException(422, f"this image cannot be cleaned: {exc}") from exc

    @app.post("/selections/{manifest_uid}/images/{sop_uid}/regions", include_in_schema=False)
    def edit_regions(user: User, manifest_uid: str, sop_uid: str,
                     keep: Annotated[list[int], Form()] = [],  # noqa: B006
                     add: Annotated[str, Form()] = "") -> Response:
        """Keep the ticked rectangles and add one written ``x,y,width,height``."""
        selection = selection_or_404(manifest_uid)
        current = selection.regions_of(sop_uid)
        regions = [current[i] for i in sorted(set(keep)) if 0 <= i < len(current)]
        try:
            if add.strip():
                x, y, w, h = (int(v) for v in add.replace(" ", "").split(","))
                regions.append(Region(x=x, y=y, width=w, height=h, source="user", text=f"added by {user.username}"))
            edge.manager.set_regions(manifest_uid, sop_uid, regions)
        except (ValueError, SelectionError) as exc:
            return RedirectResponse(f"/selections/{manifest_uid}?error={exc}", 303)
        return RedirectResponse(f"/selections/{manifest_uid}#image-{sop_uid}", 303)

    @app.post("/selections/{manifest_uid}/confirm", include_in_schema=False)
    def confirm(user: User, manifest_uid: str) -> Response:
        try:
            edge.manager.confirm(manifest_uid, f"{user.readable_name} (GMC {user.gmc})")
        except SelectionError as exc:
            return RedirectResponse(f"/selections/{manifest_uid}?error={exc}", 303)
        return RedirectResponse("/", 303)

    @app.post("/selections/{manifest_uid}/discard", include_in_schema=False)
    def discard(user: User, manifest_uid: str) -> Response:
        try:
            edge.manager.discard(manifest_uid, user.username)
        except SelectionError as exc:
            return RedirectResponse(f"/selections/{manifest_uid}?error={exc}", 303)
        return RedirectResponse("/", 303)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
