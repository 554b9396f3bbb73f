"""Each folder's custom catalogue fields (name, type, choices): what a teaching set records beyond
the ATFI text, e.g. "grade" (basic / intermediate / advanced), "size_mm", "exam_date". Sub-folders
inherit the fields of the folders above them. Values are checked and typed on save, so search
can count keywords and filter numbers and dates by range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import audit
from .errors import InvalidInput
from .folders import require
from .models import CatalogueField, FieldType, Folder, User

MAX_FIELDS = 10
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class FieldDefinition:
    name: str
    type: FieldType = FieldType.KEYWORD
    label: str = ""
    choices: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


def _own(session: Session, folder_id: int) -> list[FieldDefinition]:
    rows = session.scalars(select(CatalogueField).where(CatalogueField.folder_id == folder_id)
                           .order_by(CatalogueField.position, CatalogueField.id))
    return [FieldDefinition(r.name, r.type, r.label, tuple(r.choices or ())) for r in rows]


def fields_of(session: Session, folder: Folder) -> list[FieldDefinition]:
    """The folder's fields after those it inherits (the nearest definition of a name wins)."""
    chain: list[Folder] = []
    current: Folder | None = folder
    while current is not None:
        chain.append(current)
        current = session.get(Folder, current.parent_id) if current.parent_id else None
    found: dict[str, FieldDefinition] = {}
    for ancestor in reversed(chain):
        for definition in _own(session, ancestor.id):
            found.pop(definition.name, None)
            found[definition.name] = definition
    return list(found.values())


def own_fields(session: Session, folder: Folder) -> list[FieldDefinition]:
    return _own(session, folder.id)


def define_fields(session: Session, actor: User, folder: Folder, definitions: list[FieldDefinition]) -> None:
    """Replace the folder's own fields (at most ten); its editors may."""
    require(session, actor, folder, "edit")
    if len(definitions) > MAX_FIELDS:
        raise InvalidInput(f"a folder has at most {MAX_FIELDS} catalogue fields, not {len(definitions)}")
    names = [d.name for d in definitions]
    for definition in definitions:
        if not NAME.match(definition.name):
            raise InvalidInput(f"field name {definition.name!r}: lower-case letters, digits and _, starting with a letter")
        if definition.choices and definition.type is not FieldType.KEYWORD:
            raise InvalidInput(f"field {definition.name}: only keyword fields have choices")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"field names must differ: {', '.join(duplicates)} twice")
    session.execute(delete(CatalogueField).where(CatalogueField.folder_id == folder.id))
    for position, definition in enumerate(definitions):
        session.add(CatalogueField(folder_id=folder.id, name=definition.name, label=definition.label.strip(),
                                   type=definition.type, position=position,
                                   choices=[c.strip() for c in definition.choices if c.strip()]))
    session.flush()
    audit.record(session, actor, "folder.catalogue_defined", "folder", folder.id,
                 fields=[{"name": d.name, "type": d.type.value} for d in definitions])


def checked_values(session: Session, folder: Folder, values: dict[str, object]) -> dict[str, object]:
    """``values`` typed by the folder's fields: numbers as numbers, dates as YYYY-MM-DD, keywords
    among their choices; empty values dropped. Raises InvalidInput naming the field."""
    definitions = {d.name: d for d in fields_of(session, folder)}
    unknown = sorted(set(values) - set(definitions))
    if unknown:
        known = ", ".join(definitions) or "none"
        raise InvalidInput(f"this folder has no catalogue field {', '.join(unknown)} (its fields: {known})")
    typed: dict[str, object] = {}
    for name, value in values.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        typed[name] = _typed(definitions[name], value)
    return typed


def _typed(definition: FieldDefinition, value: object) -> object:
    name = definition.name
    if definition.type is FieldType.NUMBER:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{name}: {value!r} is not a number") from exc
        return int(number) if number.is_integer() else number
    if definition.type is FieldType.DATE:
        try:
            return date.fromisoformat(str(value).strip()[:10]).isoformat()
        except ValueError as exc:
            raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc
    text = str(value).strip()
    if definition.choices and text not in definition.choices:
        raise InvalidInput(f"{name}: {text!r} is not one of {', '.join(definition.choices)}")
    return text


def keyword_fields_in(session: Session, folder_ids: set[int]) -> list[FieldDefinition]:
    """Keyword fields defined on any of these folders (by name, first definition kept): the
    catalogue facets a search page offers."""
    rows = session.scalars(select(CatalogueField).where(
        CatalogueField.folder_id.in_(folder_ids), CatalogueField.type == FieldType.KEYWORD,
    ).order_by(CatalogueField.folder_id, CatalogueField.position))
    found: dict[str, FieldDefinition] = {}
    for r in rows:
        found.setdefault(r.name, FieldDefinition(r.name, r.type, r.label, tuple(r.choices or ())))
    return list(found.values())
