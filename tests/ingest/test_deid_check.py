"""The archive's door check on real headers, nested sequences and private tags included."""

from pydicom.dataset import Dataset

from ingest.deid_check import reasons_to_quarantine

from .. import dicom_data


def clean_ct() -> Dataset:
    return dicom_data.study(["CT_small.dcm"])[0]


def test_a_deidentified_object_passes():
    assert reasons_to_quarantine(clean_ct()) == []


def test_identifiers_inside_nested_sequences_are_found():
    ds = clean_ct()
    item, inner = Dataset(), Dataset()
    inner.OperatorsName = "Bloggs^Fred"
    item.ReferencedStudySequence = [inner]
    ds.RequestAttributesSequence = [item]
    [reason] = reasons_to_quarantine(ds)
    assert reason == "OperatorsName has a value in RequestAttributesSequence[0] in ReferencedStudySequence[0]"


def test_an_nhs_number_in_a_private_tag_is_found_and_a_wrong_check_digit_is_not():
    ds = clean_ct()
    block = ds.private_block(0x0011, "SITE 1.0", create=True)
    block.add_new(0x10, "LO", "ref 943 476 5918")  # check digit wrong: not an NHS number
    assert reasons_to_quarantine(ds) == []
    block.add_new(0x11, "LO", "NHS 943 476 5919")
    [reason] = reasons_to_quarantine(ds)
    assert reason.startswith("an NHS number appears in")


def test_an_undeclared_object_is_held():
    ds = clean_ct()
    ds.PatientIdentityRemoved = "NO"
    del ds.DeidentificationMethodCodeSequence
    assert reasons_to_quarantine(ds) == [
        "Patient Identity Removed (0012,0062) is not YES",
        "no De-identification Method Code Sequence (0012,0064)",
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
