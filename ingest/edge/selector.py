"""The TCE Export Selector for PACS that lack one: what the user chose on the edge page becomes
the images, an ATFI report signed with their name and GMC number, and a KOS manifest naming the
destination, exactly what a PACS with its own selector would send."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from ..tce import codes
from ..tce.atfi import TeachingFileInfo, build_teaching_file_info
from ..tce.manifest import build_manifest
from ..validation import MalformedObject, read_complete
from .projects import PROJECT_IN_DESCRIPTION
from .users import EdgeUser

DELAY_REASONS: dict[str, str] = {
    concept.value: concept.meaning
    for concept in (
        codes.DELAY_FINAL_REPORT, codes.DELAY_CLINICAL_INFORMATION, codes.DELAY_CONFIRMATION_OF_DIAGNOSIS,
        codes.DELAY_HISTOPATHOLOGY, codes.DELAY_OTHER_LABORATORY_RESULTS, codes.DELAY_PATIENT_DISCHARGED,
        codes.DELAY_PATIENT_DIES, codes.DELAY_EXPERT_REVIEW,
    )
}


class SelectionFormError(ValueError):
    """The export form cannot be sent as filled; the message names the field."""


@dataclass(frozen=True)
class ExportForm:
    """What the user filled in. ``destination`` is ``personal``, ``folder`` or ``project``."""

    title: str
    history: str = ""
    findings: str = ""
    differential: str = ""
    diagnosis: str = ""
    discussion: str = ""
    keywords: tuple[str, ...] = ()
    destination: str = "personal"
    folder: str = ""
    project: str = ""
    time_point: str = ""  # Clinical Trial Time Point ID of a project export ("baseline", "FU1")
    delay_reason: str = ""
    codes: tuple[tuple[str, str, str], ...] = field(default=())

    def check(self, projects: list[str]) -> None:
        if not self.title.strip():
            raise SelectionFormError("title: a case needs a title")
        if self.destination == "folder" and not self.folder.strip().strip("/"):
            raise SelectionFormError("folder: name the archive folder, e.g. /teaching/chest")
        if self.destination == "project":
            if not PROJECT_IN_DESCRIPTION.match(f"project: {self.project}"):
                raise SelectionFormError(f"project: {self.project!r} is not a project name")
            if self.project not in projects:
                raise SelectionFormError(f"project: {self.project} is not set up on this edge")
            if "\\" in self.time_point or "\n" in self.time_point or len(self.time_point.strip()) > 64:
                raise SelectionFormError("time point: at most 64 characters on one line")
        if self.destination not in ("personal", "folder", "project"):
            raise SelectionFormError(f"destination: {self.destination!r} is not personal, folder or project")
        if self.delay_reason and self.delay_reason not in DELAY_REASONS:
            raise SelectionFormError(f"delay: {self.delay_reason!r} is not a TCE delay reason")

    @property
    def description(self) -> str:
        """The manifest's Key Object Description; the archive routes by its ``folder:`` line and
        the edge by its ``project:`` line."""
        lines = [self.title.strip()]
        if self.destination == "folder":
            lines.append(f"folder: /{self.folder.strip().strip('/')}")
        elif self.destination == "project":
            lines.append(f"project: {self.project}")
            if self.time_point.strip():
                lines.append(f"time point: {self.time_point.strip()}")
        return "\n".join(lines)

    @property
    def purpose(self) -> str:
        return "research" if self.destination == "project" else "teaching"

    @property
    def destination_text(self) -> str:
        if self.destination == "folder":
            return f"folder /{self.folder.strip().strip('/')}"
        if self.destination == "project":
            return f"research project {self.project}"
        return "the author's personal folder"


def compose(retrieved: list[bytes], form: ExportForm, author: EdgeUser) -> list[tuple[bytes, Dataset]]:
    """The retrieved images with a new ATFI report and KOS manifest, each encoded and parsed.

    Raises
    ------
    SelectionFormError
        The PACS sent something unreadable, or images of more than one study.
    """
    images: list[tuple[bytes, Dataset]] = []
    for encoded in retrieved:
        try:
            images.append((encoded, read_complete(encoded)))
        except MalformedObject as exc:
            raise SelectionFormError(f"the PACS sent an object that cannot be read: {exc}") from exc
    datasets = [ds for _, ds in images]
    info = TeachingFileInfo(
        author_name=author.display_name, author_gmc=author.gmc, abstract=form.title.strip(),
        keywords=tuple(k.strip() for k in form.keywords if k.strip()), history=form.history.strip(),
        findings=form.findings.strip(), differential=form.differential.strip(), diagnosis=form.diagnosis.strip(),
        discussion=form.discussion.strip(), codes=form.codes,
        modality="\\".join(sorted({str(ds.get("Modality", "")) for ds in datasets} - {""})),
    )
    try:
        report = build_teaching_file_info(info, datasets)
        manifest = build_manifest(
            [*datasets, report], purpose=form.purpose, description=form.description,
            observer_name=author.display_name, delay_reason=form.delay_reason or None,
        )
    except ValueError as exc:  # several studies, say
        raise SelectionFormError(str(exc)) from exc
    return [*images, (_encode(report), report), (_encode(manifest), manifest)]


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
