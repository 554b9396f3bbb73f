"""send-archive: every case of the archive as a TCE submission through the durable outbox to
another vendor's archive (Orthanc from Debian); per study Orthanc holds every object sent, and the
KOS manifests and ATFI reports it stored parse with highdicom."""

from __future__ import annotations

import io

import pytest
import requests
from highdicom.ko import KeyObjectSelectionDocument
from highdicom.sr import srread
from pydicom import dcmread
from sqlalchemy import select

from archive import display, users
from archive.cases import CaseUpdate, Code, update_case
from archive.errors import Conflict
from archive.migration import send_archive
from archive.models import Case, Series
from ingest.edge.outbox import Destination
from ingest.tce.atfi import parse_teaching_file_info
from ingest.tce.manifest import parse_manifest

from ..archive.test_archive_migration import accept
from ..peers import free_port, orthanc
from ..search.test_archive_search import teaching_case

pytestmark = pytest.mark.peers


def test_send_archive_hands_every_case_to_orthanc_and_its_tce_objects_parse(casebank, make_user, tmp_path):
    alice = make_user("alice")
    titles = ["Renal cell carcinoma", "Lobar pneumonia", "Pulmonary embolism"]
    for n, title in enumerate(titles):
        accept(casebank, teaching_case(title, title, modality_files=("CT_small.dcm",) * (n + 1), gmc=alice.gmc), alice.id)
    with casebank.database.session() as session:
        owner = users.get_user(session, "alice")
        ids = sorted(session.scalars(select(Case.id)))
        update_case(session, owner, ids[0], CaseUpdate(codes=[Code("ICD10", "C64", "Malignant neoplasm of kidney")],
                                                       keywords=["bosniak"]))
        series = session.scalars(select(Series).where(Series.modality == "CT").order_by(Series.id)).first()
        display.save_series_display(session, owner, series.id, 40, 400, None)
        windowed_study = series.study.study_instance_uid
        expected_images = {c.studies[0].study_instance_uid: sum(len(se.instances) for se in c.studies[0].series
                                                                if se.modality not in ("SR", "KO", "PR"))
                           for c in session.scalars(select(Case))}
    with orthanc({}, tmp_path / "orthanc") as pacs:
        port = requests.get(f"{pacs}/system", timeout=10).json()["DicomPort"]
        counts = send_archive(casebank, Destination("ORTHANC", "127.0.0.1", port))
        assert counts.cases == len(titles) and not counts.refused and not counts.not_sent
        studies = requests.get(f"{pacs}/studies", params={"expand": 1}, timeout=10).json()
        assert len(studies) == len(titles)
        reports = 0
        for study in studies:
            uid = study["MainDicomTags"]["StudyInstanceUID"]
            instances = requests.get(f"{pacs}/studies/{study['ID']}/instances", timeout=10).json()
            objects = [dcmread(io.BytesIO(requests.get(f"{pacs}/instances/{i['ID']}/file", timeout=10).content))
                       for i in instances]
            images = [ds for ds in objects if ds.Modality not in ("SR", "KO", "PR")]
            assert len(images) == expected_images[uid]
            states = [ds for ds in objects if ds.Modality == "PR"]
            assert len(states) == (1 if uid == windowed_study else 0)  # the saved window travels as a GSPS
            if states:
                assert float(states[0].SoftcopyVOILUTSequence[0].WindowWidth) == 400
            [kos] = [ds for ds in objects if ds.Modality == "KO"]
            KeyObjectSelectionDocument.from_dataset(kos)  # highdicom reads it
            manifest = parse_manifest(kos)
            assert {r.sop_instance_uid for r in manifest.references} == {str(ds.SOPInstanceUID) for ds in objects} - {str(kos.SOPInstanceUID)}
            for report in (ds for ds in objects if ds.Modality == "SR"):
                buffer = io.BytesIO()
                report.save_as(buffer)
                buffer.seek(0)
                srread(buffer)  # highdicom reads the ATFI report
                info = parse_teaching_file_info(report)
                assert info.abstract in titles
                if info.abstract == titles[0]:
                    assert "bosniak" in info.keywords and any(code[1] == "C64" for code in info.codes)
                reports += 1
        assert reports == len(titles)
    # another receiver, down: a queue of its own, kept for the next run, and a clear message now
    with pytest.raises(Conflict, match="still wait for ORTHANC.*run send-archive again"):
        send_archive(casebank, Destination("ORTHANC", "127.0.0.1", free_port()), timeout=0)
