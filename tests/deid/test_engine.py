"""The de-identification engine on a synthetic object that plants a unique marker in every
attribute of Table E.1-1, and on real pydicom test files, KOS manifests and SR content."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import pydicom.data
import pytest
from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from ingest.deid import Option, Profile, ProjectKey, Result, deidentify, load_table
from ingest.deid.dates import shift_date, shift_datetime
from ingest.deid.engine import DUMMY_TEXT
from ingest.deid.table import PatternKind
from ingest.tce import codes as tce_codes
from ingest.tce.manifest import parse_manifest

KEY = ProjectKey(b"project-A-secret-0123456789abcdef")
OTHER_KEY = ProjectKey(b"project-B-secret-0123456789abcdef")
BASIC = Profile()
NESTING_SEQUENCE = "SharedFunctionalGroupsSequence"  # not in Table E.1-1: kept and cleaned inside
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
CAT = Path(str(files("deid_data") / "data" / "animals" / "cat.dcm"))


def _visit(patient_id: str, study_date: str, acquisition: str) -> Dataset:
    """A real CT image of one patient's visit."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientID, ds.PatientName = patient_id, f"Doe^{patient_id}"
    ds.StudyDate, ds.AcquisitionDateTime, ds.StudyTime = study_date, acquisition, "235500"
    return ds


def _original(keyword: str) -> str:
    return str(dcmread(get_testdata_file("CT_small.dcm"))[keyword].value)


# --- A synthetic object with a marker in every attribute of the table ----------------------


@dataclass(frozen=True)
class Marker:
    """A planted value: ``needle`` is searched as text and bytes; ``value`` element by element."""

    tag: int
    where: str
    value: object
    needle: str | None


@dataclass
class Planted:
    ds: Dataset
    markers: list[Marker] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    safe_private: dict[tuple[str, int], object] = field(default_factory=dict)  # (where, tag) -> value

    @property
    def needles(self) -> list[str]:
        return [m.needle for m in self.markers if m.needle]


def _marker_value(vr: str, n: int, basic: str) -> tuple[object, str | None]:
    """A valid value for ``vr`` that is unique to marker ``n``, and the text to search for."""
    text = f"MK{n:04d}Q"
    # 400 days apart: no date shift (at most 365 days) can turn one marker into another.
    day = (dt.date(1930, 1, 1) + dt.timedelta(days=400 * n)).strftime("%Y%m%d")
    if vr in ("AE", "CS", "LO", "LT", "SH", "ST", "UT", "UC", "PN"):
        return text, text
    if vr == "UR":
        return f"http://{text}.example", text
    if vr == "DA":
        return day, day
    if vr == "DT":
        return day + "121314", day + "121314"
    if vr == "TM":
        value = f"1213{n % 60:02d}.{900000 + n}"
        return value, value
    if vr == "UI":
        value = f"1.2.826.0.1.3680043.99.{n}.424242"
        return value, value
    if vr == "DS":
        value = f"{8000 + n}.25"
        return value, value
    if vr == "IS":
        return f"{70000 + n}", None
    if vr == "AS":
        return f"{100 + n % 800:03d}Y", None
    if vr in ("US", "SS"):
        return 20000 + n, None
    if vr in ("UL", "SL", "UV", "SV"):
        return 3_000_000 + n, None
    if vr in ("FL", "FD"):
        return n + 0.5, None
    if vr in ("OB", "OW", "UN", "OF", "OL", "OD", "OV"):
        return f"{text} padding".encode().ljust(16, b" "), text
    if vr == "SQ":
        item = Dataset()
        if basic == "X/Z/U*":  # a sequence of references: the marker is the referenced instance
            uid = f"1.2.826.0.1.3680043.99.{n}.424242"
            item.ReferencedSOPClassUID = CTImageStorage
            item.ReferencedSOPInstanceUID = uid
            return Sequence([item]), uid
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "99X", "99LOCAL", text
        return Sequence([item]), text
    raise AssertionError(f"no marker for VR {vr}")


def _plant_table(target: Dataset, where: str, counter: Iterator[int], planted: Planted) -> None:
    for row in load_table():
        tag = row.pattern.tag
        if row.pattern.kind is not PatternKind.TAG or tag is None:
            continue
        if tag >> 16 == 0x0002:
            if where != "top":
                planted.skipped[f"{row.tag} {where}"] = "File Meta Information exists only at the top level"
                continue
        vr = dictionary_VR(tag).split(" or ")[0]
        value, needle = _marker_value(vr, next(counter), row.basic)
        if tag >> 16 == 0x0002:
            target.file_meta[tag] = DataElement(tag, vr, value)
        else:
            target.add_new(tag, vr, value)
        planted.markers.append(Marker(tag, where, value, needle))


def _plant_private(target: Dataset, where: str, counter: Iterator[int], planted: Planted) -> None:
    """An unsafe creator, a safe creator with safe and unsafe elements, another safe block."""
    blocks = {
        (0x0009, "ACME UNSAFE 1.0"): [(0x01, "LO"), (0x02, "UI"), (0x03, "OB")],
        (0x0019, "GEMS_ACQU_01"): [(0x23, "DS"), (0x9E, "LO"), (0x01, "LO")],
        (0x0043, "GEMS_PARM_01"): [(0x27, "SH")],
    }
    safe = {(0x0019, 0x23), (0x0019, 0x9E), (0x0043, 0x27)}
    for (group, creator), elements in blocks.items():
        block = target.private_block(group, creator, create=True)
        for offset, vr in elements:
            value, needle = _marker_value(vr, next(counter), "X")
            block.add_new(offset, vr, value)
            planted.markers.append(Marker(block.get_tag(offset), where, value, needle))
            if (group, offset) in safe:
                planted.safe_private[(where, block.get_tag(offset))] = value


def _plant_graphics(target: Dataset, counter: Iterator[int], planted: Planted) -> None:
    """An overlay plane and a curve, each with markers in its data and its free text."""
    target.add_new(0x60000010, "US", 8)
    target.add_new(0x60000011, "US", 8)
    target.add_new(0x60000040, "CS", "G")
    target.add_new(0x60000050, "SS", [1, 1])
    target.add_new(0x60000100, "US", 1)
    target.add_new(0x60000102, "US", 0)
    for tag, vr in ((0x60003000, "OW"), (0x60004000, "LT"), (0x60001500, "LO"), (0x50003000, "OB"), (0x50002500, "LO")):
        value, needle = _marker_value(vr, next(counter), "X")
        target.add_new(tag, vr, value[:8] if tag == 0x60003000 else value)
        planted.markers.append(Marker(tag, "top", value, needle))


def planted_dataset() -> Planted:
    """A CT image whose every Table E.1-1 attribute holds a unique marker, twice (top level and
    inside a sequence item), with private blocks, an overlay plane and a curve."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelData = bytes(range(32))
    planted = Planted(ds)
    counter = itertools.count(1)
    _plant_table(ds, "top", counter, planted)
    nested = Dataset()
    nested.ImageType = ["ORIGINAL", "PRIMARY"]
    _plant_table(nested, "nested", counter, planted)
    _plant_private(nested, "nested", counter, planted)
    ds.add_new(tag_for_keyword(NESTING_SEQUENCE), "SQ", Sequence([nested]))
    _plant_private(ds, "top", counter, planted)
    _plant_graphics(ds, counter, planted)
    return planted


@pytest.fixture(scope="module")
def planted() -> Planted:
    return planted_dataset()


@pytest.fixture(scope="module")
def basic_result(planted: Planted) -> Result:
    return deidentify(planted.ds, BASIC, KEY)


def encoded(ds: Dataset) -> bytes:
    """The object as a DICOM file's bytes (preamble, File Meta, dataset, explicit VR LE).

    ``dcmwrite`` refuses the Command group elements Table E.1-1 lists, so the file is written
    with the lower-level writers; every other test writes with ``save_as``.
    """
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=False)
    write_dataset(fp, ds)
    return fp.getvalue()


def all_elements(ds: Dataset) -> Iterator[DataElement]:
    yield from getattr(ds, "file_meta", Dataset())
    yield from ds.iterall()


def values_of(elem: DataElement) -> Iterator[object]:
    value = elem.value
    if elem.VR == "SQ" or value is None:
        return
    if isinstance(value, MultiValue | list | tuple):
        yield from value
    else:
        yield value


def is_graphics_group(tag: int) -> bool:
    """A curve (50xx) or overlay (60xx) element."""
    return (tag >> 16) & 0xFF01 in (0x5000, 0x6000) and (tag >> 16) & 0xFF <= 0x1E


@lru_cache(maxsize=8)
def _needle_pattern(needles: tuple[str, ...]) -> re.Pattern[bytes]:
    """Any needle where a value starts: not inside a longer number, as a date can be inside a
    random replacement UID. (What follows a value in a file is the next tag, which may well be
    an ASCII digit: group 0x0032 is written ``2\\x00``.)"""
    ordered = sorted(needles, key=len, reverse=True)
    return re.compile(rb"(?<![0-9.])(?:" + b"|".join(re.escape(n.encode()) for n in ordered) + rb")")


def found_needles(data: bytes, needles: list[str]) -> set[str]:
    return {match.decode() for match in _needle_pattern(tuple(needles)).findall(data)}


def remaining_needles(ds: Dataset, needles: list[str]) -> set[str]:
    """Markers left in any element value (File Meta, top level, every item)."""
    found: set[str] = set()
    for elem in all_elements(ds):
        for value in values_of(elem):
            data = bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode("utf-8", "replace")
            found |= found_needles(data, needles)
    return found


# --- Every marker goes under the Basic Profile --------------------------------------------


def test_every_table_attribute_is_planted_and_skips_are_few_and_explained(planted: Planted) -> None:
    tag_rows = sum(1 for row in load_table() if row.pattern.kind is PatternKind.TAG)
    assert tag_rows == 617
    top = [m for m in planted.markers if m.where == "top" and m.tag >> 16 not in (0x5000, 0x6000) and not m.tag >> 16 & 1]
    nested = [m for m in planted.markers if m.where == "nested" and not m.tag >> 16 & 1]
    assert len(top) == tag_rows
    assert len(nested) == tag_rows - len(planted.skipped)
    assert planted.skipped == {"(0002,0003) nested": "File Meta Information exists only at the top level"}
    assert tag_for_keyword(NESTING_SEQUENCE) not in {row.pattern.tag for row in load_table()}
    assert len(planted.needles) == len(set(planted.needles)), "markers must be unique"


def test_planted_file_holds_every_marker(planted: Planted) -> None:
    """The scan below would prove nothing if the markers were never written."""
    assert found_needles(encoded(planted.ds), planted.needles) == set(planted.needles)
    assert remaining_needles(planted.ds, planted.needles) == set(planted.needles)


def test_basic_profile_leaves_no_marker_in_any_element(planted: Planted, basic_result: Result) -> None:
    assert remaining_needles(basic_result.dataset, planted.needles) == set()
    numeric = {(m.tag, m.value) for m in planted.markers if m.needle is None}
    assert numeric, "some markers are numeric"
    leftovers = [
        (keyword_for_tag(elem.tag), value)
        for elem in all_elements(basic_result.dataset) for value in values_of(elem)
        if (elem.tag, value) in numeric
    ]
    assert leftovers == []


def test_basic_profile_leaves_no_marker_in_the_written_file(planted: Planted, basic_result: Result) -> None:
    assert found_needles(encoded(basic_result.dataset), planted.needles) == set()


def test_changes_name_their_rule_and_never_carry_values(planted: Planted, basic_result: Result) -> None:
    changes = basic_result.changes
    assert len(changes) > 2 * 617
    assert all(change.rule and change.action in "XZDCUA" for change in changes)
    assert found_needles(repr(changes).encode(), planted.needles) == set()
    institution = next(c for c in changes if c.keyword == "InstitutionName" and c.path == "InstitutionName")
    assert institution.rule == "E.1-1 (0008,0080) Institution Name: basic X/Z/D -> X (Type 3 in ct-image)"
    assert institution.old == "<removed>"
    nested = [c for c in changes if c.path.startswith(f"{NESTING_SEQUENCE}[0].")]
    assert len(nested) > 600


def test_input_is_not_changed_and_output_is_deterministic(planted: Planted) -> None:
    before = encoded(planted.ds)
    first = deidentify(planted.ds, Profile.default(), KEY)
    again = deidentify(planted.ds, Profile.default(), KEY)
    assert encoded(planted.ds) == before
    assert encoded(first.dataset) == encoded(again.dataset)
    first.dataset.ImageType = ["DERIVED"]
    first.dataset[NESTING_SEQUENCE][0].ImageType = ["DERIVED"]
    assert encoded(planted.ds) == before, "the output shares no mutable value with the input"


def test_basic_profile_keeps_structure_and_marks_the_object(basic_result: Result) -> None:
    ds = basic_result.dataset
    assert ds.SOPClassUID == CTImageStorage
    assert ds.PixelData == bytes(range(32))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.ImplementationVersionName == "CASEBANK"
    assert ds.SOPInstanceUID.startswith("2.25.")
    # D on an SR content tree keeps the items and replaces their text.
    assert ds.ContentSequence[0].CodeMeaning == DUMMY_TEXT
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
    assert ds.AccessionNumber == ""  # Z
    assert "PatientAddress" not in ds  # X
    assert not any(is_graphics_group(elem.tag) for elem in ds)  # whole overlay group, curves
    assert not any(elem.tag >> 16 & 1 for elem in ds.iterall())  # no private element anywhere


# --- Each option keeps exactly what its column says ----------------------------------------


def _top(ds: Dataset, tag: int) -> DataElement | None:
    if tag >> 16 == 0x0002:
        return ds.file_meta.get(tag)
    return ds.get(tag)


@pytest.mark.parametrize("option", [o for o in Option if o is not Option.RETAIN_SAFE_PRIVATE], ids=lambda o: o.name)
def test_option_changes_only_its_column_and_keeps_what_it_retains(option: Option, planted: Planted, basic_result: Result) -> None:
    result = deidentify(planted.ds, Profile(frozenset({option})), KEY)
    checked = Counter()
    for row in load_table():
        tag = row.pattern.tag
        if tag is None or tag in (tag_for_keyword("PatientName"), tag_for_keyword("PatientID")):
            continue
        original, out, basic = _top(planted.ds, tag), _top(result.dataset, tag), _top(basic_result.dataset, tag)
        action = row.option_actions.get(option)
        if tag == MEDIA_STORAGE_SOP_INSTANCE_UID:  # always the object's (new or kept) SOP Instance UID
            assert out.value == result.dataset.SOPInstanceUID
        elif action is None:
            assert out == basic, f"{row.tag} {row.name} is not in the {option.name} column but changed"
        elif action == "K":
            assert out == original, f"{row.tag} {row.name} must be kept by {option.name}"
        else:
            _assert_cleaned(option, row.tag, original, out, basic, result)
        checked[action] += 1
    assert checked[None] > 400 and checked["K"] + checked["C"] > 0


def _assert_cleaned(option: Option, where: str, original, out, basic, result: Result) -> None:  # type: ignore[no-untyped-def]
    vr = original.VR
    if option is Option.CLEAN_GRAPHICS:
        assert out is None, where
    elif option is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES and vr == "DA":
        assert out.value == shift_date(original.value, result.date_shift_days) != original.value, where
    elif option is Option.RETAIN_LONGITUDINAL_MODIFIED_DATES and vr == "DT":
        assert out.value == shift_datetime(original.value, result.date_shift_days) != original.value, where
    elif option is Option.RETAIN_DEVICE_IDENTITY and vr == "AE":
        assert out.value.startswith("AE") and len(out.value) == 16 and out.value != original.value, where
    elif vr in ("OB", "OW"):  # "C" cannot clean opaque binary: the Basic Profile action applies
        assert out == basic, where
    else:  # times, CS, and free text with nothing identifying in it are kept as they are
        assert out == original, where


def test_retain_patient_characteristics_keeps_sex_age_size_weight(planted: Planted) -> None:
    ds = deidentify(planted.ds, Profile.of(Option.RETAIN_PATIENT_CHARACTERISTICS), KEY).dataset
    for keyword in ("PatientSex", "PatientAge", "PatientSize", "PatientWeight", "EthnicGroup"):
        assert ds[keyword].value == planted.ds[keyword].value, keyword
    assert ds.PatientBirthDate == ""


def test_retain_device_and_institution_identity(planted: Planted) -> None:
    device = deidentify(planted.ds, Profile.of(Option.RETAIN_DEVICE_IDENTITY), KEY).dataset
    assert device.DeviceSerialNumber == planted.ds.DeviceSerialNumber
    assert device.StationName == planted.ds.StationName
    assert device.DeviceUID == planted.ds.DeviceUID
    assert "InstitutionName" not in device or device.InstitutionName != planted.ds.InstitutionName
    institution = deidentify(planted.ds, Profile.of(Option.RETAIN_INSTITUTION_IDENTITY), KEY).dataset
    assert institution.InstitutionName == planted.ds.InstitutionName
    assert institution.InstitutionAddress == planted.ds.InstitutionAddress
    assert "DeviceSerialNumber" not in institution


def test_retain_uids_keeps_every_uid(planted: Planted, basic_result: Result) -> None:
    result = deidentify(planted.ds, Profile.of(Option.RETAIN_UIDS), KEY)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert result.dataset[keyword].value == planted.ds[keyword].value
        assert basic_result.dataset[keyword].value != planted.ds[keyword].value
    assert result.dataset.file_meta.MediaStorageSOPInstanceUID == planted.ds.SOPInstanceUID
    # Only the U rows without a K in the Retain UIDs column are still replaced.
    still_replaced = {row.pattern.tag for row in load_table() if row.basic == "U" and Option.RETAIN_UIDS not in row.option_actions}
    assert still_replaced == {tag_for_keyword("UID"), tag_for_keyword("DigitalSignatureUID")}
    assert set(result.uid_map) == {m.value for m in planted.markers if m.tag in still_replaced}


@pytest.mark.parametrize("option", list(Option), ids=lambda o: o.name)
def test_option_leaks_nothing_but_what_its_column_retains(option: Option, planted: Planted) -> None:
    """Element by element and in the written file, at the top level and in nested items."""
    result = deidentify(planted.ds, Profile.of(option), KEY)
    retained = {row.pattern.tag for row in load_table() if row.option_actions.get(option) in ("K", "C")}
    allowed = {m.needle for m in planted.markers if m.needle and m.tag in retained}
    if option is Option.RETAIN_SAFE_PRIVATE:
        allowed |= {str(value) for value in planted.safe_private.values()}
    assert remaining_needles(result.dataset, planted.needles) <= allowed
    assert found_needles(encoded(result.dataset), planted.needles) <= allowed
    if option in (Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_UIDS, Option.RETAIN_SAFE_PRIVATE):
        assert remaining_needles(result.dataset, planted.needles), "the option retains something"


def test_retain_safe_private_keeps_only_listed_elements_and_their_creators(planted: Planted) -> None:
    result = deidentify(planted.ds, Profile.of(Option.RETAIN_SAFE_PRIVATE), KEY)
    out = result.dataset
    nested = out[NESTING_SEQUENCE][0]
    kept = {("top", e.tag): e.value for e in out if e.tag >> 16 & 1 and e.tag & 0xFFFF >= 0x1000}
    kept |= {("nested", e.tag): e.value for e in nested if e.tag >> 16 & 1 and e.tag & 0xFFFF >= 0x1000}
    assert kept == planted.safe_private
    creators = {e.value for e in out if e.tag >> 16 & 1 and e.tag & 0xFFFF < 0x1000}
    assert creators == {"GEMS_ACQU_01", "GEMS_PARM_01"}
    assert out.private_block(0x0019, "GEMS_ACQU_01")[0x23].value == planted.ds.private_block(0x0019, "GEMS_ACQU_01")[0x23].value
    unsafe = [c for c in result.changes if "not on the safe private list" in c.rule]
    assert len(unsafe) == 2 * 4  # three ACME elements and one unlisted GEMS_ACQU_01 element, twice


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_safe_private_uids_are_replaced_even_from_implicit_vr_files(syntax: str, tmp_path: Path) -> None:
    ds = _visit("P1", "20200101", "20200101")
    series_uid = "1.2.826.0.1.3680043.99.777.1"
    block = ds.private_block(0x0099, "NQHeader", create=True)
    block.add_new(0x02, "UI", series_uid)  # Analyzed Series UID, on the safe list
    block.add_new(0x10, "FL", 0.75)  # MI
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "in.dcm"
    ds.save_as(path, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
    result = deidentify(dcmread(path), Profile.of(Option.RETAIN_SAFE_PRIVATE), KEY)
    kept = result.dataset.private_block(0x0099, "NQHeader")
    assert kept[0x02].value == result.uid_map[series_uid] != series_uid
    assert kept[0x10].value in (0.75, b"\x00\x00@?")


def test_safe_private_site_additions_extend_the_list(planted: Planted, tmp_path: Path) -> None:
    profile_file = tmp_path / "site.toml"
    profile_file.write_text(
        'options = ["RETAIN_SAFE_PRIVATE"]\n[[safe_private]]\ntag = "(0009,xx01)"\n'
        'private_creator = "ACME UNSAFE 1.0"\nvr = "LO"\n'
    )
    out = deidentify(planted.ds, Profile.load(profile_file), KEY).dataset
    assert out.private_block(0x0009, "ACME UNSAFE 1.0")[0x01].value == planted.ds.private_block(0x0009, "ACME UNSAFE 1.0")[0x01].value
    assert 0x00091002 not in out


def test_clean_graphics_removes_overlays_curves_and_graphic_annotations(planted: Planted, basic_result: Result) -> None:
    out = deidentify(planted.ds, Profile.of(Option.CLEAN_GRAPHICS), KEY).dataset
    assert "GraphicAnnotationSequence" in basic_result.dataset  # D: kept, text replaced
    assert "GraphicAnnotationSequence" not in out
    assert not any(is_graphics_group(e.tag) for e in out)


# --- Dates ------------------------------------------------------------------------------


def test_modified_dates_keep_intervals_and_time_of_day_for_one_patient() -> None:
    profile = Profile.of(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES)
    first = deidentify(_visit("P1", "20200101", "20200101235959.5+0000"), profile, KEY)
    second = deidentify(_visit("P1", "20210315", "20210316000001"), profile, KEY)
    assert first.date_shift_days == second.date_shift_days
    assert -365 <= first.date_shift_days <= -1

    def day(value: str) -> dt.date:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()

    a, b = first.dataset, second.dataset
    assert day(b.StudyDate) - day(a.StudyDate) == dt.date(2021, 3, 15) - dt.date(2020, 1, 1)
    assert a.StudyDate != "20200101"
    assert a.AcquisitionDateTime.endswith("235959.5+0000") and b.AcquisitionDateTime.endswith("000001")
    assert a.StudyTime == "235500"
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"
    assert day(a.InstanceCreationDate) - day(a.StudyDate) == day(_original("InstanceCreationDate")) - dt.date(2020, 1, 1)


def test_date_shift_is_per_patient_and_per_project() -> None:
    profile = Profile.of(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES)
    patients = [f"P{i}" for i in range(6)]
    in_a = [deidentify(_visit(p, "20200101", "20200101"), profile, KEY).date_shift_days for p in patients]
    in_b = [deidentify(_visit(p, "20200101", "20200101"), profile, OTHER_KEY).date_shift_days for p in patients]
    assert len(set(in_a)) > 1, "different patients get different shifts"
    assert in_a != in_b, "another project shifts differently"


def test_full_dates_keep_dates_and_say_so() -> None:
    out = deidentify(_visit("P1", "20200101", "20200101"), Profile.of(Option.RETAIN_LONGITUDINAL_FULL_DATES), KEY).dataset
    assert out.StudyDate == "20200101"
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"


# --- Pseudonyms ---------------------------------------------------------------------------


def test_same_patient_same_pseudonym_within_a_project_different_across() -> None:
    one = deidentify(_visit("NHS-1", "20200101", "20200101"), BASIC, KEY)
    two = deidentify(_visit("NHS-1", "20220202", "20220202"), BASIC, KEY)
    other_patient = deidentify(_visit("NHS-2", "20200101", "20200101"), BASIC, KEY)
    other_project = deidentify(_visit("NHS-1", "20200101", "20200101"), BASIC, OTHER_KEY)
    assert one.dataset.PatientID == two.dataset.PatientID == str(one.dataset.PatientName)
    assert one.patient_id_map == {"NHS-1": one.dataset.PatientID}
    assert other_patient.dataset.PatientID != one.dataset.PatientID
    assert other_project.dataset.PatientID != one.dataset.PatientID
    given = deidentify(_visit("NHS-1", "20200101", "20200101"), BASIC, KEY, patient_pseudonym="CASE-0042")
    assert given.dataset.PatientID == given.dataset.PatientName == "CASE-0042"
    with pytest.raises(ValueError, match="pseudonym"):
        deidentify(_visit("NHS-1", "20200101", "20200101"), BASIC, KEY, patient_pseudonym="A\\B")


def test_uids_are_consistent_within_a_project_and_differ_across() -> None:
    ds = _visit("P1", "20200101", "20200101")
    a, b = deidentify(ds, BASIC, KEY), deidentify(ds, BASIC, OTHER_KEY)
    assert a.uid_map[ds.StudyInstanceUID] == a.dataset.StudyInstanceUID
    assert a.dataset.StudyInstanceUID != b.dataset.StudyInstanceUID
    assert deidentify(ds, Profile.default(), KEY).dataset.StudyInstanceUID == a.dataset.StudyInstanceUID
    assert all(len(new) <= 64 and new.startswith("2.25.") for new in a.uid_map.values())


# --- Method codes -------------------------------------------------------------------------


@pytest.mark.parametrize("options", [frozenset(), *(frozenset({o}) for o in Option), Profile.default().options], ids=repr)
def test_method_code_sequence_lists_exactly_the_options_used(options: frozenset[Option]) -> None:
    out = deidentify(_visit("P1", "20200101", "20200101"), Profile(options), KEY).dataset
    listed = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert listed == ["113100", *(o.code for o in Option if o in options)]
    assert {item.CodingSchemeDesignator for item in out.DeidentificationMethodCodeSequence} == {"DCM"}
    assert list(out.DeidentificationMethod)[1:] == [item.CodeMeaning for item in out.DeidentificationMethodCodeSequence]
    assert out.PatientIdentityRemoved == "YES"


# --- Pixel data and files -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["CT_small.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "examples_overlay.dcm"])
def test_pixel_data_is_byte_identical_and_the_file_is_valid(name: str, tmp_path: Path) -> None:
    original = dcmread(get_testdata_file(name))
    result = deidentify(original, Profile.default(), KEY)
    path = tmp_path / "out.dcm"
    result.dataset.save_as(path, enforce_file_format=True)
    back = dcmread(path)
    assert back.PixelData == original.PixelData
    assert back.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID != original.SOPInstanceUID
    assert back.file_meta.ImplementationVersionName == "CASEBANK"
    assert "SourceApplicationEntityTitle" not in back.file_meta
    assert not any(is_graphics_group(e.tag) for e in back)
    raw = path.read_bytes()
    for identifier in (original.PatientName, original.PatientID, original.SOPInstanceUID, original.StudyInstanceUID):
        if str(identifier):
            assert str(identifier).encode() not in raw, identifier


def test_every_pydicom_test_file_deidentifies_and_writes(tmp_path: Path) -> None:
    """Real files of every kind (implicit VR, big endian, RT, SR, multi-frame, odd values)."""
    count = 0
    # The files shipped inside pydicom (get_testdata_files would try to download more).
    for name in sorted((Path(pydicom.data.__file__).parent / "test_files").glob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom ships deliberately odd files
            try:
                original = dcmread(name)
            except Exception:  # noqa: BLE001 - and some it cannot read at all
                continue
            if "SOPClassUID" not in original or "TransferSyntaxUID" not in original.file_meta:
                continue
            result = deidentify(original, Profile.default(), KEY)
            path = tmp_path / "out.dcm"
            result.dataset.save_as(path, enforce_file_format=True)
            back = dcmread(path)
            assert back.PatientIdentityRemoved == "YES"
            assert "PixelData" not in original or back.PixelData == original.PixelData, name
            assert not any(elem.tag >> 16 & 1 for elem in back.iterall()), name
        count += 1
    assert count > 50


# --- Conformance: combined actions by Type -----------------------------------------------


def test_combined_actions_follow_the_iod_type() -> None:
    ds = _visit("P1", "20200101", "20200101")
    ds.DeviceSerialNumber, ds.ContentDate = "SN-12345", "20200101"
    ds.EquipmentAdministratorSequence = [Dataset()]
    ds.EquipmentAdministratorSequence[0].InstitutionName = "St Elsewhere"
    ds.AssessmentRequesterSequence = [Dataset()]
    ds.AssessmentRequesterSequence[0].InstitutionName = "St Elsewhere"
    ct = deidentify(ds, BASIC, KEY).dataset
    assert "DeviceSerialNumber" not in ct  # X/Z/D, Type 3 in CT Image
    assert ct.ContentDate == ""  # Z/D, Type 2C
    assert ct.EquipmentAdministratorSequence[0].InstitutionName == DUMMY_TEXT  # X/Z/D, Type 1C there
    assert ct.AssessmentRequesterSequence[0].InstitutionName == ""  # Type 2 there
    ds.SOPClassUID = ENHANCED_CT
    enhanced = deidentify(ds, BASIC, KEY).dataset
    assert enhanced.DeviceSerialNumber == DUMMY_TEXT  # Type 1 in Enhanced CT Image
    ds.SOPClassUID = "1.2.826.0.1.3680043.99.1"  # unknown: strongest Type anywhere
    assert deidentify(ds, BASIC, KEY).dataset.DeviceSerialNumber == DUMMY_TEXT


def test_a_removed_attribute_the_iod_requires_is_emptied_or_given_a_dummy_instead() -> None:
    """Table E.1-1 says X, but PS3.3 requires it: Type 2/2C emptied, Type 1/1C a dummy (E.1.1 item 1)."""
    cat = dcmread(CAT)
    cat.ResponsiblePerson = "Owner^Jane"  # Type 2C in the Patient Module: required for an animal
    source = Dataset()
    source.SeriesDescription = "Jane's cat, left foreleg"  # Type 1 in Source Series Information Sequence
    source.SeriesInstanceUID = generate_uid()
    cat.SourceSeriesInformationSequence = [source]
    cat.SeriesDescription = "Jane's cat"  # Type 3 at the top level: removed as the table says
    item = Dataset()
    item.SeriesDescription = "Jane's cat"  # a sequence PS3.3 does not put it in: removed
    cat.SharedFunctionalGroupsSequence = [item]
    result = deidentify(cat, BASIC, KEY)
    out = result.dataset
    assert out.ResponsiblePerson == ""
    assert out.SourceSeriesInformationSequence[0].SeriesDescription == DUMMY_TEXT
    assert "SeriesDescription" not in out and "SeriesDescription" not in out.SharedFunctionalGroupsSequence[0]
    rules = {c.path: c.rule for c in result.changes}
    assert rules["ResponsiblePerson"] == (
        "E.1-1 (0010,2297) Responsible Person: basic X -> Z: Type 2C in digital-x-ray-image, kept for IOD conformance"
    )
    assert rules["SourceSeriesInformationSequence[0].SeriesDescription"].endswith(
        "basic X -> D: Type 1 in SourceSeriesInformationSequence, kept for IOD conformance"
    )
    assert rules["SeriesDescription"] == "E.1-1 (0008,103E) Series Description: basic X (Type 3 in digital-x-ray-image)"
    assert rules["SharedFunctionalGroupsSequence[0].SeriesDescription"] == "E.1-1 (0008,103E) Series Description: basic X"


def test_a_presentation_state_keeps_a_dummy_creation_date() -> None:
    gsps = _visit("P1", "20200101", "20200101")
    del gsps.PixelData
    gsps.SOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"  # Grayscale Softcopy Presentation State
    gsps.PresentationCreationDate, gsps.PresentationCreationTime = "20200102", "101010"  # Type 1 there
    out = deidentify(gsps, BASIC, KEY).dataset
    assert (out.PresentationCreationDate, out.PresentationCreationTime) == ("19000101", "000000")
    ct = deidentify(_visit("P1", "20200101", "20200101"), BASIC, KEY).dataset
    assert "PresentationCreationDate" not in ct


def test_a_required_timezone_offset_gets_a_dummy_in_its_own_format() -> None:
    echo = _report("Normal left ventricle.")
    echo.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.72"  # Simplified Adult Echo SR: Type 1 there
    echo.TimezoneOffsetFromUTC = "+0100"
    assert deidentify(echo, BASIC, KEY).dataset.TimezoneOffsetFromUTC == "+0000"  # &ZZXX, not "DEIDENTIFIED"
    ct = _visit("P1", "20200101", "20200101")
    ct.TimezoneOffsetFromUTC = "+0100"
    assert "TimezoneOffsetFromUTC" not in deidentify(ct, BASIC, KEY).dataset


def test_a_type_1_text_cleaned_to_nothing_gets_a_dummy_not_an_empty_value() -> None:
    rtstruct = dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    assert rtstruct.StructureSetLabel == rtstruct.StudyID  # the label is an identifier here
    out = deidentify(rtstruct, Profile.of(Option.CLEAN_DESCRIPTORS), KEY).dataset
    assert out.StructureSetLabel == DUMMY_TEXT


# --- Descriptors and structured content ------------------------------------------------------


def _identified() -> Dataset:
    ds = _visit("12345678", "20210304", "20210304101010")
    ds.PatientName = "Smith-Jones^John^Arthur"
    ds.OtherPatientIDs = "RX9988776"
    ds.PatientBirthDate = "19700521"
    ds.StudyDescription = "CT chest for JOHN SMITH 943 476 5919 on 04/03/2021"
    ds.SeriesDescription = "Arterial 1234567890 smithfield 12345678"
    ds.ImageComments = "Born 21 May 1970, MRN RX9988776; follow-up of 2021-03-04"
    return ds


def test_clean_descriptors_keeps_descriptions_without_names_ids_dates_or_nhs_numbers() -> None:
    out = deidentify(_identified(), Profile.of(Option.CLEAN_DESCRIPTORS), KEY).dataset
    assert out.StudyDescription == "CT chest for on"
    # 1234567890 fails the NHS check digit and "smithfield" is not the name "Smith".
    assert out.SeriesDescription == "Arterial 1234567890 smithfield"
    assert out.ImageComments == "Born , MRN ; follow-up of"
    basic = deidentify(_identified(), BASIC, KEY).dataset
    assert "StudyDescription" not in basic and "ImageComments" not in basic


def _report(text: str) -> Dataset:
    sr = _visit("12345678", "20210304", "20210304101010")
    del sr.PixelData
    sr.SOPClassUID, sr.Modality = COMPREHENSIVE_SR, "SR"
    sr.PatientName = "Smith^John"
    sr.ValueType = "CONTAINER"
    finding = Dataset()
    finding.RelationshipType, finding.ValueType, finding.TextValue = "CONTAINS", "TEXT", text
    finding.ConceptNameCodeSequence = [Dataset()]
    concept = finding.ConceptNameCodeSequence[0]
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = "TCE104", "IHERADTF", "Findings"
    observer = Dataset()
    observer.RelationshipType, observer.ValueType, observer.PersonName = "HAS OBS CONTEXT", "PNAME", "Who^Doctor"
    sr.ContentSequence = [finding, observer]
    return sr


def test_clean_structured_content_keeps_teaching_text_without_identifiers() -> None:
    text = "John Smith (NHS 9434765919), scanned 04/03/2021: classic ground-glass appearance."
    cleaned = deidentify(_report(text), Profile.of(Option.CLEAN_STRUCTURED_CONTENT), KEY).dataset
    finding, observer = cleaned.ContentSequence
    assert finding.TextValue == "(NHS ), scanned : classic ground-glass appearance."
    assert finding.ConceptNameCodeSequence[0].CodeMeaning == "Findings"
    assert observer.PersonName == DUMMY_TEXT  # Person Name (0040,A123) is D
    basic = deidentify(_report(text), BASIC, KEY).dataset.ContentSequence[0]
    assert basic.TextValue == DUMMY_TEXT and basic.ValueType == "TEXT"


# --- KOS references still resolve ---------------------------------------------------------------


def _study_with_manifest() -> tuple[list[Dataset], Dataset]:
    study_uid = generate_uid()
    images = []
    for number in (1, 2):
        ds = dcmread(get_testdata_file("CT_small.dcm"))
        ds.PatientName, ds.PatientID = "Doe^Jane", "NHS-9434765919"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        images.append(ds)
    content = KeyObjectSelection(document_title=tce_codes.FOR_TEACHING_FILE_EXPORT, referenced_objects=images)
    kos = KeyObjectSelectionDocument(
        evidence=images, content=content, series_instance_uid=generate_uid(), series_number=99,
        sop_instance_uid=generate_uid(), instance_number=1,
    )
    return images, kos


def _content_references(ds: Dataset) -> set[str]:
    found = set()
    for elem in ds.iterall():
        if elem.keyword == "ReferencedSOPInstanceUID":
            found.add(str(elem.value))
    return found


@pytest.mark.parametrize("profile", [BASIC, Profile.default()], ids=["basic", "default"])
def test_kos_references_resolve_after_deidentification(profile: Profile, tmp_path: Path) -> None:
    images, kos = _study_with_manifest()
    originals = {ds.SOPInstanceUID for ds in images} | {ds.StudyInstanceUID for ds in images} | {ds.SeriesInstanceUID for ds in images}
    assert _content_references(kos) == {ds.SOPInstanceUID for ds in images}
    out_images = [deidentify(ds, profile, KEY).dataset for ds in images]
    out_kos = deidentify(kos, profile, KEY).dataset
    instances = {ds.SOPInstanceUID for ds in out_images}
    assert _content_references(out_kos) == instances
    assert out_kos.StudyInstanceUID == out_images[0].StudyInstanceUID == out_images[1].StudyInstanceUID
    manifest = parse_manifest(out_kos)
    by_instance = {ds.SOPInstanceUID: ds for ds in out_images}
    for reference in manifest.references:
        image = by_instance[reference.sop_instance_uid]
        assert reference.series_instance_uid == image.SeriesInstanceUID
        assert reference.study_instance_uid == image.StudyInstanceUID
        assert reference.sop_class_uid == image.SOPClassUID
    path = tmp_path / "kos.dcm"
    out_kos.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    assert [uid for uid in originals if uid.encode() in raw] == []
    assert b"Doe" not in raw and b"9434765919" not in raw


def test_pseudonymised_kos_keeps_the_image_patient() -> None:
    images, kos = _study_with_manifest()
    out_kos = deidentify(kos, BASIC, KEY).dataset
    assert out_kos.PatientID == deidentify(images[0], BASIC, KEY).dataset.PatientID



def test_a_pseudonym_never_looks_like_an_nhs_number_and_others_stay_as_they_were():
    """The door check quarantines anything holding a valid NHS number: pseudonyms must not."""
    from ingest.deid.engine import derive_pseudonym as pseudonym
    from ingest.deid.nhs import looks_like_nhs_number

    key = ProjectKey(b"pseudonym-test-secret-0123456789")
    made = {f"patient-{n}": pseudonym(key, f"patient-{n}") for n in range(3000)}
    assert not any(looks_like_nhs_number(p) for p in made.values())
    unchanged = [p for n, p in made.items() if p == "CB-" + key.digest("patient", n).hex()[:16].upper()]
    assert 2900 < len(unchanged) < 3000  # only the few that looked like one were derived again
