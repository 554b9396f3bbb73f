"""The TCE manifest and ATFI report: built with highdicom, read back as vendors write them.

Expected codes are spelled out here from the standards digest (sections 1.5 and 1.6) rather than
imported from ``ingest.tce.codes``, so a wrong code in that module fails these tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import highdicom as hd
import pytest
from highdicom.sr import (
    CodeContentItem,
    CodedConcept,
    ContainerContentItem,
    ContentSequence,
    PnameContentItem,
    RelationshipTypeValues,
    TextContentItem,
)
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.uid import (
    BasicTextSRStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    KeyObjectSelectionDocumentStorage,
    generate_uid,
)

from ingest.tce import (
    Manifest,
    NotAManifest,
    NotTeachingFileInfo,
    Reference,
    TeachingFileInfo,
    build_manifest,
    build_teaching_file_info,
    is_manifest,
    is_teaching_file_info,
    parse_manifest,
    parse_teaching_file_info,
    teaching_file_info_content,
)
from ingest.tce.manifest import evidence_for_highdicom

from .. import dicom_data

CONTAINS = RelationshipTypeValues.CONTAINS
HAS_PROPERTIES = RelationshipTypeValues.HAS_PROPERTIES


def code(value: str, scheme: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


# Concept names as vendors write them (standards.md 1.6), independent of ingest.tce.codes.
ATFI_ROOT = code("TCE006", "IHERADTF", "Additional Teaching File Information")
AUTHOR = code("TCE101", "IHERADTF", "Author")
ABSTRACT = code("TCE104", "IHERADTF", "Abstract")
KEYWORDS = code("TCE105", "IHERADTF", "Keywords")
HISTORY = code("121060", "DCM", "History")
FINDING = code("121071", "DCM", "Finding")
DIAGNOSIS = code("TCE107", "IHERADTF", "Diagnosis")
ANATOMY = code("112005", "DCM", "Radiographic anatomy")
MODALITY = code("121139", "DCM", "Modality")
CATEGORY = code("TCE109", "IHERADTF", "Category")
LEVEL = code("TCE110", "IHERADTF", "Level")
CONFIRMED = code("TCE111", "IHERADTF", "Diagnosis confirmed")

FULL_INFO = TeachingFileInfo(
    author_name="Smith^Jane",
    author_gmc="1234567",
    affiliation="St Elsewhere Radiology",
    contact="jane.smith@example.org",
    abstract="Round pneumonia in a child",
    keywords=("pneumonia", "paediatric", "chest"),
    history="Cough for a week.\nFever 39 C.",
    findings="Round opacity in the right lower lobe.",
    discussion="Round pneumonia mimics a mass in children.",
    differential="Round pneumonia\nPulmonary sequestration",
    diagnosis="Round pneumonia",
    diagnosis_confirmed=True,
    organ_system="Respiratory",
    pathology="Infection",
    anatomy="Right lower lobe",
    modality="CT",
    category="Pulmonary",
    level="Advanced",
    codes=(("SCT", "233604007", "Pneumonia"),),
)


# --- Helpers ------------------------------------------------------------------------------


@pytest.fixture
def evidence() -> list[Dataset]:
    """CT_small and MR_small from pydicom, re-identified as one study, each its own series."""
    datasets = dicom_data.study(["CT_small.dcm", "MR_small.dcm"])
    for ds in datasets:
        ds.PatientName = "Pseudo^Case"  # highdicom warns about single-component names
    return datasets


def reread(ds: Dataset) -> Dataset:
    """Write as a Part 10 file and read it back, as a receiver would see it."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue()))


def expected_references(evidence: list[Dataset]) -> set[Reference]:
    return {
        Reference(
            sop_class_uid=ds.SOPClassUID,
            sop_instance_uid=ds.SOPInstanceUID,
            series_instance_uid=ds.SeriesInstanceUID,
            study_instance_uid=ds.StudyInstanceUID,
        )
        for ds in evidence
    }


def code_tuple(item: Dataset) -> tuple[str, str, str]:
    return (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning)


def set_title(ds: Dataset, title: CodedConcept) -> None:
    ds.ConceptNameCodeSequence = [title]


def text(name: CodedConcept, value: str) -> TextContentItem:
    return TextContentItem(name=name, value=value, relationship_type=CONTAINS)


def coded(name: CodedConcept, value: CodedConcept) -> CodeContentItem:
    return CodeContentItem(name=name, value=value, relationship_type=CONTAINS)


def container(name: CodedConcept, items: list, relationship: str | None = None):
    item = ContainerContentItem(name=name, relationship_type=relationship)
    item.ContentSequence = ContentSequence(items)
    return item


def vendor_atfi(
    items: list, evidence: list[Dataset], *, root: CodedConcept = ATFI_ROOT,
    sop_class: type = hd.sr.EnhancedSR,
) -> Dataset:
    """An ATFI laid out by hand, as another writer might lay it out, written and read back."""
    sr = sop_class(
        evidence=evidence_for_highdicom(evidence),
        content=container(root, items),
        series_instance_uid=generate_uid(),
        series_number=1,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    return reread(sr)


# --- Manifest: build and read back --------------------------------------------------------


def test_manifest_round_trip_lists_every_instance_with_its_series(evidence):
    built = build_manifest(
        evidence, description="Round pneumonia, teaching case",
        observer_name="Smith^Jane", institution_name="Casebank Test Hospital",
    )
    ds = reread(built)

    manifest = parse_manifest(ds)

    assert isinstance(manifest, Manifest)
    assert manifest.sop_instance_uid == ds.SOPInstanceUID
    assert manifest.study_instance_uid == evidence[0].StudyInstanceUID
    assert manifest.purpose == "teaching"
    assert manifest.title_code == ("IHERADTF", "TCE001")
    assert manifest.description == "Round pneumonia, teaching case"
    assert manifest.observer_name == "Smith^Jane"
    assert manifest.delay_reason is None
    assert set(manifest.references) == expected_references(evidence)
    assert len(manifest.references) == 2


def test_built_manifest_is_a_tid_2010_kos_with_patient_and_study_of_the_evidence(evidence):
    ds = reread(build_manifest(evidence, institution_name="Casebank Test Hospital"))

    assert ds.SOPClassUID == KeyObjectSelectionDocumentStorage
    assert ds.file_meta.MediaStorageSOPClassUID == KeyObjectSelectionDocumentStorage
    assert ds.Modality == "KO"
    assert ds.ValueType == "CONTAINER"
    assert ds.ContinuityOfContent == "SEPARATE"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "2010"
    assert code_tuple(ds.ConceptNameCodeSequence[0]) == (
        "TCE001", "IHERADTF", "For Teaching File Export"
    )
    assert ds.InstitutionName == "Casebank Test Hospital"
    assert ds.StudyInstanceUID == evidence[0].StudyInstanceUID
    assert ds.PatientID == evidence[0].PatientID
    assert ds.PatientName == evidence[0].PatientName
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyDate == evidence[0].StudyDate
    assert ds.SOPInstanceUID not in {item.ReferencedSOPInstanceUID for item in
                                     ds.CurrentRequestedProcedureEvidenceSequence[0]
                                     .ReferencedSeriesSequence[0].ReferencedSOPSequence}
    images = [item for item in ds.ContentSequence if item.ValueType == "IMAGE"]
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images] == [
        e.SOPInstanceUID for e in evidence
    ]


def test_built_manifest_uses_given_uids(evidence):
    series_uid, sop_uid = generate_uid(), generate_uid()
    ds = build_manifest(evidence, series_instance_uid=series_uid, sop_instance_uid=sop_uid)
    assert (ds.SeriesInstanceUID, ds.SOPInstanceUID) == (series_uid, sop_uid)


def test_manifest_and_atfi_build_from_evidence_stripped_by_de_identification(evidence):
    for ds in evidence:
        for keyword in ("PatientBirthDate", "AccessionNumber", "ReferringPhysicianName", "StudyTime"):
            if keyword in ds:
                delattr(ds, keyword)

    kos = reread(build_manifest(evidence))
    sr = reread(build_teaching_file_info(TeachingFileInfo(abstract="Case"), evidence))

    for ds in (kos, sr):
        assert ds.PatientBirthDate == "" and ds.AccessionNumber == ""
        assert ds.ReferringPhysicianName == ""
    assert "PatientBirthDate" not in evidence[0]  # the caller's datasets are left alone
    assert "PixelData" in evidence[0]


@pytest.mark.parametrize(
    ("purpose", "title"),
    [
        ("teaching", ("TCE001", "IHERADTF", "For Teaching File Export")),
        ("clinical_trial", ("TCE002", "IHERADTF", "For Clinical Trial Export")),
        ("research", ("TCE007", "IHERADTF", "For Research Collection Export")),
        ("publication", ("TCE008", "IHERADTF", "For Publication Export")),
    ],
)
def test_manifest_writes_the_iheradtf_title_of_each_purpose(evidence, purpose, title):
    ds = reread(build_manifest(evidence, purpose=purpose))
    assert code_tuple(ds.ConceptNameCodeSequence[0]) == title
    assert parse_manifest(ds).purpose == purpose


def test_manifest_references_an_sr_as_composite_and_images_as_image(evidence):
    atfi = build_teaching_file_info(TeachingFileInfo(abstract="Case"), evidence)
    ds = reread(build_manifest([*evidence, atfi]))

    kinds = {
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID: item.ValueType
        for item in ds.ContentSequence if "ReferencedSOPSequence" in item
    }
    assert kinds == {
        evidence[0].SOPInstanceUID: "IMAGE",
        evidence[1].SOPInstanceUID: "IMAGE",
        atfi.SOPInstanceUID: "COMPOSITE",
    }
    references = parse_manifest(ds).references
    assert Reference(
        EnhancedSRStorage, atfi.SOPInstanceUID, atfi.SeriesInstanceUID, atfi.StudyInstanceUID
    ) in references
    assert len(references) == 3


def test_manifest_observer_without_carets_comes_back_unchanged(evidence):
    ds = reread(build_manifest(evidence, observer_name="Jane Smith"))
    assert parse_manifest(ds).observer_name == "Jane Smith"


def test_manifest_without_description_or_observer_reads_as_empty(evidence):
    manifest = parse_manifest(reread(build_manifest(evidence)))
    assert (manifest.description, manifest.observer_name) == ("", "")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purpose": "fun"}, "unknown manifest purpose 'fun'"),
        ({"delay_reason": "TCE099"}, "unknown delay reason 'TCE099'"),
    ],
)
def test_build_manifest_rejects_unknown_values(evidence, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_manifest(evidence, **kwargs)


def test_build_manifest_rejects_evidence_from_two_studies(evidence):
    other = dicom_data.study(["CT_small.dcm"])[0]
    other.PatientName = "Pseudo^Other"
    with pytest.raises(ValueError, match="spans 2"):
        build_manifest([*evidence, other])
    with pytest.raises(ValueError, match="evidence is empty"):
        build_manifest([])


# --- Manifest: the delay modifier ---------------------------------------------------------


def test_manifest_writes_the_delay_modifier_first_under_the_root(evidence):
    ds = reread(build_manifest(evidence, delay_reason="TCE014", observer_name="Smith^Jane"))

    first = ds.ContentSequence[0]
    assert first.RelationshipType == "HAS CONCEPT MOD"
    assert first.ValueType == "CODE"
    assert code_tuple(first.ConceptNameCodeSequence[0]) == (
        "113011", "DCM", "Document Title Modifier"
    )
    assert code_tuple(first.ConceptCodeSequence[0]) == (
        "TCE014", "IHERADTF", "Delay export until histopathology is available"
    )
    assert code_tuple(ds.ConceptNameCodeSequence[0])[0] == "TCE001"  # title unchanged
    assert parse_manifest(ds).delay_reason == "Delay export until histopathology is available"


@pytest.mark.parametrize(
    ("reason", "meaning"),
    [
        (("TCE011", "IHERADTF", "x"), "Delay export until final report is available"),
        (("TCE012", "IHERADTF", "x"), "Delay export until clinical information is available"),
        (("TCE015", "IHERADTF", "x"), "Delay export until other laboratory results is available"),
        (("TCE018", "IHERADTF", "x"), "Delay export until expert review is available"),
        (("128715", "DCM", "x"), "Delay export until final report is available"),
        (("128719", "DCM", "x"), "Delay export until other laboratory results are available"),
        (("128721", "DCM", "x"), "Delay export until patient dies"),
        (("128722", "DCM", "x"), "Delay export until expert review is available"),
        # a writer that got the designator wrong still delays for the right reason
        (("TCE016", "99IHE", "x"), "Delay export until patient is discharged"),
    ],
)
def test_manifest_reads_delay_reasons_of_either_family(evidence, reason, meaning):
    ds = build_manifest(evidence, delay_reason="TCE011")
    ds.ContentSequence[0].ConceptCodeSequence = [code(*reason)]
    assert parse_manifest(reread(ds)).delay_reason == meaning


def test_build_manifest_accepts_a_dcm_delay_reason(evidence):
    ds = reread(build_manifest(evidence, delay_reason="128718"))
    assert code_tuple(ds.ContentSequence[0].ConceptCodeSequence[0])[:2] == ("128718", "DCM")


def test_manifest_with_an_unknown_modifier_reports_its_meaning(evidence):
    ds = build_manifest(evidence, delay_reason="TCE011")
    ds.ContentSequence[0].ConceptCodeSequence = [code("L1", "99LOCAL", "Wait for the MDT")]
    assert parse_manifest(reread(ds)).delay_reason == "Wait for the MDT"


# --- Manifest: titles of both families, and rejection -------------------------------------


@pytest.mark.parametrize(
    ("title", "purpose"),
    [
        (("128710", "DCM", "For Teaching File Export"), "teaching"),
        (("113004", "DCM", "For Teaching"), "teaching"),
        (("128711", "DCM", "For Clinical Trial Export"), "clinical_trial"),
        (("128713", "DCM", "For Research Collection Export"), "research"),
        (("128714", "DCM", "For Publication Export"), "publication"),
        (("TCE002", "IHERADTF", "For Clinical Trial Export"), "clinical_trial"),
        # CTP checks only the code value; so do we
        (("TCE007", "IHERADTF ", "research"), "research"),
    ],
)
def test_manifest_titles_of_both_families_are_recognised(evidence, title, purpose):
    ds = build_manifest(evidence)
    set_title(ds, code(*title))
    ds = reread(ds)

    assert is_manifest(ds)
    manifest = parse_manifest(ds)
    assert manifest.purpose == purpose
    assert manifest.title_code == (title[1].strip(), title[0])


def test_a_plain_ct_is_not_a_manifest(evidence):
    assert not is_manifest(evidence[0])
    with pytest.raises(NotAManifest, match=r"CT Image Storage .* not Key Object Selection"):
        parse_manifest(evidence[0])


@pytest.mark.parametrize(
    "title",
    [
        ("113000", "DCM", "Of Interest"),
        ("113019", "99DCM4CHE", "For Media Export"),  # dcm4chee's private title, not teaching
    ],
)
def test_a_kos_with_another_title_is_not_a_manifest(evidence, title):
    ds = build_manifest(evidence)
    set_title(ds, code(*title))
    ds = reread(ds)

    assert not is_manifest(ds)
    with pytest.raises(NotAManifest, match=f"titled \\({title[0]}, .*not a TCE export title"):
        parse_manifest(ds)


def test_a_kos_without_a_title_is_not_a_manifest(evidence):
    ds = build_manifest(evidence)
    del ds.ConceptNameCodeSequence
    with pytest.raises(NotAManifest, match="without a document title"):
        parse_manifest(ds)


def test_an_atfi_report_is_not_a_manifest(evidence):
    atfi = build_teaching_file_info(FULL_INFO, evidence)
    assert not is_manifest(atfi)
    with pytest.raises(NotAManifest, match="Enhanced SR"):
        parse_manifest(atfi)


# --- Manifest: where the references come from ---------------------------------------------


def test_manifest_without_evidence_sequence_falls_back_to_the_content_tree(evidence):
    ds = build_manifest(evidence)
    del ds.CurrentRequestedProcedureEvidenceSequence
    manifest = parse_manifest(reread(ds))

    assert {(r.sop_class_uid, r.sop_instance_uid) for r in manifest.references} == {
        (e.SOPClassUID, e.SOPInstanceUID) for e in evidence
    }
    assert {r.series_instance_uid for r in manifest.references} == {""}
    assert {r.study_instance_uid for r in manifest.references} == {ds.StudyInstanceUID}


def test_manifest_never_lists_itself(evidence):
    ds = build_manifest(evidence)
    own = Dataset()
    own.ReferencedSOPClassUID = KeyObjectSelectionDocumentStorage
    own.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    series = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    series.ReferencedSOPSequence.append(own)

    manifest = parse_manifest(reread(ds))
    assert ds.SOPInstanceUID not in {r.sop_instance_uid for r in manifest.references}
    assert set(manifest.references) == expected_references(evidence)


def test_manifest_referencing_nothing_is_rejected(evidence):
    ds = build_manifest(evidence)
    del ds.CurrentRequestedProcedureEvidenceSequence
    ds.ContentSequence = [i for i in ds.ContentSequence if "ReferencedSOPSequence" not in i]
    with pytest.raises(NotAManifest, match="references no instances"):
        parse_manifest(reread(ds))


# --- ATFI: build and read back ------------------------------------------------------------


def test_atfi_round_trip(evidence):
    ds = reread(build_teaching_file_info(FULL_INFO, evidence))
    assert is_teaching_file_info(ds)
    assert parse_teaching_file_info(ds) == FULL_INFO


def test_built_atfi_has_the_layout_dcm4chee_and_ctp_read(evidence):
    ds = reread(build_teaching_file_info(FULL_INFO, evidence))

    assert ds.SOPClassUID == EnhancedSRStorage
    assert ds.Modality == "SR"
    assert ds.StudyInstanceUID == evidence[0].StudyInstanceUID
    assert ds.PatientID == evidence[0].PatientID
    assert code_tuple(ds.ConceptNameCodeSequence[0]) == (
        "TCE006", "IHERADTF", "Additional Teaching File Information"
    )
    items = {}
    for item in ds.ContentSequence:
        assert item.RelationshipType == "CONTAINS"
        items.setdefault(item.ConceptNameCodeSequence[0].CodeValue, []).append(item)
    assert items["TCE101"][0].TextValue == "Smith^Jane^^^1234567"
    assert [i.TextValue for i in items["TCE105"]] == ["pneumonia", "paediatric", "chest"]
    assert items["121071"][0].ValueType == "TEXT"
    assert code_tuple(items["TCE109"][0].ConceptCodeSequence[0]) == (
        "TCE302", "IHERADTF", "Pulmonary"
    )
    assert code_tuple(items["TCE110"][0].ConceptCodeSequence[0]) == (
        "TCE203", "IHERADTF", "Advanced"
    )
    assert code_tuple(items["TCE111"][0].ConceptCodeSequence[0]) == ("373066001", "SCT", "Yes")
    assert code_tuple(items["TCE107"][1].ConceptCodeSequence[0]) == (
        "233604007", "SCT", "Pneumonia"
    )
    evidence_uids = {
        sop.ReferencedSOPInstanceUID
        for series in ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert evidence_uids == {e.SOPInstanceUID for e in evidence}


def test_atfi_writes_no_for_an_unconfirmed_diagnosis(evidence):
    ds = reread(build_teaching_file_info(TeachingFileInfo(diagnosis_confirmed=False), evidence))
    item = ds.ContentSequence[0]
    assert code_tuple(item.ConceptCodeSequence[0]) == ("373067005", "SCT", "No")
    assert parse_teaching_file_info(ds).diagnosis_confirmed is False


def test_atfi_with_only_an_abstract_reads_every_other_field_empty(evidence):
    info = TeachingFileInfo(abstract="Round pneumonia")
    ds = reread(build_teaching_file_info(info, evidence))
    assert len(ds.ContentSequence) == 1
    assert parse_teaching_file_info(ds) == info


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (TeachingFileInfo(), "states nothing"),
        (TeachingFileInfo(abstract="x", category="Dermatology"), "unknown category 'Dermatology'"),
        (TeachingFileInfo(abstract="x", level="Expert"), "unknown level 'Expert'"),
        (TeachingFileInfo(author_name="A^B^C^D^E", author_gmc="1234567"), "fifth"),
    ],
)
def test_build_atfi_rejects_what_it_cannot_write(evidence, info, message):
    with pytest.raises(ValueError, match=message):
        build_teaching_file_info(info, evidence)


def test_build_atfi_accepts_dcm_meanings_for_category_and_level(evidence):
    info = TeachingFileInfo(category="Neuroimaging subject matter", level="primary level")
    parsed = parse_teaching_file_info(reread(build_teaching_file_info(info, evidence)))
    assert (parsed.category, parsed.level) == ("Neuro", "Primary")


# --- ATFI: SOP class variants and document titles -----------------------------------------


def _as_basic_text(ds: Dataset) -> Dataset:
    # emulates dcm4chee 2.x, which writes the same content as Basic Text SR
    ds.SOPClassUID = BasicTextSRStorage
    ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    return ds


def _built_with(sop_class: type) -> Callable[[TeachingFileInfo, list[Dataset]], Dataset]:
    def build(info: TeachingFileInfo, evidence: list[Dataset]) -> Dataset:
        return sop_class(
            evidence=evidence_for_highdicom(evidence),
            content=teaching_file_info_content(info),
            series_instance_uid=generate_uid(),
            series_number=1,
            sop_instance_uid=generate_uid(),
            instance_number=1,
        )
    return build


@pytest.mark.parametrize(
    ("build", "sop_class_uid"),
    [
        (build_teaching_file_info, EnhancedSRStorage),
        (lambda info, ev: _as_basic_text(build_teaching_file_info(info, ev)), BasicTextSRStorage),
        (_built_with(hd.sr.ComprehensiveSR), ComprehensiveSRStorage),
        (_built_with(hd.sr.Comprehensive3DSR), Comprehensive3DSRStorage),
    ],
    ids=["enhanced", "basic-text", "comprehensive", "comprehensive-3d"],
)
def test_atfi_is_read_from_every_sr_class(evidence, build, sop_class_uid):
    ds = reread(build(FULL_INFO, evidence))
    assert ds.SOPClassUID == sop_class_uid
    assert is_teaching_file_info(ds)
    assert parse_teaching_file_info(ds) == FULL_INFO


def test_atfi_with_the_dcm_title_is_recognised(evidence):
    ds = build_teaching_file_info(FULL_INFO, evidence)
    set_title(ds, code("128712", "DCM", "Additional Teaching File Information"))
    ds = reread(ds)
    assert is_teaching_file_info(ds)
    assert parse_teaching_file_info(ds) == FULL_INFO


def test_a_plain_ct_is_not_teaching_file_information(evidence):
    assert not is_teaching_file_info(evidence[0])
    with pytest.raises(NotTeachingFileInfo, match="CT Image Storage .* not a structured report"):
        parse_teaching_file_info(evidence[0])


def test_an_sr_with_another_title_is_not_teaching_file_information(evidence):
    other = code("126000", "DCM", "Imaging Measurement Report")
    ds = vendor_atfi([text(FINDING, "Nodule")], evidence, root=other)
    assert not is_teaching_file_info(ds)
    with pytest.raises(NotTeachingFileInfo, match=r"titled \(126000, DCM.*not Additional Teaching"):
        parse_teaching_file_info(ds)


def test_a_manifest_is_not_teaching_file_information(evidence):
    ds = build_manifest(evidence)
    assert not is_teaching_file_info(ds)
    with pytest.raises(NotTeachingFileInfo, match="Key Object Selection"):
        parse_teaching_file_info(ds)


# --- ATFI: layouts of other writers -------------------------------------------------------


def test_atfi_items_nested_in_sub_containers_are_found(evidence):
    case = code("CASE", "99VENDOR", "Teaching case")
    clinical = code("CLIN", "99VENDOR", "Clinical part")
    items = [
        container(case, [
            text(ABSTRACT, "Round pneumonia"),
            container(clinical, [
                text(HISTORY, "Cough"),
                coded(CATEGORY, code("TCE302", "IHERADTF", "Pulmonary")),
            ], "CONTAINS"),
            text(FINDING, "Round opacity"),
        ], "CONTAINS"),
        text(HISTORY, "Fever"),
    ]
    info = parse_teaching_file_info(vendor_atfi(items, evidence))
    assert info.abstract == "Round pneumonia"
    assert info.history == "Cough\nFever"
    assert info.findings == "Round opacity"
    assert info.category == "Pulmonary"


def test_atfi_repeated_history_and_findings_are_joined_with_newlines(evidence):
    items = [
        text(HISTORY, "Cough"), text(FINDING, "Opacity"), text(HISTORY, "Fever"),
        text(FINDING, "Effusion"), text(HISTORY, "  "),
    ]
    info = parse_teaching_file_info(vendor_atfi(items, evidence))
    assert (info.history, info.findings) == ("Cough\nFever", "Opacity\nEffusion")


def test_atfi_keywords_are_split_on_bar_semicolon_and_comma(evidence):
    items = [text(KEYWORDS, "chest|lung; child"), text(KEYWORDS, " pneumonia ,round,, ")]
    info = parse_teaching_file_info(vendor_atfi(items, evidence))
    assert info.keywords == ("chest", "lung", "child", "pneumonia", "round")


@pytest.mark.parametrize(
    ("items", "category", "level"),
    [
        ([coded(code("128723", "DCM", "Teaching File Category"),
                code("128729", "DCM", "Pulmonary imaging subject matter")),
          coded(code("128724", "DCM", "Level of Difficulty"), code("128727", "DCM", "Advanced level"))],
         "Pulmonary", "Advanced"),
        ([coded(CATEGORY, code("128733", "DCM", "Neuroimaging subject matter")),
          coded(LEVEL, code("TCE201", "IHERADTF", "Primary"))],
         "Neuro", "Primary"),
        ([text(CATEGORY, "Breast imaging subject matter"), text(LEVEL, "intermediate")],
         "Breast", "Intermediate"),
        ([text(CATEGORY, "TCE307"), text(LEVEL, "Expert")],
         "Vascular and Interventional", "Expert"),
        ([coded(CATEGORY, code("HN", "99LOCAL", "Head and neck"))], "Head and neck", ""),
    ],
    ids=["dcm-names-and-codes", "mixed-families", "text-meanings", "text-code-and-unknown",
         "unknown-code"],
)
def test_atfi_category_and_level_coded_or_text(evidence, items, category, level):
    info = parse_teaching_file_info(vendor_atfi(items, evidence))
    assert (info.category, info.level) == (category, level)


@pytest.mark.parametrize(
    ("answer", "confirmed"),
    [
        (code("373066001", "SCT", "Yes"), True),
        (code("373067005", "SCT", "No"), False),
        (code("R-0038D", "SRT", "Yes"), True),
        (code("R-00339", "SRT", "No"), False),
        (code("R-00339", "SRT", "Yes"), True),  # dcm4chee 2.x: the No code meaning "Yes"
        (code("R-0038D", "SRT", "No"), False),
        (code("R-0038D", "SRT", ""), True),  # no meaning: the code value decides
        (code("R-00339", "SRT", ""), False),
        (code("373066001", "SNM", "Affirmative"), True),  # unknown meaning, known value
        (code("SRT", "R-0038D", ""), True),  # dcm4chee-web3: designator and value swapped
        (code("SRT", "R-00339D", "Yes"), True),  # ... and a misspelt value; meaning decides
        (code("X1", "99LOCAL", "Perhaps"), None),
    ],
)
def test_atfi_diagnosis_confirmed_variants(evidence, answer, confirmed):
    ds = vendor_atfi([coded(CONFIRMED, answer)], evidence)
    assert parse_teaching_file_info(ds).diagnosis_confirmed is confirmed


@pytest.mark.parametrize(("value", "confirmed"), [("Yes", True), ("no", False), ("?", None)])
def test_atfi_diagnosis_confirmed_as_text(evidence, value, confirmed):
    ds = vendor_atfi([text(CONFIRMED, value)], evidence)
    assert parse_teaching_file_info(ds).diagnosis_confirmed is confirmed


@pytest.mark.parametrize(
    ("item", "name", "gmc"),
    [
        (text(AUTHOR, "Smith^Jane^^Dr^1234567"), "Smith^Jane^^Dr", "1234567"),
        (text(AUTHOR, "Smith^Jane"), "Smith^Jane", ""),
        (text(AUTHOR, "Dr Jane Smith GMC 1234567"), "Dr Jane Smith", "1234567"),
        (text(AUTHOR, "Jane Smith (GMC no. 7654321)"), "Jane Smith", "7654321"),
        (text(AUTHOR, "Smith^Jane^^^GMC 2345678"), "Smith^Jane", "2345678"),
        (text(AUTHOR, "Jane Smith, GMC 123"), "Jane Smith, GMC 123", ""),  # not a GMC number
        (text(AUTHOR, "Jane Smith"), "Jane Smith", ""),
        # the RCR template's own form: the register's name glued to the number
        (text(AUTHOR, "Smith^Jane^^^GMC7123456"), "Smith^Jane", "7123456"),
        (text(AUTHOR, "Smith^Jane^^^gmc 7123456"), "Smith^Jane", "7123456"),
        (text(AUTHOR, "Smith^Jane^^^GMC No. 7123456"), "Smith^Jane", "7123456"),
        (text(AUTHOR, "Jane Smith GMC7123456"), "Jane Smith", "7123456"),
        # other registers keep their name with the number
        (text(AUTHOR, "Brown^Amy^^^NMC 12A3456E"), "Brown^Amy", "NMC 12A3456E"),
        (text(AUTHOR, "Brown^Amy^^^NMC12a3456e"), "Brown^Amy", "NMC 12A3456E"),
        (text(AUTHOR, "Amy Brown, HCPC RA12345"), "Amy Brown", "HCPC RA12345"),
        (text(AUTHOR, "Smith^Jane^^^PhD"), "Smith^Jane", ""),  # a suffix that is no registration
        (text(AUTHOR, "Smith^Jane^^^GMC712345"), "Smith^Jane", ""),  # six digits: not a GMC number
        (PnameContentItem(name=AUTHOR, value="Smith^Jane^^^1234567", relationship_type=CONTAINS),
         "Smith^Jane", "1234567"),
        (PnameContentItem(name=AUTHOR, value="Smith^Jane", relationship_type=CONTAINS),
         "Smith^Jane", ""),
    ],
)
def test_atfi_author_as_text_or_person_name(evidence, item, name, gmc):
    info = parse_teaching_file_info(vendor_atfi([item], evidence))
    assert (info.author_name, info.author_gmc) == (name, gmc)


def test_atfi_author_without_carets_keeps_its_gmc_through_a_round_trip(evidence):
    info = TeachingFileInfo(author_name="Jane Smith", author_gmc="1234567")
    parsed = parse_teaching_file_info(reread(build_teaching_file_info(info, evidence)))
    assert (parsed.author_name, parsed.author_gmc) == ("Jane Smith", "1234567")


def test_atfi_coded_diagnoses_are_collected_wherever_they_are_nested(evidence):
    pneumonia = code("233604007", "SCT", "Pneumonia")
    effusion = code("60046008", "SCT", "Pleural effusion")
    lung = code("39607008", "SCT", "Lung structure")
    diagnosis = text(DIAGNOSIS, "Round pneumonia")
    diagnosis.ContentSequence = ContentSequence([
        CodeContentItem(name=code("C1", "99VENDOR", "Coded as"), value=pneumonia,
                        relationship_type=HAS_PROPERTIES),
    ])
    items = [
        diagnosis,
        container(code("S1", "99VENDOR", "Section"), [coded(FINDING, effusion)], "CONTAINS"),
        coded(ANATOMY, lung),  # anatomy is not a diagnosis
        coded(DIAGNOSIS, pneumonia),  # repeated: listed once
    ]
    info = parse_teaching_file_info(vendor_atfi(items, evidence))
    assert info.codes == (
        ("SCT", "233604007", "Pneumonia"),
        ("SCT", "60046008", "Pleural effusion"),
    )
    assert info.diagnosis == "Round pneumonia"  # the text wins over code meanings
    assert info.findings == "Pleural effusion"  # no text: the coded meaning stands in
    assert info.anatomy == "Lung structure"


def test_atfi_coded_modality_reads_as_its_abbreviation(evidence):
    items = [coded(MODALITY, code("MR", "DCM", "Magnetic Resonance"))]
    assert parse_teaching_file_info(vendor_atfi(items, evidence)).modality == "MR"
