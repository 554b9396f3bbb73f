"""FHIR views of the terminologies: ``CodeSystem/$lookup`` and ``ValueSet/$expand`` (FHIR R5).

System URIs: ICD-10 ``http://hl7.org/fhir/sid/icd-10``, SNOMED CT ``http://snomed.info/sct``,
RadLex ``http://www.radlex.org``, and the ACR Index by its OID
``urn:oid:2.16.840.1.113883.6.76`` (the UID DICOM PS3.16 Table 8-1 gives designator ``ACR``;
HL7 has no URL for it). Implicit value sets follow the SNOMED convention for every system:
``<system uri>?fhir_vs`` is the whole system, ``<system uri>?fhir_vs=isa/<code>`` a code and its
descendants.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

from fhir.resources.coding import Coding
from fhir.resources.parameters import Parameters, ParametersParameter
from fhir.resources.valueset import ValueSet, ValueSetExpansion, ValueSetExpansionContains, ValueSetExpansionParameter

from .model import Concept, TerminologyError
from .systems import ACR, ICD10, RADLEX, SNOMED, canonical_system

SYSTEM_URIS = {
    ICD10: "http://hl7.org/fhir/sid/icd-10",
    SNOMED: "http://snomed.info/sct",
    ACR: "urn:oid:2.16.840.1.113883.6.76",
    RADLEX: "http://www.radlex.org",
}
SYSTEM_TITLES = {ICD10: "ICD-10", SNOMED: "SNOMED CT", ACR: "ACR Index", RADLEX: "RadLex"}
SYNONYM_USE = Coding(system=SYSTEM_URIS[SNOMED], code="900000000000013009", display="Synonym")
"""The designation use FHIR's own examples give synonyms, in every system."""
IMPLICIT_VALUE_SET, IS_A = "fhir_vs", "fhir_vs=isa/"


def system_uri(system: str) -> str:
    """The FHIR URI of a code system named as :func:`canonical_system` understands."""
    try:
        return SYSTEM_URIS[canonical_system(system)]
    except KeyError:
        raise TerminologyError(f"code system '{system}' has no FHIR URI") from None


def system_for_uri(uri: str) -> str:
    """The canonical system name of a FHIR code system URI."""
    for system, known in SYSTEM_URIS.items():
        if uri.strip() == known:
            return system
    raise TerminologyError(f"unknown code system URI '{uri}' (known: {', '.join(SYSTEM_URIS.values())})")


def parse_value_set_url(url: str) -> tuple[str, str | None]:
    """``(system, code)`` of an implicit value set URL; code is None for the whole system."""
    base, _, query = url.strip().partition("?")
    system = system_for_uri(base)
    if query == IMPLICIT_VALUE_SET:
        return system, None
    if query.startswith(IS_A) and query[len(IS_A):]:
        return system, query[len(IS_A):]
    raise TerminologyError(f"unsupported value set '{url}': use '<system uri>?fhir_vs' or '<system uri>?fhir_vs=isa/<code>'")


def _part(name: str, **value: Any) -> ParametersParameter:
    return ParametersParameter(name=name, **value)


def lookup_parameters(concept: Concept) -> dict[str, Any]:
    """The ``Parameters`` resource ``CodeSystem/$lookup`` answers for a concept: name, display,
    a designation per synonym and a ``parent`` property per direct parent."""
    parameter = [
        _part("name", valueString=SYSTEM_TITLES.get(canonical_system(concept.system), concept.system)),
        _part("display", valueString=concept.display),
        *(
            _part("designation", part=[_part("use", valueCoding=SYNONYM_USE), _part("value", valueString=synonym)])
            for synonym in concept.synonyms
        ),
        *(
            _part("property", part=[_part("code", valueCode="parent"), _part("value", valueCode=parent)])
            for parent in concept.parents
        ),
    ]
    return Parameters(parameter=parameter).model_dump(mode="json", exclude_none=True)


def expand_valueset(system: str, concepts: list[Concept], filter: str, *, url: str | None = None) -> dict[str, Any]:
    """A ``ValueSet`` with ``expansion.contains`` listing ``concepts``, as ``ValueSet/$expand``
    answers for ``url`` (default: the whole system) and the ``filter`` text that chose them."""
    expansion = ValueSetExpansion(
        identifier=f"urn:uuid:{uuid4()}",
        timestamp=datetime.now(timezone.utc),
        parameter=[ValueSetExpansionParameter(name="filter", valueString=filter)] if filter else None,
        contains=[
            ValueSetExpansionContains(system=system_uri(c.system), code=c.code, display=c.display) for c in concepts
        ] or None,
    )
    value_set = ValueSet(url=url or f"{system_uri(system)}?{IMPLICIT_VALUE_SET}", status="active", expansion=expansion)
    return value_set.model_dump(mode="json", exclude_none=True)
