"""Who is calling: the API key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``,
verified against the state database. A missing or refused key is a 401 that says which.

Each request with a valid key then counts against its tenant's ``requests_per_minute``
(:mod:`portl.service.ratelimit`): one over it is a 429 with ``Retry-After``. Every endpoint that
takes a key is covered by that; health and the docs take none and are never limited."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from portl.errors import KeyRefused
from portl.service.api.errors import ApiError
from portl.service.tenants import Caller

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def caller(
    request: Request,
    authorization: Annotated[str | None, Header(description="`Bearer <API key>`")] = None,
    x_api_key: Annotated[str | None, Header(description="The API key, as an alternative to Authorization.")] = None,
) -> Caller:
    """The tenant a request acts for."""
    key = x_api_key
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <API key>'",
                           headers=_CHALLENGE)
        key = value.strip()
    if not key:
        raise ApiError(401, "unauthorized", "this endpoint needs an API key: send 'Authorization: Bearer <key>' or "
                       "'X-API-Key: <key>' (an admin makes keys with `portl keys create TENANT`)", headers=_CHALLENGE)
    try:
        found = request.app.state.store.tenants.verify(key)
    except KeyRefused as exc:
        raise ApiError(401, "unauthorized", str(exc), headers=_CHALLENGE) from exc
    _count_request(request, found)
    return found


def _count_request(request: Request, found: Caller) -> None:
    limit = found.requests_per_minute
    answer = request.app.state.rate_limiter.hit(found.tenant_id, limit)
    if not answer.allowed:
        raise ApiError(429, "rate_limited", f"tenant {found.tenant!r} may make {limit} request"
                       f"{'s' if limit != 1 else ''} a minute and has made them; try again in "
                       f"{answer.retry_after_s} s", headers={"Retry-After": str(answer.retry_after_s)})


CurrentCaller = Annotated[Caller, Depends(caller)]
