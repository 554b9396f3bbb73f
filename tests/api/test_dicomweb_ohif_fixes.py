"""DICOMweb fixes the real OHIF v3 viewer found (issue 14): WADO-URI at the DICOMweb root, the
``accept`` query parameter on rendered resources and thumbnails, Modalities in Study at study level."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
import requests
from PIL import Image

from archive import users

from .. import dicom_data
from ..ingest.test_tce_receiver import send, teaching
from ..peers import LiveServer

pytestmark = pytest.mark.peers


@dataclass
class Archive:
    live: LiveServer
    images: list  # CT, MR of one study, sent over DICOM as a TCE export

    def session(self, username: str) -> requests.Session:
        session = requests.Session()
        with self.live.casebank.database.session() as db:
            session.headers["Authorization"] = f"Bearer {users.issue_token(db, users.get_user(db, username))}"
        return session

    @property
    def base(self) -> str:
        return f"{self.live.url}/dicomweb"


@pytest.fixture
def archive(casebank, live, make_user) -> Archive:
    make_user("alice")
    make_user("bob")
    images = dicom_data.study(["CT_small.dcm", "MR_small.dcm"], description="CT and MR")
    report, manifest = dicom_data.tce_export(images, teaching())
    assert all(status.Status == 0 for status in send(live, [*images, report, manifest]))
    return Archive(live, images)


def wado_params(ds, **extra) -> dict[str, str]:
    """What OHIF's wadouri image ids carry, as built by its DICOMweb data source."""
    return {"requestType": "WADO", "studyUID": ds.StudyInstanceUID, "seriesUID": ds.SeriesInstanceUID,
            "objectUID": ds.SOPInstanceUID, "contentType": "application/dicom", "transferSyntax": "*", **extra}


def test_wado_uri_at_the_dicomweb_root_as_ohif_builds_it(archive):
    ct = archive.images[0]
    alice, bob = archive.session("alice"), archive.session("bob")
    for url in (archive.base, f"{archive.base}/wado"):  # OHIF's {wadoUriRoot}?..., and the older path
        stored = alice.get(url, params=wado_params(ct), timeout=10)
        assert stored.status_code == 200, (url, stored.text)
        assert stored.headers["content-type"] == "application/dicom"
        assert stored.content == archive.live.casebank.blobs.read(_sha(archive, ct.SOPInstanceUID))
        jpeg = alice.get(url, params=wado_params(ct, contentType="image/jpeg"), timeout=10)
        assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:3] == b"\xff\xd8\xff"
        assert alice.get(url, params=wado_params(ct, contentType="video/mp4"), timeout=10).status_code == 406
        assert alice.get(url, params=wado_params(ct, requestType="OTHER"), timeout=10).status_code == 422
        assert bob.get(url, params=wado_params(ct), timeout=10).status_code == 404  # not his folder
        assert requests.get(url, params=wado_params(ct), timeout=10).status_code == 401  # no credentials


def _sha(archive: Archive, sop_uid: str) -> str:
    from sqlalchemy import select

    from archive.models import Instance

    with archive.live.casebank.database.session() as db:
        return db.scalar(select(Instance.blob_sha256).where(Instance.sop_instance_uid == sop_uid))


def test_the_accept_query_parameter_overrides_the_accept_header_on_rendered_and_thumbnails(archive):
    ct = archive.images[0]
    alice = archive.session("alice")
    study = f"{archive.base}/studies/{ct.StudyInstanceUID}"
    series = f"{study}/series/{ct.SeriesInstanceUID}"
    instance = f"{series}/instances/{ct.SOPInstanceUID}"
    resources = (f"{instance}/rendered", f"{instance}/frames/1/rendered", f"{instance}/thumbnail",
                 f"{series}/thumbnail", f"{study}/thumbnail")
    for url in resources:
        for wanted, header, image_format in (("image/jpeg", "image/png", "JPEG"), ("image/png", "image/jpeg", "PNG")):
            response = alice.get(url, params={"accept": wanted}, headers={"Accept": header}, timeout=10)
            assert response.status_code == 200, (url, response.text)
            assert response.headers["content-type"] == wanted, url
            assert Image.open(io.BytesIO(response.content)).format == image_format, url
        by_header = alice.get(url, headers={"Accept": "image/jpeg"}, timeout=10)  # no parameter: the header
        assert by_header.headers["content-type"] == "image/jpeg", url
        listed = alice.get(url, params={"accept": "image/gif,image/png"}, headers={"Accept": "image/jpeg"}, timeout=10)
        assert listed.headers["content-type"] == "image/png", url  # the first the archive can make
        assert alice.get(url, params={"accept": "image/gif"}, timeout=10).status_code == 406, url
    # the parameter is for rendered resources: frames and metadata still negotiate by the header
    frame = alice.get(f"{instance}/frames/1", params={"accept": "image/png"}, timeout=10,
                      headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
    assert frame.status_code == 200 and frame.headers["content-type"].startswith("multipart/related")


def test_study_level_results_carry_modalities_in_study_not_modality(archive):
    ct, mr = archive.images
    alice = archive.session("alice")
    ohif = {"limit": 101, "offset": 0, "fuzzymatching": "false", "includefield": "00081030,00080060"}
    for params in (ohif, {**ohif, "ModalitiesInStudy": "CT"}, {**ohif, "Modality": "MR"}, {"Modality": ""},
                   {"includefield": "all"}, {"includefield": "Modality"}):
        response = alice.get(f"{archive.base}/studies", params=params, timeout=10)
        assert response.status_code == 200, (params, response.text)
        [study] = response.json()
        assert study["0020000D"]["Value"] == [ct.StudyInstanceUID]
        assert "00080060" not in study, params  # Modality is a series attribute
        assert study["00080061"]["vr"] == "CS" and set(study["00080061"]["Value"]) == {"CT", "MR", "KO", "SR"}
    for key in ("ModalitiesInStudy", "Modality"):  # either key still filters by the study's modalities
        assert alice.get(f"{archive.base}/studies", params={key: "US"}, timeout=10).status_code == 204
        assert alice.get(f"{archive.base}/studies", params={key: "CT,US"}, timeout=10).status_code == 200
    series = alice.get(f"{archive.base}/studies/{ct.StudyInstanceUID}/series",
                       params={"includefield": "00080060"}, timeout=10).json()
    assert {s["00080060"]["Value"][0] for s in series} == {"CT", "MR", "KO", "SR"}  # series keep Modality
    assert all("00080061" not in s for s in series)
    [mr_series] = alice.get(f"{archive.base}/series", params={"Modality": "MR"}, timeout=10).json()
    assert mr_series["0020000E"]["Value"] == [mr.SeriesInstanceUID]
