"""The de-identification data (Table E.1-1, safe private list, attribute Types, profiles) is
complete, and every row of the table compiles to a rule the engine applies."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.sr._concepts_dict import concepts
from pydicom.valuerep import VR

from ingest.deid import Option, Profile, ProfileError, default_safe_private, load_table
from ingest.deid.conformance import load_attribute_types, resolve
from ingest.deid.rules import Op, compile_profile, rule_for_row
from ingest.deid.safe_private import SafePrivateElement, SafePrivateError
from ingest.deid.table import ACTIONS, COLUMN_OF_OPTION, COMBINED_ACTIONS, PatternKind

SHARED_TABLE = Path("/work/shared/dicom/table_E1-1_basic_profile_2024b.csv")
PACKAGE_DATA = Path(__file__).resolve().parents[2] / "ingest" / "deid" / "data"

# Every option set the engine must compile: none, each alone, and all together (with either
# Retain Longitudinal option, since the two exclude each other).
ALL_BUT_FULL = frozenset(Option) - {Option.RETAIN_LONGITUDINAL_FULL_DATES}
ALL_BUT_MODIFIED = frozenset(Option) - {Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
OPTION_SETS = [frozenset(), *(frozenset({o}) for o in Option), ALL_BUT_FULL, ALL_BUT_MODIFIED]


# --- Table E.1-1 ------------------------------------------------------------------------


def test_table_has_every_row_of_the_2024b_edition() -> None:
    rows = load_table()
    assert len(rows) == 621
    assert len({row.tag for row in rows}) == 621
    basic = Counter(row.basic for row in rows)
    assert basic == {"X": 384, "D": 92, "U": 54, "Z": 42, "X/D": 22, "X/Z": 11, "X/Z/D": 8, "Z/D": 6, "X/Z/U*": 2}
    per_option = {option: Counter(row.option_actions[option] for row in rows if option in row.option_actions) for option in Option}
    assert per_option[Option.RETAIN_SAFE_PRIVATE] == {"C": 1}
    assert per_option[Option.RETAIN_UIDS] == {"K": 59}
    assert per_option[Option.RETAIN_DEVICE_IDENTITY] == {"K": 46, "C": 11}
    assert per_option[Option.RETAIN_INSTITUTION_IDENTITY] == {"K": 10}
    assert per_option[Option.RETAIN_PATIENT_CHARACTERISTICS] == {"K": 9, "C": 4}
    assert per_option[Option.RETAIN_LONGITUDINAL_FULL_DATES] == {"K": 165}
    assert per_option[Option.RETAIN_LONGITUDINAL_MODIFIED_DATES] == {"C": 165}
    assert per_option[Option.CLEAN_DESCRIPTORS] == {"C": 125}
    assert per_option[Option.CLEAN_STRUCTURED_CONTENT] == {"C": 3}
    assert per_option[Option.CLEAN_GRAPHICS] == {"C": 4}


def test_every_action_in_the_table_is_one_the_engine_implements() -> None:
    for row in load_table():
        for action in (row.basic, *row.option_actions.values()):
            assert action in ACTIONS, f"{row.tag} {row.name}: {action}"


def test_every_row_compiles_to_a_rule_under_every_option_set() -> None:
    for options in OPTION_SETS:
        for row in load_table():
            rule = rule_for_row(row, options)  # raises TableError on anything unknown
            assert rule.source.startswith(f"E.1-1 {row.tag}"), rule
            assert rule.op is Op.TYPED or rule.action in "KXZDUC"
        compiled = compile_profile(Profile(options))
        tags = [row.pattern.tag for row in load_table() if row.pattern.kind is PatternKind.TAG]
        assert all(tag in compiled.exact for tag in tags)
        assert compiled.curve and compiled.private and set(compiled.overlay) == {0x3000, 0x4000, None}


def test_every_standard_tag_of_the_table_is_in_pydicoms_dictionary() -> None:
    patterns = Counter(row.pattern.kind for row in load_table())
    assert patterns == {PatternKind.TAG: 617, PatternKind.CURVE: 1, PatternKind.OVERLAY: 2, PatternKind.PRIVATE: 1}
    for row in load_table():
        if row.pattern.tag is not None:
            assert dictionary_VR(row.pattern.tag), row.tag


def test_clean_falls_back_to_the_basic_action_only_where_it_cannot_apply() -> None:
    """A "C" the engine cannot perform on the VR (opaque binary) uses the Basic Profile action;
    a new row of that kind in a later edition makes this test fail, to be looked at."""
    fallbacks = set()
    for option in Option:
        for row in load_table():
            if row.option_actions.get(option) == "C" and "not applicable" in rule_for_row(row, frozenset({option})).source:
                fallbacks.add((option, row.tag))
    assert fallbacks == {
        (Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, "(0034,0007)"),  # Frame Origin Timestamp OB
        (Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, "(0400,0310)"),  # Certified Timestamp OB
        (Option.CLEAN_DESCRIPTORS, "(0016,002B)"),  # Maker Note OB
        (Option.CLEAN_DESCRIPTORS, "(0016,004B)"),  # Device Setting Description OB
    }


def test_options_acting_on_one_row_take_the_more_protective_action() -> None:
    row = next(r for r in load_table() if r.tag == "(0018,1200)")  # Date of Last Calibration
    assert row.option_actions[Option.RETAIN_DEVICE_IDENTITY] == "K"
    assert rule_for_row(row, frozenset({Option.RETAIN_DEVICE_IDENTITY})).op is Op.KEEP
    both = rule_for_row(row, frozenset({Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}))
    assert both.op is Op.SHIFT


def test_patient_name_and_id_become_the_pseudonym_under_every_option_set() -> None:
    for options in OPTION_SETS:
        compiled = compile_profile(Profile(options))
        for keyword in ("PatientName", "PatientID"):
            assert compiled.exact[tag_for_keyword(keyword)].op is Op.PSEUDONYM


def test_packaged_table_is_an_unchanged_copy_of_the_shared_one() -> None:
    if not SHARED_TABLE.exists():
        pytest.skip("the shared standards folder is not mounted here")
    assert (PACKAGE_DATA / SHARED_TABLE.name).read_bytes() == SHARED_TABLE.read_bytes()


def test_package_does_not_read_the_shared_folder() -> None:
    for source in (PACKAGE_DATA.parent).glob("*.py"):
        assert "/work/shared" not in source.read_text() and "../shared" not in source.read_text(), source


# --- Types for combined actions ---------------------------------------------------------


def test_every_combined_row_has_attribute_types() -> None:
    types = load_attribute_types()
    combined = [row for row in load_table() if row.basic in COMBINED_ACTIONS]
    assert len(combined) == 49
    for row in combined:
        assert row.pattern.tag in types.strongest, row.tag


def test_every_removed_attribute_some_iod_requires_has_attribute_types() -> None:
    """A plain X must not break an IOD that requires the attribute (Type 1, 1C, 2, 2C)."""
    types = load_attribute_types()
    required = [row for row in load_table() if row.basic == "X" and row.pattern.tag in types.strongest]
    assert len(required) == 24
    assert all(types.strongest[row.pattern.tag] != "3" for row in required)
    responsible = tag_for_keyword("ResponsiblePerson")
    assert types.known_type(responsible, "digital-x-ray-image", None) == ("2C", "in digital-x-ray-image")
    assert types.known_type(responsible, None, None) is None  # unknown IOD: the table's X stands
    compiled = compile_profile(Profile())
    assert all(compiled.exact[row.pattern.tag].op is Op.TYPED for row in required)
    assert [resolve("X", t) for t in ("1", "1C", "2", "2C", "3")] == ["D", "D", "Z", "Z", "X"]


def test_shipped_attribute_types_are_what_the_generator_builds() -> None:
    from ingest.deid._generate_types import build

    assert json.loads((PACKAGE_DATA / "attribute_types.json").read_text()) == build()


@pytest.mark.parametrize("action", sorted(COMBINED_ACTIONS))
def test_combined_actions_resolve_by_type(action: str) -> None:
    letters = action.rstrip("*").split("/")
    for attribute_type in ("1", "1C", "2", "2C", "3", "unknown"):
        assert resolve(action, attribute_type) in letters
    if "U" in letters:
        assert {resolve(action, t) for t in ("1", "2", "3")} == {"U"}
        return
    if "D" in letters:
        assert resolve(action, "1") == "D"
    if "Z" in letters:
        assert resolve(action, "2") == "Z"
    assert resolve(action, "3") == ("X" if "X" in letters else "Z")


def test_types_follow_the_iod() -> None:
    types = load_attribute_types()
    serial = tag_for_keyword("DeviceSerialNumber")
    assert types.iod("1.2.840.10008.5.1.4.1.1.2") == "ct-image"
    assert types.type_of(serial, "ct-image", None)[0] == "3"
    assert types.type_of(serial, "enhanced-ct-image", None)[0] == "1"
    assert types.type_of(serial, None, None)[0] == "1"  # unknown IOD: strongest anywhere


# --- Options and profiles ---------------------------------------------------------------


def test_option_codes_are_cid_7050() -> None:
    cid_7050 = {code: meaning for entries in concepts["DCM"].values() for code, (meaning, cids) in entries.items() if 7050 in cids}
    assert len(cid_7050) == 13
    for option in Option:
        assert cid_7050[option.code] == option.meaning, option
        assert option.concept.value == option.code and option.concept.scheme_designator == "DCM"
    engine_codes = {"113100", *(o.code for o in Option)}
    # Clean Pixel Data and Clean Recognizable Visual Features change pixels: not this engine's.
    assert set(cid_7050) - engine_codes == {"113101", "113102"}
    assert cid_7050["113100"] == "Basic Application Confidentiality Profile"
    assert set(COLUMN_OF_OPTION) == set(Option)


def test_option_parse_by_name_or_code() -> None:
    assert Option.parse("retain-uids") is Option.RETAIN_UIDS
    assert Option.parse("113107") is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES
    with pytest.raises(ProfileError, match="RETAIN_UIDS"):
        Option.parse("RETAIN_EVERYTHING")


def test_default_profile_is_readable_and_names_its_options() -> None:
    profile = Profile.default()
    assert profile.name == "casebank-teaching"
    assert profile.options == {
        Option.RETAIN_PATIENT_CHARACTERISTICS, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT, Option.CLEAN_GRAPHICS,
    }
    assert [c.value for c in profile.method_codes()] == ["113100", "113108", "113107", "113105", "113104", "113103"]
    assert all(len(line) <= 64 for line in profile.method_description())


def test_profile_loads_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "research.toml"
    toml.write_text(
        'name = "trial-42"\noptions = ["RETAIN_UIDS", "113109"]\n'
        '[[safe_private]]\ntag = "(0029,xx10)"\nprivate_creator = "ACME 1.0"\nvr = "DS"\n'
    )
    profile = Profile.load(toml)
    assert profile.name == "trial-42"
    assert profile.options == {Option.RETAIN_UIDS, Option.RETAIN_DEVICE_IDENTITY}
    assert profile.safe_private_additions == (SafePrivateElement(0x0029, "ACME 1.0", 0x10, "DS"),)
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps({"options": ["CLEAN_GRAPHICS"]}))
    assert Profile.load(as_json) == Profile(frozenset({Option.CLEAN_GRAPHICS}), name="p")


def test_profile_errors_name_the_file_and_the_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('options = ["RETAIN_NAMES"]\n')
    with pytest.raises(ProfileError, match=r"bad\.toml.*RETAIN_NAMES"):
        Profile.load(bad)
    both = tmp_path / "both.toml"
    both.write_text('options = ["RETAIN_LONGITUDINAL_FULL_DATES", "RETAIN_LONGITUDINAL_MODIFIED_DATES"]\n')
    with pytest.raises(ProfileError, match="choose one"):
        Profile.load(both)
    with pytest.raises(ProfileError, match="cannot read"):
        Profile.load(tmp_path / "missing.toml")


# --- Safe private list (PS3.15 Table E.3.10-1) -------------------------------------------


def test_safe_private_list_is_complete_and_well_formed() -> None:
    safe = default_safe_private()
    entries = list(safe)
    assert len(entries) == 130
    assert all(e.group % 2 == 1 and 0 <= e.element <= 0xFF and e.creator for e in entries)
    assert all(e.vr == "" or e.vr in VR.__members__ for e in entries)
    assert Counter(e.creator for e in entries)["SIEMENS Ultrasound SC2000"] == 40
    assert len({(e.group, e.creator, e.element) for e in entries}) == 130


def test_safe_private_lookup_uses_creator_element_and_vr() -> None:
    safe = default_safe_private()
    assert safe.is_safe(0x0019, "GEMS_ACQU_01", 0x23, "DS")
    assert safe.is_safe(0x0019, "GEMS_ACQU_01 ", 0x23, "UN")  # implicit VR file; padded creator
    assert not safe.is_safe(0x0019, "GEMS_ACQU_01", 0x23, "LO")  # not what the vendor documents
    assert not safe.is_safe(0x0019, "GEMS_ACQU_01", 0x01, "DS")
    assert not safe.is_safe(0x0019, "SOMEONE ELSE", 0x23, "DS")
    assert not safe.is_safe(0x0021, "GEMS_ACQU_01", 0x23, "DS")
    assert safe.is_safe(0x0119, "SIEMENS Ultrasound SC2000", 0x11, "TM")  # the table gives no VR


def test_safe_private_entries_reject_even_groups_and_bad_tags() -> None:
    with pytest.raises(SafePrivateError, match="not private"):
        SafePrivateElement.from_mapping({"tag": "(0018,xx10)", "private_creator": "X"})
    with pytest.raises(SafePrivateError, match="needs tag"):
        SafePrivateElement.from_mapping({"tag": "(0019,1010)", "private_creator": "X"})


def test_identifying_value_sources_are_dicom_keywords() -> None:
    data = json.loads((PACKAGE_DATA / "identifying_values.json").read_text())
    for keyword in (*data["names"], *data["identifiers"]):
        assert tag_for_keyword(keyword) is not None, keyword
    assert {dictionary_VR(tag_for_keyword(k)) for k in data["names"]} == {"PN"}
    assert keyword_for_tag(0x00100020) in data["identifiers"]
