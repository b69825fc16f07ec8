"""What both fake servers share: a threaded HTTP server on 127.0.0.1 run in a background thread
(in tests) or in the foreground of its own process (``python -m tests.fakes.<server> --port N``)."""

from __future__ import annotations

import argparse
import http.server
import json
import signal
import sys
import threading
from typing import Any


class Headers(dict):
    """Request headers: a plain dict (lower-case keys) that any spelling of a name finds."""

    def __init__(self, pairs: Any = ()) -> None:
        super().__init__((str(k).lower(), v) for k, v in dict(pairs).items())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Handler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 with Nagle off, so a client's request rate is not capped by delayed ACKs."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    app: Any = None  # the server object, set by FakeServer

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self.answer(status, json.dumps(value).encode("utf-8"), {"Content-Type": "application/json", **(headers or {})})

    def log_message(self, *args: Any) -> None:
        pass  # tests read the recorded requests, not a log


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a kept-alive connection (a killed process, an unread body) is
        # normal here; anything else is a bug in the fake and is printed.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeServer:
    """Start with ``FakeServer(handler_class)``; ``close()`` stops it. Usable as a context manager."""

    handler: type[Handler] = Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, background: bool = True) -> None:
        handler = type(self.handler.__name__, (self.handler,), {"app": self})
        self._httpd = _ThreadingServer((host, port), handler)
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None
        if background:
            # A short poll interval: shutdown() waits for it, once per test.
            self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=type(self).__name__,
                                            daemon=True)
            self._thread.start()

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve_main(description: str, make: Any, extra_arguments: Any = None, argv: list[str] | None = None) -> None:
    """Run a fake server in the foreground until SIGTERM or Ctrl-C; prints its URL first, so a
    parent process can read the port it got (``--port 0`` picks a free one)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=0, help="Port to listen on (default: a free one, printed).")
    if extra_arguments:
        extra_arguments(parser)
    options = parser.parse_args(argv)
    server = make(options)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
