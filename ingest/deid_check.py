"""The archive's second look: is a received object de-identified as it declares?

The edge de-identifies; the archive does not trust the declaration. An object must declare
Patient Identity Removed = YES and a De-identification Method Code Sequence naming the Basic
Profile (DCM 113100). The options it declares there (CID 7050) are then held against it: every
attribute of the header, nested sequences and private tags included, is judged by the same
PS3.15 Table E.1-1 rules the edge's engine applies (:mod:`ingest.deid.rules`), and a value the
declared profile would have removed, emptied or replaced by a dummy is a reason to quarantine.
Attributes the profile cleans (C), replaces by UIDs (U), shifts or keeps are not: the check
cannot tell a cleaned text from an original one, and the NHS-number scan covers the worst case.

Combined actions (X/Z, X/D, X/Z/D) accept whatever any of their choices would write (absent,
empty or the engine's dummy): which one applies depends on the Type in the IOD, and another
de-identifier may choose differently without keeping anything. So does a plain X on an attribute
some IOD requires: the engine empties it or writes a dummy there (:mod:`ingest.deid.conformance`).

Clinical Trial attributes: the Subject and Study modules (Sponsor, Protocol ID and Name, Site ID
and Name, Subject ID, Time Point ID and Description, Coordinating Center) are what an export
manager writes for a research project after de-identifying (PS3.3 C.7.1.3, C.7.2.3), so their
values are not held against the profile; the Subject ID must be the object's pseudonymous Patient
ID, and free text in them is still scanned for NHS numbers.

Private attributes: without Retain Safe Private (113111) none may carry a value; with it only
those on the shipped safe private list (PS3.15 Table E.3.10-1). A site's own additions to the
list are not declared in the object, so objects carrying them are held for an admin to judge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from .deid.conformance import choices_of
from .deid.engine import DUMMY_TEXT, dummy_value
from .deid.nhs import looks_like_nhs_number
from .deid.profile import BASIC_PROFILE_CODE, Option, Profile
from .deid.rules import SEQUENCE_MODE, TEXT_VRS as FREE_TEXT_VRS, CompiledProfile, Mode, Op, Rule, compile_profile
from .deid.safe_private import SafePrivateList
from .deid.table import PatternKind, load_table

PIXEL_DATA = 0x7FE00010
TEXT_VRS = {"LO", "LT", "SH", "ST", "UT", "PN", "UC", "AE", "CS"}
MAX_REASONS = 40
"""A badly de-identified object could give hundreds; the admin needs the first few and a count."""

OTHER_BASIC_CODES = frozenset({"113101", "113102"})
"""Clean Pixel Data and Clean Recognizable Visual Features: they act on pixels, not on the header."""

BINARY_VRS = frozenset({"FL", "FD", "SL", "SS", "SV", "UL", "US", "UV", "AT", "OB", "OW", "UN", "OF", "OL", "OD", "OV"})


class Verdict(enum.Enum):
    """What the declared profile allows an attribute to hold."""

    ANY = "any"  # kept, cleaned (C), UIDs replaced (U), dates shifted, pseudonym: not checkable
    NO_VALUE = "no value"  # X or Z: absent or empty
    DUMMY = "dummy"  # D, or a combined action with D: absent, empty or the engine's dummy;
    # on a sequence: kept, every free text inside a dummy
    SCRUBBED = "scrubbed"  # a sequence cleaned by C: kept, free text inside cleaned


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    action: str  # the PS3.15 action, for the reason text
    allowed_with: str = ""  # options that would have let a value through, for the reason text


ANY = Decision(Verdict.ANY, "K")

EXPORT_MANAGER_TRIAL_TAGS = frozenset({
    0x00120010, 0x00120020, 0x00120021, 0x00120030, 0x00120031, 0x00120040, 0x00120050, 0x00120051, 0x00120060,
})
"""Clinical Trial Subject and Study attributes an export manager writes for a research project."""


@dataclass(frozen=True)
class Rules:
    """Decisions for one declared option set, built once (see :func:`rules_for`)."""

    exact: dict[int, Decision]
    curve: Decision
    overlay: dict[int | None, Decision]
    private_allowed: bool
    safe_private: SafePrivateList | None
    dates_retained: bool
    compiled: CompiledProfile

    def for_tag(self, tag: int) -> Decision:
        decision = self.exact.get(tag)
        if decision is not None:
            return decision
        group = tag >> 16
        if 0x5000 <= group <= 0x501E and not group & 1:
            return self.curve
        if 0x6000 <= group <= 0x601E and not group & 1:
            return self.overlay.get(tag & 0xFFFF, self.overlay[None])
        return ANY

    def unlisted(self, vr: str, mode: Mode) -> Decision:
        """Attributes Table E.1-1 does not list: only free text inside a D sequence is judged."""
        if mode is Mode.DUMMY and vr in FREE_TEXT_VRS:
            return Decision(Verdict.DUMMY, "D", "")
        return ANY


def declared_options(ds: Dataset) -> tuple[frozenset[Option], list[str]]:
    """The options the object declares, and problems with the declaration itself."""
    options: set[Option] = set()
    problems: list[str] = []
    codes = {str(item.get("CodeValue", "")).strip() for item in ds.get("DeidentificationMethodCodeSequence") or []}
    if codes and BASIC_PROFILE_CODE[0] not in codes:
        problems.append(f"De-identification Method Code Sequence (0012,0064) does not declare the Basic Profile (DCM {BASIC_PROFILE_CODE[0]})")
    for code in codes - OTHER_BASIC_CODES - {BASIC_PROFILE_CODE[0]}:
        try:
            options.add(Option(code))
        except ValueError:
            pass  # an unknown code allows nothing more than the Basic Profile
    dates = {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
    if dates <= options:
        problems.append("De-identification Method Code Sequence (0012,0064) declares both Full Dates (113106) and Modified Dates (113107)")
        options -= dates  # neither can be trusted: judge dates by the Basic Profile
    return frozenset(options), problems


def _option_label(option: Option) -> str:
    """'Retain Longitudinal Full Dates (113106)': the CID 7050 meaning, shortened for a notice."""
    return f"{option.meaning.removesuffix(' Option').replace('Temporal Information ', '')} ({option.code})"


WHAT_THE_PROFILE_DOES = {
    "X": "removes it", "Z": "empties it", "D": "replaces it with a dummy value", "C": "removes it",
    "X/Z": "removes or empties it", "X/D": "removes it or writes a dummy value",
    "Z/D": "empties it or writes a dummy value", "X/Z/D": "removes, empties or writes a dummy value",
}


def _allowed_with(option_actions: dict[Option, str], declared: frozenset[Option]) -> str:
    """The undeclared options under which the row keeps or cleans instead."""
    labels = [_option_label(o) for o in Option if o not in declared and option_actions.get(o) in ("K", "C")]
    return " or ".join(labels)


def _decision(rule: Rule, allowed_with: str) -> Decision:
    op = rule.op
    if op is Op.TYPED:
        choices = choices_of(rule.combined)
        if "U" in choices:
            return ANY
        verdict = Verdict.DUMMY if "D" in choices else Verdict.NO_VALUE
        return Decision(verdict, rule.combined, allowed_with)
    if op in (Op.REMOVE, Op.EMPTY):
        return Decision(Verdict.NO_VALUE, rule.action, allowed_with)
    if op is Op.DUMMY:
        return Decision(Verdict.DUMMY, rule.action, allowed_with)
    if op is Op.SCRUB:
        return Decision(Verdict.SCRUBBED, rule.action)
    return ANY


@lru_cache(maxsize=64)
def rules_for(options: frozenset[Option]) -> Rules:
    """Tag -> decision for one declared option set, from the engine's compiled profile."""
    compiled = compile_profile(Profile(options, name="declared"))
    hints: dict[int, str] = {}
    curve_hint = overlay_hint = ""
    for row in load_table():
        hint = _allowed_with(dict(row.option_actions), options)
        if row.pattern.kind is PatternKind.TAG and row.pattern.tag is not None:
            hints[row.pattern.tag] = hint
        elif row.pattern.kind is PatternKind.CURVE:
            curve_hint = hint
        elif row.pattern.kind is PatternKind.OVERLAY:
            overlay_hint = hint
    exact = {tag: ANY if tag in EXPORT_MANAGER_TRIAL_TAGS else _decision(rule, hints.get(tag, ""))
             for tag, rule in compiled.exact.items()}
    overlay = {element: _decision(rule, overlay_hint) for element, rule in compiled.overlay.items()}
    return Rules(
        exact=exact, curve=_decision(compiled.curve, curve_hint), overlay=overlay,
        private_allowed=Option.RETAIN_SAFE_PRIVATE in options, safe_private=compiled.safe_private,
        dates_retained=bool(options & {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}),
        compiled=compiled,
    )


def reasons_to_quarantine(ds: Dataset, *, limit: int = MAX_REASONS) -> list[str]:
    """Why `ds` may still identify a patient; empty when it passes.

    At most ``limit`` attribute reasons are listed, then a count of the rest.

    One walk over the header that reads raw bytes where it can: decoding every value of a
    large header costs more than the rest of receiving it.
    """
    reasons: list[str] = []
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        reasons.append("Patient Identity Removed (0012,0062) is not YES")
    if not ds.get("DeidentificationMethodCodeSequence"):
        reasons.append("no De-identification Method Code Sequence (0012,0064)")
    options, problems = declared_options(ds)
    reasons.extend(problems)
    subject = str(ds.get("ClinicalTrialSubjectID", "") or "").strip()
    # the export manager writes the pseudonym there; the de-identifier's dummy identifies nobody either
    if subject and subject not in (str(ds.get("PatientID", "") or "").strip(), DUMMY_TEXT):
        reasons.append("Clinical Trial Subject ID (0012,0040) is not the object's pseudonymous Patient ID")
    check = _Check(rules_for(options), reasons, limit)
    check.walk(ds, "", Mode.NORMAL)
    if check.extra:
        reasons.append(f"and {check.extra} more attribute(s) with values the declared profile does not allow")
    return reasons


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass
class _Blocks:
    """Private blocks of one dataset level: creators by (group, block), unsafe values per block."""

    creators: dict[tuple[int, int], str] = field(default_factory=dict)
    unsafe: dict[tuple[int, int], int] = field(default_factory=dict)


class _Check:
    """One walk; collects reasons, at most :data:`MAX_REASONS` of them."""

    def __init__(self, rules: Rules, reasons: list[str], limit: int) -> None:
        self.rules = rules
        self.limit = limit
        self.reasons = reasons
        self.extra = 0
        self.nhs_number_seen = False

    def add(self, reason: str) -> None:
        if len(self.reasons) < self.limit:
            self.reasons.append(reason)
        else:
            self.extra += 1

    def walk(self, ds: Dataset, where: str, mode: Mode) -> None:
        blocks = _Blocks()
        for elem in ds.elements():
            tag = int(elem.tag)
            if tag == PIXEL_DATA or not tag & 0xFFFF:
                continue  # pixel data is the pixel cleaner's business; group lengths hold nothing
            vr = elem.VR or _dictionary_vr(tag)
            if tag >> 16 & 1:
                self.private(ds, elem, tag, vr, where, mode, blocks)
                continue
            decision = self.rules.for_tag(tag)
            if decision is ANY and mode is not Mode.NORMAL:
                decision = self.rules.unlisted(vr or "", mode)
            if vr == "SQ":
                self.sequence(ds, tag, decision, where, mode)
                continue
            raw = _raw(elem)
            if decision.verdict in (Verdict.NO_VALUE, Verdict.DUMMY):
                self.judge(tag, vr, raw, decision, where)
            self.scan(tag, vr, raw, where)
        if blocks.unsafe:
            self.private_reasons(blocks, where)

    def sequence(self, ds: Dataset, tag: int, decision: Decision, where: str, mode: Mode) -> None:
        items = ds[tag].value
        keyword = keyword_for_tag(tag) or _tag_text(tag)
        if decision.verdict is Verdict.NO_VALUE:
            if len(items):
                self.add(self.reason(tag, where, "has items", decision))
            return
        child = mode
        if decision.verdict is Verdict.DUMMY:
            child = max(mode, Mode.DUMMY)  # kept, but every free text inside must be a dummy
        elif decision.verdict is Verdict.SCRUBBED:
            child = max(mode, SEQUENCE_MODE[Op.SCRUB])
        for index, item in enumerate(items):
            self.walk(item, f"{where} in {keyword}[{index}]", child)

    def private(
        self, ds: Dataset, elem: object, tag: int, vr: str | None, where: str, mode: Mode, blocks: _Blocks,
    ) -> None:
        """A private element; values the declared profile does not allow are counted per block."""
        group, element = tag >> 16, tag & 0xFFFF
        if vr == "SQ":
            raw = b"items" if len(ds[tag].value) else b""
        else:
            raw = _raw(elem)  # type: ignore[arg-type]
        safe = self.rules.safe_private
        if 0x10 <= element <= 0xFF:  # a Private Creator: it names the block (gggg,ee00-eeFF)
            creator = raw.decode("latin-1").strip(" \x00")
            blocks.creators[(group, element)] = creator
            if raw.strip(b" \x00") and not (safe is not None and safe.has_creator(group, creator)):
                blocks.unsafe.setdefault((group, element), 0)
            return
        if not raw.strip(b" \x00"):
            return
        block = (group, element >> 8 if element >= 0x1000 else -1)
        creator = blocks.creators.get(block, "")
        if safe is not None and creator and safe.is_safe(group, creator, element & 0xFF, vr or "UN"):
            self.safe_private(ds, tag, vr, raw, where, mode)
            return
        blocks.unsafe[block] = blocks.unsafe.get(block, 0) + 1
        if vr != "SQ":
            self.scan(tag, vr, raw, where)

    def safe_private(self, ds: Dataset, tag: int, vr: str | None, raw: bytes, where: str, mode: Mode) -> None:
        """A private element on the safe list: kept by the engine, judged like an unlisted one."""
        if vr == "SQ":
            for index, item in enumerate(ds[tag].value):
                self.walk(item, f"{where} in {_tag_text(tag)}[{index}]", mode)
            return
        decision = self.rules.unlisted(vr or "", mode)
        if decision is not ANY:
            self.judge(tag, vr, raw, decision, where)
        self.scan(tag, vr, raw, where)

    def private_reasons(self, blocks: _Blocks, where: str) -> None:
        """One reason per private block: a vendor block often holds dozens of elements."""
        why = (
            "not on the safe private list" if self.rules.safe_private is not None
            else "Retain Safe Private (113111) is not declared"
        )
        for (group, block), count in sorted(blocks.unsafe.items()):
            creator = blocks.creators.get((group, block), "")
            if block < 0:
                label = f"private group {group:04X}"
            else:
                label = f"private block ({group:04X},{block:02X}xx)" + (f" of '{creator}'" if creator else " with no creator")
            held = f"{count} attribute(s) with values" if count else "its creator has a value"
            self.add(f"{label}{where}: {held}; {why}")

    def judge(self, tag: int, vr: str | None, raw: bytes, decision: Decision, where: str) -> None:
        if not raw.strip(b" \x00"):
            return
        if decision.verdict is Verdict.DUMMY and (vr == "UI" or _is_dummy(tag, vr, raw)):
            return  # D on a UID means a new UID
        self.add(self.reason(tag, where, "has a value", decision))

    def reason(self, tag: int, where: str, has: str, decision: Decision) -> str:
        keyword = keyword_for_tag(tag) or "attribute"
        what = WHAT_THE_PROFILE_DOES.get(decision.action, "removes it")
        text = f"{keyword} {_tag_text(tag)}{where} {has}; the declared profile {what} ({decision.action})"
        if decision.allowed_with:
            text += f" unless {decision.allowed_with} is declared"
        return text

    def scan(self, tag: int, vr: str | None, raw: bytes, where: str) -> None:
        # private tags sent in Implicit VR have no VR to go by
        if self.nhs_number_seen or not raw or not (vr in TEXT_VRS or vr in (None, "UN")):
            return
        if looks_like_nhs_number(raw.decode("latin-1")):
            self.add(f"an NHS number appears in {keyword_for_tag(tag) or _tag_text(tag)}{where}")
            self.nhs_number_seen = True


def _raw(elem: object) -> bytes:
    """The value's bytes without decoding a raw element; decoded values as text."""
    value = elem.value  # type: ignore[attr-defined]
    if isinstance(elem, RawDataElement):
        return value or b""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).encode("utf-8", "replace")
    return str(value).encode("utf-8", "replace")


@lru_cache(maxsize=64)
def _dummy_texts(tag: int, vr: str) -> frozenset[bytes]:
    return frozenset({str(dummy_value(tag, vr)).encode("ascii"), b""})


def _is_dummy(tag: int, vr: str | None, raw: bytes) -> bool:
    """Whether every value is the engine's dummy for the attribute (binary dummies are all zero)."""
    if vr in BINARY_VRS:
        # A decoded number arrives as text ("0", "0.0"); raw bytes as zeros.
        return not raw.strip(b"\x00") or all(v.strip() in (b"0", b"0.0", b"") for v in raw.split(b"\\"))
    dummies = _dummy_texts(tag, vr or "")
    return all(value.strip(b" \x00") in dummies for value in raw.split(b"\\"))


def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag).split(" or ")[0]  # "US or SS": either is binary, "OB or OW" too
    except KeyError:
        return None



