"""Compiling a profile into one rule per tag, once.

Table E.1-1 gives an action per attribute and option; this module turns a :class:`Profile` into
a lookup from tag to :class:`Rule` (what to do and which row or option said so). Combined
actions (X/Z/D...), and a plain X on an attribute some IOD requires, stay ``TYPED`` here and are
resolved per IOD or enclosing sequence on first use (:mod:`ingest.deid.conformance`), then
cached.

Decisions the table leaves to the implementer:

* Several options acting on one row: the most protective action wins (X, Z, D, U, C, K in that
  order); e.g. Retain Device Identity (K) with Modified Dates (C) shifts calibration dates.
* "C" means, by option and VR: dates shifted (Modified Dates; TM and UTC offsets kept since
  shifts are whole days); free text scrubbed of the patient's names, IDs and dates (Clean
  Descriptors, Patient Characteristics, Structured Content); AE titles replaced by a keyed
  pseudonym (Device Identity); graphics and overlays removed (Clean Graphics: this engine
  does not edit graphics); private elements kept only when on the safe private list (Retain
  Safe Private). Where "C" cannot apply to the VR (a binary timestamp or maker note),
  the Basic Profile action applies.
* Patient's Name and Patient ID are replaced by the pseudonym (a dummy value, E.1.1 item 2
  Note 2) rather than emptied, so that one patient stays one patient in the archive.
* Attributes the table does not list are kept (the table is the minimum), except: UI values
  that are not structural are replaced like U; DA and DT are handled by VR as the standard
  suggests (E.1.1 Note 4): dummy under the Basic Profile, kept with Full Dates, shifted with
  Modified Dates; inside a sequence being replaced (D) every free text becomes a dummy, and
  inside a sequence being cleaned (C) every free text is scrubbed.
* Overlay Data and Overlay Comments remove the whole overlay group: an overlay plane without its
  data is invalid and Overlay Label and Description are free text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.datadict import dictionary_VR, tag_for_keyword

from .conformance import PLAIN_REMOVAL, AttributeTypes, load_attribute_types, resolve
from .profile import Option, Profile
from .safe_private import SafePrivateList, default_safe_private
from .table import COMBINED_ACTIONS, PatternKind, TableError, TableRow, load_table

TEXT_VRS = frozenset({"AE", "LO", "LT", "SH", "ST", "UT", "UC", "PN", "UR"})
DATE_VRS = frozenset({"DA", "DT"})
PROTECTION_ORDER = "XZDUCK"
"""Single actions, most protective first; decides between options acting on the same row."""

PATIENT_NAME = tag_for_keyword("PatientName")
PATIENT_ID = tag_for_keyword("PatientID")


class Op(enum.Enum):
    """What the engine does to one element."""

    KEEP = "keep"  # sequences: cleaned recursively
    REMOVE = "remove"
    EMPTY = "empty"
    DUMMY = "dummy"  # sequences: kept, every free text inside replaced
    UID = "uid"  # sequences: cleaned recursively, i.e. contained UIDs replaced
    SHIFT = "shift"
    SCRUB = "scrub"  # sequences: kept, every free text inside scrubbed
    HASH_AE = "hash-ae"
    PSEUDONYM = "pseudonym"
    TYPED = "typed"  # a combined action, resolved by Type on first use


class Mode(enum.IntEnum):
    """How free text not listed in the table is treated inside a sequence; the strictest applies."""

    NORMAL = 0
    SCRUB = 1
    DUMMY = 2


SEQUENCE_MODE = {Op.DUMMY: Mode.DUMMY, Op.SCRUB: Mode.SCRUB}


@dataclass(frozen=True, slots=True)
class Rule:
    """One decision: the operation, the PS3.15 action it implements, and the rule that said so."""

    op: Op
    action: str
    source: str
    combined: str = ""


_SINGLE_OP = {"K": Op.KEEP, "X": Op.REMOVE, "Z": Op.EMPTY, "D": Op.DUMMY, "U": Op.UID}


def _clean_op(option: Option, vr: str) -> Op | None:
    """The operation "C" means for ``option`` on an attribute of ``vr``; None if it cannot apply."""
    if option is Option.CLEAN_GRAPHICS:
        return Op.REMOVE
    if option is Option.RETAIN_SAFE_PRIVATE:
        return Op.KEEP  # the engine keeps only elements on the safe private list
    if option is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES:
        if vr in DATE_VRS:
            return Op.SHIFT
        return Op.KEEP if vr in ("TM", "SH") else None
    if option is Option.RETAIN_DEVICE_IDENTITY and vr == "AE":
        return Op.HASH_AE
    if option in (Option.CLEAN_DESCRIPTORS, Option.RETAIN_PATIENT_CHARACTERISTICS, Option.CLEAN_STRUCTURED_CONTENT):
        if vr in TEXT_VRS or vr == "SQ":
            return Op.SCRUB
        return Op.KEEP if vr == "CS" else None
    return None


def _row_vr(row: TableRow) -> str:
    if row.pattern.kind is not PatternKind.TAG or row.pattern.tag is None:
        return "OB"
    return dictionary_VR(row.pattern.tag).split(" or ")[0]


def rule_for_row(row: TableRow, options: frozenset[Option]) -> Rule:
    """The rule a row gives under ``options``; :class:`TableError` if the engine cannot apply it."""
    label = f"E.1-1 {row.tag} {row.name}"
    chosen = [(row.option_actions[o], o) for o in Option if o in options and o in row.option_actions]
    if chosen:
        action, option = min(chosen, key=lambda pair: PROTECTION_ORDER.index(pair[0]))
        source = f"{label}: {option.name} {action}"
        if action == "C":
            op = _clean_op(option, _row_vr(row))
            if op is not None:
                return Rule(op, "C", source)
            basic = _basic_rule(row, label)
            return Rule(basic.op, basic.action, f"{source} not applicable to VR {_row_vr(row)}; {basic.source}", basic.combined)
        if action in _SINGLE_OP:
            return Rule(_SINGLE_OP[action], action, source)
        raise TableError(f"{label}: option {option.name} gives {action!r}, which no option may give")
    return _basic_rule(row, label)


def _basic_rule(row: TableRow, label: str) -> Rule:
    source = f"{label}: basic {row.basic}"
    if row.basic in COMBINED_ACTIONS:
        return Rule(Op.TYPED, row.basic, source, combined=row.basic)
    if row.basic in _SINGLE_OP:
        return Rule(_SINGLE_OP[row.basic], row.basic, source)
    raise TableError(f"{label}: basic action {row.basic!r} is not one the engine applies")


@dataclass
class CompiledProfile:
    """A profile as rules per tag; built once per profile by :func:`compile_profile`."""

    profile: Profile
    exact: dict[int, Rule]
    curve: Rule
    overlay: dict[int | None, Rule]  # by element; None for the rest of the overlay group
    private: Rule
    safe_private: SafePrivateList | None
    types: AttributeTypes
    _typed: dict[tuple[int, str | None, str | None], Rule] = field(default_factory=dict)
    _unlisted: dict[tuple[str, Mode], Rule] = field(default_factory=dict)

    @property
    def options(self) -> frozenset[Option]:
        return self.profile.options

    def rule(self, tag: int, iod: str | None, parent: str | None) -> Rule | None:
        """The rule for a listed tag at the top level (``parent`` None) or inside ``parent``."""
        rule = self.exact.get(tag)
        if rule is None or rule.op is not Op.TYPED:
            return rule
        key = (tag, iod if parent is None else None, parent)
        resolved = self._typed.get(key)
        if resolved is None:
            resolved = self._typed[key] = self._resolve(rule, tag, iod, parent)
        return resolved

    def _resolve(self, rule: Rule, tag: int, iod: str | None, parent: str | None) -> Rule:
        if rule.combined != PLAIN_REMOVAL:
            attribute_type, where = self.types.type_of(tag, iod, parent)
            action = resolve(rule.combined, attribute_type)
            return Rule(_SINGLE_OP[action], action, f"{rule.source} -> {action} (Type {attribute_type} {where})")
        known = self.types.known_type(tag, iod, parent)
        if known is None:  # the exception needs a known requirement: the table's X stands
            return Rule(Op.REMOVE, "X", rule.source)
        attribute_type, where = known
        action = resolve(PLAIN_REMOVAL, attribute_type)
        why = f" (Type {attribute_type} {where})" if action == "X" else (
            f" -> {action}: Type {attribute_type} {where}, kept for IOD conformance")
        return Rule(_SINGLE_OP[action], action, rule.source + why)

    def unlisted(self, vr: str, mode: Mode) -> Rule:
        """The rule for an attribute Table E.1-1 does not list."""
        key = (vr, mode)
        rule = self._unlisted.get(key)
        if rule is None:
            rule = self._unlisted[key] = self._unlisted_rule(vr, mode)
        return rule

    def _unlisted_rule(self, vr: str, mode: Mode) -> Rule:
        if vr == "UI":
            if Option.RETAIN_UIDS in self.options:
                return Rule(Op.KEEP, "K", "UI not in E.1-1: RETAIN_UIDS K")
            return Rule(Op.UID, "U", "UI not in E.1-1: instance UIDs replaced (E.1.1 item 5)")
        if vr in DATE_VRS:
            source = f"{vr} not in E.1-1: dates handled by VR (E.1.1 Note 4)"
            if Option.RETAIN_LONGITUDINAL_FULL_DATES in self.options:
                return Rule(Op.KEEP, "K", f"{source}, RETAIN_LONGITUDINAL_FULL_DATES K")
            if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in self.options:
                return Rule(Op.SHIFT, "C", f"{source}, RETAIN_LONGITUDINAL_MODIFIED_DATES C")
            return Rule(Op.DUMMY, "D", source)
        if vr in TEXT_VRS and mode is Mode.DUMMY:
            return Rule(Op.DUMMY, "D", "free text inside a sequence replaced by D")
        if vr in TEXT_VRS and mode is Mode.SCRUB:
            return Rule(Op.SCRUB, "C", "free text inside a sequence cleaned by C")
        return Rule(Op.KEEP, "K", "not in E.1-1")


@lru_cache(maxsize=32)
def compile_profile(profile: Profile) -> CompiledProfile:
    """Rules for every row of Table E.1-1 under ``profile``.

    Raises
    ------
    TableError
        If a row has an action the engine does not apply.
    """
    options = profile.options
    types = load_attribute_types()
    exact: dict[int, Rule] = {}
    curve = overlay_data = private = None
    overlay: dict[int | None, Rule] = {}
    for row in load_table():
        rule = rule_for_row(row, options)
        kind = row.pattern.kind
        if kind is PatternKind.TAG and row.pattern.tag is not None:
            if rule.op is Op.REMOVE and rule.action == "X" and row.pattern.tag in types.strongest:
                rule = Rule(Op.TYPED, "X", rule.source, combined=PLAIN_REMOVAL)  # some IOD requires it
            exact[row.pattern.tag] = rule
        elif kind is PatternKind.CURVE:
            curve = rule
        elif kind is PatternKind.OVERLAY:
            overlay[row.pattern.element] = rule
            if row.pattern.element == 0x3000:
                overlay_data = rule
        else:
            private = rule
    if curve is None or overlay_data is None or private is None:
        raise TableError("Table E.1-1 lacks the Curve Data, Overlay Data or Private Attributes row")
    overlay[None] = Rule(overlay_data.op, overlay_data.action, f"{overlay_data.source} (whole overlay group)")
    for tag, row_rule in ((PATIENT_NAME, exact.get(PATIENT_NAME)), (PATIENT_ID, exact.get(PATIENT_ID))):
        origin = row_rule.source if row_rule else "Casebank"
        exact[tag] = Rule(Op.PSEUDONYM, "D", f"{origin}; replaced by the patient's pseudonym")
    safe_private = None
    if Option.RETAIN_SAFE_PRIVATE in options:
        safe_private = default_safe_private().extended(profile.safe_private_additions)
    return CompiledProfile(profile, exact, curve, overlay, private, safe_private, types)
