"""DICOMweb reads under /dicomweb: QIDO-RS (PS3.18 10.6) and WADO-RS (10.4), with the UI's rights.

Rules live in `archive.dicom_query`; this module negotiates media types and frames the answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian

from archive import dicom_query
from archive.dicom_query import INSTANCE, SERIES, STUDY, StoredInstance
from archive.errors import InvalidInput

from ..deps import CasebankDep, Credentials, CredentialsDep
from ..rendering import IMAGE_FORMATS, Window, render
from ..runtime import Casebank
from .dicomweb import DICOM_JSON, public_base

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

INSTANCE_PATH = "/studies/{study}/series/{series}/instances/{instance}"
OCTET_STREAM = "application/octet-stream"
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc", "1.2.840.10008.1.2.5": "image/dicom-rle",
}
ANY_TYPES = {"*/*", "multipart/*", "multipart/related"}
THUMBNAIL_VIEWPORT = (128, 128)

Accepted = list[tuple[str, dict[str, str]]]


# --- QIDO-RS -------------------------------------------------------------------------------------

@router.get("/studies")
@router.get("/series")
@router.get("/studies/{study}/series")
@router.get("/instances")
@router.get("/studies/{study}/instances")
@router.get("/studies/{study}/series/{series}/instances")
def search(
    request: Request, cb: CasebankDep, credentials: CredentialsDep, study: str | None = None, series: str | None = None
) -> Response:
    """QIDO-RS at the level the path ends with; 204 when nothing matches in folders you may view."""
    level = {"studies": STUDY, "series": SERIES, "instances": INSTANCE}[request.url.path.rstrip("/").rsplit("/", 1)[1]]
    try:
        query = dicom_query.parse_query(request.query_params.multi_items())
    except InvalidInput as exc:
        raise HTTPException(400, str(exc)) from exc
    with cb.database.session() as session:
        found = dicom_query.search(
            session, credentials.user(session), cb.blobs, _base(request, cb), level, query,
            study_uid=study, series_uid=series,
        )
    headers = {}
    if query.fuzzy:
        headers["Warning"] = (f"299 {request.url.hostname}: The fuzzymatching parameter is not supported. "
                              "Only literal matching has been performed.")
    if not found:
        return Response(status_code=204, headers=headers)
    return JSONResponse([ds.to_json_dict() for ds in found], media_type=DICOM_JSON, headers=headers)


# --- WADO-RS: instances, metadata, bulk data -----------------------------------------------------

def _stored(cb: Casebank, credentials: Credentials, study: str, series: str | None = None,
            instance: str | None = None) -> list[StoredInstance]:
    with cb.database.session() as session:
        return dicom_query.stored_instances(session, credentials.user(session), study, series, instance)


def _retrieve(request: Request, instances: list[StoredInstance], cb: Casebank) -> Response:
    accepted = _accepted(request)
    for stored in instances:
        if not _dicom_acceptable(accepted, stored.transfer_syntax_uid):
            raise HTTPException(406, f"instance {stored.sop_uid} is stored as {stored.transfer_syntax_uid}; "
                                     "ask for transfer-syntax=* to receive it as stored")
    parts = ((f"application/dicom; transfer-syntax={i.transfer_syntax_uid}", cb.blobs.read(i.blob_sha256))
             for i in instances)
    return _multipart(parts, "application/dicom")


@router.get("/studies/{study}")
def retrieve_study(study: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    return _retrieve(request, _stored(cb, credentials, study), cb)


@router.get("/studies/{study}/series/{series}")
def retrieve_series(study: str, series: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    return _retrieve(request, _stored(cb, credentials, study, series), cb)


@router.get(INSTANCE_PATH)
def retrieve_instance(
    study: str, series: str, instance: str, request: Request, cb: CasebankDep, credentials: CredentialsDep
) -> Response:
    return _retrieve(request, _stored(cb, credentials, study, series, instance), cb)


def _metadata(request: Request, instances: list[StoredInstance], cb: Casebank) -> JSONResponse:
    body = []
    for i in instances:
        bulkdata = f"{_base(request, cb)}/studies/{i.study_uid}/series/{i.series_uid}/instances/{i.sop_uid}/bulkdata"
        header = dicom_query.instance_header(cb.blobs, i.sop_uid, i.blob_sha256)
        body.append(dicom_query.metadata_json(header, i.transfer_syntax_uid, bulkdata))
    return JSONResponse(body, media_type=DICOM_JSON)


@router.get("/studies/{study}/metadata")
def study_metadata(study: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> JSONResponse:
    return _metadata(request, _stored(cb, credentials, study), cb)


@router.get("/studies/{study}/series/{series}/metadata")
def series_metadata(
    study: str, series: str, request: Request, cb: CasebankDep, credentials: CredentialsDep
) -> JSONResponse:
    return _metadata(request, _stored(cb, credentials, study, series), cb)


@router.get(INSTANCE_PATH + "/metadata")
def instance_metadata(
    study: str, series: str, instance: str, request: Request, cb: CasebankDep, credentials: CredentialsDep
) -> JSONResponse:
    return _metadata(request, _stored(cb, credentials, study, series, instance), cb)


@router.get(INSTANCE_PATH + "/bulkdata/{tag}")
def bulkdata(
    study: str, series: str, instance: str, tag: str, cb: CasebankDep, credentials: CredentialsDep
) -> Response:
    """The value of one top-level bulk data element that metadata named by BulkDataURI."""
    [stored] = _stored(cb, credentials, study, series, instance)
    try:
        number = int(tag, 16)
    except ValueError as exc:
        raise HTTPException(400, f"{tag!r} is not a tag (eight hex digits)") from exc
    ds = dcmread(cb.blobs.path(stored.blob_sha256))
    value = ds[number].value if number in ds else None
    if not isinstance(value, bytes):
        raise HTTPException(404, f"instance {instance} has no bulk data element {tag}")
    return _multipart([(OCTET_STREAM, value)], OCTET_STREAM)


# --- WADO-RS: frames -----------------------------------------------------------------------------

@router.get(INSTANCE_PATH + "/frames/{frames}")
def retrieve_frames(
    study: str, series: str, instance: str, frames: str, request: Request, cb: CasebankDep, credentials: CredentialsDep
) -> Response:
    """Frames as stored (native as application/octet-stream, compressed as image/jpeg, image/jp2, ...),
    or decoded to native when only application/octet-stream in Explicit VR Little Endian is accepted."""
    [stored] = _stored(cb, credentials, study, series, instance)
    path = cb.blobs.path(stored.blob_sha256)
    ds = dcmread(path)
    numbers = _frame_numbers(frames, ds)
    media_type, transfer_syntax, decode = _frame_choice(_accepted(request), stored.transfer_syntax_uid)
    content_type = f"{media_type}; transfer-syntax={transfer_syntax}"
    parts = ((content_type, _frame_bytes(ds, str(path), n, decode)) for n in numbers)
    return _multipart(parts, media_type)


def _frame_numbers(frames: str, ds: Dataset) -> list[int]:
    if "PixelData" not in ds:
        raise HTTPException(404, f"instance {ds.SOPInstanceUID} has no pixel data")
    try:
        numbers = [int(n) for n in frames.split(",")]
    except ValueError as exc:
        raise HTTPException(400, f"{frames!r} is not a comma-separated list of frame numbers") from exc
    count = _frame_count(ds)
    outside = [n for n in numbers if not 1 <= n <= count]
    if outside:
        raise HTTPException(404, f"frame(s) {', '.join(map(str, outside))} outside 1..{count}")
    return numbers


def _frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _frame_choice(accepted: Accepted, stored_ts: str) -> tuple[str, str, bool]:
    """(media type, transfer syntax, decode?) for the first acceptable of the client's choices."""
    compressed = UID(stored_ts).is_compressed
    stored_type = FRAME_MEDIA_TYPES.get(stored_ts, OCTET_STREAM) if compressed else OCTET_STREAM
    stored_answer_ts = stored_ts if compressed else ExplicitVRLittleEndian  # native frames are the same bytes
    for media, params in accepted:
        wanted, syntax = _part_type(media, params), params.get("transfer-syntax")
        if syntax == "*" or (wanted in ANY_TYPES and syntax is None):
            return stored_type, stored_answer_ts, False
        if _same_type(wanted, stored_type) and syntax in (None, stored_answer_ts):
            return stored_type, stored_answer_ts, False
        if wanted == OCTET_STREAM and syntax in (None, ExplicitVRLittleEndian):
            return OCTET_STREAM, ExplicitVRLittleEndian, compressed
    raise HTTPException(406, f"the frames are stored as {stored_ts} ({stored_type}); "
                             "accept that, application/octet-stream, or transfer-syntax=*")


def _frame_bytes(ds: Dataset, path: str, number: int, decode: bool) -> bytes:
    count = _frame_count(ds)
    if decode or int(ds.BitsAllocated) == 1:
        pixels = pixel_array(path, index=number - 1)
        return pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    if UID(ds.file_meta.TransferSyntaxUID).is_compressed:
        return get_frame(ds.PixelData, number - 1, number_of_frames=count)
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8
    return ds.PixelData[(number - 1) * size: number * size]


# --- WADO-RS: rendered and thumbnails ------------------------------------------------------------

def _rendered(
    request: Request, cb: Casebank, stored: StoredInstance, frame: int, viewport: str | None, window: str | None,
    quality: int | None, default_viewport: tuple[int, int] | None = None,
) -> Response:
    media_type = _image_type(_accepted(request, query_accept=True))
    ds = dcmread(cb.blobs.path(stored.blob_sha256))
    if "PixelData" not in ds:
        raise HTTPException(404, f"instance {stored.sop_uid} has no image")
    if not 1 <= frame <= _frame_count(ds):
        raise HTTPException(404, f"frame {frame} is outside 1..{_frame_count(ds)}")
    image = render(ds, frame, viewport=_viewport(viewport) or default_viewport, window=_window(window),
                   media_type=media_type, quality=quality)
    return Response(image, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get(INSTANCE_PATH + "/rendered")
def rendered_instance(
    study: str, series: str, instance: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    viewport: str | None = None, window: str | None = None, quality: int | None = Query(None, ge=1, le=100),
) -> Response:
    [stored] = _stored(cb, credentials, study, series, instance)
    return _rendered(request, cb, stored, 1, viewport, window, quality)


@router.get(INSTANCE_PATH + "/frames/{frame}/rendered")
def rendered_frame(
    study: str, series: str, instance: str, frame: int, request: Request, cb: CasebankDep,
    credentials: CredentialsDep, viewport: str | None = None, window: str | None = None,
    quality: int | None = Query(None, ge=1, le=100),
) -> Response:
    [stored] = _stored(cb, credentials, study, series, instance)
    return _rendered(request, cb, stored, frame, viewport, window, quality)


def _thumbnail(request: Request, cb: Casebank, instances: list[StoredInstance], viewport: str | None) -> Response:
    stored = dicom_query.representative_image(cb.blobs, instances)
    return _rendered(request, cb, stored, 1, viewport, None, None, THUMBNAIL_VIEWPORT)


@router.get("/studies/{study}/thumbnail")
def study_thumbnail(
    study: str, request: Request, cb: CasebankDep, credentials: CredentialsDep, viewport: str | None = None
) -> Response:
    return _thumbnail(request, cb, _stored(cb, credentials, study), viewport)


@router.get("/studies/{study}/series/{series}/thumbnail")
def series_thumbnail(
    study: str, series: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    viewport: str | None = None,
) -> Response:
    return _thumbnail(request, cb, _stored(cb, credentials, study, series), viewport)


@router.get(INSTANCE_PATH + "/thumbnail")
def instance_thumbnail(
    study: str, series: str, instance: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    viewport: str | None = None,
) -> Response:
    return _thumbnail(request, cb, _stored(cb, credentials, study, series, instance), viewport)


def _viewport(value: str | None) -> tuple[int, int] | None:
    """``viewport=W,H`` (further PS3.18 source-rectangle values are ignored)."""
    if not value:
        return None
    try:
        width, height = (int(v) for v in value.split(",")[:2])
    except ValueError as exc:
        raise HTTPException(400, f"viewport must be WIDTH,HEIGHT, not {value!r}") from exc
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise HTTPException(400, "viewport sides must be 1..4096 pixels")
    return width, height


def _window(value: str | None) -> Window | None:
    """``window=center,width[,function]``."""
    if not value:
        return None
    try:
        center, width, *function = value.split(",")
        window = Window(float(center), float(width), *(f for f in function[:1] if f))
        window.apply(np.zeros(1))  # refuses an unknown function now, not while rendering
    except (ValueError, InvalidInput) as exc:
        raise HTTPException(400, f"window must be CENTER,WIDTH[,LINEAR|LINEAR_EXACT|SIGMOID]: {exc}") from exc
    if window.width <= 0:
        raise HTTPException(400, "window width must be positive")
    return window


def _image_type(accepted: Accepted) -> str:
    for media, _ in accepted:
        if media in IMAGE_FORMATS:
            return media
        if media in ("*/*", "image/*"):
            return "image/png"
    raise HTTPException(406, f"rendered images are {' or '.join(IMAGE_FORMATS)}")


# --- media types and multipart -------------------------------------------------------------------

def _base(request: Request, cb: Casebank) -> str:
    return public_base(request, cb.settings) + router.prefix  # never from the Host header


def _accepted(request: Request, query_accept: bool = False) -> Accepted:
    """The Accept header as (media type, parameters), most preferred first. With ``query_accept``
    (rendered resources and thumbnails), ``accept=`` query parameters replace the header (PS3.18 8.3.3.1)."""
    listed = request.query_params.getlist("accept") if query_accept else []
    entries = []
    for item in (",".join(listed) or request.headers.get("accept") or "*/*").split(","):
        media, *params = [p.strip() for p in item.split(";")]
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        entries.append((media.lower(), values))
    return sorted(entries, key=lambda e: -_quality(e[1]))


def _quality(params: dict[str, str]) -> float:
    try:
        return float(params.get("q", 1))
    except ValueError:
        return 0.0


def _part_type(media: str, params: dict[str, str]) -> str:
    return params.get("type", "*/*").lower() if media == "multipart/related" else media


def _same_type(wanted: str, actual: str) -> bool:
    return wanted == actual or (wanted.endswith("/*") and actual.startswith(wanted[:-1]))


def _dicom_acceptable(accepted: Accepted, stored_ts: str) -> bool:
    return any(
        _same_type(_part_type(media, params), "application/dicom") or _part_type(media, params) in ANY_TYPES
        for media, params in accepted
        if params.get("transfer-syntax") in (None, "*", stored_ts)
    )


def _multipart(parts: Iterable[tuple[str, bytes]], part_type: str) -> StreamingResponse:
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for content_type, data in parts:
            yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
            yield data
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(body(), media_type=f'multipart/related; type="{part_type}"; boundary={boundary}')


# --- WADO-URI (PS3.18 9): one object by its three UIDs ------------------------------------------

WADO_URI_TYPES = ("application/dicom", "image/jpeg", "image/png")


@router.get("/wado")
@router.get("")  # OHIF asks {wadoUriRoot}?requestType=WADO&..., with wadoUriRoot the DICOMweb root
def wado_uri(
    cb: CasebankDep, credentials: CredentialsDep,
    request_type: str = Query(..., alias="requestType"), study_uid: str = Query(..., alias="studyUID"),
    series_uid: str = Query(..., alias="seriesUID"), object_uid: str = Query(..., alias="objectUID"),
    content_type: str = Query("image/jpeg", alias="contentType"),
    frame_number: int = Query(1, alias="frameNumber", ge=1),
) -> Response:
    """WADO-URI: the stored object (``contentType=application/dicom``, what the viewer's loader
    reads), or a rendered frame (image/jpeg, the standard's default, or image/png)."""
    if request_type != "WADO":
        raise InvalidInput(f"requestType must be WADO, not {request_type!r}")
    media_type = content_type.split(",")[0].split(";")[0].strip()
    if media_type not in WADO_URI_TYPES:
        raise HTTPException(406, f"contentType {content_type!r}: one of {', '.join(WADO_URI_TYPES)}")
    [stored] = _stored(cb, credentials, study_uid, series_uid, object_uid)
    if media_type == "application/dicom":
        return Response(cb.blobs.read(stored.blob_sha256), media_type=media_type,
                        headers={"Cache-Control": "private, max-age=3600"})
    ds = dcmread(cb.blobs.path(stored.blob_sha256))
    if "PixelData" not in ds or not 1 <= frame_number <= _frame_count(ds):
        raise HTTPException(404, f"instance {object_uid} has no frame {frame_number}")
    image = render(ds, frame_number, viewport=None, window=None, media_type=media_type, quality=None)
    return Response(image, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
