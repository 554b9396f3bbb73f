"""TCE Export Manager rules: hold a selection until every object its manifest names has arrived,
honour "delay for reason", then de-identify the whole selection with one key (so references still
resolve) and hand it to the outbox. Identified objects stay in the edge's own folder.

A selection made on the edge page, or one whose burned-in text could not be cleaned with
certainty, waits in ``review``: a person looks at the preview, adds or removes rectangles, and
confirms; only then is it de-identified and queued."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..deid import Profile, ProjectKey, deidentify
from ..deid.pixels import (
    PixelCleaningFailed,
    Region,
    clean_pixel_data,
    clean_pixels,
    find_text_regions,
    needs_pixel_cleaning,
)
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
    state: str = "waiting"  # waiting | review | held | released | superseded | failed | discarded
    note: str = ""
    released_uids: dict[str, str] = field(default_factory=dict)  # original SOP UID -> sent SOP UID
    review: bool = False  # a person confirms the preview before anything leaves
    regions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # SOP UID -> rectangles to blank
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)  # SOP UID -> reason, uncertain, kept
    title: str = ""
    author: str = ""
    destination: str = ""
    confirmed_by: str = ""

    def regions_of(self, sop_uid: str) -> list[Region]:
        return [Region(**r) for r in self.regions.get(sop_uid, [])]


class SelectionError(Exception):
    """A review action that does not apply: unknown selection, wrong state, bad rectangle."""


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

    def submit(self, objects: list[tuple[bytes, Dataset]], *, title: str = "", author: str = "",
               destination: str = "") -> Selection:
        """A selection made on the edge page: kept durably, then prepared for review (never
        released without a person's confirmation). ``objects`` holds exactly one manifest."""
        manifests = [ds for _, ds in objects if tce_manifest.is_manifest(ds)]
        if len(manifests) != 1:
            raise SelectionError(f"a selection needs exactly one manifest, this one has {len(manifests)}")
        for encoded, ds in objects:
            write_durably(self.objects / f"{ds.SOPInstanceUID}.dcm", encoded)
        with self._lock:
            selection = self._new_selection(tce_manifest.parse_manifest(manifests[0]), review=True)
            selection.title, selection.author, selection.destination = title, author, destination
            self._save(selection)
            self._release_ready()
            return self.get(selection.manifest_uid)

    def get(self, manifest_uid: str) -> Selection:
        path = self._path(manifest_uid)
        if not path.is_file():
            raise SelectionError(f"no selection {manifest_uid}")
        return self._load(path)

    def object_path(self, sop_uid: str) -> Path:
        """The identified object as it arrived (it never leaves the edge)."""
        return self.objects / f"{sop_uid}.dcm"

    def set_regions(self, manifest_uid: str, sop_uid: str, regions: list[Region]) -> Selection:
        """Replace the rectangles blanked in one image of a selection under review."""
        with self._lock:
            selection = self._in_review(manifest_uid)
            if sop_uid not in selection.references:
                raise SelectionError(f"image {sop_uid} is not part of selection {manifest_uid}")
            selection.regions[sop_uid] = [asdict(r) for r in regions]
            self._save(selection)
            return selection

    def confirm(self, manifest_uid: str, person: str) -> Selection:
        """A person has looked at the preview: de-identify with their rectangles and queue it."""
        with self._lock:
            selection = self._in_review(manifest_uid)
            selection.confirmed_by = person
            self._release(selection, [selection.manifest_uid, *selection.references], confirmed=True)
            return self.get(manifest_uid)

    def discard(self, manifest_uid: str, person: str) -> Selection:
        """Drop a selection under review; nothing of it leaves."""
        with self._lock:
            selection = self._in_review(manifest_uid)
            selection.state, selection.note = "discarded", f"discarded by {person}"
            self._save(selection)
            return selection

    def _in_review(self, manifest_uid: str) -> Selection:
        selection = self.get(manifest_uid)
        if selection.state != "review":
            raise SelectionError(f"selection {manifest_uid} is {selection.state}, not waiting for review")
        return selection

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

    def _new_selection(self, parsed: tce_manifest.Manifest, review: bool = False) -> Selection:
        references = [r.sop_instance_uid for r in parsed.references]
        selection = Selection(
            parsed.sop_instance_uid, references, parsed.delay_reason, project_for_description(parsed.description),
            review=review,
        )
        if parsed.delay_reason:
            selection.state, selection.note = "held", f"delayed: {parsed.delay_reason}"
        else:  # a manifest without the modifier releases earlier delayed ones it covers
            for earlier in self.selections():
                if earlier.state == "held" and earlier.delay_reason and set(earlier.references) <= set(references) | {selection.manifest_uid}:
                    earlier.state, earlier.note = "superseded", f"released by manifest {selection.manifest_uid}"
                    self._save(earlier)
        self._save(selection)
        return selection

    def _release_ready(self) -> None:
        for selection in self.selections():
            if selection.state != "waiting":
                continue
            wanted = [selection.manifest_uid, *selection.references]
            if all((self.objects / f"{uid}.dcm").exists() for uid in wanted):
                if selection.review:
                    self._prepare_review(selection, "waiting for review")
                else:
                    self._release(selection, wanted)

    def _prepare_review(self, selection: Selection, why: str) -> None:
        """Find burned-in text in every image that needs cleaning and wait for a person.

        When text cannot be looked for at all (OCR missing, frames undecodable) the selection
        is held: a preview would show nothing trustworthy.
        """
        try:
            for uid in selection.references:
                ds = dcmread(self.object_path(uid))
                if "PixelData" not in ds or not needs_pixel_cleaning(ds) or uid in selection.regions:
                    continue
                found = find_text_regions(ds)
                selection.regions[uid] = [asdict(r) for r in found.regions]
                selection.findings[uid] = {"reason": found.reason, "uncertain": found.uncertain,
                                           "kept": [asdict(r) for r in found.kept]}
        except PixelCleaningFailed as exc:
            selection.state, selection.note = "held", f"held for a person: {exc}"
        else:
            selection.state, selection.note = "review", why
        self._save(selection)

    def _clean(self, selection: Selection, uid: str, ds: Dataset, confirmed: bool) -> Dataset:
        """Pixels as they may leave: a person's rectangles when confirmed, else the automatic
        cleaning, which refuses (PixelCleaningFailed) when it is not certain."""
        if confirmed and "PixelData" in ds and uid in selection.regions:
            return clean_pixels(ds, selection.regions_of(uid))
        return clean_pixel_data(ds).dataset

    def _release(self, selection: Selection, uids: list[str], confirmed: bool = False) -> None:
        try:
            project = Project.open(self.projects, selection.project) if selection.project else None
            # a research project maps consistently with its own secret; a teaching export uses a
            # one-off key that is then forgotten, so it cannot be reversed
            key = project.key() if project else ProjectKey.generate()
            outputs, mapping = [], Mapping({}, {})
            for uid in uids:
                cleaned = self._clean(selection, uid, dcmread(self.object_path(uid)), confirmed)
                result = deidentify(cleaned, self.profile, key)
                buffer = io.BytesIO()
                result.dataset.save_as(buffer, enforce_file_format=True)
                outputs.append((uid, str(result.dataset.SOPInstanceUID), buffer.getvalue()))
                mapping.uids.update(result.uid_map)
                mapping.patient_ids.update(result.patient_id_map)
            if project is not None:
                project.log(selection.manifest_uid, mapping)  # logged before anything leaves
        except PixelCleaningFailed as exc:  # fail closed: a person looks at it; nothing leaves
            self._prepare_review(selection, f"held for a person: {exc}")
            log.warning("selection %s held for review: %s", selection.manifest_uid, exc)
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
        if selection.confirmed_by:
            selection.note = f"confirmed by {selection.confirmed_by}"
        self._save(selection)  # from here a restart adopts the staged files instead of redoing them
        self.outbox.adopt(staged)
        log.info("selection %s released: %d object(s) queued", selection.manifest_uid, len(outputs))

    def _path(self, manifest_uid: str) -> Path:
        return self.selections_folder / f"{manifest_uid}.json"

    def _save(self, selection: Selection) -> None:
        write_durably(self._path(selection.manifest_uid), json.dumps(asdict(selection)).encode())

    def _load(self, path: Path) -> Selection:
        return Selection(**json.loads(path.read_text()))

