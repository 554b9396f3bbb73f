"""The de-identification engine: one walk over the object, one compiled rule per element.

:func:`deidentify` never changes its input. It builds a new dataset, element by element and
item by item through every sequence, applying the profile's rule for each tag (see
:mod:`ingest.deid.rules`), and reports each change with the rule that made it. Pixel Data and
every other element that is kept are carried over unchanged, byte for byte. Finally it adds the
attributes PS3.15 asks a de-identifier to add and replaces the File Meta Information.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydicom import config
from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from .dates import shift_date, shift_datetime, shift_days
from .nhs import looks_like_nhs_number
from .descriptors import Scrubber
from .keys import ProjectKey
from .profile import Option, Profile
from .rules import SEQUENCE_MODE, TEXT_VRS, CompiledProfile, Mode, Op, Rule, compile_profile
from .uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, derive_uid, is_structural

DUMMY_TEXT = "DEIDENTIFIED"
DUMMY_VALUES: dict[str, object] = {
    "AE": DUMMY_TEXT, "AS": "000Y", "CS": DUMMY_TEXT, "DA": "19000101", "DT": "19000101000000",
    "TM": "000000", "DS": "0", "IS": "0", "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT, "UT": DUMMY_TEXT, "UC": DUMMY_TEXT, "PN": DUMMY_TEXT,
    "UR": "urn:uuid:00000000-0000-0000-0000-000000000000",
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "SV": 0, "UL": 0, "US": 0, "UV": 0, "AT": 0,
    "OB": b"\x00\x00", "OW": b"\x00\x00", "UN": b"\x00\x00", "OF": b"\x00" * 4, "OL": b"\x00" * 4,
    "OD": b"\x00" * 8, "OV": b"\x00" * 8,
}
"""D: a non-zero-length value consistent with the VR that identifies nobody."""

DUMMY_BY_TAG: dict[int, object] = {0x00080201: "+0000"}
"""D where the VR's dummy would break the attribute's own format: Timezone Offset From UTC is
``&ZZXX`` (PS3.3 C.12.1.1.8), Type 1 in the Simplified Adult Echo SR."""


def dummy_value(tag: int, vr: str) -> object:
    """The dummy (D) written for an attribute."""
    return DUMMY_BY_TAG.get(tag, DUMMY_VALUES.get(vr, DUMMY_TEXT))


PROFILE_RULE = "PS3.15 E.1.1 item 6"
LONGITUDINAL_RULE = "PS3.15 E.2 / E.3.6"
FILE_META_RULE = "PS3.15 E.1.1 item 7: File Meta Information replaced"


@dataclass
class Change:
    """One attribute the engine changed, and the rule that changed it.

    Attributes
    ----------
    tag : str
        ``"(gggg,eeee)"``.
    keyword : str
        DICOM keyword; ``""`` for private and unknown elements.
    action : str
        The PS3.15 action applied: ``X``, ``Z``, ``D``, ``C``, ``U``; ``A`` for an attribute added.
    rule : str
        Which table row, option or engine rule decided, e.g.
        ``"E.1-1 (0008,0080) Institution Name: basic X/Z/D -> X (Type 3 in ct-image)"``.
    path : str
        Where the element is, e.g. ``"ContentSequence[0].TextValue"``.
    old : str
        Never the old value: ``"<removed>"`` or its size, e.g. ``"<12 chars>"``.
    """

    tag: str
    keyword: str
    action: str
    rule: str
    path: str = ""
    old: str = ""


@dataclass
class Result:
    """What :func:`deidentify` produced.

    Attributes
    ----------
    dataset : pydicom.dataset.Dataset
        The de-identified object, with new File Meta Information.
    changes : list[Change]
        Every change, in walk order.
    uid_map : dict[str, str]
        Original UID to replacement UID, for every UID replaced in this object.
    patient_id_map : dict[str, str]
        Original Patient ID to pseudonym (empty if the object had no Patient ID).
    date_shift_days : int or None
        Days every date moved by under Modified Dates, else None. Secret: keep it with the maps.
    """

    dataset: Dataset
    changes: list[Change]
    uid_map: dict[str, str]
    patient_id_map: dict[str, str]
    date_shift_days: int | None = None


def deidentify(
    ds: Dataset, profile: Profile, key: ProjectKey, *, patient_pseudonym: str | None = None, pixels_cleaned: bool = False,
) -> Result:
    """De-identify ``ds`` with ``profile``, deriving replacements from the project ``key``.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The original object; it is not changed.
    profile : Profile
        Basic Profile and options.
    key : ProjectKey
        The project's secret: the same key gives the same UIDs, pseudonym and date shift.
    patient_pseudonym : str or None
        Patient's Name and Patient ID to write; by default derived from the key and Patient ID.
    pixels_cleaned : bool
        The pixel data went through Clean Pixel Data (:mod:`ingest.deid.pixels`): 113101 is
        written to De-identification Method Code Sequence.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        If ``patient_pseudonym`` is not a valid Patient ID (empty, over 64 characters, or with
        a backslash or control character).
    """
    compiled = compile_profile(profile)
    patient = patient_key(ds)
    pseudonym = _checked_pseudonym(patient_pseudonym) if patient_pseudonym is not None else derive_pseudonym(key, patient)
    shift = shift_days(key, patient) if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options else None
    walk = _Walk(compiled, key, ds, pseudonym, shift, pixels_cleaned=pixels_cleaned)
    out = walk.clean(ds, None, Mode.NORMAL, "")
    walk.finish(out)
    original_id = str(ds.get("PatientID", "") or "").strip()
    return Result(out, walk.changes, walk.uid_map, {original_id: pseudonym} if original_id else {}, shift)


def patient_key(ds: Dataset) -> str:
    """What identifies the patient for pseudonym and date shift: Patient ID, else name and birth date."""
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if patient_id:
        return f"id:{patient_id}"
    name = str(ds.get("PatientName", "") or "").strip()
    if name:
        return f"name:{name}|{str(ds.get('PatientBirthDate', '') or '').strip()}"
    # Nothing names the patient: one pseudonym per study is the best that stays consistent.
    return f"study:{str(ds.get('StudyInstanceUID', '') or '').strip()}"


def derive_pseudonym(key: ProjectKey, patient: str) -> str:
    """The project's pseudonym for a patient key, e.g. ``"CB-3F2A9C81D04B77E1"``.

    About one in two hundred such hex strings holds ten digits that pass the NHS number check, which
    the archive's door check would (rightly) quarantine; those, and only those, are derived again
    with a counter, so every pseudonym made before stays what it was."""
    for attempt in range(64):
        purpose = "patient" if attempt == 0 else f"patient#{attempt}"
        candidate = "CB-" + key.digest(purpose, patient).hex()[:16].upper()
        if not looks_like_nhs_number(candidate):
            return candidate
    raise RuntimeError("no pseudonym without an NHS-number-like digit run in 64 tries")  # (11/12)^-64: never


def _checked_pseudonym(pseudonym: str) -> str:
    text = pseudonym.strip()
    if not text or len(text) > 64 or "\\" in text or any(ord(c) < 32 for c in text):
        raise ValueError(f"pseudonym {pseudonym!r} is not a valid Patient ID (1-64 characters, no backslash)")
    return text


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _size(elem: DataElement) -> str:
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Iterable) and not isinstance(value, str):
        return f"<{sum(len(str(v)) for v in value)} chars>"
    return f"<{len(str(value))} chars>"


def _clone(elem: DataElement) -> DataElement:
    """A new element with the same value, not re-validated: a kept value is kept as read."""
    value = elem.value
    if isinstance(value, MultiValue):
        value = copy.deepcopy(value)  # a shallow copy would share its list
    return DataElement(elem.tag, elem.VR, value, is_undefined_length=elem.is_undefined_length, already_converted=True)


def _with_value(elem: DataElement, value: object) -> DataElement:
    return DataElement(elem.tag, elem.VR, value, validation_mode=config.IGNORE)


def _map_values(value: object, fn: Callable[[str], str]) -> object:
    if isinstance(value, MultiValue | list | tuple):
        return [fn(str(v)) for v in value]
    return fn(str(value))


@dataclass
class _Walk:
    compiled: CompiledProfile
    key: ProjectKey
    source: Dataset
    pseudonym: str
    shift: int | None
    pixels_cleaned: bool = False
    changes: list[Change] = field(default_factory=list)
    uid_map: dict[str, str] = field(default_factory=dict)
    _scrubber: Scrubber | None = None

    def __post_init__(self) -> None:
        self.iod = self.compiled.types.iod(self.source.get("SOPClassUID"))

    @property
    def scrubber(self) -> Scrubber:
        if self._scrubber is None:
            self._scrubber = Scrubber.from_dataset(self.source)
        return self._scrubber

    def record(self, elem: DataElement, rule: Rule, path: str, old: str) -> None:
        self.changes.append(Change(
            _tag_text(elem.tag), elem.keyword or "", rule.action, rule.source,
            f"{path}{elem.keyword or _tag_text(elem.tag)}", old,
        ))

    # --- walking ------------------------------------------------------------------------

    def clean(self, ds: Dataset, parent: str | None, mode: Mode, path: str) -> Dataset:
        out = Dataset()
        private: list[DataElement] = []
        compiled = self.compiled
        for elem in ds:
            tag = elem.tag
            group = tag >> 16
            if group & 1:
                private.append(elem)
                continue
            if not tag & 0xFFFF:
                continue  # group length: stale once anything changes, and retired
            rule = compiled.rule(tag, self.iod, parent)
            if rule is None:
                if 0x5000 <= group <= 0x501E:
                    rule = compiled.curve
                elif 0x6000 <= group <= 0x601E:
                    rule = compiled.overlay.get(tag & 0xFFFF, compiled.overlay[None])
                else:
                    rule = compiled.unlisted(elem.VR, mode)
            self.apply(out, elem, rule, mode, path)
        if private:
            self.clean_private(out, private, mode, path)
        return out

    def apply(self, out: Dataset, elem: DataElement, rule: Rule, mode: Mode, path: str) -> None:
        op = rule.op
        if elem.VR == "SQ":
            self.apply_sequence(out, elem, rule, mode, path)
        elif op is Op.KEEP:
            out.add(_clone(elem))
        elif op is Op.REMOVE:
            self.record(elem, rule, path, "<removed>")
        elif op is Op.EMPTY:
            self.replace(out, elem, rule, path, empty_value_for_VR(elem.VR))
        elif op is Op.DUMMY and elem.VR != "UI":
            self.replace(out, elem, rule, path, dummy_value(elem.tag, elem.VR))
        elif op in (Op.UID, Op.DUMMY):
            self.replace_uids(out, elem, rule, path)
        elif op is Op.SHIFT:
            self.shift_dates(out, elem, rule, path)
        elif op is Op.SCRUB:
            self.scrub(out, elem, rule, path)
        elif op is Op.HASH_AE:
            hashed = _map_values(elem.value, lambda v: "AE" + self.key.digest("ae", v.strip()).hex()[:14].upper())
            self.replace(out, elem, rule, path, hashed)
        elif op is Op.PSEUDONYM:
            self.replace(out, elem, rule, path, self.pseudonym)
        else:  # pragma: no cover - every Op is handled above
            raise AssertionError(f"unhandled operation {op}")

    def apply_sequence(self, out: Dataset, elem: DataElement, rule: Rule, mode: Mode, path: str) -> None:
        op = rule.op
        if op is Op.REMOVE:
            self.record(elem, rule, path, "<removed>")
            return
        if op is Op.EMPTY:
            if elem.value:
                self.record(elem, rule, path, f"<{len(elem.value)} items>")
            out.add(DataElement(elem.tag, "SQ", Sequence()))
            return
        child_mode = max(mode, SEQUENCE_MODE.get(op, Mode.NORMAL))
        name = elem.keyword or _tag_text(elem.tag)
        items = [
            self.clean(item, name, child_mode, f"{path}{name}[{index}].")
            for index, item in enumerate(elem.value)
        ]
        out.add(DataElement(elem.tag, "SQ", Sequence(items), is_undefined_length=elem.is_undefined_length))

    def clean_private(self, out: Dataset, elements: list[DataElement], mode: Mode, path: str) -> None:
        """Private elements: all removed, or, with Retain Safe Private, only those on the safe list."""
        compiled, safe = self.compiled, self.compiled.safe_private
        creators = {
            (elem.tag >> 16, elem.tag & 0xFF): str(elem.value or "").strip()
            for elem in elements if 0x10 <= (elem.tag & 0xFFFF) <= 0xFF
        }
        kept_blocks: set[tuple[int, int]] = set()
        kept: list[tuple[DataElement, Rule]] = []
        for elem in elements:
            group, element = elem.tag >> 16, elem.tag & 0xFFFF
            if element < 0x1000:
                continue  # creators are decided below; group length and reserved go
            creator = creators.get((group, element >> 8))
            if safe is not None and creator and safe.is_safe(group, creator, element & 0xFF, elem.VR):
                kept_blocks.add((group, element >> 8))
                if elem.VR == "UN" and safe.expected_vr(group, creator, element) == "UI":
                    # Implicit VR: a UID the dictionary did not know must still be replaced.
                    elem = DataElement(elem.tag, "UI", bytes(elem.value or b"").decode("ascii", "replace").strip("\x00 "))
                kept.append((elem, compiled.unlisted(elem.VR, mode)))
            elif safe is not None:
                reason = Rule(Op.REMOVE, "X", f"{compiled.private.source}: not on the safe private list ({creator or 'no creator'})")
                self.record(elem, reason, path, "<removed>")
            else:
                self.record(elem, compiled.private, path, "<removed>")
        for elem in elements:
            group, element = elem.tag >> 16, elem.tag & 0xFFFF
            if 0x10 <= element <= 0xFF and (group, element) in kept_blocks:
                out.add(_clone(elem))
            elif element < 0x1000:
                rule = compiled.private if safe is None else Rule(Op.REMOVE, "X", f"{compiled.private.source}: no safe element in block")
                self.record(elem, rule, path, "<removed>")
        for elem, rule in kept:
            kept_rule = Rule(rule.op, rule.action, f"{compiled.private.source}: safe private; {rule.source}")
            if kept_rule.op is Op.KEEP and elem.VR != "SQ":
                out.add(_clone(elem))
            else:
                self.apply(out, elem, kept_rule, mode, path)

    # --- operations ---------------------------------------------------------------------

    def replace(self, out: Dataset, elem: DataElement, rule: Rule, path: str, value: object) -> None:
        new = _with_value(elem, value)
        if new.value != elem.value:
            self.record(elem, rule, path, _size(elem))
        out.add(new)

    def replace_uids(self, out: Dataset, elem: DataElement, rule: Rule, path: str) -> None:
        if elem.VR != "UI":
            self.replace(out, elem, rule, path, dummy_value(elem.tag, elem.VR))
            return
        self.replace(out, elem, rule, path, _map_values(elem.value, lambda v: self.new_uid(elem.tag, v)))

    def new_uid(self, tag: int, uid: str) -> str:
        uid = uid.strip("\x00 ")
        if not uid or is_structural(tag, uid):
            return uid
        new = self.uid_map.get(uid)
        if new is None:
            new = self.uid_map[uid] = derive_uid(self.key, uid)
        return new

    def shift_dates(self, out: Dataset, elem: DataElement, rule: Rule, path: str) -> None:
        shifter = {"DA": shift_date, "DT": shift_datetime}.get(elem.VR)
        if shifter is None or self.shift is None or elem.is_empty:
            out.add(_clone(elem))  # TM: whole-day shifts keep the time of day
            return
        days, failed = self.shift, []

        def shifted(value: str) -> str:
            moved = shifter(value, days)
            if moved is None:
                failed.append(value)
                return str(DUMMY_VALUES[elem.VR])
            return moved

        new_value = _map_values(elem.value, shifted)
        if failed:
            rule = Rule(rule.op, "D", f"{rule.source}; not a valid {elem.VR}, replaced by a dummy")
        self.replace(out, elem, rule, path, new_value)

    def scrub(self, out: Dataset, elem: DataElement, rule: Rule, path: str) -> None:
        if elem.VR not in TEXT_VRS or elem.is_empty:
            out.add(_clone(elem))
            return
        scrubber, removed = self.scrubber, 0

        def clean(value: str) -> str:
            nonlocal removed
            text, count = scrubber.scrub(value)
            removed += count
            return text

        new_value = _map_values(elem.value, clean)
        if not removed:
            out.add(_clone(elem))
            return
        source = f"{rule.source}; {removed} identifying token(s) removed"
        if not "".join(new_value if isinstance(new_value, list) else [str(new_value)]):
            # Nothing left: an empty value would break a Type 1 attribute (Structure Set Label).
            new_value, source = dummy_value(elem.tag, elem.VR), f"{source}, nothing left: replaced by a dummy"
        self.replace(out, elem, Rule(rule.op, rule.action, source), path, new_value)

    # --- attributes a de-identifier adds ---------------------------------------------------

    def finish(self, out: Dataset) -> None:
        profile = self.compiled.profile
        for keyword in ("PatientName", "PatientID"):
            if keyword not in out:
                setattr(out, keyword, self.pseudonym)
                self.changes.append(Change(_tag_text(out[keyword].tag), keyword, "A", "Casebank: pseudonym added (Type 2)", keyword, ""))
        added = {
            "PatientIdentityRemoved": "YES",
            "DeidentificationMethod": profile.method_description(pixels_cleaned=self.pixels_cleaned),
            "DeidentificationMethodCodeSequence": profile.method_codes(pixels_cleaned=self.pixels_cleaned),
            "LongitudinalTemporalInformationModified": _longitudinal(profile.options),
        }
        for keyword, value in added.items():
            setattr(out, keyword, value)
            source = LONGITUDINAL_RULE if keyword.startswith("Longitudinal") else PROFILE_RULE
            self.changes.append(Change(_tag_text(out[keyword].tag), keyword, "A", source, keyword, ""))
        self.replace_file_meta(out)
        if self.source.original_encoding != (None, None):
            out.set_original_encoding(*self.source.original_encoding, self.source.original_character_set)

    def replace_file_meta(self, out: Dataset) -> None:
        original = getattr(self.source, "file_meta", None) or FileMetaDataset()
        meta = FileMetaDataset()
        if "SOPClassUID" in out:
            meta.MediaStorageSOPClassUID = out.SOPClassUID
        if "SOPInstanceUID" in out:
            meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        if "TransferSyntaxUID" in original:
            meta.TransferSyntaxUID = original.TransferSyntaxUID  # pixel data is not re-encoded
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        for elem in original:
            if elem.tag not in meta or meta[elem.tag].value != elem.value:
                action = "U" if elem.keyword == "MediaStorageSOPInstanceUID" else "X" if elem.tag not in meta else "D"
                self.changes.append(Change(_tag_text(elem.tag), elem.keyword or "", action, FILE_META_RULE, f"file_meta.{elem.keyword}", _size(elem)))
        out.file_meta = meta


def _longitudinal(options: frozenset[Option]) -> str:
    if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in options:
        return "MODIFIED"
    if Option.RETAIN_LONGITUDINAL_FULL_DATES in options:
        return "UNMODIFIED"
    return "REMOVED"
