"""Webhooks: telling a tenant's own URLs when its jobs finish, through an outbox.

:func:`job_event` is what the job lifecycle calls when something happens to a job (it finished,
or a batch went to the dead-letter queue). It writes one ``webhook_deliveries`` row per enabled
webhook of the job's tenant that wants the event, status ``pending``, and returns: nothing is
sent on the caller's thread, and nothing it meets (a database error included) is raised to it.
A tenant without webhooks costs one indexed query.

A :class:`Deliverer` (a daemon thread; ``portl serve`` runs one) sends the pending deliveries
that are due, one HTTP POST each, signed::

    X-Portl-Event:      job.failed
    X-Portl-Delivery:   42
    X-Portl-Timestamp:  1767225600
    X-Portl-Signature:  sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret>

A 2xx answer is delivered. Anything else (a redirect too: they are not followed), or no answer,
is a failed attempt: the next is due after :func:`backoff_s` (1 s, 2 s, 4 s ... at most 10 min)
and after :data:`MAX_ATTEMPTS` the delivery is ``failed``.

Several service processes may share one state database: a process claims a delivery with one
``UPDATE`` that moves its due time a lease ahead, only if it is still pending and due, so no two
send it at once. A process that stops mid-send leaves the delivery due again when the lease ends
(deliveries are at least once: receivers tell repeats apart by ``X-Portl-Delivery``).

A webhook's URL is checked against the tenant's allowances when it is registered and again
before every attempt (:func:`portl.service.policy.url_problems`): an admin may have withdrawn the
private-network allowance since, or the host may resolve elsewhere now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, or_, select, update

import portl
from portl.secrets import mask_url
from portl.service.models import Job, Tenant, Webhook, WebhookDelivery, now
from portl.service.policy import Resolver, resolve_host, url_problems
from portl.service.status import DeliveryStatus

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.orm import Session

    from portl.service.store import Store

__all__ = ["Deliverer", "EVENTS", "MAX_ATTEMPTS", "PING", "backoff_s", "job_event", "payload_of", "queue_ping", "sign"]

log = logging.getLogger("portl.service.webhooks")

EVENTS = ("job.succeeded", "job.failed", "job.partial", "job.cancelled", "batch.dead_lettered")
"""What a webhook can ask to be told of. ``job.partial``: finished, some batches dead-lettered."""
PING = "ping"
"""The event of a test delivery (``POST /api/v1/webhooks/{id}/test``); sent whatever a webhook asked for."""

MAX_ATTEMPTS = 8
BACKOFF_S = 1.0
MAX_BACKOFF_S = 600.0
TIMEOUT_S = 10.0
"""How long one attempt may take to connect, send and be answered."""
STOP_WAIT_S = 3.0
"""On stop, how long an attempt in flight may still take. One that takes longer is abandoned with
the process; its delivery is due again when its lease ends."""
LEASE_S = 60.0
"""How long a claimed delivery stays out of other processes' reach: longer than an attempt takes."""
ERROR_CHARS = 500
"""The most of an error (or a receiver's answer) kept in last_error."""


# --- the outbox ----------------------------------------------------------------------------------


def job_event(store: Store, job_id: uuid.UUID, event: str, details: dict[str, Any] | None = None) -> None:
    """Queue ``event`` of the job ``job_id`` for every enabled webhook of its tenant that wants it.
    Never raises: a failure is logged, and the job goes on as if there were no webhooks."""
    try:
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}; expected one of {', '.join(EVENTS)}")
        with store.sessions() as session:
            hooks = session.scalars(select(Webhook).join(Job, Job.tenant_id == Webhook.tenant_id)
                                    .where(Job.id == job_id, Webhook.disabled_at.is_(None))).all()
            wanted = [hook for hook in hooks if event in (hook.events or ())]
            if not wanted:
                return
            job = session.get(Job, job_id)
            payload = payload_of(job, event, details, now())
        # Written in a transaction of its own that begins with the write: on SQLite, a read
        # transaction cannot become a write one while a job commits its progress.
        with store.sessions() as session:
            session.execute(insert(WebhookDelivery), [_pending(hook.tenant_id, hook.id, job_id, event, payload)
                                                      for hook in wanted])
            session.commit()
    except Exception:  # noqa: BLE001  (the job's own outcome matters more than telling of it)
        log.exception("could not queue webhook event %s of job %s; it is not sent", event, job_id)


def queue_ping(session: Session, webhook: Webhook) -> WebhookDelivery:
    """A ``ping`` delivery to ``webhook``, added to ``session`` (the caller commits)."""
    payload = {"event": PING, "job": None, "occurred_at": now().isoformat(),
               "details": {"webhook_id": webhook.id, "message": "a test delivery from the Portl service"}}
    delivery = WebhookDelivery(**_pending(webhook.tenant_id, webhook.id, None, PING, payload))
    session.add(delivery)
    return delivery


def payload_of(job: Job, event: str, details: dict[str, Any] | None, occurred_at: datetime) -> dict[str, Any]:
    """The body of a job's event: what a receiver needs to act, never the job's text (it may
    hold connection secrets). Passwords in URLs of the error and the details are masked."""
    return {
        "event": event,
        "job": {"id": str(job.id), "name": job.name, "status": job.status,
                "counts": {k: int(v) for k, v in (job.counts or {}).items()},
                "error": mask_url(job.error) if job.error else None, "labels": dict(job.labels or {})},
        "occurred_at": occurred_at.isoformat(),
        "details": _masked(details or {}),
    }


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _pending(tenant_id: int, webhook_id: int, job_id: uuid.UUID | None, event: str,
             payload: dict[str, Any]) -> dict[str, Any]:
    at = now()
    return {"tenant_id": tenant_id, "webhook_id": webhook_id, "job_id": job_id, "event": event, "payload": payload,
            "status": DeliveryStatus.PENDING, "attempts": 0, "response_status": None, "last_error": None,
            "next_retry_at": at, "created_at": at, "delivered_at": None}


# --- signing and retrying ------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Portl-Signature`` of ``body`` sent at ``timestamp`` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def backoff_s(attempts: int, base_s: float = BACKOFF_S, cap_s: float = MAX_BACKOFF_S) -> float:
    """How long to wait after the ``attempts``-th failed attempt: ``base_s`` doubled each time, at
    most ``cap_s``."""
    return min(base_s * 2 ** max(attempts - 1, 0), cap_s)


def encode_body(payload: dict[str, Any]) -> bytes:
    """The bytes sent (and signed) for ``payload``."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# --- sending -------------------------------------------------------------------------------------


class Deliverer:
    """Sends the due pending deliveries of ``store`` from a daemon thread, every ``interval_s``
    while there is nothing to send. ``backoff_s``, ``max_backoff_s`` and ``max_attempts`` set the
    retries; ``resolve`` is how host names are resolved for the address check."""

    def __init__(self, store: Store, *, backoff_s: float = BACKOFF_S, max_backoff_s: float = MAX_BACKOFF_S,
                 max_attempts: int = MAX_ATTEMPTS, interval_s: float = 1.0, timeout_s: float = TIMEOUT_S,
                 resolve: Resolver = resolve_host):
        self._store = store
        self.backoff_s, self.max_backoff_s, self.max_attempts = backoff_s, max_backoff_s, max_attempts
        self._interval_s, self._timeout_s, self._resolve = interval_s, timeout_s, resolve
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    def start(self) -> None:
        """Start sending, in the background."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="portl-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt in flight, if any, waiting at most :data:`STOP_WAIT_S` for it."""
        self._stopping.set()
        if self._thread is None:
            return
        self._thread.join(STOP_WAIT_S)
        if not self._thread.is_alive() and self._client is not None:
            self._client.close()
            self._client = None
        self._thread = None

    def deliver_due(self, limit: int = 50) -> int:
        """Send up to ``limit`` due deliveries, one after the other; how many this process claimed."""
        at = now()
        with self._store.sessions() as session:
            due = session.scalars(select(WebhookDelivery.id).where(*_due(at))
                                  .order_by(WebhookDelivery.next_retry_at, WebhookDelivery.id).limit(limit)).all()
        claimed = 0
        for delivery_id in due:
            if self._stopping.is_set():
                break
            if self._claim(delivery_id):
                claimed += 1
                self._attempt(delivery_id)
        return claimed

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.deliver_due()
            except Exception:  # noqa: BLE001  (a database that is away for a moment must not end the thread)
                log.exception("webhook deliveries could not be read; trying again in %s s", self._interval_s)
                busy = 0
            if not busy:
                self._stopping.wait(self._interval_s)

    def _claim(self, delivery_id: int) -> bool:
        at = now()
        with self._store.sessions() as session:
            claimed = session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, *_due(at))
                                      .values(next_retry_at=at + timedelta(seconds=LEASE_S))).rowcount
            session.commit()
        return claimed == 1

    def _attempt(self, delivery_id: int) -> None:
        with self._store.sessions() as session:
            row = session.execute(select(WebhookDelivery, Webhook, Tenant)
                                  .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                                  .join(Tenant, Tenant.id == WebhookDelivery.tenant_id)
                                  .where(WebhookDelivery.id == delivery_id)).first()
        if row is None:  # deleted with its webhook or tenant since it was claimed
            return
        delivery, hook, tenant = row
        attempts = delivery.attempts + 1
        if hook.disabled_at is not None:
            self._record(delivery_id, attempts, DeliveryStatus.FAILED, None,
                         f"webhook {hook.id} was deleted on {hook.disabled_at:%Y-%m-%d %H:%M} UTC; not sent")
            return
        problems = url_problems(hook.url, tenant, self._resolve)
        if problems:
            self._failed(delivery_id, attempts, None, "not sent: " + "; ".join(problems))
            return
        status, error = self._post(delivery, hook)
        if error is None:
            self._record(delivery_id, attempts, DeliveryStatus.DELIVERED, status, None, delivered=True)
        else:
            self._failed(delivery_id, attempts, status, error)

    def _post(self, delivery: WebhookDelivery, hook: Webhook) -> tuple[int | None, str | None]:
        """The receiver's status and, unless it took the delivery, what went wrong."""
        import httpx

        body = encode_body(delivery.payload)
        sent_at = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": f"Portl-Webhooks/{portl.__version__}",
                   "X-Portl-Event": delivery.event, "X-Portl-Delivery": str(delivery.id),
                   "X-Portl-Timestamp": str(sent_at), "X-Portl-Signature": sign(hook.signing_secret, sent_at, body)}
        if self._client is None:
            # Direct connections only (no proxy from the environment): the address checked is the
            # address called. Redirects are answers, not instructions.
            self._client = httpx.Client(timeout=self._timeout_s, follow_redirects=False, trust_env=False)
        try:
            answer = self._client.post(hook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"no answer from {mask_url(hook.url)}: {type(exc).__name__}: {exc}"
        if 200 <= answer.status_code < 300:
            return answer.status_code, None
        said = " ".join(answer.text.split())[:200]
        error = f"{mask_url(hook.url)} answered HTTP {answer.status_code}"
        if answer.is_redirect:
            error += f" (a redirect to {answer.headers.get('location', '?')!r}, which is not followed)"
        return answer.status_code, error + (f": {said}" if said else "")

    def _failed(self, delivery_id: int, attempts: int, status: int | None, error: str) -> None:
        error = error[:ERROR_CHARS - 60]  # room for what follows
        if attempts >= self.max_attempts:
            log.warning("webhook delivery %s failed after %s attempts: %s", delivery_id, attempts, mask_url(error))
            self._record(delivery_id, attempts, DeliveryStatus.FAILED, status, f"{error} (attempt {attempts} of "
                         f"{self.max_attempts}, the last)")
            return
        wait = backoff_s(attempts, self.backoff_s, self.max_backoff_s)
        self._record(delivery_id, attempts, DeliveryStatus.PENDING, status,
                     f"{error} (attempt {attempts} of {self.max_attempts}; the next in {wait:g} s)",
                     retry_at=now() + timedelta(seconds=wait))

    def _record(self, delivery_id: int, attempts: int, status: str, response_status: int | None, error: str | None,
                *, retry_at: datetime | None = None, delivered: bool = False) -> None:
        with self._store.sessions() as session:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
                status=status, attempts=attempts, response_status=response_status,
                last_error=mask_url(error)[:ERROR_CHARS] if error else None, next_retry_at=retry_at,
                delivered_at=now() if delivered else None))
            session.commit()


def _due(at: datetime) -> tuple[Any, ...]:
    return (WebhookDelivery.status == DeliveryStatus.PENDING,
            or_(WebhookDelivery.next_retry_at.is_(None), WebhookDelivery.next_retry_at <= at))
