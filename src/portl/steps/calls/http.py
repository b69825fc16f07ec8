"""``api.call``: build an HTTP request from a step's rendered fields and its connection, and send
it with retries.

The request is built once (:func:`build_http_request`) and then either shown (plans, logs and
errors use :meth:`HttpRequest.masked`) or sent (:func:`send_http`), so what a dry-run shows is
what is sent. The idempotency key travels in the connection's ``idempotency_header``: a server
that honours it answers a repeated request (a retry, or a re-run of the job) without doing the
work twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from portl import __version__
from portl.engine.hooks.base import excerpt
from portl.errors import CallError
from portl.secrets import MASK, is_sensitive_name, mask_url
from portl.steps.calls.config import HttpConnection
from portl.steps.calls.policy import Attempt, CallPolicy, CallResult, OnAttempt, retry_after, run_attempts

__all__ = ["CallPolicy", "CallResult", "HttpRequest", "build_http_request", "send_http", "http_client"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, ready to send. ``secrets`` are the credential values it carries
    (credential-like headers), which :meth:`masked` hides wherever they appear."""

    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any
    timeout_s: float
    secrets: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def masked(self) -> dict[str, Any]:
        """The request for plans, logs and errors: credential headers, URL passwords, credential-like
        query parameters and any secret value found in the body shown as ``**********``."""
        return {
            "method": self.method,
            "url": self.shown_url(),
            "headers": {name: (MASK if is_sensitive_name(name) or value in self.secrets else self.scrub(value))
                        for name, value in self.headers.items()},
            "query": {name: (MASK if is_sensitive_name(name) else _scrub_value(value, self.secrets))
                      for name, value in self.query.items()},
            "body": _scrub_value(self.body, self.secrets),
            "timeout_s": self.timeout_s,
        }

    def shown_url(self) -> str:
        """The URL with its password, credential-like query parameters and secrets masked."""
        return mask_url(self.scrub(self.url))

    def scrub(self, text: str) -> str:
        """``text`` with every secret value of this request (and a bearer token's token) masked."""
        return _scrub(text, self.secrets)

    def __repr__(self) -> str:
        return f"HttpRequest({self.masked()!r})"


def build_http_request(connection: HttpConnection | None, *, method: str, url: str | None, path: str | None,
                       headers: dict[str, str], query: dict[str, Any], body: Any, idempotency_key: str | None,
                       timeout_s: float | None = None) -> HttpRequest:
    """The request an ``api.call`` step sends: ``url`` as given, or the connection's ``base_url``
    followed by ``path``; the connection's headers, then the step's (a step header replaces a
    connection header of the same name), then the idempotency key; query parameters whose value is
    None left out. ``timeout_s`` (the step's) overrides the connection's."""
    verb = str(method).strip().upper()
    if verb not in METHODS:
        raise CallError(f"api.call: method {method!r} is not one of {', '.join(METHODS)}")
    target = _target_url(connection, url, path)

    merged: dict[str, str] = {}
    secrets: set[str] = set()
    for source in ((connection.headers if connection else {}), headers or {}):
        for name, value in source.items():
            if value is None:
                continue
            for existing in [k for k in merged if k.lower() == str(name).lower()]:
                del merged[existing]
            merged[str(name)] = str(value)
            if is_sensitive_name(str(name)):
                secrets.add(str(value))
    if idempotency_key is not None:
        header = connection.idempotency_header if connection else DEFAULT_IDEMPOTENCY_HEADER
        for existing in [k for k in merged if k.lower() == header.lower()]:
            del merged[existing]
        merged[header] = str(idempotency_key)

    timeout = timeout_s if timeout_s is not None else (connection.timeout_s if connection else DEFAULT_TIMEOUT_S)
    return HttpRequest(verb, target, merged, {k: v for k, v in (query or {}).items() if v is not None}, body,
                       float(timeout), frozenset(secrets))


def _target_url(connection: HttpConnection | None, url: str | None, path: str | None) -> str:
    if url and path:
        raise CallError(f"api.call: give url or path, not both (url {mask_url(url)!r}, path {path!r})")
    if url and urlsplit(url).scheme:
        target = url
    elif connection is not None:
        relative = url or path
        target = connection.base_url if not relative else connection.base_url.rstrip("/") + "/" + relative.lstrip("/")
    elif url or path:
        raise CallError(f"api.call: {url or path!r} is not a full URL (http://...), and the step names no http "
                        "connection whose base_url it could follow")
    else:
        raise CallError("api.call: no URL; give the step a url, or a connection (with base_url) and a path")
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CallError(f"api.call: {mask_url(target)!r} is not an http:// or https:// URL with a host")
    return target


def http_client() -> httpx.Client:
    """The client a run shares between its calls: connections are kept alive between requests,
    redirects are not followed (a call's URL is the one it means)."""
    return httpx.Client(follow_redirects=False, headers={"User-Agent": f"portl/{__version__}"})


def send_http(request: HttpRequest, policy: CallPolicy, *, client: httpx.Client,
              on_attempt: OnAttempt | None = None, sleep: Callable[[float], None] | None = None) -> CallResult:
    """Send ``request``, retrying as ``policy`` allows; a 2xx answer is the result.

    ``on_attempt(n, outcome, details)`` is told about every attempt (outcome "ok", "retry" or
    "failed"). The final failure raises :class:`CallError` naming the method, the masked URL, the
    status with an excerpt of the answer, and the attempts made.
    """
    content, content_type = _encode(request.body)
    headers = dict(request.headers)
    if content_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type
    shown_url = request.shown_url()

    def attempt() -> Attempt:
        try:
            response = client.request(request.method, request.url, params=request.query or None, headers=headers,
                                      content=content, timeout=request.timeout_s)
        except httpx.TimeoutException:
            return _failure(policy, "timeout", f"timed out after {request.timeout_s:g} s")
        except (httpx.ConnectError, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return _failure(policy, "connection", request.scrub(f"could not connect: {exc}" if isinstance(exc, httpx.ConnectError)
                                                                else f"failed: {type(exc).__name__}: {exc}"))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Attempt(problem=request.scrub(f"failed: {type(exc).__name__}: {exc}"),
                           why_not_retried="the request cannot be sent as it is")
        return _answered(response, policy, request)

    details = {"method": request.method, "url": shown_url}
    return run_attempts(f"{request.method} {shown_url}", policy, attempt, on_attempt, details, sleep=sleep or time.sleep)


def _answered(response: httpx.Response, policy: CallPolicy, request: HttpRequest) -> Attempt:
    status = response.status_code
    if 200 <= status <= 299:
        return Attempt(result=CallResult(status, _decode(response), dict(response.headers), 0), status=status)
    problem = f"answered {status} {response.reason_phrase}".rstrip()
    text = response.text.strip()
    if text:
        problem += f": {excerpt(request.scrub(text))}"
    retryable = policy.retries_status(status)
    if 300 <= status <= 399:
        why = "redirects are not followed; call the final URL"
    elif 400 <= status <= 499:
        why = f"4xx answers are retried only when retry_on names them, e.g. retry_on: [\"{status}\"]"
    else:
        why = f"{status} is not in retry_on"
    return Attempt(problem=problem, status=status, retryable=retryable, why_not_retried=why,
                   retry_after_s=retry_after(response.headers.get("Retry-After")) if retryable else None)


def _failure(policy: CallPolicy, kind: str, problem: str) -> Attempt:
    return Attempt(problem=problem, retryable=policy.retries_failure(kind),
                   why_not_retried=f"{kind} is not in retry_on", details={"failure": kind})


def _encode(body: Any) -> tuple[bytes | None, str | None]:
    """A text body goes as text, bytes as they are, anything else as JSON (dates and decimals as text)."""
    if body is None:
        return None, None
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(body, default=str, ensure_ascii=False).encode("utf-8"), "application/json"


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if "json" in response.headers.get("Content-Type", "").lower():
        try:
            return response.json()
        except ValueError:
            pass  # a server that labels text as JSON: give the text
    return response.text


def _scrub(text: str, secrets: frozenset[str]) -> str:
    # "Bearer abc123": the token alone may show up elsewhere too; the scheme word is not secret.
    # Values shorter than 4 characters are not hunted for in text: they would mask innocent words.
    pieces = {s for s in secrets if len(s) >= 4} | {part for s in secrets for part in s.split()[1:] if len(part) >= 4}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


def _scrub_value(value: Any, secrets: frozenset[str]) -> Any:
    if not secrets:
        return value
    if isinstance(value, str):
        return _scrub(value, secrets)
    if isinstance(value, dict):
        return {k: _scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v, secrets) for v in value]
    return value
