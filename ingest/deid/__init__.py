"""PS3.15 Annex E de-identification, driven by Table E.1-1 as data.

>>> from ingest.deid import Profile, ProjectKey, deidentify
>>> result = deidentify(dataset, Profile.default(), ProjectKey.generate())  # doctest: +SKIP

The package is self-contained: the table, the safe private list, the attribute Types and the
default profile are files in ``data/``.
"""

from .engine import Change, Result, deidentify, derive_pseudonym, patient_key
from .keys import ProjectKey
from .profile import Option, Profile, ProfileError
from .safe_private import SafePrivateElement, SafePrivateList, default_safe_private
from .table import TableError, TableRow, load_table

__all__ = [
    "Change",
    "Option",
    "Profile",
    "ProfileError",
    "ProjectKey",
    "Result",
    "SafePrivateElement",
    "SafePrivateList",
    "TableError",
    "TableRow",
    "default_safe_private",
    "deidentify",
    "derive_pseudonym",
    "load_table",
    "patient_key",
]
