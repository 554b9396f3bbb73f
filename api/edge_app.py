"""The edge's own web page: what is held and why, and what waits in the outbox."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ingest.edge.service import Edge
from ui import STATIC, TEMPLATES

templates = Jinja2Templates(directory=str(TEMPLATES))


def create_edge_app(edge: Edge) -> FastAPI:
    app = FastAPI(title="Casebank edge", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)

    def status() -> dict[str, object]:
        outbox = edge.outbox.state()
        return {
            "ae_title": edge.config.ae_title,
            "archive": f"{edge.config.archive.ae_title}@{edge.config.archive.host}:{edge.config.archive.port}",
            "outbox": {**asdict(outbox), "refused": edge.outbox.refused()},
            "selections": [
                {"manifest": s.manifest_uid, "state": s.state, "note": s.note, "objects": len(s.references) + 1}
                for s in edge.manager.selections()
            ],
        }

    @app.get("/api/edge/status")
    def edge_status() -> dict[str, object]:
        """Selections with their state (waiting, held with its reason, released, failed) and the outbox."""
        return status()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def edge_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "edge.html", {"status": status(), "user": None})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
