"""Talking to the Sheets API: credentials, the client, retries, and Google's errors as Portl's.

The client is google-api-python-client, imported here and only when a spreadsheet is opened
(``import portl`` never imports it). Every request goes through :meth:`SheetsApi.call`, which
retries what Google asks to be retried (429 quota answers, 5xx, dropped connections) with
exponential backoff and jitter, and translates the rest into :class:`TerminalError` sentences
that name the spreadsheet and say what to do.

A write is not blindly sent again after a 5xx or a dropped connection: the request may have been
applied before the answer was lost. :meth:`call` asks ``landed()`` first (the sink looks for the
checkpoint the request carried) and sends it again only when it did not land. A 429 is never
applied, so it is always sent again.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from portl.connectors.config import resolve_path
from portl.connectors.gsheet.config import DEFAULT_ENDPOINT, Config
from portl.errors import ConfigError, TerminalError, TransientError
from portl.secrets import MASK

SCOPE_WRITE = "https://www.googleapis.com/auth/spreadsheets"
SCOPE_READ = "https://www.googleapis.com/auth/spreadsheets.readonly"
INSTALL = "pip install 'portl[sheets]'"
REQUEST_BYTES = 10 * 1024 * 1024
"""Google refuses a request body past 10 MB."""


def quote_sheet(title: str) -> str:
    """A tab name as A1 notation wants it: always quoted, quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    out, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


def column_index(letters: str) -> int:
    """A -> 0, AA -> 26."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def _credentials(config: Config, base_dir: str, write: bool) -> Any:
    """Credentials for the client: from the ``credentials`` file (service account or authorized
    user), else Google's Application Default Credentials; None with an API key."""
    scopes = [SCOPE_WRITE if write else SCOPE_READ]
    if config.api_key is not None:
        return None
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import credentials as user_credentials
        from google.oauth2 import service_account
    except ImportError as exc:
        raise TerminalError(f"the Google Sheets connector needs google-auth: {INSTALL}") from exc
    if config.credentials is None:
        try:
            found, _project = google.auth.default(scopes=scopes)
        except DefaultCredentialsError as exc:
            raise ConfigError(f"{config.describe()}: no credentials given and no Application Default Credentials "
                              "found; set credentials: (a service-account key or an authorized-user file) or, for a "
                              "public spreadsheet read, api_key:") from exc
        return found
    path = resolve_path(config.credentials, base_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except OSError as exc:
        raise ConfigError(f"{config.describe()}: cannot read the credentials file {config.credentials}: "
                          f"{exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{config.describe()}: the credentials file {config.credentials} is not JSON") from exc
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            return service_account.Credentials.from_service_account_info(info, scopes=scopes)
        if kind == "authorized_user":
            found = user_credentials.Credentials.from_authorized_user_info(info, scopes=scopes)
            # google-auth always refreshes at Google's own endpoint; a file that names another
            # (a proxy, an emulator) is taken at its word.
            return found.with_token_uri(info["token_uri"]) if info.get("token_uri") else found
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{config.describe()}: the credentials file {config.credentials} is incomplete: {exc}") from exc
    raise ConfigError(f"{config.describe()}: the credentials file {config.credentials} has type {kind!r}; expected "
                      "'service_account' (a service-account key) or 'authorized_user' (an OAuth user file)")


def service_account_email(config: Config, base_dir: str) -> str | None:
    """The e-mail of the service account in ``credentials``, to say whom to share a sheet with."""
    if not config.credentials:
        return None
    try:
        with open(resolve_path(config.credentials, base_dir), encoding="utf-8") as handle:
            info = json.load(handle)
        return info.get("client_email") if info.get("type") == "service_account" else None
    except (OSError, ValueError, AttributeError):
        return None


class SheetsApi:
    """One spreadsheet's client: ``call`` runs a request built by the google client, retried and
    translated. Requests are serialised (httplib2 connections are not thread-safe). Errors are
    raised without the client's exception as their cause: its text holds the request's URL, and
    with an API key the key."""

    def __init__(self, config: Config, base_dir: str, *, write: bool):
        self.config = config
        self.spreadsheet = config.spreadsheet
        self.where = f"spreadsheet {config.spreadsheet}"
        self._share_with = service_account_email(config, base_dir)
        try:
            import httplib2
            from googleapiclient.discovery import build
        except ImportError as exc:
            raise TerminalError(f"the Google Sheets connector needs google-api-python-client: {INSTALL}") from exc
        credentials = _credentials(config, base_dir, write)
        http = httplib2.Http(timeout=config.timeout)
        if credentials is not None:
            import google_auth_httplib2

            http = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
        options = {"api_endpoint": config.endpoint.rstrip("/")} if config.endpoint.rstrip("/") != DEFAULT_ENDPOINT else None
        key = config.api_key.get_secret_value() if config.api_key is not None else None
        self.service = build("sheets", "v4", http=http, developerKey=key, static_discovery=True,
                             client_options=options, cache_discovery=False)
        self._spreadsheets: Any = None
        self._values: Any = None
        self._lock = threading.Lock()
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def spreadsheets(self) -> Any:
        """The ``spreadsheets`` resource, built once: the client builds every method of a resource
        (with megabytes of generated documentation) each time one is asked for."""
        if self._spreadsheets is None:
            self._spreadsheets = self.service.spreadsheets()
        return self._spreadsheets

    @property
    def values(self) -> Any:
        """The ``spreadsheets.values`` resource, built once."""
        if self._values is None:
            self._values = self.spreadsheets.values()
        return self._values

    def call(self, make: Callable[[], Any], doing: str, *, landed: Callable[[], bool] | None = None,
             write: bool = False) -> Any:
        """Execute the request ``make()`` builds. 429, 5xx and dropped connections are tried
        again (a write only after ``landed()`` says it did not apply); other answers raise."""
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError

        attempts = self.config.retries
        for attempt in range(1, attempts + 1):
            try:
                with self._lock:
                    return make().execute(num_retries=0)
            except HttpError as exc:
                status = int(exc.resp.status)
                if status != 429 and status < 500:
                    raise self._terminal(status, self._scrub(_message(exc)), doing) from None
                retry_reason = f"{status} {self._scrub(_message(exc))}"
            except RefreshError as exc:
                raise TerminalError(f"{doing} {self.where} failed: Google refused the credentials "
                                    f"({self._scrub(_refresh_reason(exc))}); check the credentials file or renew its "
                                    "token") from None
            except (TransportError, OSError, TimeoutError) as exc:
                status, retry_reason = 0, f"connection failed: {self._scrub(str(exc))}"
            except Exception as exc:  # httplib2's own errors (ServerNotFoundError...) have no common base
                if type(exc).__module__.startswith("httplib2"):
                    status, retry_reason = 0, f"connection failed: {self._scrub(str(exc))}"
                else:
                    raise
            if write and status != 429 and landed is not None:
                if status == 0:  # a timeout or a dropped connection: let a request still in flight land first
                    self.sleep(self.config.retry_wait)
                if self._landed(landed, doing, retry_reason):
                    return None
            if write and status != 429 and landed is None:
                raise TransientError(f"{doing} {self.where} failed ({retry_reason}); it may or may not have been "
                                     "applied, so it is not sent again blindly") from None
            if attempt == attempts:
                if status == 429:
                    raise TransientError(
                        f"{doing} {self.where}: Google's quota is still used up after {attempts} attempts "
                        f"({retry_reason}). Wait a minute and resume (portl run --resume), ask Google for a higher "
                        "quota, or raise retries/retry_wait") from None
                raise TransientError(f"{doing} {self.where} failed after {attempts} attempts: {retry_reason}") from None
            cap = self.config.retry_wait * 2 ** (attempt - 1)
            self.sleep(cap / 2 + random.uniform(0, cap / 2))
        raise AssertionError("unreachable")

    def batch_update(self, requests: list[dict], doing: str, landed: Callable[[], bool] | None = None,
                     rows: int = 0) -> Any:
        """One ``spreadsheets.batchUpdate`` of ``requests`` (``rows`` of data), atomic at Google.
        The body is encoded here, once: the client would also turn a body given to it into a
        string for each attempt (a second encoding of every cell, as slow as the first)."""
        text = json.dumps({"requests": requests}, separators=(",", ":"))
        if len(text) > REQUEST_BYTES:
            fit = f"; set batch.size to at most {int(rows * REQUEST_BYTES * 0.8 / len(text)):,}" if rows else ""
            raise TerminalError(f"{doing} {self.where}: a batch of {rows:,} rows makes a request of "
                                f"{len(text) / 2 ** 20:.1f} MB, more than the 10 MB Google accepts{fit}")

        def make() -> Any:
            request = self.spreadsheets.batchUpdate(spreadsheetId=self.spreadsheet, body={})
            request.body, request.body_size = text, len(text)
            request.headers.pop("content-length", None)
            return request

        return self.call(make, doing, write=True, landed=landed)

    def _landed(self, landed: Callable[[], bool], doing: str, reason: str) -> bool:
        """Whether a write that failed was applied all the same. When that cannot be told, the
        write is not sent again (it could be applied twice): the run stops, and ``--resume``
        reads the checkpoint tab, which says exactly what was applied."""
        try:
            return landed()
        except (TransientError, TerminalError) as exc:
            raise TerminalError(f"{doing} {self.where} failed ({reason}) and whether it was applied cannot be told "
                                f"({exc}); nothing is sent again: run again with --resume") from None

    def _scrub(self, text: str) -> str:
        """``text`` without the API key (the client puts it in request URLs, which errors quote)."""
        key = self.config.api_key.get_secret_value() if self.config.api_key is not None else ""
        return text.replace(key, MASK) if key else text

    def _terminal(self, status: int, message: str, doing: str) -> TerminalError:
        if status == 401:
            key = " (API keys can only read public spreadsheets)" if self.config.api_key is not None else ""
            return TerminalError(f"{doing} {self.where} failed: Google did not accept the credentials{key}: {message}")
        if status == 403:
            whom = f" with {self._share_with}" if self._share_with else " with the account Portl uses"
            return TerminalError(f"{doing} {self.where} failed: no permission ({message}); share the spreadsheet{whom}")
        if status == 404:
            return TerminalError(f"{self.where} not found ({message}); check the ID or URL in 'spreadsheet'")
        return TerminalError(f"{doing} {self.where} failed: {message}")


def _message(exc: Any) -> str:
    try:
        body = json.loads(exc.content.decode("utf-8"))
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return str(getattr(exc, "reason", "") or exc)


def _refresh_reason(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args else str(exc)


