"""The archive's door check on real headers, nested sequences and private tags included."""

from pydicom import dcmread
from pydicom.dataset import Dataset

from ingest.deid import Option, Profile, ProjectKey, deidentify
from ingest.deid_check import reasons_to_quarantine

from .. import dicom_data


def clean_ct() -> Dataset:
    """CT_small through the edge's engine, Clean Descriptors declared (descriptions may hold text)."""
    original = dcmread(dicom_data.test_file("CT_small.dcm"))
    return deidentify(original, Profile.of(Option.CLEAN_DESCRIPTORS), ProjectKey(b"check-secret-0123456789abcdef")).dataset


def test_a_deidentified_object_passes():
    assert reasons_to_quarantine(clean_ct()) == []


def test_required_attributes_the_engine_kept_empty_or_dummy_pass():
    """Table E.1-1 says X, the IOD requires them: the engine empties them or writes a dummy."""
    from importlib.resources import files

    cat = dcmread(str(files("deid_data") / "data" / "animals" / "cat.dcm"))
    cat.ResponsiblePerson = "Owner^Jane"  # Type 2C for an animal
    source = Dataset()
    source.SeriesDescription = "Jane's cat"  # Type 1 in Source Series Information Sequence
    cat.SourceSeriesInformationSequence = [source]
    out = deidentify(cat, Profile(), ProjectKey(b"check-secret-0123456789abcdef")).dataset
    assert out.ResponsiblePerson == "" and out.SourceSeriesInformationSequence[0].SeriesDescription == "DEIDENTIFIED"
    assert reasons_to_quarantine(out) == []
    out.SourceSeriesInformationSequence[0].SeriesDescription = "Jane's cat"
    assert reasons_to_quarantine(out) == [(
        "SeriesDescription (0008,103E) in SourceSeriesInformationSequence[0] has a value; the declared profile removes "
        "it (X) unless Clean Descriptors (113105) is declared"
    )]


def test_a_timezone_offset_dummy_in_its_own_format_passes():
    ct = dcmread(dicom_data.test_file("CT_small.dcm"))
    ct.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.72"  # Simplified Adult Echo SR: Type 1 there
    ct.TimezoneOffsetFromUTC = "+0100"
    out = deidentify(ct, Profile(), ProjectKey(b"check-secret-0123456789abcdef")).dataset
    assert out.TimezoneOffsetFromUTC == "+0000"
    assert not [r for r in reasons_to_quarantine(out) if "TimezoneOffsetFromUTC" in r]


def test_identifiers_inside_nested_sequences_are_found():
    ds = clean_ct()
    item, inner = Dataset(), Dataset()
    inner.OperatorsName = "Bloggs^Fred"
    item.ReferencedImageSequence = [inner]  # X/Z/U*: kept with new UIDs, cleaned inside
    ds.RequestAttributesSequence = [item]
    [reason] = reasons_to_quarantine(ds)
    assert reason == (
        "OperatorsName (0008,1070) in RequestAttributesSequence[0] in ReferencedImageSequence[0] has a value; "
        "the declared profile removes, empties or writes a dummy value (X/Z/D)"
    )


def test_an_nhs_number_in_kept_text_is_found_and_a_wrong_check_digit_is_not():
    ds = clean_ct()
    ds.StudyDescription = "CT chest ref 943 476 5918"  # check digit wrong: not an NHS number
    assert reasons_to_quarantine(ds) == []
    item = Dataset()
    item.StudyDescription = "CT chest NHS 943 476 5919"
    ds.SharedFunctionalGroupsSequence = [item]
    [reason] = reasons_to_quarantine(ds)
    assert reason == "an NHS number appears in StudyDescription in SharedFunctionalGroupsSequence[0]"


def test_an_undeclared_object_is_held():
    ds = clean_ct()
    ds.PatientIdentityRemoved = "NO"
    del ds.DeidentificationMethodCodeSequence
    reasons = reasons_to_quarantine(ds)
    assert reasons[:2] == [
        "Patient Identity Removed (0012,0062) is not YES",
        "no De-identification Method Code Sequence (0012,0064)",
    ]
    # nothing declared: the Basic Profile alone is the measure, which removes descriptions
    assert reasons[2:] == [
        "StudyDescription (0008,1030) has a value; the declared profile removes it (X) unless Clean Descriptors (113105) is declared",
        "ContrastBolusAgent (0018,0010) has a value; the declared profile empties it or writes a dummy value (Z/D) unless Clean Descriptors (113105) is declared",
        "ImageComments (0020,4000) has a value; the declared profile removes it (X) unless Clean Descriptors (113105) is declared",
    ]


def test_an_nhs_number_in_a_private_tag_sent_in_implicit_vr_is_found():
    import io

    from pydicom import dcmread
    from pydicom.uid import ImplicitVRLittleEndian

    ds = clean_ct()
    ds.private_block(0x0011, "SITE 1.0", create=True).add_new(0x11, "LO", "NHS 943 476 5919")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=True, little_endian=True)
    received = dcmread(io.BytesIO(buffer.getvalue()))
    assert any(r.startswith("an NHS number appears in") for r in reasons_to_quarantine(received))
