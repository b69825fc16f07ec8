"""``/api/v1/files``: upload a file to the tenant's ``files/`` folder (where its jobs' relative
paths point), list the folder, delete a file.

An upload is ``multipart/form-data`` with the file in the field ``file`` and, optionally, its
name in the field ``path`` (default: the file's own name). The body is read as it arrives and the
file part written straight to a partial file in the folder (:mod:`portl.service.filestore`),
rather than through FastAPI's ``UploadFile``, which would first copy the whole upload to a
temporary file elsewhere: so an upload over the size limit is refused once the limit is passed,
having used no more disk than that, and a finished one is renamed into place, never copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from portl.errors import ConfigError, ServiceError
from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.schemas import ERRORS, ErrorOut, FileEntryOut, FileList, FileOut
from portl.service.filestore import PartialUpload, checked_name, delete_file, list_files
from portl.service.tenants import Caller

router = APIRouter(prefix="/api/v1/files", tags=["files"])
FILE_FIELD, PATH_FIELD = "file", "path"
MAX_FIELD_BYTES = 4096
FORM_OVERHEAD_BYTES = 64 * 1024
"""What a form may add to its file's size (boundaries, part headers, the path field) before a
Content-Length alone shows the file to be over the limit."""

UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FILE_FIELD], "properties": {
        FILE_FIELD: {"type": "string", "format": "binary", "description": "The file's content."},
        PATH_FIELD: {"type": "string", "description": "Its path in the files folder, with '/' between folders "
                     "(crm/people.csv). Default: the uploaded file's name. A file of that path is replaced."}}}}}}}

KEY_ERRORS = {status: answer for status, answer in ERRORS.items() if status != 404}  # ERRORS' 404 is about jobs
NOT_FOUND = {404: {"model": ErrorOut, "description": "No such file in the tenant's files folder."}}


def _folder(request: Request, caller: Caller) -> Path:
    return Path(request.app.state.files_dir(caller.tenant_id))


@router.post("", status_code=201, response_model=FileOut, summary="Upload a file", openapi_extra=UPLOAD_BODY,
             responses={409: {"model": ErrorOut, "description": "The path collides with a folder, or goes through "
                              "a file as if it were one."},
                        413: {"model": ErrorOut, "description": "The file is larger than PORTL_MAX_UPLOAD_BYTES."},
                        415: {"model": ErrorOut, "description": "The body is not multipart/form-data."},
                        422: {"model": ErrorOut, "description": "The path is refused (absolute, '..', hidden, too "
                              "long...), or the form has no file or is cut off."}, **KEY_ERRORS})
async def upload_file(request: Request, caller: CurrentCaller) -> FileOut:
    """Store a file in the tenant's files folder, where a job's `path: people.csv` finds it."""
    limit = request.app.state.max_upload_bytes
    boundary = _boundary(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit)
    form = _UploadForm(await run_in_threadpool(_folder, request, caller), limit)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for chunk in request.stream():
            await run_in_threadpool(parser.write, chunk)
        parser.finalize()
        return await run_in_threadpool(form.store)
    except FormParserError as exc:
        raise ApiError(422, "request_invalid", f"the upload is not well-formed multipart/form-data ({exc})") from exc
    finally:
        form.discard()


@router.get("", response_model=FileList, summary="List the tenant's files", responses=KEY_ERRORS)
def list_tenant_files(request: Request, caller: CurrentCaller) -> FileList:
    """Every file of the tenant's files folder and its subfolders, by path (hidden ones left out)."""
    found = list_files(_folder(request, caller))
    return FileList(files=[FileEntryOut(path=f.path, size=f.size, modified=f.modified) for f in found])


@router.delete("/{path:path}", status_code=204, summary="Delete a file", response_class=Response,
               responses={422: {"model": ErrorOut, "description": "The path is refused."}, **KEY_ERRORS, **NOT_FOUND})
def delete_tenant_file(path: str, request: Request, caller: CurrentCaller) -> Response:
    """Delete a file of the tenant's files folder, and the folders it leaves empty."""
    try:
        delete_file(_folder(request, caller), path)
    except ConfigError as exc:
        raise ApiError(422, "path_invalid", str(exc)) from exc
    except FileNotFoundError:
        raise ApiError(404, "not_found", f"no file {path!r} in the files of tenant {caller.tenant!r}") from None
    return Response(status_code=204)


def _boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "an upload is multipart/form-data with the file in the field "
                       f"'{FILE_FIELD}' (curl -F {FILE_FIELD}=@people.csv); this request is "
                       f"{content_type or 'without a Content-Type'}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(422, "request_invalid", "the multipart/form-data Content-Type names no boundary")
    return boundary


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the file is larger than this service accepts, {_bytes(limit)} "
                    f"(PORTL_MAX_UPLOAD_BYTES={limit}); split it, or ask the service's operator to raise the limit")


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count:,} bytes"


class _UploadForm:
    """The parts of one upload as the parser meets them: the file into a :class:`PartialUpload`,
    the path field into memory (and checked as soon as it is complete)."""

    def __init__(self, folder: Path, limit: int):
        self.folder, self.limit = folder, limit
        self.upload: PartialUpload | None = None
        self.filename: str | None = None
        self.path: str | None = None
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._ended = False

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value_data, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end, "on_end": self._end}

    def _part_begin(self) -> None:
        self._disposition, self._field = b"", None
        self._value.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        field = options.get(b"name", b"").decode("utf-8", "replace")
        if field == FILE_FIELD:
            if self.upload is not None:
                raise ApiError(422, "request_invalid", f"the form has more than one '{FILE_FIELD}': upload one file "
                               "per request")
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            self.upload = PartialUpload(self.folder)
        elif field != PATH_FIELD:
            raise ApiError(422, "request_invalid", f"unknown form field {field!r}: an upload has the field "
                           f"'{FILE_FIELD}' and, optionally, '{PATH_FIELD}'")
        self._field = field

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field == FILE_FIELD and self.upload is not None:
            if self.upload.size + (end - start) > self.limit:
                raise _too_large(self.limit)
            self.upload.write(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise ApiError(422, "path_invalid", f"the field '{PATH_FIELD}' is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._field == PATH_FIELD:
            self.path = self._value.decode("utf-8", "replace")
            self._checked(self.path)  # before a large file that may follow is received for nothing

    def _end(self) -> None:
        self._ended = True

    def store(self) -> FileOut:
        if not self._ended:  # the body stopped short of the closing boundary: the file may be cut off
            raise ApiError(422, "request_invalid", "the upload ended before the form's closing boundary, so the file "
                           "may be incomplete; nothing was stored: send it again")
        if self.upload is None:
            raise ApiError(422, "request_invalid", f"the form has no '{FILE_FIELD}': send the file as the "
                           f"multipart/form-data field '{FILE_FIELD}' (curl -F {FILE_FIELD}=@people.csv)")
        name = self.path if self.path is not None else (self.filename or "").rsplit("/", 1)[-1]
        if not name:
            raise ApiError(422, "path_invalid", f"the file has no name: give one in the field '{PATH_FIELD}'")
        self._checked(name)
        try:
            stored = self.upload.store(name)
        except ConfigError as exc:
            raise ApiError(422, "path_invalid", str(exc)) from exc
        except ServiceError as exc:
            raise ApiError(409, "path_conflict", str(exc)) from exc
        finally:
            self.upload = None  # stored, or discarded by store
        return FileOut(path=stored.path, size=stored.size, sha256=stored.sha256, uploaded_at=stored.uploaded_at)

    @staticmethod
    def _checked(name: str) -> None:
        try:
            checked_name(name)
        except ConfigError as exc:
            raise ApiError(422, "path_invalid", str(exc)) from exc

    def discard(self) -> None:
        if self.upload is not None:
            self.upload.discard()
            self.upload = None
