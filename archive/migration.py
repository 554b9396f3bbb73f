"""Moving a whole archive out (at contract end) and in: `casebank export-archive DIR` and
`casebank import-archive DIR`.

The export is a folder another vendor (or another Casebank) can read without us:

* ``cases/<case id>/*.dcm`` - every stored instance of the case, byte for byte as archived;
  ``cases/<case id>/tce/*.dcm`` - the case rebuilt as a TCE submission (KOS manifest, ATFI report,
  presentation states) when the TCE builder is available (:mod:`export.tce_builder`);
* ``attachments/<sha256>`` - the attachments' bytes;
* ``catalogue/<table>.json`` - every row of every table as JSON, which is what DICOM cannot
  carry: folders and their tree, users (never password hashes), rights, catalogue fields and
  values, tags, likes, saved displays, quizzes, cohorts, projects and the audit log. Foreign keys
  are kept as the archive's own IDs; ``catalogue/README.txt`` says how to read it.

It is resumable: a case folder is complete once its ``.complete`` marker exists, and the catalogue
is written last, so a folder without ``catalogue/manifest.json`` is an unfinished export.

The import restores into an empty archive with the same IDs, or merges into one that holds data:
users are matched by GMC number, folders by path, unique names (projects, AE titles, catalogue
fields) by name, and everything else gets new IDs with its references rewritten.
"""

from __future__ import annotations

import enum
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, DateTime, Enum, Integer, Table, func, insert, select, update
from sqlalchemy.engine import Connection

from .blobs import BlobStore
from .errors import Conflict, InvalidInput
from .models import Base
from .security import hash_password

FORMAT = "casebank-archive/1"
SKIPPED_TABLES = frozenset({
    "api_tokens", "user_sessions",  # credentials: never leave
    "search_pending",  # rebuilt by the import
    "quarantine", "instance_conflicts",  # objects that were never filed; their blobs stay behind
    "submissions", "submission_references",  # TCE assembly state of the sending side
})
REDACTED_COLUMNS = {("users", "password_hash"), ("forward_destinations", "bearer_token")}
Progress = Callable[[int, int, str], None]


def _table_order() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _decode(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for column in table.columns:
        if column.name not in row:
            continue
        value = row[column.name]
        kind = column.type
        if value is not None and isinstance(kind, DateTime) and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(kind, Enum) and kind.enum_class is not None:
            value = kind.enum_class(value)
        elif value is not None and isinstance(kind, Boolean):
            value = bool(value)
        out[column.name] = value
    return out


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False, default=_encode))
    os.replace(tmp, path)


# -- out ---------------------------------------------------------------------------------------------


@dataclass
class ExportCounts:
    cases: int = 0
    cases_skipped: int = 0  # complete from an earlier, interrupted run
    instances: int = 0
    attachments: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def export_archive(casebank: Any, out: Path, progress: Progress | None = None) -> ExportCounts:
    """Write the whole archive to `out` (see the module docstring); resumes an interrupted run."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "catalogue" / "manifest.json").exists():
        raise Conflict(f"{out} holds a finished export already; give an empty or unfinished folder")
    counts = ExportCounts()
    database, blobs = casebank.database, casebank.blobs
    with database.engine.connect() as connection:
        tables = {t.name: t for t in _table_order()}
        case_ids = list(connection.scalars(select(tables["cases"].c.id).order_by(tables["cases"].c.id)))
    for done, case_id in enumerate(case_ids, start=1):
        folder = out / "cases" / str(case_id)
        if (folder / ".complete").exists():
            counts.cases_skipped += 1
        else:
            counts.instances += _export_case(casebank, case_id, folder)
            counts.cases += 1
        if progress:
            progress(done, len(case_ids), "cases")
    counts.attachments = _export_attachments(database, blobs, out / "attachments")
    _export_catalogue(database, out / "catalogue", counts)
    return counts


def _export_case(casebank: Any, case_id: int, folder: Path) -> int:
    tables = {t.name: t for t in _table_order()}
    st, se, ins = tables["studies"], tables["series"], tables["instances"]
    folder.mkdir(parents=True, exist_ok=True)
    with casebank.database.engine.connect() as connection:
        rows = connection.execute(
            select(ins.c.sop_instance_uid, ins.c.blob_sha256).join(se, se.c.id == ins.c.series_id)
            .join(st, st.c.id == se.c.study_id).where(st.c.case_id == case_id)).all()
    for sop_uid, sha256 in rows:
        target = folder / f"{sop_uid}.dcm"
        if not target.exists():
            data = casebank.blobs.read(sha256)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    _export_tce(casebank, case_id, folder / "tce")
    (folder / ".complete").write_text("")
    return len(rows)


def _export_tce(casebank: Any, case_id: int, folder: Path) -> None:
    """The case as a TCE submission another vendor's receiver understands, when the builder exists."""
    try:
        from export.tce_builder import build_case_export
    except ImportError:
        return
    from .models import Case

    folder.mkdir(parents=True, exist_ok=True)
    with casebank.database.session() as session:
        try:
            objects = build_case_export(session, casebank.blobs, session.get_one(Case, case_id))
        except InvalidInput as exc:  # no images, or several studies: the instances above still are the case
            (folder / "NOT-BUILT.txt").write_text(f"{exc}\n")
            return
        for ds in objects:
            if str(ds.SOPClassUID).startswith("1.2.840.10008.5.1.4.1.1.88.") or str(ds.Modality) in ("KO", "SR", "PR", "DOC"):
                ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)


def _export_attachments(database: Any, blobs: BlobStore, folder: Path) -> int:
    table = next(t for t in _table_order() if t.name == "attachments")
    folder.mkdir(parents=True, exist_ok=True)
    with database.engine.connect() as connection:
        hashes = set(connection.scalars(select(table.c.blob_sha256)))
    for sha256 in hashes:
        target = folder / sha256
        if not target.exists():
            target.write_bytes(blobs.read(sha256))
    return len(hashes)


def _export_catalogue(database: Any, folder: Path, counts: ExportCounts) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with database.engine.connect() as connection:
        for table in _table_order():
            rows = []
            for row in connection.execute(select(table).order_by(*table.primary_key.columns)).mappings():
                item = {k: _encode(v) for k, v in row.items() if (table.name, k) not in REDACTED_COLUMNS}
                rows.append(item)
            _write_json(folder / f"{table.name}.json", rows)
            counts.rows[table.name] = len(rows)
        revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    (folder / "README.txt").write_text(CATALOGUE_README)
    _write_json(folder / "manifest.json", {
        "format": FORMAT, "schema_revision": revision, "exported_at": datetime.now().astimezone().isoformat(),
        "tables": [t.name for t in _table_order()], "rows": counts.rows,
        "redacted": sorted(f"{t}.{c}" for t, c in REDACTED_COLUMNS), "not_exported": sorted(SKIPPED_TABLES),
    })


CATALOGUE_README = """Casebank archive export: the catalogue

Each <table>.json is a list of the table's rows as JSON objects, column name -> value. IDs are the
archive's own; a column ending in _id refers to the row with that id in the table it names
(folder_id -> folders.json, case_id -> cases.json, user_id -> users.json ...). Dates are ISO 8601.
Password hashes and API tokens are not exported: imported users set a new password.

cases/<case id>/ holds the case's DICOM instances exactly as archived (instances.json lists them by
series, with their blob_sha256 = the SHA-256 of the file); cases/<case id>/tce/ the case rebuilt as
an IHE TCE submission (KOS manifest, ATFI teaching-file report, presentation states) for any TCE
receiver. attachments/<sha256> are the attachments' files (attachments.json names them).
Start with manifest.json: the format, the schema revision and the row counts.
"""


# -- to another vendor's TCE receiver -----------------------------------------------------------------


@dataclass
class SendCounts:
    cases: int = 0
    objects: int = 0
    already_queued: int = 0  # by an earlier, interrupted run
    not_sent: dict[int, str] = field(default_factory=dict)  # case id -> why
    refused: list[dict[str, str]] = field(default_factory=list)


def send_archive(casebank: Any, destination: Any, progress: Progress | None = None, *, calling_ae: str = "CASEBANK",
                 timeout: float = 3600.0) -> SendCounts:
    """Every case as a TCE submission (images, report, presentation states, manifest last) through
    a durable outbox to `destination` (an ``ingest.edge.outbox.Destination``), the same outbox the
    edge and forwarding use. Resumable: cases queued by an earlier run are not queued again, and
    what waits in the outbox is sent first. Returns when the outbox is empty (or `timeout`)."""
    import time

    from export.tce_builder import build_case_export
    from ingest.edge.outbox import Outbox

    from .models import Case

    name = f"send-archive-{destination.ae_title}@{destination.host}_{destination.port}"
    folder = casebank.settings.data / "outbox" / name
    queued_marks = folder / "queued"
    queued_marks.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(folder, destination, calling_ae=calling_ae, name=name)
    counts = SendCounts()
    with casebank.database.session() as session:
        case_ids = list(session.scalars(select(Case.id).order_by(Case.id)))
    for done, case_id in enumerate(case_ids, start=1):
        mark = queued_marks / str(case_id)
        if mark.exists():
            counts.already_queued += 1
        else:
            with casebank.database.session() as session:
                try:
                    objects = build_case_export(session, casebank.blobs, session.get_one(Case, case_id))
                except InvalidInput as exc:
                    counts.not_sent[case_id] = str(exc)
                    objects = []
            if objects:
                staged = outbox.staging(f"case-{case_id}")
                for number, ds in enumerate(objects):
                    ds.save_as(staged / f"{number:05d}-{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
                outbox.adopt(staged)  # the manifest keeps its place last: adopt renames in name order
                counts.cases += 1
                counts.objects += len(objects)
            mark.write_text("")
        if progress:
            progress(done, len(case_ids), "cases queued")
    deadline = time.monotonic() + timeout
    backoff = 1.0
    while outbox.state().pending:
        try:
            outbox.send_batch(outbox._pending())
            backoff = 1.0
        except Exception as exc:  # the receiver is down or busy: everything stays queued
            if time.monotonic() > deadline:
                raise Conflict(f"{outbox.state().pending} object(s) still wait for {destination.ae_title}: {exc}; "
                               "run send-archive again to go on") from exc
            time.sleep(backoff)
            backoff = min(backoff * 2, 60.0)
        if progress:
            progress(outbox.sent, outbox.sent + outbox.state().pending, "objects sent")
    counts.refused = outbox.refused()
    return counts


# -- in ----------------------------------------------------------------------------------------------


@dataclass
class ImportCounts:
    rows: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)  # rows mapped onto existing ones (merge)
    blobs: int = 0


def _read_manifest(source: Path) -> dict[str, Any]:
    path = source / "catalogue" / "manifest.json"
    if not path.exists():
        raise InvalidInput(f"{source} is not a finished Casebank archive export (no catalogue/manifest.json)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def import_archive(casebank: Any, source: Path, progress: Progress | None = None) -> ImportCounts:
    """Restore `source` (an export) into this archive: same IDs when it is empty, else merged."""
    _read_manifest(source)
    counts = ImportCounts()
    counts.blobs = _import_blobs(casebank.blobs, source)
    with casebank.database.engine.begin() as connection:
        empty = not any(connection.scalar(select(func.count()).select_from(Base.metadata.tables[name]))
                        for name in ("users", "folders", "cases"))
        ids: dict[str, dict[int, int]] = {}
        tables = [t for t in _table_order() if (source / "catalogue" / f"{t.name}.json").exists()]
        for number, table in enumerate(tables, start=1):
            rows = json.loads((source / "catalogue" / f"{table.name}.json").read_text())
            ids[table.name] = _import_rows(connection, table, rows, ids, merge=not empty, counts=counts)
            if progress:
                progress(number, len(tables), "tables")
        _fix_json_references(connection, ids)
        if connection.dialect.name == "postgresql":
            _reset_sequences(connection)
    casebank.indexer.reindex_all()
    return counts


def _import_blobs(blobs: BlobStore, source: Path) -> int:
    stored = 0
    for path in [*(source / "cases").glob("*/*.dcm"), *(source / "attachments").glob("*")]:
        if path.is_file():
            blobs.put_bytes(path.read_bytes())
            stored += 1
    return stored


def _self_references(table: Table) -> list[str]:
    return [c.name for c in table.columns if any(fk.column.table is table for fk in c.foreign_keys)]


def _import_rows(connection: Connection, table: Table, rows: list[dict[str, Any]], ids: dict[str, dict[int, int]],
                 *, merge: bool, counts: ImportCounts) -> dict[int, int]:
    mapping: dict[int, int] = {}
    own = _self_references(table)
    deferred: list[tuple[int, dict[str, Any]]] = []
    keys = list(table.primary_key.columns)
    surrogate = len(keys) == 1 and not keys[0].foreign_keys  # an ID of its own, not e.g. likes (case, user)
    pk = keys[0].name
    for raw in sorted(rows, key=lambda r: tuple(r.get(k.name) or 0 for k in keys)):
        row = _decode(table, raw)
        old_id = row.get(pk)
        for column in table.columns:  # references to rows of other tables: their new IDs
            for fk in column.foreign_keys:
                target = fk.column.table.name
                if column.name in own or row.get(column.name) is None or target not in ids:
                    continue
                row[column.name] = ids[target].get(row[column.name], row[column.name])
        if table.name == "users":
            row["password_hash"] = hash_password(secrets.token_urlsafe(32))  # a new password must be set
        if table.name == "forward_destinations":
            row.setdefault("bearer_token", "")
        if not surrogate:  # a row keyed by its references: there or not
            if merge and connection.scalar(select(func.count()).select_from(table).where(
                    *(table.c[k.name] == row[k.name] for k in keys))):
                counts.matched[table.name] = counts.matched.get(table.name, 0) + 1
                continue
            connection.execute(insert(table).values(**row))
            counts.rows[table.name] = counts.rows.get(table.name, 0) + 1
            continue
        self_refs = {c: row.pop(c) for c in own if row.get(c) is not None}
        if merge:
            existing = _existing(connection, table, row)
            if existing is not None:
                mapping[old_id] = existing
                counts.matched[table.name] = counts.matched.get(table.name, 0) + 1
                continue
            row.pop(pk, None)
        if self_refs and table.name == "folders":  # a folder's parent is always imported before it
            row.update({c: mapping.get(v, v) for c, v in self_refs.items()})
            self_refs = {}
        new_id = connection.execute(insert(table).values(**row).returning(table.c[pk])).scalar_one()
        mapping[old_id] = new_id
        if self_refs:
            deferred.append((new_id, self_refs))
        counts.rows[table.name] = counts.rows.get(table.name, 0) + 1
    for new_id, refs in deferred:
        connection.execute(update(table).where(table.c[pk] == new_id).values({c: mapping.get(v, v) for c, v in refs.items()}))
    return mapping


def _existing(connection: Connection, table: Table, row: dict[str, Any]) -> int | None:
    """The ID of a row of this archive the imported one is (merge): same user GMC, folder path,
    or values of a unique constraint."""
    pk = next(iter(table.primary_key.columns))
    keys: list[list[str]] = []
    if table.name == "users":
        keys.append(["gmc"])
    if table.name == "folders":
        if row.get("parent_id") is not None:
            keys.append(["parent_id", "name"])
        elif str(getattr(row.get("kind"), "value", row.get("kind"))) == "personal":
            keys.append(["owner_id", "kind"])  # a user matched by GMC keeps their own personal folder
        else:
            keys.append(["name", "kind"])
    for constraint in table.constraints:
        names = [c.name for c in getattr(constraint, "columns", []) if c is not pk]
        if constraint.__class__.__name__ == "UniqueConstraint" and names:
            keys.append(names)
    keys += [[c.name] for c in table.columns if c.unique and c is not pk]
    for names in keys:
        if any(row.get(n) is None for n in names):
            continue
        found = connection.scalar(select(pk).where(*(table.c[n] == row[n] for n in names)).limit(1))
        if found is not None:
            return found
    return None


def _fix_json_references(connection: Connection, ids: dict[str, dict[int, int]]) -> None:
    """IDs inside JSON columns: the cases of cohort versions, the instances of public links."""
    cases, instances = ids.get("cases", {}), ids.get("instances", {})
    versions = Base.metadata.tables["cohort_versions"]
    for new_id in ids.get("cohort_versions", {}).values():
        entries = connection.scalar(select(versions.c.entries).where(versions.c.id == new_id)) or []
        fixed = [{**e, "case_id": cases.get(e["case_id"], e["case_id"])} for e in entries]
        if fixed != entries:
            connection.execute(update(versions).where(versions.c.id == new_id).values(entries=fixed))
    links = Base.metadata.tables["public_links"]
    for new_id in ids.get("public_links", {}).values():
        old = connection.scalar(select(links.c.instance_ids).where(links.c.id == new_id)) or []
        fixed_ids = [instances.get(i, i) for i in old]
        if fixed_ids != old:
            connection.execute(update(links).where(links.c.id == new_id).values(instance_ids=fixed_ids))


def _reset_sequences(connection: Connection) -> None:
    """After inserting explicit IDs, PostgreSQL's sequences must move past them."""
    for table in _table_order():
        pk = next(iter(table.primary_key.columns))
        if not isinstance(pk.type, Integer):
            continue
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk.name}'), "
            f"COALESCE((SELECT MAX({pk.name}) FROM {table.name}), 0) + 1, false)")


