"""One shape for every error the API answers, ``{"error": {"code", "message", "problems"}}``,
with stable codes; FastAPI's own validation errors and unexpected exceptions are mapped to it.
An unexpected exception is logged here with its traceback (passwords masked) and answered as a
500 that says nothing of the inside."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from portl.secrets import mask_url
from portl.service.api.schemas import ErrorOut

log = logging.getLogger("portl.service.api")

_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
               413: "too_large", 415: "unsupported_media_type"}


class ApiError(Exception):
    """An answer other than success: its HTTP status, stable code, message and located problems."""

    def __init__(self, status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers


def error_body(code: str, message: str, problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "problems": problems or []}}


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.problems), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"path": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                    for e in exc.errors()]
        where = ", ".join(p["path"] for p in problems)
        return JSONResponse(error_body("request_invalid", f"the request is not as this endpoint expects it ({where})",
                                       problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's own, for a body it cannot read: malformed, as bad JSON is
            return JSONResponse(error_body("request_invalid", _unreadable_body(exc.__cause__)), 422)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail) if exc.status_code != 404 else f"no such endpoint: {request.method} {request.url.path}"
        return JSONResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))

    _document_validation_errors(app)

    # A middleware rather than an exception handler for Exception: Starlette would answer with the
    # handler and then raise the exception again, for uvicorn to log with its secrets unmasked.
    @app.middleware("http")
    async def _unexpected(request: Request, call_next: Any) -> Any:
        try:
            return await call_next(request)
        except Exception as exc:  # noqa: BLE001  (every defect gets the same answer)
            log.error("%s %s failed:\n%s", request.method, request.url.path,
                      mask_url("".join(traceback.format_exception(exc))))
            return JSONResponse(error_body("internal", "the service failed to answer this request; the error is in "
                                           "its log. Try again, or tell its operator"), 500)


def _unreadable_body(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not UTF-8 (byte {cause.start} cannot be decoded): send JSON as UTF-8 text"
    return "the request body could not be read" + (f" ({cause})" if cause is not None and str(cause) else "")


def _document_validation_errors(app: FastAPI) -> None:
    """Say in the OpenAPI document that a request FastAPI finds invalid is answered in the one
    shape: FastAPI documents its own ``{"detail": [...]}`` for every operation with parameters."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        reference = {"$ref": "#/components/schemas/ErrorOut"}
        for item in document.get("paths", {}).values():
            for operation in item.values():
                invalid = operation.get("responses", {}).get("422") if isinstance(operation, dict) else None
                if invalid and "HTTPValidationError" in json.dumps(invalid):
                    operation["responses"]["422"] = {
                        "description": "The request is not as this endpoint expects it: every problem, located.",
                        "content": {"application/json": {"schema": reference}}}
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorOut" not in schemas:
            made = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(made.pop("$defs", {}))
            schemas["ErrorOut"] = made
        for name in ("HTTPValidationError", "ValidationError"):  # the first names the second
            if f'"#/components/schemas/{name}"' not in json.dumps(document):
                schemas.pop(name, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
