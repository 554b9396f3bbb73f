"""`casebank serve`: HTTP (UI, REST, DICOMweb) and the DICOM receiver in one process."""

from __future__ import annotations

import logging

import uvicorn

from ingest.assembly import AssemblySweeper
from search.indexer import CatchUpThread

from .app import create_app
from .runtime import Casebank

log = logging.getLogger(__name__)


def serve(casebank: Casebank) -> None:
    host, port = casebank.settings.http_host_port()
    receiver = casebank.receiver()
    receiver.start()
    sweeper = AssemblySweeper(casebank.database, casebank.intake.wait)
    sweeper.start()
    catch_up = CatchUpThread(casebank.indexer)  # cases changed during a search outage
    catch_up.start()
    casebank.start_forwarding()  # outboxes of the forwarding destinations: a restart resumes what waits
    try:
        uvicorn.run(create_app(casebank), host=host, port=port, log_level="info")
    finally:
        catch_up.stop()
        sweeper.stop()
        casebank.close()
