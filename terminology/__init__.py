"""Clinical terminologies: ICD-10 (built in), SNOMED CT (RF2), ACR Index and RadLex (loaded).

Lookup, autocomplete and hierarchy (ancestors and descendants) for every system behind one
:class:`Terminology`, stored in SQLite; FHIR views in :mod:`terminology.fhir`. This package
imports nothing else of Casebank's.
"""

from .model import Concept, TerminologyError
from .service import Terminology
from .systems import canonical_system

__all__ = ["Concept", "Terminology", "TerminologyError", "canonical_system"]
