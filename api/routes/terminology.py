"""Code lookup and autocomplete for people editing cases, and the FHIR terminology operations.

FHIR system URIs and implicit value set URLs are those of :mod:`terminology.fhir`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from archive.errors import NotFound
from terminology import Concept, TerminologyError, canonical_system
from terminology import fhir

from ..deps import CasebankDep, Credentials, CredentialsDep
from ..runtime import Casebank

router = APIRouter(tags=["terminology"])

FHIR_JSON = "application/fhir+json"


class CodeOut(BaseModel):
    system: str
    code: str
    display: str


class ConceptOut(CodeOut):
    synonyms: list[str]
    parents: list[str]
    ancestors: list[str]


def _logged_in(cb: Casebank, credentials: Credentials) -> None:
    """Codes are for the archive's users: NotAuthenticated (401) for anyone else."""
    with cb.database.session() as session:
        credentials.user(session)


@contextmanager
def _unknown_is_not_found() -> Iterator[None]:
    try:
        yield
    except TerminologyError as exc:
        raise NotFound(str(exc)) from exc


def _concept(cb: Casebank, system: str, code: str) -> Concept:
    with _unknown_is_not_found():
        concept = cb.terminology.lookup(system, code)
        if concept is None:
            name = canonical_system(system)
            loaded = "" if name in cb.terminology.systems() else f" ({name} is not loaded: see `casebank terminology load`)"
            raise NotFound(f"{name} has no code '{code}'{loaded}")
    return concept


@router.get("/api/terminology/{system}/suggest", response_model=list[CodeOut])
def suggest(
    system: str,
    cb: CasebankDep,
    credentials: CredentialsDep,
    q: str = Query(min_length=1, max_length=200, description="the start of words of a term, or of a code"),
    limit: int = Query(10, ge=1, le=100),
) -> list[CodeOut]:
    """Codes for an autocomplete box, best matches first."""
    _logged_in(cb, credentials)
    with _unknown_is_not_found():
        found = cb.terminology.suggest(system, q, limit)
    return [CodeOut(system=c.system, code=c.code, display=c.display) for c in found]


@router.get("/api/terminology/{system}/{code}", response_model=ConceptOut)
def concept(system: str, code: str, cb: CasebankDep, credentials: CredentialsDep) -> ConceptOut:
    """A code with its synonyms, direct parents and every ancestor (nearest first)."""
    _logged_in(cb, credentials)
    found = _concept(cb, system, code)
    return ConceptOut(
        system=found.system, code=found.code, display=found.display, synonyms=list(found.synonyms),
        parents=list(found.parents), ancestors=cb.terminology.ancestors(found.system, found.code),
    )


@router.get("/fhir/CodeSystem/$lookup", response_class=JSONResponse)
def fhir_lookup(
    cb: CasebankDep,
    credentials: CredentialsDep,
    system: str = Query(description="code system URI, e.g. http://snomed.info/sct"),
    code: str = Query(min_length=1, max_length=64),
) -> JSONResponse:
    """FHIR ``CodeSystem/$lookup``: a ``Parameters`` resource."""
    _logged_in(cb, credentials)
    with _unknown_is_not_found():
        name = fhir.system_for_uri(system)
    return JSONResponse(fhir.lookup_parameters(_concept(cb, name, code)), media_type=FHIR_JSON)


@router.get("/fhir/ValueSet/$expand", response_class=JSONResponse)
def fhir_expand(
    cb: CasebankDep,
    credentials: CredentialsDep,
    url: str = Query(description="<system uri>?fhir_vs, or <system uri>?fhir_vs=isa/<code>"),
    filter: str = Query("", max_length=200, description="text the concepts must match"),
    count: int = Query(100, ge=1, le=1000, description="at most this many concepts"),
) -> JSONResponse:
    """FHIR ``ValueSet/$expand`` of an implicit value set: a ``ValueSet`` with its expansion."""
    _logged_in(cb, credentials)
    with _unknown_is_not_found():
        system, root = fhir.parse_value_set_url(url)
        if root is not None:
            root = _concept(cb, system, root).code
        concepts = cb.terminology.expand(system, filter, within=root, limit=count)
    return JSONResponse(fhir.expand_valueset(system, concepts, filter, url=url), media_type=FHIR_JSON)
