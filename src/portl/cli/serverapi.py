"""Talking to a Portl server over HTTP for ``portl submit``, ``portl jobs`` and ``portl files``:
one request at a time, each answer either the JSON the API promises or a
:class:`~portl.errors.PortlError` whose sentence says what went wrong and what to do. The API key goes in a header and nowhere else:
no message here ever holds it."""

from __future__ import annotations

from typing import Any

import httpx

from portl.errors import ConfigError, PortlError, Problem, ServiceError
from portl.secrets import mask_url

TIMEOUT_S = 30.0


class ServerClient:
    """Requests to the API of the server at ``url``, made with ``api_key``."""

    def __init__(self, url: str, api_key: str):
        self.url = url.rstrip("/")
        self.shown = mask_url(self.url)
        self._http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {api_key}"},
                                  timeout=TIMEOUT_S)

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                headers: dict[str, str] | None = None, job_file: str | None = None, files: Any = None,
                data: Any = None) -> Any:
        """The decoded JSON answer of a successful request (None for 204 No Content); an error
        answer becomes an exception. ``job_file`` names the user's file that a 422's located
        problems are about; ``files`` and ``data`` make a multipart/form-data upload."""
        try:
            answer = self._http.request(method, path, json=json, params=params, headers=headers, files=files,
                                        data=data)
        except httpx.TimeoutException as exc:
            raise ServiceError(f"the Portl server at {self.shown} did not answer within {TIMEOUT_S:.0f} s; "
                               "check that it is running (`portl serve`) and not overloaded") from exc
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach the Portl server at {self.shown}: {_reason(exc)}; start one with "
                               "`portl serve` or set --server (or PORTL_SERVER)") from exc
        if answer.status_code == 204:
            return None
        if answer.is_success:
            return self._decoded(answer)
        raise self._error(answer, path, job_file)

    def _decoded(self, answer: httpx.Response) -> Any:
        try:
            return answer.json()
        except ValueError as exc:
            raise ServiceError(f"the server at {self.shown} answered {answer.status_code} with something other than "
                               "JSON; is --server the address of a Portl server?") from exc

    def _error(self, answer: httpx.Response, path: str, job_file: str | None) -> PortlError:
        status = answer.status_code
        try:
            detail = answer.json()["error"]
            code, message, problems = detail["code"], detail["message"], detail.get("problems") or []
        except (ValueError, KeyError, TypeError):
            return ServiceError(f"the server at {self.shown} answered HTTP {status} in a shape Portl does not know; "
                                "is --server the address of a Portl server?")
        if status == 401:
            return ServiceError(f"the server at {self.shown} refused the API key: it is not a live key of any "
                                "tenant (mistyped, revoked or rotated?); pass another with --api-key or "
                                "PORTL_API_KEY, or ask an admin for one (`portl keys create TENANT`)")
        if status == 422 and code == "job_invalid":
            found = located(problems, job_file)
            return ConfigError(f"the server refused the job: {message}:\n" + "\n".join(f"  {p}" for p in found), found)
        if status == 422:
            return ConfigError(f"the server refused the request: {message}")
        if status == 404:
            listing = "`portl files list` lists your files" if path.startswith("/api/v1/files") else \
                "`portl jobs list` lists your jobs"
            return ServiceError(f"{message} on the server at {self.shown}; {listing}")
        if status == 413:
            return ServiceError(f"the server at {self.shown} refused the upload: {message}")
        if status == 409:
            return ServiceError(message)
        if status == 429:
            return ServiceError(f"the server at {self.shown} is limiting this tenant's requests: {message}; "
                                "try again in a moment")
        return ServiceError(f"the server at {self.shown} failed to answer (HTTP {status}, {code}): {message}")


def located(problems: list[dict[str, Any]], job_file: str | None) -> list[Problem]:
    """The API's problems as problems of the user's file: the server calls the text it was sent
    ``job.yaml``, whose lines are the file's own lines."""
    found = []
    for p in problems:
        file = job_file if job_file and p.get("file") in ("job.yaml", None) else p.get("file")
        message = p.get("message", "")
        if p.get("line") is None and p.get("path"):
            message = f"{p['path']}: {message}"
        found.append(Problem(message, file, p.get("line"), p.get("column")))
    return found


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
