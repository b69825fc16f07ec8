"""A local HTTP server that records every request and can be told to fail or to stall.

In a test (see the ``http_recorder`` fixture)::

    recorder.fail_next(2)                              # the next two requests get 503
    recorder.respond("POST", "/items", 201, {"id": 7}) # a fixed answer for one route
    ...
    [r.json for r in recorder.requests_to("/items")]

Every other request is answered ``200 {"ok": true, "echo": <the JSON body>}``. Requests are
recorded whatever the answer, with the status they got, so retries show as several records.

As its own process, for benchmarks and end-to-end runs::

    python -m tests.fakes.http_recorder --port 8081

There the same controls are reached over HTTP under ``/__recorder__/`` (never recorded):
``GET requests``, ``POST fail_next {"n": 2, "status": 503}``, ``POST respond {"method", "path",
"status", "json"}``, ``POST reset``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.serving import FakeServer, Handler, Headers, serve_main

CONTROL = "/__recorder__/"
NO_BODY = object()


@dataclass
class RecordedRequest:
    """One request as the server saw it, and the status it was answered with."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: Any  # the JSON value when the body is JSON, else its text; None when empty
    raw: bytes = field(repr=False)
    status: int = 200

    @property
    def json(self) -> Any:
        """The body parsed as JSON (fails the test when it is not JSON)."""
        return json.loads(self.raw)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"] = dict(self.headers)
        data.pop("raw")
        return data


Answer = Any  # a JSON value, or a function of the RecordedRequest returning one


@dataclass
class _Route:
    status: int
    json_body: Answer


class HttpRecorder(FakeServer):
    """The recording server; ``base_url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, background: bool = True) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], _Route] = {}
        self._failures: list[tuple[int, Any]] = []
        self._stalls: list[float] = []
        self._arrived = threading.Condition(self._lock)
        super().__init__(host, port, background=background)
        self.base_url = self.url

    # --- controls -------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503, json_body: Any = NO_BODY) -> None:
        """Answer the next ``n`` requests (to any path) with ``status`` instead of their answer."""
        body = {"error": f"failing on purpose ({status})"} if json_body is NO_BODY else json_body
        with self._lock:
            self._failures.extend([(status, body)] * n)

    def stall_next(self, n: int, seconds: float) -> None:
        """Wait ``seconds`` before answering each of the next ``n`` requests (to test timeouts)."""
        with self._lock:
            self._stalls.extend([seconds] * n)

    def respond(self, method: str, path: str, status: int, json_body: Answer) -> None:
        """Answer ``method path`` with ``status`` and ``json_body`` from now on. ``json_body`` may
        be a function of the :class:`RecordedRequest`, called for each request."""
        with self._lock:
            self._routes[(method.upper(), path)] = _Route(status, json_body)

    def reset(self) -> None:
        """Forget the recorded requests, routes, and pending failures and stalls."""
        with self._lock:
            self.requests.clear()
            self._routes.clear()
            self._failures.clear()
            self._stalls.clear()

    # --- reading what arrived -------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None, status: int | None = None) -> list[RecordedRequest]:
        """The recorded requests to ``path`` (and of ``method``, answered ``status``, when given)."""
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method.upper())
                    and (status is None or r.status == status)]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived (for work done by another process)."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests within {timeout_s} s, got {len(self.requests)}")
                self._arrived.wait(left)
            return list(self.requests)

    # --- serving --------------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, Any, float]:
        parts = urlsplit(target)
        request = RecordedRequest(method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                                  Headers(headers.items()), _parse(raw), raw)
        with self._lock:
            stall = self._stalls.pop(0) if self._stalls else 0.0
            if self._failures:
                status, body = self._failures.pop(0)
            else:
                route = self._routes.get((method, parts.path))
                status, body = (route.status, route.json_body) if route else (200, {"ok": True, "echo": request.body})
            request.status = status
            self.requests.append(request)
            self._arrived.notify_all()
        if callable(body):
            body = body(request)
        return status, body, stall

    def _control(self, method: str, name: str, raw: bytes) -> tuple[int, Any]:
        options = _parse(raw) or {}
        if method == "GET" and name == "requests":
            with self._lock:
                return 200, [r.to_dict() for r in self.requests]
        if method == "POST" and name == "fail_next":
            self.fail_next(int(options.get("n", 1)), int(options.get("status", 503)))
            return 200, {"ok": True}
        if method == "POST" and name == "stall_next":
            self.stall_next(int(options.get("n", 1)), float(options["seconds"]))
            return 200, {"ok": True}
        if method == "POST" and name == "respond":
            self.respond(options["method"], options["path"], int(options["status"]), options.get("json"))
            return 200, {"ok": True}
        if method == "POST" and name == "reset":
            self.reset()
            return 200, {"ok": True}
        return 404, {"error": f"no control {method} {CONTROL}{name}"}


class _RecorderHandler(Handler):
    def _serve(self) -> None:
        raw = self.read_body()
        recorder: HttpRecorder = self.app
        if self.path.startswith(CONTROL):
            status, body = recorder._control(self.command, self.path[len(CONTROL):].split("?")[0], raw)
            self.answer_json(status, body)
            return
        status, body, stall = recorder._handle(self.command, self.path, self.headers, raw)
        if stall:
            time.sleep(stall)
        if body is None:
            self.answer(status, b"")
        elif isinstance(body, (str, bytes)):
            text = body.encode("utf-8") if isinstance(body, str) else body
            self.answer(status, text, {"Content-Type": "text/plain; charset=utf-8"})
        else:
            self.answer_json(status, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve


HttpRecorder.handler = _RecorderHandler


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> None:
    serve_main("A local HTTP server that records every request (controls under /__recorder__/).",
               lambda options: HttpRecorder(options.host, options.port, background=False), argv=argv)


if __name__ == "__main__":
    main()
