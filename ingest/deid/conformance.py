"""Choosing between the actions of a combined code (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) by Type, and
keeping a plain X from breaking the IOD.

PS3.15 E.1.1: "X/Z/D - X unless Z or D is required to maintain IOD conformance (Type 3 versus
Type 2 versus Type 1)". The same holds for a plain X (E.1.1 item 1: the de-identified object must
still conform): an attribute the table removes but the IOD requires, such as Responsible Person
(0010,2297), Type 2C in the Patient Module of an animal, is emptied (Type 2, 2C) or given a dummy
value (Type 1, 1C) instead. The Type comes from ``data/attribute_types.json`` (built from PS3.3
by :mod:`ingest.deid._generate_types`):

* at the top level, the attribute's strongest Type in the IOD of the object's SOP Class;
* inside a sequence, its strongest Type inside any sequence of that name in any IOD;
* when neither is known (an unknown SOP Class, a sequence PS3.3 does not put it in), its
  strongest Type anywhere, so that the result stays valid whatever the IOD; except for a plain
  X, which is then applied as the table says: the exception needs a known requirement.

Type 1 and 1C give D, Type 2 and 2C give Z, Type 3 (or absent from the IOD) gives X. Choosing
Z or D never keeps identifying content: both write empty or dummy values. A Type 2C or 1C
whose condition is not met may be absent, but emptying it is conformant too, so the condition
is not evaluated: an attribute that was present is emptied.

X/Z/U* (Referenced Image Sequence, Source Image Sequence) always resolves to U: the references
are kept with their instance UIDs replaced by the project's keyed mapping, so localizer,
derivation and presentation-state links still resolve and nothing of the original remains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from .table import TYPE_STRENGTH

TYPES_FILE = "attribute_types.json"

PLAIN_REMOVAL = "X"
"""A plain X is resolved like X/Z/D: removed unless the Type asks for an empty or dummy value."""


@dataclass(frozen=True)
class AttributeTypes:
    """Attribute Types of the attributes whose action depends on them, per IOD and per enclosing sequence."""

    iod_of_sop_class: dict[str, str]
    top: dict[int, dict[str, str]]
    nested: dict[int, dict[str, str]]
    strongest: dict[int, str]

    def iod(self, sop_class_uid: str | None) -> str | None:
        """The IOD name (highdicom's key, e.g. ``"ct-image"``) of a SOP Class, if known."""
        return self.iod_of_sop_class.get(str(sop_class_uid or "").strip())

    def type_of(self, tag: int, iod: str | None, parent: str | None) -> tuple[str, str]:
        """The Type that decides, and where it came from (for the audit)."""
        known = self.known_type(tag, iod, parent)
        if known is not None:
            return known
        return self.strongest.get(tag, "3"), "strongest in any IOD"

    def known_type(self, tag: int, iod: str | None, parent: str | None) -> tuple[str, str] | None:
        """The Type in this IOD (top level) or in this sequence; None when PS3.3 does not say."""
        if parent is None:
            if iod is not None:
                return self.top.get(tag, {}).get(iod, "3"), f"in {iod}"
            return None
        found = self.nested.get(tag, {}).get(parent)
        return None if found is None else (found, f"in {parent}")


def choices_of(action: str) -> list[str]:
    """The single actions a combined ``action``, or a plain X resolved by Type, may become."""
    return ["X", "Z", "D"] if action == PLAIN_REMOVAL else action.rstrip("*").split("/")


def resolve(action: str, attribute_type: str) -> str:
    """The single action a combined ``action`` (or a plain X) means for an attribute of ``attribute_type``."""
    choices = choices_of(action)
    if "U" in choices:
        return "U"
    strength = TYPE_STRENGTH.get(attribute_type, TYPE_STRENGTH["3"])
    if strength <= TYPE_STRENGTH["1C"]:
        preference = ("D", "Z", "X")
    elif strength <= TYPE_STRENGTH["2C"]:
        preference = ("Z", "D", "X")
    else:
        preference = ("X", "Z", "D")
    return next(choice for choice in preference if choice in choices)


@lru_cache(maxsize=1)
def load_attribute_types() -> AttributeTypes:
    """The shipped attribute Types."""
    data = json.loads(files(__package__).joinpath("data", TYPES_FILE).read_text(encoding="utf-8"))
    top: dict[int, dict[str, str]] = {}
    nested: dict[int, dict[str, str]] = {}
    strongest: dict[int, str] = {}
    for tag_text, record in data["attributes"].items():
        tag = int(tag_text[1:5] + tag_text[6:10], 16)
        top[tag], nested[tag], strongest[tag] = record["iods"], record["nested"], record["strongest"]
    return AttributeTypes(data["sop_class_iod"], top, nested, strongest)
