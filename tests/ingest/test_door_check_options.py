"""The door check against the options an object declares: the edge's own output passes, and what
the declared profile would have removed, emptied or replaced is held, wherever it is."""

from __future__ import annotations

import io
import re
import warnings

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from ingest.deid import Option, Profile, ProjectKey, deidentify
from ingest.deid.engine import DUMMY_TEXT
from ingest.deid_check import EXPORT_MANAGER_TRIAL_TAGS, reasons_to_quarantine, rules_for
from ingest.tce.atfi import TeachingFileInfo, build_teaching_file_info
from ingest.tce.manifest import build_manifest
from ingest.validation import read_complete

from .. import dicom_data
from ..deid.test_engine import encoded, planted_dataset

KEY = ProjectKey(b"door-check-secret-0123456789abcdef")
O = Option
PROFILES = {
    "basic": Profile(),
    "default": Profile.default(),
    "safe-private+institution": Profile.of(O.RETAIN_SAFE_PRIVATE, O.RETAIN_INSTITUTION_IDENTITY),
    "full-dates+device+uids": Profile.of(O.RETAIN_LONGITUDINAL_FULL_DATES, O.RETAIN_DEVICE_IDENTITY, O.RETAIN_UIDS),
    "all-but-modified": Profile(frozenset(O) - {O.RETAIN_LONGITUDINAL_MODIFIED_DATES}),
    "all-but-full": Profile(frozenset(O) - {O.RETAIN_LONGITUDINAL_FULL_DATES}),
    "descriptors-only": Profile.of(O.CLEAN_DESCRIPTORS),
}
REAL_FILES = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm", "examples_overlay.dcm", "rtplan.dcm", "test-SR.dcm", "liver_1frame.dcm", "waveform_ecg.dcm",
    "DX_monochrome1.dcm",
]
INFO = TeachingFileInfo(
    author_name="Jones^Ann^^Dr", author_gmc="1234567", abstract="Small bowel obstruction",
    history="Vomiting", findings="Dilated small bowel loops", diagnosis="Adhesional obstruction",
)


def received(ds: Dataset) -> Dataset:
    """The object as the archive reads it at the door: written, then parsed from bytes (raw elements)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return read_complete(buffer.getvalue())


def edge_output(name: str, profile: Profile) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return received(deidentify(dcmread(dicom_data.test_file(name)), profile, KEY).dataset)


def declared(ds: Dataset, *options: Option) -> Dataset:
    """``ds`` declaring the Basic Profile and ``options``, as the edge writes it."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethodCodeSequence = Profile(frozenset(options)).method_codes()
    return ds


def deidentified_ct(*options: Option) -> Dataset:
    """CT_small through the edge's engine with ``options``: a passing object to plant identifiers in."""
    ds = deidentify(dcmread(dicom_data.test_file("CT_small.dcm")), Profile(frozenset(options)), KEY).dataset
    assert reasons_to_quarantine(ds) == []
    return ds


def nest(ds: Dataset, keyword: str, value: object) -> Dataset:
    """``keyword`` = ``value`` inside an item of a sequence the table does not list (kept, cleaned inside)."""
    item = Dataset()
    setattr(item, keyword, value)
    ds.SharedFunctionalGroupsSequence = [item]
    return ds


def only_reason(ds: Dataset) -> str:
    reasons = reasons_to_quarantine(ds)
    assert len(reasons) == 1, reasons
    return reasons[0]


# --- The edge's own output passes -----------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES.values(), ids=PROFILES.keys())
@pytest.mark.parametrize("name", REAL_FILES)
def test_the_edge_deidentifiers_output_of_real_files_passes(name: str, profile: Profile) -> None:
    ds = edge_output(name, profile)
    assert reasons_to_quarantine(ds) == []
    original = dcmread(dicom_data.test_file(name))
    # ...and the same file not de-identified, declaring the same options, is held: the check looks.
    if name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"):
        assert reasons_to_quarantine(declared(original, *profile.options)) != []


@pytest.mark.parametrize("profile", PROFILES.values(), ids=PROFILES.keys())
def test_the_edges_teaching_file_report_and_manifest_pass(profile: Profile) -> None:
    images = [dcmread(dicom_data.test_file("CT_small.dcm"))]
    report = build_teaching_file_info(INFO, images)
    manifest = build_manifest([*images, report], description="teaching", observer_name="Jones^Ann")
    for original in (*images, report, manifest):
        out = received(deidentify(original, profile, KEY).dataset)
        assert reasons_to_quarantine(out) == [], original.SOPClassUID.name


SAMPLE_OPTION_SETS = [frozenset(), *(frozenset({o}) for o in O), Profile.default().options,
                      frozenset(O) - {O.RETAIN_LONGITUDINAL_FULL_DATES}, frozenset(O) - {O.RETAIN_LONGITUDINAL_MODIFIED_DATES}]


@pytest.mark.parametrize("options", SAMPLE_OPTION_SETS, ids=lambda s: "+".join(sorted(o.code for o in s)) or "basic")
def test_the_edge_output_of_an_object_with_every_table_attribute_passes(options: frozenset[Option]) -> None:
    """A marker in every attribute of Table E.1-1, at the top and nested, private blocks, overlays."""
    out = deidentify(planted_dataset().ds, Profile(options), KEY).dataset
    assert reasons_to_quarantine(dcmread(io.BytesIO(encoded(out)))) == []


@pytest.mark.parametrize("options", SAMPLE_OPTION_SETS, ids=lambda s: "+".join(sorted(o.code for o in s)) or "basic")
def test_everything_the_engine_would_remove_empty_or_replace_is_a_reason(options: frozenset[Option]) -> None:
    """The engine is the oracle: each attribute it removes, empties or replaces with a dummy
    (UIDs and the pseudonym aside) is named by a reason when it is left in, nested or not."""
    planted = planted_dataset()
    changes = deidentify(planted.ds, Profile(options), KEY).changes
    reasons = reasons_to_quarantine(declared(planted.ds, *options), limit=100_000)
    assert reasons
    text = "\n".join(reasons)
    expected = [
        c for c in changes
        if (c.action in ("X", "Z", "D") or c.action == "C" and c.old == "<removed>")  # C: Clean Graphics removes
        and not c.path.startswith("file_meta")
        and c.keyword not in ("PatientName", "PatientID") and _vr(c.tag) != "UI"  # pseudonym, new UIDs
        # the Clinical Trial attributes an export manager writes after de-identifying (Subject ID
        # = the pseudonym, checked on its own), so the door takes any value of them
        and int(c.tag[1:5] + c.tag[6:10], 16) not in EXPORT_MANAGER_TRIAL_TAGS
    ]
    assert len(expected) > 100
    missing = []
    for change in expected:
        where = "".join(f" in {part}" for part in change.path.split(".")[:-1])
        group, element = int(change.tag[1:5], 16), int(change.tag[6:10], 16)
        if group & 1:
            block = f"({group:04X},{element >> 8:02X}xx)" if element >= 0x1000 else f"({group:04X},{element:02X}xx)"
            pattern = re.escape(f"private block {block}") + r"[^\n]*" + re.escape(where) + ":"
        elif _vr(change.tag) == "SQ":
            # a sequence: named itself, or its contents named inside it
            pattern = rf"{re.escape(change.tag)}{re.escape(where)} has items|{re.escape(where)} in {change.keyword}\[0\]"
        else:
            pattern = rf"{re.escape(change.tag)}{re.escape(where)} has a value"
        if not re.search(pattern, text):
            missing.append(f"{change.path} {change.tag} {change.action}")
    assert missing == [], text


def _vr(tag: str) -> str:
    try:
        return dictionary_VR(int(tag[1:5] + tag[6:10], 16))
    except KeyError:
        return ""


# --- Identifiers the declared options do not allow are held, wherever they are ---------------


def test_institution_name_without_retain_institution_identity_is_held() -> None:
    ds = received(nest(declared(deidentified_ct()), "InstitutionName", "St Elsewhere Hospital"))
    reason = only_reason(ds)
    assert reason.startswith("InstitutionName (0008,0080) in SharedFunctionalGroupsSequence[0] has a value")
    assert "Retain Institution Identity (113112)" in reason
    top = deidentified_ct()
    top.InstitutionName = "St Elsewhere Hospital"
    assert only_reason(received(top)).startswith("InstitutionName (0008,0080) has a value")


def test_institution_name_with_retain_institution_identity_passes() -> None:
    ds = deidentified_ct(O.RETAIN_INSTITUTION_IDENTITY)
    ds.InstitutionName = "St Elsewhere Hospital"
    nest(ds, "InstitutionName", "St Elsewhere Hospital")
    assert reasons_to_quarantine(received(ds)) == []
    # the same object declaring no option is held: the declaration decides
    assert len(reasons_to_quarantine(declared(received(ds)))) == 2


PLANTED = [
    ("ReferringPhysicianName", "(0008,0090)", "Bloggs^Fred"),
    ("OtherPatientIDs", "(0010,1000)", "RXH1234567"),
    ("StudyDate", "(0008,0020)", "20210304"),
    ("PatientBirthDate", "(0010,0030)", "19610101"),
    ("OperatorsName", "(0008,1070)", "Smith^Jo"),
    ("AccessionNumber", "(0008,0050)", "ACC778899"),
]


@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
@pytest.mark.parametrize(("keyword", "tag", "value"), PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_identifier_is_held_with_a_reason_naming_it_and_where(keyword: str, tag: str, value: str, nested: bool) -> None:
    ds = deidentified_ct(O.CLEAN_DESCRIPTORS)
    if nested:
        nest(ds, keyword, value)
    else:
        setattr(ds, keyword, value)
    for arrived in (ds, received(ds)):
        reason = only_reason(arrived)
        where = " in SharedFunctionalGroupsSequence[0]" if nested else ""
        assert reason.startswith(f"{keyword} {tag}{where} has a value; the declared profile ")


@pytest.mark.parametrize("option", [O.RETAIN_LONGITUDINAL_FULL_DATES, O.RETAIN_LONGITUDINAL_MODIFIED_DATES])
def test_a_study_date_passes_with_a_date_option_and_is_named_without(option: Option) -> None:
    ds = deidentified_ct(option)
    ds.StudyDate, ds.StudyTime = "20210304", "101010"
    nest(ds, "StudyDate", "20210304")
    assert reasons_to_quarantine(received(ds)) == []
    reasons = {r.split(";")[0]: r for r in reasons_to_quarantine(declared(received(ds)), limit=1000)}
    for planted in ("StudyDate (0008,0020)", "StudyTime (0008,0030)", "StudyDate (0008,0020) in SharedFunctionalGroupsSequence[0]"):
        reason = reasons[f"{planted} has a value"]
        assert reason.endswith("unless Retain Longitudinal Full Dates (113106) or Retain Longitudinal Modified Dates (113107) is declared")


def test_the_engines_dummy_values_pass_and_others_do_not() -> None:
    ds = deidentified_ct()
    ds.InstanceCreationDate, ds.InstanceCreationTime = "19000101", "000000"  # X/D, X/Z/D: the dummies
    ds.ContentDate = ""  # Z/D
    nest(ds, "InstitutionName", DUMMY_TEXT)
    assert reasons_to_quarantine(received(ds)) == []
    ds.InstanceCreationDate = "20210304"
    assert only_reason(received(ds)).startswith("InstanceCreationDate (0008,0012) has a value")


def test_a_private_attribute_without_retain_safe_private_is_held_top_and_nested() -> None:
    ds = deidentified_ct()
    ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x23, "DS", "1.5")  # on the safe list
    assert only_reason(received(ds)) == (
        "private block (0019,10xx) of 'GEMS_ACQU_01': 1 attribute(s) with values; Retain Safe Private (113111) is not declared"
    )
    ds = deidentified_ct()
    item = Dataset()
    item.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "anything")
    ds.SharedFunctionalGroupsSequence = [item]
    assert only_reason(received(ds)).startswith("private block (0009,10xx) of 'ACME 1.0' in SharedFunctionalGroupsSequence[0]: 1 attribute(s)")


def test_with_retain_safe_private_only_safe_private_attributes_may_carry_values() -> None:
    ds = deidentified_ct(O.RETAIN_SAFE_PRIVATE)
    ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x23, "DS", "1.5")  # Table Speed: safe
    nest(ds, "PatientSex", "F")  # basic Z: not safe, so the sequence is needed only as a place
    ds.SharedFunctionalGroupsSequence[0].private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x24, "DS", "0.7")
    ds.SharedFunctionalGroupsSequence[0].PatientSex = ""
    assert reasons_to_quarantine(received(ds)) == []
    ds.private_block(0x0019, "GEMS_ACQU_01").add_new(0x9F, "LO", "not on the list")
    ds.private_block(0x0009, "GEMS_IDEN_01", create=True).add_new(0x01, "LO", "CT01")
    reasons = reasons_to_quarantine(received(ds))
    assert reasons == [
        "private block (0009,10xx) of 'GEMS_IDEN_01': 1 attribute(s) with values; not on the safe private list",
        "private block (0019,10xx) of 'GEMS_ACQU_01': 1 attribute(s) with values; not on the safe private list",
    ]


def test_private_tags_sent_in_implicit_vr_are_judged_by_creator_and_element() -> None:
    ds = deidentified_ct(O.RETAIN_SAFE_PRIVATE)
    ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x23, "DS", "1.5")
    ds.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "scanner room 3")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=True, little_endian=True)
    assert only_reason(read_complete(buffer.getvalue())).startswith("private block (0009,10xx) of 'ACME 1.0'")


def test_structured_content_needs_clean_structured_content() -> None:
    report = build_teaching_file_info(INFO, [dcmread(dicom_data.test_file("CT_small.dcm"))])
    out = received(deidentify(report, Profile.of(O.CLEAN_STRUCTURED_CONTENT), KEY).dataset)
    assert reasons_to_quarantine(out) == []
    reasons = reasons_to_quarantine(declared(out))  # same content, 113104 not declared: D applies
    assert reasons and all(" in ContentSequence[" in r for r in reasons[:-1])
    assert any(r.startswith("TextValue (0040,A160) in ContentSequence[") for r in reasons)


def test_the_declaration_itself_is_checked() -> None:
    ds = deidentified_ct()
    both = Profile.of(O.RETAIN_LONGITUDINAL_FULL_DATES).method_codes() + [O.RETAIN_LONGITUDINAL_MODIFIED_DATES.concept]
    ds.DeidentificationMethodCodeSequence = both
    assert only_reason(ds).startswith("De-identification Method Code Sequence (0012,0064) declares both")
    ds.DeidentificationMethodCodeSequence = [O.CLEAN_DESCRIPTORS.concept]
    assert only_reason(ds).endswith("does not declare the Basic Profile (DCM 113100)")


def test_the_rules_are_built_once_per_option_set() -> None:
    assert rules_for(frozenset({O.CLEAN_DESCRIPTORS})) is rules_for(frozenset({O.CLEAN_DESCRIPTORS}))
