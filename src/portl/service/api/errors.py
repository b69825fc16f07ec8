"""One shape for every error the API answers, ``{"error": {"code", "message", "problems"}}``,
with stable codes; FastAPI's own validation errors and unexpected exceptions are mapped to it.
An unexpected exception is logged here with its traceback (passwords masked) and answered as a
500 that says nothing of the inside."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from portl.secrets import mask_url

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
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail) if exc.status_code != 404 else f"no such endpoint: {request.method} {request.url.path}"
        return JSONResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))

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
