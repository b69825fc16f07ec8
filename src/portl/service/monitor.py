"""What runs the service's jobs, as its monitoring endpoints show it: the workers, each with its
concurrency and the jobs it is running now, the depth of the queues that feed them, and whether
the broker can be reached.

With the in-process executor the answer is this process: one worker with the executor's threads,
and the jobs waiting for one of them. With Celery, the workers are whichever ``portl worker``
processes answer a broadcast on the broker, and a queue's depth is the number of tasks the broker
holds for it, not yet delivered (kombu's Redis transport keeps each queue as a Redis list).

Asking never hangs: the broker is given ``timeout_s`` to accept a connection and the workers the
same to answer. A broker that cannot be reached, or workers that do not answer, are reported as
such (a note, no workers, unknown depths), never raised: a monitor must answer when things fail.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from portl.secrets import mask_url

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Connection

ASK_TIMEOUT_S = 1.0
"""How long the workers endpoint waits for the broker and for the workers' answers."""
PING_TIMEOUT_S = 0.3
"""How long health waits for workers to answer: load balancers poll it often, with short timeouts."""
POLL_S = 0.05
"""How often the answers of the workers are looked for, while waiting for them."""
IN_PROCESS_QUEUE = "in-process"
"""The name the in-process executor's waiting jobs are shown under, as a queue."""


@dataclass(frozen=True)
class Worker:
    """A process that runs jobs: its name, how many jobs it runs at once, and how many it runs now."""

    name: str
    concurrency: Optional[int]
    active: int


@dataclass(frozen=True)
class Workers:
    """The workers that answered; ``note`` says why the list is empty or may be incomplete."""

    workers: list[Worker]
    note: Optional[str] = None


@dataclass(frozen=True)
class Queues:
    """Jobs waiting, per queue; a depth is None when the broker could not be asked (``note`` says why)."""

    depths: dict[str, Optional[int]]
    note: Optional[str] = None


@dataclass(frozen=True)
class Census:
    """What health reports of the executor: the broker (None: no broker is used) and how many
    workers answered (None: the executor cannot tell)."""

    broker: Optional[str]
    workers: Optional[int]


class BrokerUnreachable(Exception):
    """The broker could not be connected to, or stopped answering, within the timeout; the message
    names it (password masked) and says why."""


def workers(executor: Any, timeout_s: float = ASK_TIMEOUT_S) -> Workers:
    """The workers of ``executor`` and what they are doing."""
    kind = getattr(executor, "kind", None)
    if kind == "in-process":
        return Workers([Worker(this_process(), executor.workers, len(executor.running()))])
    if kind == "celery":
        try:
            return _celery_workers(executor.app, timeout_s)
        except BrokerUnreachable as exc:
            return Workers([], f"{exc}; no worker could be asked")
    return Workers([], f"the {kind or type(executor).__name__} executor does not report its workers")


def queues(executor: Any, timeout_s: float = ASK_TIMEOUT_S) -> Queues:
    """How many jobs wait in each queue ``executor`` sends jobs to."""
    kind = getattr(executor, "kind", None)
    if kind == "in-process":
        return Queues({IN_PROCESS_QUEUE: len(executor.waiting())})
    if kind == "celery":
        names = service_queues(executor.app)
        try:
            with _broker(executor.app, timeout_s) as connection:
                return Queues({name: _depth(connection, name) for name in names})
        except BrokerUnreachable as exc:
            return Queues(dict.fromkeys(names), f"{exc}; the depths are unknown")
    return Queues({}, f"the {kind or type(executor).__name__} executor does not report its queues")


def census(executor: Any, timeout_s: float = PING_TIMEOUT_S) -> Census:
    """Whether the broker answers, and how many workers answer a ping within ``timeout_s``."""
    kind = getattr(executor, "kind", None)
    if kind == "in-process":
        return Census(None, 1)
    if kind == "celery":
        try:
            with _broker(executor.app, timeout_s) as connection:
                answers = executor.app.control.ping(timeout=timeout_s, connection=connection)
        except BrokerUnreachable:
            return Census("unreachable", 0)
        return Census("reachable", len(answers or []))
    return Census(None, None)


def this_process() -> str:
    """This process as a worker name, like Celery's ``name@host``: ``in-process@host:pid``."""
    return f"{IN_PROCESS_QUEUE}@{socket.gethostname()}:{os.getpid()}"


def service_queues(app: Celery) -> list[str]:
    """The queues the service sends jobs to."""
    from portl.service.tasks import DEFAULT_QUEUE

    return sorted({DEFAULT_QUEUE, app.conf.task_default_queue or DEFAULT_QUEUE})


@contextmanager
def _broker(app: Celery, timeout_s: float) -> Iterator[Connection]:
    """A connection to ``app``'s broker that waits at most ``timeout_s`` to connect or to read,
    and tries once. A failure to connect, or of what is asked over the connection, is
    BrokerUnreachable, naming the broker (password masked) and the reason."""
    # kombu looks for the workers' answers every polling_interval (1 s by default on Redis), which
    # would stretch every wait to a whole second.
    options = {**(app.conf.broker_transport_options or {}), "socket_timeout": timeout_s,
               "socket_connect_timeout": timeout_s, "polling_interval": POLL_S}
    shown = mask_url(str(app.conf.broker_url))
    connection = app.connection_for_read(connect_timeout=timeout_s, transport_options=options)
    try:
        try:
            connection.ensure_connection(max_retries=0, timeout=timeout_s)
        except Exception as exc:  # kombu's, redis's and the socket's errors all mean the same here
            raise BrokerUnreachable(f"the broker {shown} cannot be reached ({_reason(exc)})") from exc
        try:
            yield connection
        except Exception as exc:  # it went away after connecting
            raise BrokerUnreachable(f"the broker {shown} stopped answering ({_reason(exc)})") from exc
    finally:
        connection.release()


def _reason(exc: Exception) -> str:
    return mask_url(str(exc).rstrip(".")) or type(exc).__name__


def _celery_workers(app: Celery, timeout_s: float) -> Workers:
    with _broker(app, timeout_s) as connection:
        stats = app.control.inspect(timeout=timeout_s, connection=connection).stats() or {}
        names = sorted(stats)
        # Knowing who answered, the second question returns as soon as they all have.
        active = (app.control.inspect(destination=names, timeout=timeout_s, limit=len(names),
                                      connection=connection).active() or {}) if names else {}
    if not names:
        return Workers([], f"no worker answered within {timeout_s:g} s: start one with `portl worker`")
    found = [Worker(name, _concurrency(stats[name]), len(active.get(name) or [])) for name in names]
    missing = [name for name in names if name not in active]
    note = f"{', '.join(missing)} did not say which jobs it runs within {timeout_s:g} s" if missing else None
    return Workers(found, note)


def _concurrency(stats: dict[str, Any]) -> Optional[int]:
    pool = stats.get("pool") or {}
    value = pool.get("max-concurrency")
    return value if isinstance(value, int) else None


def _depth(connection: Connection, queue: str) -> int:
    """The tasks the broker holds for ``queue``, not yet delivered to a worker: on Redis, the
    length of the list named after the queue (and of its lists per priority), as kombu's transport
    counts it. Redis keeps no list for an empty queue, so a queue the broker does not know is empty."""
    from kombu.exceptions import ChannelError

    channel = connection.channel()
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:
        return 0
    finally:
        channel.close()
