from fastapi import APIRouter
from sqlalchemy import text

from ..deps import CasebankDep

router = APIRouter(tags=["health"])


@router.get("/api/health")
def health(cb: CasebankDep) -> dict[str, object]:
    """Liveness and readiness: the database answers."""
    with cb.database.session() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "database": cb.database.engine.dialect.name, "ae_title": cb.settings.ae_title}
