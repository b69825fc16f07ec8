"""``http`` hooks: send a templated request; a 2xx answer goes on, anything else fails.

Templates are compiled once, when the runner is built, in a sandboxed Jinja environment with
strict undefined variables, so a typo in a job file fails with the variable's name instead of
sending an empty value.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from pydantic import SecretStr

from portl.engine.hooks.base import HookContext, RowVerdict, answer_verdict, excerpt, hook_label, seconds, to_json_bytes
from portl.errors import HookError
from portl.secrets import MASK, is_sensitive_name, mask_url
from portl.spec.models import HttpHook

RETRY_STATUSES = frozenset({408, 429})  # besides every 5xx: "try again later" answers
MAX_BACKOFF_S = 10.0
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)

Render = Callable[[dict[str, Any]], Any]


def mask_request_url(url: str) -> str:
    """``url`` with its password and credential-like query parameters (``?token=``) masked."""
    return mask_url(url)


def describe(hook: HttpHook) -> str:
    """The plan's line: ``http: POST https://api.example.com/hooks (headers: Authorization=**********)``."""
    line = f"http: {hook.method} {mask_request_url(hook.url)}"
    if hook.headers:
        shown = ", ".join(f"{name}={_shown_header(name, value)}" for name, value in hook.headers.items())
        line += f" (headers: {shown})"
    return line


def _shown_header(name: str, value: str | SecretStr) -> str:
    if isinstance(value, SecretStr) or is_sensitive_name(name):
        return MASK
    return mask_url(value)


class HttpCall:
    """One ``http`` hook bound to its event and position, sending through the runner's client."""

    def __init__(self, hook: HttpHook, event: str, index: int, context: HookContext, client: httpx.Client,
                 retry_attempts: int = 3, backoff_ms: int = 200):
        self.hook = hook
        self.event = event
        self.context = context
        self.label = hook_label(event, index, "http")
        self._client = client
        self._attempts = max(1, retry_attempts)
        self._backoff_s = backoff_ms / 1000
        self._url = self._compile(hook.url, "url")
        self._headers: list[tuple[str, Render, bool]] = []
        for name, value in hook.headers.items():
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                self._headers.append((name, lambda _ctx, s=secret: s, True))
            else:
                self._headers.append((name, self._compile(value, f"header {name!r}"), is_sensitive_name(name)))
        self._body = None if hook.body is None else self._compile_body(hook.body, "body")
        self._json_body = not isinstance(hook.body, str)
        self._user_content_type = any(name.lower() == "content-type" for name in hook.headers)

    def on_event(self, payload: dict[str, Any]) -> None:
        context = {**payload, "event": payload, "job": self.context.job, "run_id": self.context.run_id}
        self._send(context, payload, "")

    def on_row(self, row: dict[str, Any], where: str, outcome: dict[str, Any] | None = None) -> RowVerdict:
        context: dict[str, Any] = {"row": row, "job": self.context.job, "run_id": self.context.run_id}
        if outcome is not None:
            context["outcome"] = outcome
        response = self._send(context, row, f" ({where})")
        if self.event != "before_row":
            return None
        try:
            answer = response.json() if response.content.strip() else None
        except ValueError:
            return None  # a plain-text 2xx answer means "go on"
        return answer_verdict(answer, self.label, where, response.text)

    def close(self) -> None:
        pass  # the client belongs to the runner

    # --- templates --------------------------------------------------------------------------

    def _compile(self, text: str, part: str) -> Render:
        if "{{" not in text and "{%" not in text and "{#" not in text:
            return lambda _ctx: text
        try:
            template = _ENV.from_string(text)
        except TemplateSyntaxError as exc:
            raise HookError(f"{self.label}: the {part} template is not valid: {exc.message} (line {exc.lineno})") from exc
        return lambda ctx: template.render(ctx)

    def _compile_body(self, body: Any, part: str) -> Render:
        """A mapping body is templated value by value; ``"{{ expr }}"`` alone keeps the value's type."""
        if isinstance(body, dict):
            items = [(key, self._compile_body(value, f"{part}.{key}")) for key, value in body.items()]
            return lambda ctx: {key: render(ctx) for key, render in items}
        if isinstance(body, list):
            entries = [self._compile_body(value, f"{part}[{i}]") for i, value in enumerate(body)]
            return lambda ctx: [render(ctx) for render in entries]
        if not isinstance(body, str):
            return lambda _ctx: body
        if isinstance(self.hook.body, dict):
            single = _SINGLE_EXPRESSION.match(body)
            if single:
                try:
                    expression = _ENV.compile_expression(single.group("expr").strip(), undefined_to_none=False)
                except TemplateSyntaxError as exc:
                    raise HookError(f"{self.label}: the {part} template is not valid: {exc.message}") from exc
                return lambda ctx: _defined(expression(**ctx))
        return self._compile(body, part)

    def _render(self, render: Render, context: dict[str, Any], part: str, suffix: str) -> Any:
        try:
            return render(context)
        except UndefinedError as exc:
            available = ", ".join(sorted(k for k in context if k.isidentifier()))
            raise HookError(
                f"{self.label}: the {part} template uses an undefined variable{suffix}: {exc.message}. "
                f"Available: {available}"
            ) from exc
        except SecurityError as exc:
            raise HookError(f"{self.label}: the {part} template does something not allowed{suffix}: {exc}") from exc
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise HookError(f"{self.label}: the {part} template failed{suffix}: {type(exc).__name__}: {exc}") from exc

    # --- sending ----------------------------------------------------------------------------

    def _send(self, context: dict[str, Any], default_body: dict[str, Any], suffix: str) -> httpx.Response:
        method = self.hook.method
        url = self._render(self._url, context, "url", suffix)
        headers = {name: str(self._render(render, context, f"header {name!r}", suffix)) for name, render, _ in self._headers}
        secrets = [headers[name] for name, _, masked in self._headers if masked]
        shown_url = mask_request_url(url)

        content: bytes | None = None
        content_type = "application/json"
        if self._body is not None:
            body = self._render(self._body, context, "body", suffix)
            if self._json_body:
                content = self._render(lambda _ctx: _json(body), context, "body", suffix)
            else:
                content = str(body).encode("utf-8")
                if not _is_json(content):
                    content_type = "text/plain; charset=utf-8"
        elif method != "GET":
            content = to_json_bytes(default_body)
        if content is not None and not self._user_content_type:
            headers["Content-Type"] = content_type

        problem = ""
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.request(method, url, headers=headers, content=content, timeout=self.hook.timeout_s)
            except httpx.TimeoutException:
                problem = f"timed out after {seconds(self.hook.timeout_s)} s"
            except httpx.ConnectError as exc:
                problem = f"could not connect: {exc}"
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"failed: {type(exc).__name__}: {exc}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise HookError(_scrub(f"{self.label}: {method} {shown_url} failed{suffix}: {exc}", secrets)) from exc
            else:
                if response.is_success:
                    return response
                problem = f"answered {response.status_code} {response.reason_phrase}"
                if response.text.strip():
                    problem += f": {excerpt(response.text)}"
                if response.status_code < 500 and response.status_code not in RETRY_STATUSES:
                    raise HookError(_scrub(f"{self.label}: {method} {shown_url}{suffix} {problem}", secrets))
            if attempt < self._attempts:
                time.sleep(self._delay(attempt))
        tries = f" (gave up after {self._attempts} attempts)" if self._attempts > 1 else ""
        raise HookError(_scrub(f"{self.label}: {method} {shown_url}{suffix} {problem}{tries}", secrets))

    def _delay(self, attempt: int) -> float:
        """Doubling from backoff_ms, capped, with jitter on the upper half."""
        cap = min(MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1))
        return cap / 2 + random.uniform(0, cap / 2)


def _defined(value: Any) -> Any:
    if isinstance(value, Undefined):
        str(value)  # a StrictUndefined raises UndefinedError naming the variable
    return value


def _json(value: Any) -> bytes:
    def default(item: Any) -> str:
        return str(item)  # also raises for an undefined value nested in the body

    return json.dumps(value, default=default, ensure_ascii=False).encode("utf-8")


def _is_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


def _scrub(message: str, secrets: list[str]) -> str:
    """Mask secret header values (and their parts, e.g. a bearer token) wherever they appear."""
    # "Bearer abc": the token alone is masked too, the scheme word is not.
    pieces = {s for s in secrets if s} | {part for s in secrets for part in s.split()[1:] if len(part) >= 4}
    for piece in sorted(pieces, key=len, reverse=True):
        message = message.replace(piece, MASK)
    return message
