"""The DICOM receiver over real associations (pynetdicom as the sending peer)."""

from __future__ import annotations


import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom import _config as pynetdicom_config
from pynetdicom import build_context
from pynetdicom.sop_class import CTImageStorage, Verification
from sqlalchemy import func, select

from archive import folders
from archive.folders import UNCLAIMED_INBOX
from archive.models import Case, CaseStatus, Instance
from archive.users import bind_ae
from ingest.demo import mark_deidentified

from .. import dicom_data


def associate(live, calling_ae="PACS1", contexts=None):
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = contexts or StoragePresentationContexts[:120]
    if Verification not in [c.abstract_syntax for c in ae.requested_contexts]:
        ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", live.dicom_port, ae_title=live.ae_title)
    assert assoc.is_established
    return assoc


def bind(casebank, ae_title, user):
    with casebank.database.session() as session:
        bind_ae(session, ae_title, session.merge(user))


def counts(casebank):
    with casebank.database.session() as session:
        return session.scalar(select(func.count(Case.id))), session.scalar(select(func.count(Instance.id)))


def blob_files(casebank):
    return [p for p in (casebank.blobs.root / "sha256").rglob("*") if p.is_file()] if (casebank.blobs.root / "sha256").exists() else []


def test_c_echo(live):
    assoc = associate(live)
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_a_study_becomes_one_case_in_the_personal_folder_of_the_mapped_user(casebank, live, make_user):
    alice = make_user("alice")
    bind(casebank, "PACS1", alice)
    datasets = dicom_data.study(["CT_small.dcm", "MR_small.dcm"], description="Chest CT and MR")
    assoc = associate(live)
    statuses = [assoc.send_c_store(ds).Status for ds in datasets]
    assoc.release()
    assert statuses == [0x0000, 0x0000]
    with casebank.database.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.folder_id == folders.personal_folder(session, alice).id
        assert case.title == "Chest CT and MR"
        assert case.status is CaseStatus.PENDING  # until a manifest arrives or the wait ends
        series = case.studies[0].series
        assert sorted(s.modality for s in series) == ["CT", "MR"]
        stored = series[0].instances[0]
        original = next(ds for ds in datasets if ds.SOPInstanceUID == stored.sop_instance_uid)
        round_trip = dcmread(casebank.blobs.path(stored.blob_sha256))
        assert round_trip.SOPInstanceUID == original.SOPInstanceUID
        assert round_trip.PixelData == original.PixelData


def test_storing_the_same_instance_twice_keeps_one_copy(casebank, live, make_user):
    bind(casebank, "PACS1", make_user("alice"))
    datasets = dicom_data.study(["CT_small.dcm"])
    for _ in range(2):
        assoc = associate(live)
        assert assoc.send_c_store(datasets[0]).Status == 0x0000
        assoc.release()
    assert counts(casebank) == (1, 1)
    assert len(blob_files(casebank)) == 1


def test_an_unbound_calling_ae_files_into_the_admin_inbox(casebank, live, make_user):
    bob, admin = make_user("bob"), make_user("root", admin=True)
    assoc = associate(live, calling_ae="STRANGER")
    assert assoc.send_c_store(dicom_data.study(["CT_small.dcm"])[0]).Status == 0x0000
    assoc.release()
    with casebank.database.session() as session:
        case = session.scalars(select(Case)).one()
        assert folders.folder_path(session, case.folder) == f"/{UNCLAIMED_INBOX}"
        assert case.folder_id not in folders.visible_folder_ids(session, bob)
        assert case.folder_id in folders.visible_folder_ids(session, admin)


def test_a_corrupt_object_is_refused_with_a_comment_and_nothing_is_stored(casebank, live, make_user, tmp_path, send_files_raw):
    bind(casebank, "PACS1", make_user("alice"))
    [path] = dicom_data.write(dicom_data.study(["CT_small.dcm"]), tmp_path / "in")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(path.read_bytes()[:-5000])
    assoc = associate(live, contexts=[build_context(CTImageStorage, [ExplicitVRLittleEndian])])
    response = assoc.send_c_store(truncated)  # pynetdicom streams the file's bytes as they are
    assoc.release()
    assert response.Status == 0xC000
    assert "truncated" in response.ErrorComment
    assert counts(casebank) == (0, 0)
    assert blob_files(casebank) == []


def test_a_dataset_of_an_unsupported_sop_class_is_refused(casebank, live, make_user, tmp_path, send_files_raw):
    bind(casebank, "PACS1", make_user("alice"))
    ds = dicom_data.study(["CT_small.dcm"])[0]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.31"  # Modality Worklist FIND: not a storage class
    response = send_under_ct_context(live, ds, tmp_path)
    assert response.Status == 0x0122
    assert "not a storage class" in response.ErrorComment
    assert counts(casebank) == (0, 0)
    assert blob_files(casebank) == []


def test_a_dataset_that_does_not_match_the_negotiated_sop_class_is_refused(
    casebank, live, make_user, tmp_path, send_files_raw
):
    bind(casebank, "PACS1", make_user("alice"))
    ds = dicom_data.study(["MR_small.dcm"])[0]  # MR Image Storage, sent as CT Image Storage
    response = send_under_ct_context(live, ds, tmp_path)
    assert response.Status == 0xA900
    assert "differs" in response.ErrorComment
    assert counts(casebank) == (0, 0)


def test_an_object_without_uids_is_refused(casebank, live, make_user):
    bind(casebank, "PACS1", make_user("alice"))
    ds = dicom_data.study(["CT_small.dcm"])[0]
    del ds.StudyInstanceUID
    assoc = associate(live)
    response = assoc.send_c_store(ds)
    assoc.release()
    assert response.Status == 0xC000
    assert "StudyInstanceUID" in response.ErrorComment
    assert counts(casebank) == (0, 0)


def test_key_object_selection_and_sr_are_accepted(casebank, live, make_user):
    from pydicom.data import get_testdata_file

    bind(casebank, "PACS1", make_user("alice"))
    sr = mark_deidentified(dcmread(get_testdata_file("test-SR.dcm")))
    sr.SOPInstanceUID = generate_uid()
    sr.StudyInstanceUID = generate_uid()
    assoc = associate(live)
    assert assoc.send_c_store(sr).Status == 0x0000
    assoc.release()
    assert counts(casebank) == (1, 1)


@pytest.fixture
def send_files_raw(monkeypatch):
    """Make pynetdicom send a file's bytes as they are, context taken from its meta header."""
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)


def send_under_ct_context(live, ds, tmp_path):
    """Send `ds` on a CT Image Storage context whatever its own SOP class says."""
    path = tmp_path / "mislabelled.dcm"
    ds.save_as(path, enforce_file_format=True)
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.save_as(path, enforce_file_format=False)  # keep the mislabelled meta header as it is
    assoc = associate(live, contexts=[build_context(CTImageStorage, [ExplicitVRLittleEndian])])
    response = assoc.send_c_store(path)
    assoc.release()
    return response
