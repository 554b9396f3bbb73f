"""DICOMweb reads (QIDO-RS, WADO-RS) driven by dicomweb-client over real HTTP, with the UI's rights."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import get_frame
from pydicom.uid import JPEGBaseline8Bit
from sqlalchemy import select

from archive import folders, users
from archive.models import Instance

from .. import dicom_data
from ..ingest.test_tce_receiver import send, teaching
from ..peers import LiveServer

pytestmark = pytest.mark.peers


@dataclass
class Archive:
    live: LiveServer
    ct_mr: list  # CT, CT, MR images of one study (2020)
    mr: list  # one MR image (2021)
    jpeg: object  # a JPEG Baseline secondary capture stored through STOW-RS

    def client(self, username: str) -> DICOMwebClient:
        session = requests.Session()
        with self.live.casebank.database.session() as db:
            session.headers["Authorization"] = f"Bearer {users.issue_token(db, users.get_user(db, username))}"
        return DICOMwebClient(url=f"{self.live.url}/dicomweb", session=session)

    def stored_bytes(self, sop_uid: str) -> bytes:
        with self.live.casebank.database.session() as db:
            sha = db.scalar(select(Instance.blob_sha256).where(Instance.sop_instance_uid == sop_uid))
        return self.live.casebank.blobs.read(sha)


def tce(images) -> list:
    report, manifest = dicom_data.tce_export(images, teaching())
    return [*images, report, manifest]


@pytest.fixture
def archive(casebank, live, make_user) -> Archive:
    make_user("alice")
    make_user("bob")
    ct_mr = dicom_data.study(["CT_small.dcm", "CT_small.dcm", "MR_small.dcm"], description="CT abdomen",
                             StudyDate="20200315")
    mr = dicom_data.study(["MR_small.dcm"], description="MR knee", StudyDate="20211120")
    for study in (ct_mr, mr):
        assert all(status.Status == 0 for status in send(live, tce(study)))
    [jpeg] = dicom_data.study(["SC_rgb_jpeg_dcmtk.dcm"], StudyDate="20220101")
    archive = Archive(live, ct_mr, mr, jpeg)
    stored = archive.client("alice").store_instances([jpeg])  # STOW-RS stores a study too
    assert len(stored.ReferencedSOPSequence) == 1 and "FailedSOPSequence" not in stored
    return archive


def uids(results, keyword="StudyInstanceUID") -> set[str]:
    tag = {"StudyInstanceUID": "0020000D", "SeriesInstanceUID": "0020000E", "SOPInstanceUID": "00080018"}[keyword]
    return {r[tag]["Value"][0] for r in results}


def value(result, tag):
    return result[tag].get("Value", [None])[0]


def test_search_for_studies_by_patient_date_modality_and_pages(archive):
    client = archive.client("alice")
    ct_study, mr_study, sc_study = (archive.ct_mr[0].StudyInstanceUID, archive.mr[0].StudyInstanceUID,
                                    archive.jpeg.StudyInstanceUID)
    assert uids(client.search_for_studies()) == {ct_study, mr_study, sc_study}
    [found] = client.search_for_studies(search_filters={"PatientID": archive.ct_mr[0].PatientID})
    assert value(found, "0020000D") == ct_study
    assert set(found["00080061"]["Value"]) == {"CT", "MR", "KO", "SR"}  # ModalitiesInStudy
    assert found["00080050"] == {"vr": "SH"} and value(found, "00080020") == "20200315"  # de-identified
    assert value(found, "00201206") >= 5 and value(found, "00201208") >= 5  # related series, instances
    assert found["00080090"] == {"vr": "PN"}  # ReferringPhysicianName, empty
    assert value(found, "00081190").endswith(f"/dicomweb/studies/{ct_study}")
    for key in ("00080030", "00100010", "00100020", "00100030", "00100040", "00200010"):
        assert key in found, key
    assert uids(client.search_for_studies(search_filters={"00100020": archive.mr[0].PatientID})) == {mr_study}
    assert uids(client.search_for_studies(search_filters={"StudyDate": "20200101-20211231"})) == {ct_study, mr_study}
    assert uids(client.search_for_studies(search_filters={"StudyDate": "20211120"})) == {mr_study}
    assert uids(client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})) == {ct_study}
    assert uids(client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"})) == {ct_study, mr_study}
    assert uids(client.search_for_studies(search_filters={"PatientName": "PSEUDO*"})) == {ct_study, mr_study, sc_study}
    assert uids(client.search_for_studies(search_filters={"StudyDescription": "mr*"})) == {mr_study}
    assert uids(client.search_for_studies(search_filters={"StudyInstanceUID": f"{ct_study},{sc_study}"})) == {ct_study, sc_study}
    assert uids(client.search_for_studies(search_filters={"PatientSex": "F", "PatientID": "PSEUDO*"})) == {
        uid for uid, ds in ((ct_study, archive.ct_mr[0]), (mr_study, archive.mr[0]), (sc_study, archive.jpeg))
        if ds.get("PatientSex") == "F"}
    pages = [client.search_for_studies(limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 1, 0]
    assert uids(pages[0]) | uids(pages[1]) == {ct_study, mr_study, sc_study}
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []
    [with_field] = client.search_for_studies(search_filters={"PatientID": archive.mr[0].PatientID},
                                             fields=["00180050", "BodyPartExamined"], fuzzymatching=True)
    assert "00180050" in with_field or "00180015" in with_field  # included fields are present (maybe empty)


def test_search_for_series_and_instances(archive):
    client = archive.client("alice")
    ct_study = archive.ct_mr[0].StudyInstanceUID
    series = client.search_for_series(ct_study)
    assert uids([s for s in series if value(s, "00080060") in ("CT", "MR")], "SeriesInstanceUID") == {
        ds.SeriesInstanceUID for ds in archive.ct_mr}
    [mr_series] = client.search_for_series(ct_study, search_filters={"Modality": "MR"})
    assert value(mr_series, "00201209") == 1 and value(mr_series, "00200011") == 3  # instances, series number
    assert value(mr_series, "00081190").endswith(f"/studies/{ct_study}/series/{archive.ct_mr[2].SeriesInstanceUID}")
    everywhere = client.search_for_series(search_filters={"Modality": "MR"})
    assert uids(everywhere, "SeriesInstanceUID") == {archive.ct_mr[2].SeriesInstanceUID, archive.mr[0].SeriesInstanceUID}
    ct = archive.ct_mr[0]
    [instance] = client.search_for_instances(ct_study, ct.SeriesInstanceUID)
    assert value(instance, "00080018") == ct.SOPInstanceUID and value(instance, "00080016") == ct.SOPClassUID
    assert value(instance, "00280010") == 128 and value(instance, "00280011") == 128  # Rows, Columns
    assert value(instance, "00200013") == 1 and "00280008" in instance
    in_study = client.search_for_instances(ct_study, search_filters={"SOPClassUID": ct.SOPClassUID})
    assert uids(in_study, "SOPInstanceUID") == {archive.ct_mr[0].SOPInstanceUID, archive.ct_mr[1].SOPInstanceUID}
    [by_uid] = client.search_for_instances(search_filters={"SOPInstanceUID": archive.jpeg.SOPInstanceUID},
                                           fields=["all"])
    assert value(by_uid, "00280002") == 3  # SamplesPerPixel, from includefield=all
    assert client.search_for_instances(search_filters={"SOPInstanceUID": "1.2.3"}) == []


def test_retrieve_gives_the_stored_bytes_and_metadata_without_pixel_data(archive):
    client = archive.client("alice")
    ct_study = archive.ct_mr[0].StudyInstanceUID
    study = client.retrieve_study(ct_study)
    images = {ds.SOPInstanceUID for ds in archive.ct_mr}
    assert images <= {ds.SOPInstanceUID for ds in study} and len(study) >= 5
    [series] = client.retrieve_series(ct_study, archive.ct_mr[2].SeriesInstanceUID)
    assert series.SOPInstanceUID == archive.ct_mr[2].SOPInstanceUID
    assert series.PixelData == archive.ct_mr[2].PixelData
    jpeg = archive.jpeg
    instance = client.retrieve_instance(jpeg.StudyInstanceUID, jpeg.SeriesInstanceUID, jpeg.SOPInstanceUID,
                                        media_types=(("application/dicom", "*"),))
    assert instance.file_meta.TransferSyntaxUID == JPEGBaseline8Bit and instance.PixelData == jpeg.PixelData
    url = f"{archive.live.url}/dicomweb/studies/{jpeg.StudyInstanceUID}/series/{jpeg.SeriesInstanceUID}/instances/{jpeg.SOPInstanceUID}"
    raw = client._session.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=10)
    assert raw.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    assert archive.stored_bytes(jpeg.SOPInstanceUID) in raw.content  # unchanged, byte for byte
    refused = client._session.get(
        url, timeout=10,
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'},
    )
    assert refused.status_code == 406 and refused.headers["content-type"] == "application/problem+json"

    metadata = client.retrieve_study_metadata(ct_study)
    assert len(metadata) == len(study) and all("7FE00010" not in m for m in metadata)
    ct_meta = client.retrieve_instance_metadata(ct_study, archive.ct_mr[0].SeriesInstanceUID,
                                                  archive.ct_mr[0].SOPInstanceUID)
    assert value(ct_meta, "00100020") == archive.ct_mr[0].PatientID and value(ct_meta, "00280010") == 128
    assert "7FE00010" not in ct_meta and value(ct_meta, "00083002") == dcmread(
        io.BytesIO(archive.stored_bytes(archive.ct_mr[0].SOPInstanceUID))).file_meta.TransferSyntaxUID
    assert len(client.retrieve_series_metadata(ct_study, archive.ct_mr[2].SeriesInstanceUID)) == 1


def test_frames_native_and_jpeg(archive):
    client = archive.client("alice")
    ct = archive.ct_mr[0]
    [frame] = client.retrieve_instance_frames(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, [1],
                                              media_types=("application/octet-stream",))
    assert frame == ct.PixelData and len(frame) == 128 * 128 * 2
    jpeg = archive.jpeg
    ids = (jpeg.StudyInstanceUID, jpeg.SeriesInstanceUID, jpeg.SOPInstanceUID)
    [compressed] = client.retrieve_instance_frames(*ids, [1], media_types=(("image/jpeg", JPEGBaseline8Bit),))
    assert compressed == get_frame(jpeg.PixelData, 0, number_of_frames=1) and compressed[:2] == b"\xff\xd8"
    [as_stored] = client.retrieve_instance_frames(*ids, [1])  # */*: the stored frame
    assert as_stored == compressed
    [decoded] = client.retrieve_instance_frames(*ids, [1], media_types=("application/octet-stream",))
    assert len(decoded) == jpeg.Rows * jpeg.Columns * 3
    url = f"{archive.live.url}/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}/frames"
    assert client._session.get(f"{url}/2", timeout=10).status_code == 404
    assert client._session.get(f"{url}/one", timeout=10).status_code == 400


def test_rendered_and_thumbnails(archive):
    client = archive.client("alice")
    ct = archive.ct_mr[0]
    ids = (ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    png = client.retrieve_instance_rendered(*ids)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (128, 128)
    bone = client.retrieve_instance_rendered(*ids, params={"window": "300,1500,LINEAR"})
    soft = client.retrieve_instance_rendered(*ids, params={"window": "40,400"})
    assert Image.open(io.BytesIO(bone)).tobytes() != Image.open(io.BytesIO(soft)).tobytes()
    jpeg = client.retrieve_instance_rendered(*ids, media_types=("image/jpeg",))
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    frame = client.retrieve_instance_frames_rendered(*ids, [1], media_types=("image/png",))
    assert Image.open(io.BytesIO(frame)).size == (128, 128)
    base = f"{archive.live.url}/dicomweb/studies/{ct.StudyInstanceUID}"
    study_thumb = client._session.get(f"{base}/thumbnail", params={"viewport": "64,64"}, timeout=10)
    assert study_thumb.status_code == 200 and max(Image.open(io.BytesIO(study_thumb.content)).size) <= 64
    series_thumb = client._session.get(f"{base}/series/{ct.SeriesInstanceUID}/thumbnail", timeout=10,
                                       headers={"Accept": "image/jpeg"})
    assert series_thumb.headers["content-type"] == "image/jpeg"
    sc = archive.jpeg
    rgb = client._session.get(f"{archive.live.url}/dicomweb/studies/{sc.StudyInstanceUID}/series/{sc.SeriesInstanceUID}"
                              f"/instances/{sc.SOPInstanceUID}/thumbnail", timeout=10)
    assert Image.open(io.BytesIO(rgb.content)).mode == "RGB" and max(Image.open(io.BytesIO(rgb.content)).size) <= 128
    bad = client._session.get(f"{base}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}/rendered",
                              params={"window": "wide"}, timeout=10)
    assert bad.status_code == 400


def test_a_user_without_rights_sees_nothing_until_granted(archive, casebank):
    bob = archive.client("bob")
    ct = archive.ct_mr[0]
    assert bob.search_for_studies() == []
    assert bob.search_for_series(search_filters={"Modality": "CT"}) == []
    assert bob.search_for_instances(search_filters={"SOPInstanceUID": ct.SOPInstanceUID}) == []
    base = f"{archive.live.url}/dicomweb/studies/{ct.StudyInstanceUID}"
    instance = f"{base}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}"
    unknown = bob._session.get(f"{archive.live.url}/dicomweb/studies/1.2.3.4", timeout=10)
    for url in (base, f"{base}/metadata", instance, f"{instance}/frames/1", f"{instance}/rendered", f"{base}/thumbnail"):
        response = bob._session.get(url, timeout=10)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"].endswith("that you may view")  # as for a UID that does not exist
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no study 1.2.3.4 that you may view"
    assert requests.get(f"{archive.live.url}/dicomweb/studies", timeout=10).status_code == 401
    with casebank.database.session() as db:
        alice, bob_user = users.get_user(db, "alice"), users.get_user(db, "bob")
        folders.grant(db, alice, folders.personal_folder(db, alice), bob_user, view=True)
    assert uids(bob.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})) == {ct.StudyInstanceUID}
    assert bob.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID).PixelData == ct.PixelData


def test_wado_uri_gives_the_stored_object_or_a_rendered_frame_with_the_same_rights(archive):
    """What the viewer loads: WADO-URI (PS3.18 9) with contentType application/dicom."""
    ct = archive.ct_mr[0]
    params = {"requestType": "WADO", "studyUID": ct.StudyInstanceUID, "seriesUID": ct.SeriesInstanceUID,
              "objectUID": ct.SOPInstanceUID, "contentType": "application/dicom"}
    url = f"{archive.live.url}/dicomweb/wado"
    alice, bob = archive.client("alice")._session, archive.client("bob")._session
    stored = alice.get(url, params=params, timeout=10)
    assert stored.headers["content-type"] == "application/dicom"
    assert stored.content == archive.stored_bytes(ct.SOPInstanceUID)
    rendered = alice.get(url, params={**params, "contentType": "image/jpeg"}, timeout=10)
    assert rendered.headers["content-type"] == "image/jpeg" and rendered.content[:3] == b"\xff\xd8\xff"
    assert alice.get(url, params={**params, "contentType": "video/mp4"}, timeout=10).status_code == 406
    assert alice.get(url, params={**params, "requestType": "OTHER"}, timeout=10).status_code == 422
    assert bob.get(url, params=params, timeout=10).status_code == 404  # not his folder


def test_an_ohif_style_session_works_from_another_origin(casebank, make_user, tmp_path):
    """The requests OHIF v3 makes (QIDO with its includefields, series, series metadata, frames with
    transfer-syntax=*), from another origin with a bearer token, as CASEBANK_CORS_ORIGINS allows."""
    from api.runtime import Casebank

    make_user("alice")
    ct = dicom_data.study(["CT_small.dcm", "CT_small.dcm"], description="CT abdomen")
    settings = casebank.settings.model_copy(update={"cors_origins": "http://ohif.example:3000"})
    with Casebank.open(settings) as cb, LiveServer(cb) as live:
        assert all(status.Status == 0 for status in send(live, tce(ct)))
        with cb.database.session() as db:
            token = users.issue_token(db, users.get_user(db, "alice"))
        origin = {"Origin": "http://ohif.example:3000"}
        auth = {**origin, "Authorization": f"Bearer {token}"}
        base = f"{live.url}/dicomweb"
        preflight = requests.options(f"{base}/studies", headers={
            **origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}, timeout=10)
        assert preflight.headers["access-control-allow-origin"] == "http://ohif.example:3000"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        studies = requests.get(f"{base}/studies", params={
            "limit": 101, "offset": 0, "fuzzymatching": "false",
            "includefield": "00081030,00080060"}, headers=auth, timeout=10)
        assert studies.status_code == 200 and studies.headers["access-control-allow-origin"] == origin["Origin"]
        study_uid = studies.json()[0]["0020000D"]["Value"][0]
        series = requests.get(f"{base}/studies/{study_uid}/series", headers=auth, timeout=10).json()
        image_series = next(s["0020000E"]["Value"][0] for s in series if s["00080060"]["Value"][0] == "CT")
        metadata = requests.get(f"{base}/studies/{study_uid}/series/{image_series}/metadata", headers=auth, timeout=10).json()
        assert metadata and all("7FE00010" not in item or "BulkDataURI" in item["7FE00010"] for item in metadata)
        sop_uid = metadata[0]["00080018"]["Value"][0]
        frame = requests.get(f"{base}/studies/{study_uid}/series/{image_series}/instances/{sop_uid}/frames/1", headers={
            **auth, "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}, timeout=10)
        assert frame.status_code == 200 and frame.headers["content-type"].startswith("multipart/related")
        rows, columns = metadata[0]["00280010"]["Value"][0], metadata[0]["00280011"]["Value"][0]
        assert len(frame.content) > rows * columns * 2  # the 16-bit frame and its multipart envelope
        elsewhere = requests.get(f"{base}/studies", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {token}"}, timeout=10)
        assert "access-control-allow-origin" not in elsewhere.headers
