"""TCE Export Manager rules: hold a selection until every object its manifest names has arrived,
honour "delay for reason", then de-identify the whole selection with one key (so references still
resolve) and hand it to the outbox. Identified objects stay in the edge's own folder."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..deid import Profile, ProjectKey, deidentify
from ..deid.pixels import PixelCleaningFailed, clean_pixel_data
from ..tce import manifest as tce_manifest
from .files import write_durably
from .outbox import Outbox
from .projects import Mapping, Project, project_for_description

log = logging.getLogger(__name__)


@dataclass
class Selection:
    manifest_uid: str
    references: list[str]
    delay_reason: str | None = None
    project: str | None = None  # a research project named in the manifest ("project: NAME")
    state: str = "waiting"  # waiting | held | released | superseded | failed
    note: str = ""
    released_uids: dict[str, str] = field(default_factory=dict)  # original SOP UID -> sent SOP UID


class ExportManager:
    def __init__(self, folder: Path, outbox: Outbox, profile: Profile) -> None:
        self.projects = folder / "projects"
        self.objects = folder / "received"  # identified: never leaves the edge
        self.selections_folder = folder / "selections"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.selections_folder.mkdir(parents=True, exist_ok=True)
        self.outbox = outbox
        self.profile = profile
        self._lock = threading.Lock()

    def receive(self, encoded: bytes, ds: Dataset) -> None:
        """Keep an object from the PACS durably, then release any selection it completes."""
        write_durably(self.objects / f"{ds.SOPInstanceUID}.dcm", encoded)
        with self._lock:
            if tce_manifest.is_manifest(ds):
                self._new_selection(tce_manifest.parse_manifest(ds))
            self._release_ready()

    def selections(self) -> list[Selection]:
        return [self._load(p) for p in sorted(self.selections_folder.glob("*.json"))]

    def resume(self) -> None:
        """After a restart: finish releases that were staged, and release what became whole."""
        with self._lock:
            for selection in self.selections():
                staged = self.outbox.staging(selection.manifest_uid)
                if selection.state == "released":
                    self.outbox.adopt(staged)
                else:  # staged but not recorded as released: redo it from the start
                    shutil.rmtree(staged, ignore_errors=True)
            self._release_ready()

    def _new_selection(self, parsed: tce_manifest.Manifest) -> None:
        references = [r.sop_instance_uid for r in parsed.references]
        selection = Selection(
            parsed.sop_instance_uid, references, parsed.delay_reason, project_for_description(parsed.description)
        )
        if parsed.delay_reason:
            selection.state, selection.note = "held", f"delayed: {parsed.delay_reason}"
        else:  # a manifest without the modifier releases earlier delayed ones it covers
            for earlier in self.selections():
                if earlier.state == "held" and earlier.delay_reason and set(earlier.references) <= set(references) | {selection.manifest_uid}:
                    earlier.state, earlier.note = "superseded", f"released by manifest {selection.manifest_uid}"
                    self._save(earlier)
        self._save(selection)

    def _release_ready(self) -> None:
        for selection in self.selections():
            if selection.state != "waiting":
                continue
            wanted = [selection.manifest_uid, *selection.references]
            if all((self.objects / f"{uid}.dcm").exists() for uid in wanted):
                self._release(selection, wanted)

    def _release(self, selection: Selection, uids: list[str]) -> None:
        try:
            project = Project.open(self.projects, selection.project) if selection.project else None
            # a research project maps consistently with its own secret; a teaching export uses a
            # one-off key that is then forgotten, so it cannot be reversed
            key = project.key() if project else ProjectKey.generate()
            outputs, mapping = [], Mapping({}, {})
            for uid in uids:
                result = deidentify(clean_pixel_data(dcmread(self.objects / f"{uid}.dcm")), self.profile, key)
                buffer = io.BytesIO()
                result.dataset.save_as(buffer, enforce_file_format=True)
                outputs.append((uid, str(result.dataset.SOPInstanceUID), buffer.getvalue()))
                mapping.uids.update(result.uid_map)
                mapping.patient_ids.update(result.patient_id_map)
            if project is not None:
                project.log(selection.manifest_uid, mapping)  # logged before anything leaves
        except PixelCleaningFailed as exc:  # fail closed: a person looks at it; nothing leaves
            selection.state, selection.note = "held", f"held for a person: {exc}"
            self._save(selection)
            log.warning("selection %s held: %s", selection.manifest_uid, exc)
            return
        except Exception as exc:  # fail closed: nothing of the selection leaves
            selection.state, selection.note = "failed", f"de-identification failed: {exc}"
            self._save(selection)
            log.error("selection %s held: %s", selection.manifest_uid, exc)
            return
        staged = self.outbox.staging(selection.manifest_uid)
        for original, new_uid, encoded in outputs:
            write_durably(staged / f"{new_uid}.dcm", encoded)
            selection.released_uids[original] = new_uid
        selection.state = "released"
        self._save(selection)  # from here a restart adopts the staged files instead of redoing them
        self.outbox.adopt(staged)
        log.info("selection %s released: %d object(s) queued", selection.manifest_uid, len(outputs))

    def _path(self, manifest_uid: str) -> Path:
        return self.selections_folder / f"{manifest_uid}.json"

    def _save(self, selection: Selection) -> None:
        write_durably(self._path(selection.manifest_uid), json.dumps(asdict(selection)).encode())

    def _load(self, path: Path) -> Selection:
        return Selection(**json.loads(path.read_text()))

