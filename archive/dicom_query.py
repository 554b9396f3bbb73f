"""DICOMweb reads: QIDO-RS matching and the instances a WADO-RS request names, restricted to the
folders the asker may view. Values come from the database and, where it holds none, from the stored
instance header (read once per SOP instance and kept in memory)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from .blobs import BlobStore
from .errors import InvalidInput, NotFound
from .folders import visible_folder_ids
from .models import Case, Instance, Series, Study, User

STUDY, SERIES, INSTANCE = "study", "series", "instance"
CONTROL_PARAMETERS = {"limit", "offset", "includefield", "fuzzymatching", "emptyvaluematching", "multiplevaluematching"}
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"}
BULK_THRESHOLD = 1024

STUDY_KEYWORDS = (
    "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName", "PatientName",
    "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDescription",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
SERIES_KEYWORDS = (
    "Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID", "NumberOfSeriesRelatedInstances",
)
INSTANCE_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns", "NumberOfFrames")
STUDY_EXTRA = ("PatientAge", "PatientSize", "PatientWeight", "InstitutionName", "IssuerOfPatientID")
SERIES_EXTRA = (
    "SeriesDate", "SeriesTime", "BodyPartExamined", "ProtocolName", "Laterality", "Manufacturer",
    "ManufacturerModelName", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
)


@dataclass(frozen=True)
class QidoQuery:
    """Matching keys by keyword, the attributes asked for besides the required ones, and paging."""

    matches: dict[str, str]
    include: frozenset[str] = frozenset()
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    fuzzy: bool = False


@dataclass(frozen=True)
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_sha256: str


def keyword_of(key: str) -> str:
    """A matching key or includefield value (keyword or eight hex digits) as a DICOM keyword."""
    if "." in key:
        raise InvalidInput(f"matching inside sequences ({key}) is not supported")
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        keyword = keyword_for_tag(int(key, 16))
        if keyword:
            return keyword
    elif tag_for_keyword(key) is not None:
        return key
    raise InvalidInput(f"{key!r} is neither a DICOM keyword nor a tag")


# Larger values overflow the database's 64-bit LIMIT/OFFSET (a 500) or ask for more than one
# answer should carry; clients page with offset.
QIDO_MAXIMUM = {"limit": 10_000, "offset": 1_000_000_000}


def parse_query(params: Iterable[tuple[str, str]]) -> QidoQuery:
    matches: dict[str, list[str]] = {}
    include: set[str] = set()
    include_all, limit, offset, fuzzy = False, None, 0, False
    for key, value in params:
        if key == "includefield":
            for field in filter(None, (v.strip() for v in value.split(","))):
                if field == "all":
                    include_all = True
                else:
                    include.add(keyword_of(field))
        elif key in ("limit", "offset"):
            # isascii: "²" is a digit to str.isdigit; the length check keeps int() off huge strings
            if not (value.isascii() and value.isdigit() and len(value) <= 12) or int(value) > QIDO_MAXIMUM[key]:
                raise InvalidInput(f"{key} must be an integer from 0 to {QIDO_MAXIMUM[key]}, not {value[:30]!r}")
            limit, offset = (int(value), offset) if key == "limit" else (limit, int(value))
        elif key == "fuzzymatching":
            fuzzy = value.lower() == "true"
        elif key not in CONTROL_PARAMETERS:
            matches.setdefault(keyword_of(key), []).append(value)
    return QidoQuery(
        {k: ",".join(v) for k, v in matches.items()}, frozenset(include), include_all, limit, offset, fuzzy
    )


# --- the stored header ---------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _read_header(sop_uid: str, path: str) -> Dataset:
    return dcmread(path, stop_before_pixels=True)


def instance_header(blobs: BlobStore, sop_uid: str, sha256: str) -> Dataset:
    """The stored instance without its pixel data; shared between requests, so never change it."""
    return _read_header(sop_uid, str(blobs.path(sha256)))


def metadata_json(header: Dataset, transfer_syntax_uid: str, bulkdata_url: str) -> dict[str, Any]:
    """DICOM JSON of one instance for WADO-RS metadata: no pixel data, other bulk data as BulkDataURI."""
    ds = copy.deepcopy(header)
    for item in _sequence_items(ds):
        for elem in [e for e in item if _is_bulk(e)]:  # nested bulk data has no URI of its own: left out
            del item[elem.tag]
    ds.AvailableTransferSyntaxUID = transfer_syntax_uid
    return ds.to_json_dict(
        bulk_data_threshold=BULK_THRESHOLD,
        bulk_data_element_handler=lambda elem: f"{bulkdata_url}/{elem.tag:08X}",
    )


def _sequence_items(ds: Dataset) -> Iterable[Dataset]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield item
                yield from _sequence_items(item)


def _is_bulk(elem: DataElement) -> bool:
    return elem.VR in BINARY_VRS and elem.value is not None and len(elem.value) > BULK_THRESHOLD


# --- matching ------------------------------------------------------------------------------------

def _values(elem: DataElement | None) -> list[str]:
    if elem is None or elem.value is None or elem.value == "":
        return []
    value = elem.value
    return [str(v) for v in value] if isinstance(value, (list, MultiValue)) else [str(value)]


def _wildcard(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _is_range(vr: str, value: str) -> bool:
    return vr in ("DA", "TM", "DT") and "-" in value


def _matches_one(vr: str, wanted: str, actual: str) -> bool:
    if vr == "UI":
        return actual in re.split(r"[,\\]", wanted)
    if _is_range(vr, wanted):
        low, _, high = wanted.partition("-")
        return bool(actual) and (not low or actual >= low) and (not high or actual[: len(high)] <= high)
    if "*" in wanted or "?" in wanted:
        return bool(_wildcard(wanted).fullmatch(actual))
    candidates = wanted.split("\\") if vr in ("CS", "LO", "SH") else [wanted]
    if vr == "PN":
        return actual.lower().rstrip("^") in {c.lower().rstrip("^") for c in candidates}
    return actual in candidates


def matches(keyword: str, wanted: str, elem: DataElement | None) -> bool:
    """C-FIND matching of one key: universal, UID list, range, wildcard or single value."""
    if wanted in ("", "*"):
        return True
    vr = dictionary_VR(keyword)
    return any(_matches_one(vr, wanted, actual) for actual in _values(elem))


def _like(column: Any, pattern: str) -> Any:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(escaped.replace("*", "%").replace("?", "_"), escape="\\")


def _text_condition(column: Any, value: str) -> Any:
    return _like(column, value) if "*" in value or "?" in value else column == value


def _date_condition(column: Any, value: str) -> Any:
    if "-" not in value:
        return column == value
    low, _, high = value.partition("-")
    condition = column != ""
    if low:
        condition &= column >= low
    if high:
        condition &= column <= high
    return condition


def _listed(value: str) -> list[str]:
    """UIDs or codes listed with commas (PS3.18) or backslashes (C-FIND)."""
    return [uid for uid in re.split(r"[,\\]", value) if uid]


# Keys the database answers, by level they apply from: (lowest level rank, condition builder).
_LEVEL_RANK = {STUDY: 0, SERIES: 1, INSTANCE: 2}
_SQL_KEYS: dict[str, tuple[int, Callable[[str], Any]]] = {
    "StudyInstanceUID": (0, lambda v: Study.study_instance_uid.in_(_listed(v))),
    "StudyDate": (0, lambda v: _date_condition(Study.study_date, v)),
    "StudyDescription": (0, lambda v: _text_condition(Study.description, v)),
    "ModalitiesInStudy": (0, lambda v: exists().where(Series.study_id == Study.id, Series.modality.in_(_listed(v)))),
    "SeriesInstanceUID": (1, lambda v: Series.series_instance_uid.in_(_listed(v))),
    "Modality": (1, lambda v: Series.modality.in_(_listed(v))),
    "SeriesDescription": (1, lambda v: _text_condition(Series.description, v)),
    "SOPInstanceUID": (2, lambda v: Instance.sop_instance_uid.in_(_listed(v))),
    "SOPClassUID": (2, lambda v: Instance.sop_class_uid.in_(_listed(v))),
}


def _sql_keys(level: str, query: QidoQuery) -> dict[str, str]:
    rank = _LEVEL_RANK[level]
    keys = {k: v for k, v in query.matches.items() if k in _SQL_KEYS and _SQL_KEYS[k][0] <= rank and v not in ("", "*")}
    if level == STUDY and query.matches.get("Modality", "") not in ("", "*"):  # a study-level Modality key means ModalitiesInStudy
        keys.setdefault("ModalitiesInStudy", query.matches["Modality"])
    return keys


# --- QIDO-RS -------------------------------------------------------------------------------------

class _Searcher:
    def __init__(self, session: Session, user: User, blobs: BlobStore, base_url: str) -> None:
        self.session, self.blobs, self.base_url = session, blobs, base_url.rstrip("/")
        self.visible = visible_folder_ids(session, user)

    def header(self, instance: Instance | None) -> Dataset:
        return Dataset() if instance is None else instance_header(self.blobs, instance.sop_instance_uid, instance.blob_sha256)

    def statement(self, level: str, query: QidoQuery, study_uid: str | None, series_uid: str | None) -> Select[Any]:
        entity = {STUDY: Study, SERIES: Series, INSTANCE: Instance}[level]
        stmt = select(entity)
        if level == INSTANCE:
            stmt = stmt.join(Instance.series).options(contains_eager(Instance.series).contains_eager(Series.study))
        if level in (SERIES, INSTANCE):
            stmt = stmt.join(Series.study)
        stmt = stmt.join(Study.case).where(Case.folder_id.in_(self.visible))
        if level == SERIES:
            stmt = stmt.options(contains_eager(Series.study), selectinload(Series.instances))
        if level == STUDY:
            stmt = stmt.options(selectinload(Study.series).selectinload(Series.instances))
        if study_uid is not None:
            stmt = stmt.where(Study.study_instance_uid == study_uid)
        if series_uid is not None:
            stmt = stmt.where(Series.series_instance_uid == series_uid)
        for keyword, value in _sql_keys(level, query).items():
            stmt = stmt.where(_SQL_KEYS[keyword][1](value))
        order = {
            STUDY: (Study.id,),
            SERIES: (Series.study_id, Series.series_number, Series.id),
            INSTANCE: (Instance.series_id, Instance.instance_number, Instance.id),
        }[level]
        return stmt.order_by(*order)

    def study(self, study: Study) -> tuple[Dataset, Dataset]:
        instances = [i for s in study.series for i in s.instances]
        header = self.header(instances[0] if instances else None)
        ds = Dataset()
        _put(ds, "StudyDate", study.study_date or header.get("StudyDate", ""))
        _copy(ds, header, ("StudyTime", "AccessionNumber"))
        _put(ds, "ModalitiesInStudy", sorted({s.modality for s in study.series if s.modality}))
        _put(ds, "ReferringPhysicianName", "")
        _copy(ds, header, ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"))
        _put(ds, "StudyInstanceUID", study.study_instance_uid)
        _copy(ds, header, ("StudyID",))
        _put(ds, "StudyDescription", study.description or header.get("StudyDescription", ""))
        _put(ds, "NumberOfStudyRelatedSeries", len(study.series))
        _put(ds, "NumberOfStudyRelatedInstances", len(instances))
        _put(ds, "RetrieveURL", f"{self.base_url}/studies/{study.study_instance_uid}")
        return ds, header

    def series(self, series: Series) -> tuple[Dataset, Dataset]:
        header = self.header(series.instances[0] if series.instances else None)
        ds = Dataset()
        _put(ds, "StudyInstanceUID", series.study.study_instance_uid)
        _put(ds, "Modality", series.modality or header.get("Modality", ""))
        _put(ds, "SeriesDescription", series.description or header.get("SeriesDescription", ""))
        _put(ds, "SeriesNumber", series.series_number)
        _put(ds, "SeriesInstanceUID", series.series_instance_uid)
        _put(ds, "NumberOfSeriesRelatedInstances", len(series.instances))
        _put(ds, "RetrieveURL", f"{self.base_url}/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}")
        return ds, header

    def instance(self, instance: Instance) -> tuple[Dataset, Dataset]:
        header = self.header(instance)
        study_uid, series_uid = instance.series.study.study_instance_uid, instance.series.series_instance_uid
        ds = Dataset()
        _put(ds, "StudyInstanceUID", study_uid)
        _put(ds, "SeriesInstanceUID", series_uid)
        _put(ds, "SOPClassUID", instance.sop_class_uid)
        _put(ds, "SOPInstanceUID", instance.sop_instance_uid)
        _put(ds, "InstanceNumber", instance.instance_number)
        _copy(ds, header, ("Rows", "Columns", "NumberOfFrames"))
        _put(ds, "RetrieveURL", f"{self.base_url}/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}")
        return ds, header


def search(
    session: Session,
    user: User,
    blobs: BlobStore,
    base_url: str,
    level: str,
    query: QidoQuery,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[Dataset]:
    """The matching studies, series or instances in folders ``user`` may view, in PS3.18 form."""
    searcher = _Searcher(session, user, blobs, base_url)
    stmt = searcher.statement(level, query, study_uid, series_uid)
    python_keys = {k: v for k, v in query.matches.items() if k not in _sql_keys(level, query) and k not in _SQL_KEYS}
    if not python_keys:
        stmt = stmt.offset(query.offset).limit(query.limit)
    build = {STUDY: searcher.study, SERIES: searcher.series, INSTANCE: searcher.instance}[level]
    results = []
    for row in session.scalars(stmt).unique():
        ds, header = build(row)
        if all(matches(k, v, _element(ds, header, k)) for k, v in python_keys.items()):
            _include(ds, header, level, query)
            results.append(ds)
    if python_keys:
        end = None if query.limit is None else query.offset + query.limit
        results = results[query.offset:end]
    return results


def _element(ds: Dataset, header: Dataset, keyword: str) -> DataElement | None:
    for source in (ds, header):
        if keyword in source:
            return source[keyword]
    return None


def _include(ds: Dataset, header: Dataset, level: str, query: QidoQuery) -> None:
    wanted = set(query.matches) | set(query.include)
    if level == STUDY:  # a study has Modalities in Study (always answered), not one instance's Modality
        wanted.discard("Modality")
    if query.include_all:
        if level == INSTANCE:
            wanted |= {e.keyword for e in header if e.keyword and e.VR != "SQ" and not _is_bulk(e)}
        else:
            wanted |= set(STUDY_EXTRA) | {e.keyword for e in header if e.tag.group == 0x0010 and e.keyword}
            wanted |= set(SERIES_EXTRA) if level == SERIES else set()
    _copy(ds, header, sorted(k for k in wanted if k not in ds))


def _put(ds: Dataset, keyword: str, value: Any) -> None:
    tag = tag_for_keyword(keyword)
    ds.add_new(tag, dictionary_VR(tag), None if value in (None, "", []) else value)


def _copy(ds: Dataset, header: Dataset, keywords: Sequence[str]) -> None:
    """Copy attributes from the header, as empty attributes where the header lacks them."""
    for keyword in keywords:
        if keyword in header:
            ds[keyword] = copy.deepcopy(header[keyword])
        else:
            _put(ds, keyword, None)


# --- WADO-RS -------------------------------------------------------------------------------------

def stored_instances(
    session: Session, user: User, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[StoredInstance]:
    """The instances a WADO-RS path names, if the asker may view them; NotFound otherwise (the same
    answer whether the UID is unknown or filed where the asker may not look)."""
    stmt = (
        select(Instance, Series.series_instance_uid)
        .join(Instance.series)
        .join(Series.study)
        .join(Study.case)
        .where(Study.study_instance_uid == study_uid, Case.folder_id.in_(visible_folder_ids(session, user)))
        .order_by(Series.series_number, Series.id, Instance.instance_number, Instance.id)
    )
    if series_uid is not None:
        stmt = stmt.where(Series.series_instance_uid == series_uid)
    if sop_uid is not None:
        stmt = stmt.where(Instance.sop_instance_uid == sop_uid)
    found = [
        StoredInstance(study_uid, series, i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.blob_sha256)
        for i, series in session.execute(stmt)
    ]
    if not found:
        what = "/".join(uid for uid in (study_uid, series_uid, sop_uid) if uid)
        raise NotFound(f"no {_level_name(series_uid, sop_uid)} {what} that you may view")
    return found


def _level_name(series_uid: str | None, sop_uid: str | None) -> str:
    return "instance" if sop_uid else "series" if series_uid else "study"


def representative_image(blobs: BlobStore, instances: Sequence[StoredInstance]) -> StoredInstance:
    """The instance a thumbnail shows: the middle image of the first series that has images."""
    images = [i for i in instances if "Rows" in instance_header(blobs, i.sop_uid, i.blob_sha256)]
    if not images:
        raise NotFound("nothing there has an image")
    first_series = [i for i in images if i.series_uid == images[0].series_uid]
    return first_series[len(first_series) // 2]
