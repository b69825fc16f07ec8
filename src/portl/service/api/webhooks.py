"""``/api/v1/webhooks``: register a URL to be told of job events, list and delete them, read a
webhook's deliveries, send it a test. The signing secret is answered once, when the webhook is
registered. Every query is filtered by the caller's tenant: another tenant's webhook is 404.
Sending is :class:`portl.service.webhooks.Deliverer`'s work; this module only queues."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Annotated, Optional
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portl.secrets import mask_url
from portl.service.api.auth import CurrentCaller
from portl.service.api.errors import ApiError
from portl.service.api.jobs import MAX_PAGE, tenant_session
from portl.service.api.schemas import (ERRORS, DeliveryOut, DeliveryPage, ErrorOut, NewWebhookOut, WebhookList,
                                       WebhookOut, WebhookRegistration)
from portl.service.db import WRITE_LOCK
from portl.service.models import Webhook, WebhookDelivery, now
from portl.service.tenants import Caller
from portl.service.webhooks import EVENTS, queue_ping

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The webhook's id, as registering it answered.")]

SECRET_PREFIX = "whsec_"
_ERRORS = {**ERRORS, 404: {"model": ErrorOut, "description": "No such webhook for this tenant."}}


@router.post("", status_code=201, response_model=NewWebhookOut, summary="Register a webhook", responses={
    422: {"model": ErrorOut, "description": "The URL is not http(s), leads to an address the tenant may not "
          "reach, or an event is unknown."}, **_ERRORS})
def register_webhook(body: WebhookRegistration, request: Request, caller: CurrentCaller) -> NewWebhookOut:
    """Register a URL for job events; the answer holds the signing secret, shown this once only."""
    url = body.url.strip()
    _check_url(url, caller)
    events = _check_events(body.events)
    if body.secret is not None and not body.secret.isprintable():
        raise ApiError(422, "webhook_invalid", "secret has control characters; use printable characters only")
    secret = body.secret or SECRET_PREFIX + secrets.token_urlsafe(32)
    with tenant_session(request, caller) as session:
        hook = Webhook(tenant_id=caller.tenant_id, url=url, events=events, signing_secret=secret, created_at=now())
        session.add(hook)
        session.commit()
        return NewWebhookOut(**_out(hook).model_dump(), secret=secret)


@router.get("", response_model=WebhookList, summary="List webhooks", responses=_ERRORS)
def list_webhooks(request: Request, caller: CurrentCaller) -> WebhookList:
    """The tenant's webhooks, oldest first; deleted ones are not listed."""
    with tenant_session(request, caller) as session:
        hooks = session.scalars(select(Webhook).where(Webhook.tenant_id == caller.tenant_id,
                                                      Webhook.disabled_at.is_(None)).order_by(Webhook.id))
        return WebhookList(webhooks=[_out(hook) for hook in hooks])


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook", responses=_ERRORS)
def delete_webhook(webhook_id: WebhookId, request: Request, caller: CurrentCaller) -> Response:
    """Stop sending to a webhook: its pending deliveries end failed. Its deliveries stay readable."""
    with tenant_session(request, caller) as session:
        # The write first: on SQLite a read before it could not become a write while jobs commit progress.
        changed = session.execute(update(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == caller.tenant_id,
                                                        Webhook.disabled_at.is_(None)).values(disabled_at=now())).rowcount
        session.commit()
        if not changed:
            _own_webhook(session, caller, webhook_id)  # 404 unless it was deleted before: deleting again is no error
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, summary="List a webhook's deliveries",
            responses={422: {"model": ErrorOut, "description": "The cursor is malformed."}, **_ERRORS})
def list_deliveries(
    webhook_id: WebhookId,
    request: Request,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[Optional[str], Query(description="next_cursor of the previous page.")] = None,
) -> DeliveryPage:
    """A webhook's deliveries, newest first, a page at a time: status, attempts, the last answer."""
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id,
                                          WebhookDelivery.tenant_id == caller.tenant_id)
    if cursor is not None:
        query = query.where(WebhookDelivery.id < _decode(cursor))
    with tenant_session(request, caller) as session:
        _own_webhook(session, caller, webhook_id)
        deliveries = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(deliveries) > limit
    deliveries = deliveries[:limit]
    return DeliveryPage(deliveries=[_delivery_out(d) for d in deliveries],
                        next_cursor=_encode(deliveries[-1].id) if more else None)


@router.post("/{webhook_id}/test", status_code=202, response_model=DeliveryOut, summary="Send a webhook a ping",
             responses={409: {"model": ErrorOut, "description": "The webhook was deleted."}, **_ERRORS})
def test_webhook(webhook_id: WebhookId, request: Request, caller: CurrentCaller) -> DeliveryOut:
    """Queue a ``ping`` delivery, signed like any other; follow it in the webhook's deliveries."""
    with tenant_session(request, caller) as session:
        if request.app.state.store.settings.is_sqlite:  # it reads, then writes: take SQLite's write lock first
            session.connection(execution_options={WRITE_LOCK: True})
        hook = _own_webhook(session, caller, webhook_id)
        if hook.disabled_at is not None:
            raise ApiError(409, "webhook_deleted", f"webhook {webhook_id} was deleted on "
                           f"{hook.disabled_at:%Y-%m-%d %H:%M} UTC; register the URL again to send to it")
        delivery = queue_ping(session, hook)
        session.commit()
        return _delivery_out(delivery)


def _own_webhook(session: Session, caller: Caller, webhook_id: int) -> Webhook:
    hook = session.scalars(select(Webhook).where(Webhook.id == webhook_id,
                                                 Webhook.tenant_id == caller.tenant_id)).first()
    if hook is None:
        raise ApiError(404, "not_found", f"no webhook {webhook_id} for tenant {caller.tenant!r}")
    return hook


def _check_url(url: str, caller: Caller) -> None:
    from portl.service.policy import url_problems

    if not url.isprintable() or " " in url:
        raise ApiError(422, "webhook_invalid", f"url {mask_url(url)!r} has spaces or control characters; "
                       "percent-encode them (a space is %20)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ApiError(422, "webhook_invalid", f"url {mask_url(url)!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(422, "webhook_invalid", f"url {mask_url(url)!r} is not usable: give an http:// or https:// URL "
                       "with a host, e.g. https://example.com/portl-events")
    problems = url_problems(url, caller)
    if problems:
        raise ApiError(422, "webhook_refused", f"url {mask_url(url)!r} is refused: {'; '.join(problems)}",
                       [{"message": p, "path": "url"} for p in problems])


def _check_events(events: list[str] | None) -> list[str]:
    if events is None:
        return list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        what = f"unknown events {', '.join(map(repr, unknown))}" if unknown else "no events"
        raise ApiError(422, "webhook_invalid", f"{what}: give some of {', '.join(EVENTS)} (or leave events out for "
                       "all of them)")
    return list(dict.fromkeys(events))


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, url=mask_url(hook.url), events=list(hook.events or []), created_at=hook.created_at)


def _delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(id=delivery.id, event=delivery.event, job_id=delivery.job_id, status=delivery.status,
                       attempts=delivery.attempts, response_status=delivery.response_status,
                       last_error=delivery.last_error, next_retry_at=delivery.next_retry_at,
                       created_at=delivery.created_at, delivered_at=delivery.delivered_at)


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        (last,) = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(last, int) or not 0 < last < 2**63:
            raise TypeError(last)
        return last
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(422, "request_invalid", "cursor is not one this API gave: pass next_cursor as it was "
                       "answered") from exc
