"""TCE Export Manager rules: hold a selection until every object its manifest names has arrived,
honour "delay for reason", then de-identify the whole selection with one key (so references still
resolve) and hand it to the outbox. Identified objects stay in the edge's own folder.

Pixel cleaning is never silent. When a selection is whole, every image that needs cleaning is
looked at (:func:`~ingest.deid.pixels.find_text_regions`); a selection in which any pixels would
change, or detection is uncertain, waits in ``review``: a person looks at the preview (before and
after, the share of the image blanked), adds or removes rectangles, and confirms; only then is it
de-identified and queued. A site may let selections whose rectangles all come from device
templates or the ultrasound scan area leave without a person (``auto_release_template_cleaning``).
A selection made on the edge page always waits. Every image that went through cleaning is
de-identified with 113101 (Clean Pixel Data) in its De-identification Method Code Sequence."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..deid import Profile, ProjectKey, deidentify
from ..deid.pixels import (
    AUTOMATIC_SOURCES,  # rectangles placed without reading text: device templates, outside the scan area
    PixelCleaningFailed,
    Region,
    changed_fraction,
    clean_pixels,
    find_text_regions,
    needs_pixel_cleaning,
)
from ..tce import manifest as tce_manifest
from ..tce.atfi import is_teaching_file_info, withhold_authorship
from .files import write_durably
from .outbox import Outbox
from .projects import Mapping, Project, project_for_description, time_point_for_description

log = logging.getLogger(__name__)

def region_from_json(data: dict[str, Any]) -> Region:
    """A saved rectangle; keys this version of :class:`Region` does not know are ignored."""
    known = {f.name for f in fields(Region)}
    return Region(**{k: v for k, v in data.items() if k in known})


@dataclass
class ImageCleaning:
    """What pixel cleaning does to one image of a selection.

    Attributes
    ----------
    scanned : bool
        The image goes through pixel cleaning (it is de-identified with 113101); ``False`` for an
        image sent with its pixels unchanged (an original CT declared free of burned-in text).
    changed_fraction : float
        Share of the image's pixels blanked by the current rectangles, in every frame.
    frames : int
        Number of frames (the rectangles are blanked in all of them).
    """

    scanned: bool
    changed_fraction: float = 0.0
    frames: int = 1


@dataclass
class Selection:
    manifest_uid: str
    references: list[str]
    delay_reason: str | None = None
    project: str | None = None  # a research project named in the manifest ("project: NAME")
    time_point: str = ""  # Clinical Trial Time Point ID from the manifest ("time point: FU1")
    time_point_description: str = ""
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
    cleaning: dict[str, ImageCleaning] = field(default_factory=dict)  # SOP UID of each image -> what cleaning does

    def __post_init__(self) -> None:  # loaded from JSON: the per-image records come back as mappings
        self.cleaning = {uid: c if isinstance(c, ImageCleaning) else ImageCleaning(**c) for uid, c in self.cleaning.items()}

    def regions_of(self, sop_uid: str) -> list[Region]:
        return [region_from_json(r) for r in self.regions.get(sop_uid, [])]

    def kept_of(self, sop_uid: str) -> list[Region]:
        """Text read in the image that identifies nobody and stays (offered in the preview)."""
        return [region_from_json(r) for r in self.findings.get(sop_uid, {}).get("kept", [])]

    def changed(self) -> list[str]:
        """The images whose pixels the current rectangles change."""
        return [uid for uid, c in self.cleaning.items() if c.scanned and self.regions.get(uid)]

    def uncertain(self) -> list[str]:
        return [uid for uid in self.cleaning if self.findings.get(uid, {}).get("uncertain")]

    def automatic_only(self) -> bool:
        """Every rectangle of every changed image comes from a device template or the scan area."""
        return all(r.source in AUTOMATIC_SOURCES for uid in self.changed() for r in self.regions_of(uid))

    def pixel_summary(self) -> str:
        """'pixels blanked in 1 of 3 image(s) (up to 2.4% of an image)', for notes and the log."""
        changed = self.changed()
        if not changed:
            scanned = sum(c.scanned for c in self.cleaning.values())
            return f"no pixels changed ({scanned} of {len(self.cleaning)} image(s) looked at)" if self.cleaning else "no images"
        largest = max(self.cleaning[uid].changed_fraction for uid in changed)
        return f"pixels blanked in {len(changed)} of {len(self.cleaning)} image(s) (up to {percent(largest)} of an image)"


def percent(fraction: float) -> str:
    """A changed fraction as people read it: '2.4%', 'less than 0.1%'."""
    if 0 < fraction < 0.001:
        return "less than 0.1%"
    return f"{fraction * 100:.1f}%"


class SelectionError(Exception):
    """A review action that does not apply: unknown selection, wrong state, bad rectangle."""


class ExportManager:
    """Selections from the PACS and from the edge page, from arrival to the outbox.

    Parameters
    ----------
    auto_release_template_cleaning : bool
        Release a PACS selection without a person when every rectangle to blank comes from a
        device template or the ultrasound scan area (none from reading text, none uncertain).
        Off by default: every changed image waits for a person.
    """

    def __init__(self, folder: Path, outbox: Outbox, profile: Profile, *,
                 auto_release_template_cleaning: bool = False) -> None:
        self.projects = folder / "projects"
        self.objects = folder / "received"  # identified: never leaves the edge
        self.selections_folder = folder / "selections"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.selections_folder.mkdir(parents=True, exist_ok=True)
        self.outbox = outbox
        self.profile = profile
        self.auto_release_template_cleaning = auto_release_template_cleaning
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
            header = dcmread(self.object_path(sop_uid), stop_before_pixels=True)
            if "Rows" not in header:
                raise SelectionError(f"object {sop_uid} of selection {manifest_uid} is not an image")
            selection.regions[sop_uid] = [asdict(r) for r in regions]
            self._record(selection, sop_uid, header, scanned=True)  # a person's rectangles: it goes through cleaning
            self._save(selection)
            return selection

    def confirm(self, manifest_uid: str, person: str) -> Selection:
        """A person has looked at the preview: de-identify with their rectangles and queue it."""
        with self._lock:
            selection = self._in_review(manifest_uid)
            try:
                looked = self._look(selection)  # a selection saved by an earlier version may lack records
            except PixelCleaningFailed as exc:
                raise SelectionError(f"selection {manifest_uid} cannot be cleaned: {exc}") from exc
            if looked:  # images nobody has seen the findings of: show them first
                selection.note = f"{looked} image(s) looked at again: review them before confirming"
                self._save(selection)
                return selection
            selection.confirmed_by = person
            self._release(selection, [selection.manifest_uid, *selection.references])
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
        selection.time_point, selection.time_point_description = time_point_for_description(parsed.description)
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
            whole = all((self.objects / f"{uid}.dcm").exists() for uid in wanted)
            if whole and self._inspect(selection):
                self._release(selection, wanted)

    def _inspect(self, selection: Selection) -> bool:
        """Look for burned-in text in every image that needs cleaning; decide whether it waits.

        Returns ``True`` when the selection may leave without a person: it came from the PACS,
        detection is certain everywhere, and no pixels change (or, where the site allows it,
        only rectangles from device templates and the scan area). Otherwise it is saved in
        ``review`` with the reason, or ``held`` when text cannot be looked for at all (OCR
        missing, frames undecodable): a preview would show nothing trustworthy.
        """
        try:
            self._look(selection)
        except PixelCleaningFailed as exc:
            selection.state, selection.note = "held", f"held for a person: {exc}"
            self._save(selection)
            return False
        images, changed, uncertain = len(selection.cleaning), selection.changed(), selection.uncertain()
        if uncertain:
            why = f"detection uncertain in {len(uncertain)} of {images} image(s): waiting for a person"
        elif changed and not (self.auto_release_template_cleaning and selection.automatic_only()):
            why = f"burned-in text found in {len(changed)} of {images} image(s): waiting for a person"
        elif selection.review:
            why = "waiting for review" + (f": {selection.pixel_summary()}" if selection.cleaning else "")
        else:
            self._save(selection)
            return True
        selection.state, selection.note = "review", why
        self._save(selection)
        return False

    def _look(self, selection: Selection) -> int:
        """Run detection on every image not looked at yet that needs cleaning, and record what
        cleaning does to each image; the number of images detection ran on."""
        looked = 0
        for uid in selection.references:
            if uid in selection.cleaning:
                continue
            ds = dcmread(self.object_path(uid))
            if "PixelData" not in ds:
                continue
            scanned = uid in selection.regions or needs_pixel_cleaning(ds)
            if scanned and uid not in selection.regions:
                found = find_text_regions(ds)
                selection.regions[uid] = [asdict(r) for r in found.regions]
                selection.findings[uid] = {"reason": found.reason, "uncertain": found.uncertain,
                                           "kept": [asdict(r) for r in found.kept]}
                looked += 1
            self._record(selection, uid, ds, scanned=scanned)
        return looked

    def _record(self, selection: Selection, uid: str, ds: Dataset, *, scanned: bool) -> None:
        rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        fraction = changed_fraction(selection.regions_of(uid), rows, columns) if scanned else 0.0
        selection.cleaning[uid] = ImageCleaning(scanned, fraction, int(ds.get("NumberOfFrames") or 1))

    def _clean(self, selection: Selection, uid: str, ds: Dataset) -> tuple[Dataset, bool]:
        """Pixels as they may leave, and whether they went through cleaning: the rectangles
        detection found (or a person chose) blanked in every frame."""
        record = selection.cleaning.get(uid)
        if record is None or not record.scanned:
            return ds, False
        return clean_pixels(ds, selection.regions_of(uid)), True

    def _release(self, selection: Selection, uids: list[str]) -> None:
        try:
            project = Project.open(self.projects, selection.project) if selection.project else None
            # a research project maps consistently with its own secret; a teaching export uses a
            # one-off key that is then forgotten, so it cannot be reversed
            key = project.key() if project else ProjectKey.generate()
            trial = project.trial() if project else None
            outputs, mapping = [], Mapping({}, {})
            for uid in uids:
                cleaned, scanned = self._clean(selection, uid, dcmread(self.object_path(uid)))
                result = deidentify(cleaned, self.profile, key, pixels_cleaned=scanned)
                if trial is not None:  # written after de-identification, so the profile keeps them
                    trial.stamp(result.dataset, selection.time_point, selection.time_point_description)
                if project is not None and is_teaching_file_info(result.dataset):
                    withhold_authorship(result.dataset)  # filed by project: no staff name or GMC leaves
                buffer = io.BytesIO()
                result.dataset.save_as(buffer, enforce_file_format=True)
                outputs.append((uid, str(result.dataset.SOPInstanceUID), buffer.getvalue()))
                mapping.uids.update(result.uid_map)
                mapping.patient_ids.update(result.patient_id_map)
            if project is not None:
                project.log(selection.manifest_uid, mapping)  # logged before anything leaves
        except PixelCleaningFailed as exc:  # fail closed: a person looks at it; nothing leaves
            selection.state, selection.note = "review", f"held for a person: {exc}"
            self._save(selection)
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
        how = f"confirmed by {selection.confirmed_by}" if selection.confirmed_by else "released automatically"
        selection.note = f"{how}; {selection.pixel_summary()}"
        self._save(selection)  # from here a restart adopts the staged files instead of redoing them
        self.outbox.adopt(staged)
        log.info("selection %s released: %d object(s) queued; %s", selection.manifest_uid, len(outputs),
                 selection.pixel_summary())

    def _path(self, manifest_uid: str) -> Path:
        return self.selections_folder / f"{manifest_uid}.json"

    def _save(self, selection: Selection) -> None:
        write_durably(self._path(selection.manifest_uid), json.dumps(asdict(selection)).encode())

    def _load(self, path: Path) -> Selection:
        return Selection(**json.loads(path.read_text()))

