"""The one place where Elasticsearch and OpenSearch differ: their Python clients.

``type: elasticsearch`` uses the official ``elasticsearch`` client, ``type: opensearch`` uses
``opensearch-py``; both are imported here, lazily. :class:`SearchClient` gives the rest of the
connector one small surface over either: ``request`` (a JSON request through the client's own
transport: its connection pool, authentication, TLS and retries of 429 / 5xx answers), ``bulk``
(the client's ``helpers.streaming_bulk``), the point-in-time calls whose paths differ, and the
translation of the client's exceptions into Portl's (:func:`translate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from portl.connectors.config import resolve_path
from portl.connectors.elasticsearch.config import Config
from portl.errors import TerminalError, TransientError
from portl.secrets import mask_url

RETRY_STATUSES = (429, 502, 503, 504)


def require_driver(config_type: str) -> None:
    """Raise an error naming the extra to install when the client of ``config_type`` is missing."""
    try:
        if config_type == "opensearch":
            import opensearchpy  # noqa: F401
        else:
            import elasticsearch  # noqa: F401
    except ImportError as exc:
        extra = "opensearch" if config_type == "opensearch" else "elasticsearch"
        package = "opensearch-py" if extra == "opensearch" else "elasticsearch"
        raise TerminalError(f"the {config_type} connector needs {package}: pip install 'portl[{extra}]'") from exc


class SearchClient:
    """One connection to a cluster, through the client of the configured product."""

    def __init__(self, config: Config, base_dir: str):
        require_driver(config.type)
        self.config = config
        self.product = config.product
        self.opensearch = config.type == "opensearch"
        self.where = f"{self.product} at {config.location()}"
        ca_certs = resolve_path(config.ca_certs, base_dir) if config.ca_certs else None
        if self.opensearch:
            from opensearchpy import OpenSearch

            options: dict[str, Any] = {
                "hosts": config.nodes(), "timeout": config.request_timeout, "max_retries": config.max_retries,
                "retry_on_status": RETRY_STATUSES, "retry_on_timeout": True, "verify_certs": config.verify_certs,
            }
            if ca_certs:
                options["ca_certs"] = ca_certs
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                options["http_auth"] = (config.username, password)
            if config.api_key is not None:
                options["headers"] = {"authorization": "ApiKey " + config.api_key.get_secret_value()}
            self.client = OpenSearch(**options)
        else:
            from elasticsearch import Elasticsearch

            options = {
                "hosts": config.nodes(), "request_timeout": config.request_timeout, "max_retries": config.max_retries,
                "retry_on_status": RETRY_STATUSES, "retry_on_timeout": True, "verify_certs": config.verify_certs,
            }
            if ca_certs:
                options["ca_certs"] = ca_certs
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                options["basic_auth"] = (config.username, password)
            if config.api_key is not None:
                options["api_key"] = config.api_key.get_secret_value()
            self.client = Elasticsearch(**options)

    # --- requests ---------------------------------------------------------------------------

    def request(self, method: str, path: str, doing: str, *, params: dict[str, Any] | None = None,
                body: Any = None, missing_ok: bool = False, forbidden_ok: bool = False) -> Any:
        """Send one JSON request and return the decoded answer; None for a 404 with ``missing_ok``,
        for a 403 with ``forbidden_ok``."""
        try:
            if self.opensearch:
                return self.client.transport.perform_request(method, path, params=params, body=body)
            headers = {"accept": "application/json"}
            if body is not None:
                headers["content-type"] = "application/json"
            return self.client.perform_request(method, path, params=params, headers=headers, body=body).body
        except Exception as exc:
            status = status_of(exc)
            if (missing_ok and status == 404) or (forbidden_ok and status == 403):
                return None
            raise translate(exc, doing, self.where) from exc

    def check(self) -> dict[str, Any]:
        """The cluster's greeting (``GET /``): whether it can be reached with these credentials.
        A user allowed to work on indexes but not to see the cluster (403) is let through."""
        doing = "asking the cluster for its greeting (GET /)"
        try:
            return self.request("GET", "/", doing, forbidden_ok=True) or {}
        except TransientError as exc:
            raise TerminalError(f"{exc}; check 'hosts' (or 'url') and that the cluster is running") from exc

    def bulk(self, actions: Iterable[dict[str, Any]], *, chunk_rows: int, chunk_bytes: int,
             max_retries: int) -> Iterator[tuple[bool, dict[str, Any]]]:
        """The client's ``streaming_bulk`` over ``actions``, one ``(ok, item)`` per action: requests
        of at most ``chunk_rows`` documents and ``chunk_bytes`` bytes, documents answered 429 sent
        again up to ``max_retries`` times, per-document errors yielded rather than raised."""
        if self.opensearch:
            from opensearchpy import helpers
        else:
            from elasticsearch import helpers
        return helpers.streaming_bulk(self.client, actions, chunk_size=chunk_rows, max_chunk_bytes=chunk_bytes,
                                      raise_on_error=False, max_retries=max_retries, initial_backoff=0.2,
                                      max_backoff=5)

    # --- point in time ----------------------------------------------------------------------

    def open_pit(self, index: str, keep_alive: str) -> str:
        """Open a point in time on ``index`` and return its id."""
        doing = f"opening a point in time on {self.product} index {index}"
        if self.opensearch:
            answer = self.request("POST", f"/{_path(index)}/_search/point_in_time", doing, params={"keep_alive": keep_alive})
            return answer["pit_id"]
        answer = self.request("POST", f"/{_path(index)}/_pit", doing, params={"keep_alive": keep_alive})
        return answer["id"]

    def close_pit(self, pit: str) -> None:
        """Close a point in time; one that expired already is no error."""
        try:
            if self.opensearch:
                self.request("DELETE", "/_search/point_in_time", "closing a point in time", body={"pit_id": [pit]},
                             missing_ok=True)
            else:
                self.request("DELETE", "/_pit", "closing a point in time", body={"id": pit}, missing_ok=True)
        except (TransientError, TerminalError):
            pass  # it expires by itself after keep_alive

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a pool of connections that failed is no news
            pass


def _path(index: str) -> str:
    from urllib.parse import quote

    return quote(index, safe=",*")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client exception, when it carries one."""
    status = getattr(exc, "status_code", None)
    if status is None:
        meta = getattr(exc, "meta", None)
        status = getattr(meta, "status", None)
    return status if isinstance(status, int) else None


def reason_of(exc: BaseException) -> str:
    """The server's reason in a client exception, else the exception's text."""
    body = getattr(exc, "body", None)
    if body is None:
        body = getattr(exc, "info", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            root = error.get("root_cause") or [error]
            first = root[0] if isinstance(root, list) and root else error
            return f"{first.get('type', '')}: {first.get('reason', '')}".strip(": ")
        if isinstance(error, str):
            return error
    return mask_url(str(getattr(exc, "message", None) or exc))


def translate(exc: BaseException, doing: str, where: str) -> Exception:
    """A client exception as a Portl error that says what failed, where, and whether to retry."""
    status = status_of(exc)
    reason = reason_of(exc)
    if status is None:
        text = mask_url(str(exc))
        if isinstance(exc, (TransientError, TerminalError)):
            return exc
        return TransientError(f"{doing}: cannot reach {where}: {text}")
    if status == 401:
        return TerminalError(f"{doing}: {where} refused the credentials (401 {reason}); check username/password or "
                             "api_key")
    if status == 403:
        return TerminalError(f"{doing}: the user has no right to do this on {where} (403 {reason})")
    if status in RETRY_STATUSES or status >= 500:
        return TransientError(f"{doing}: {where} answered {status} ({reason})")
    return TerminalError(f"{doing}: {where} answered {status} ({reason})")
