"""The Celery side of the service: the app, configured from the environment, and its two tasks,
``portl.start_job`` and ``portl.run_batch``, each a few lines over :mod:`portl.service.work`.

Delivery is at least once: tasks are acknowledged when they end (``task_acks_late``) and a task
whose worker died is delivered again once the broker's visibility timeout has passed. Both tasks
are safe to run twice: a batch is claimed in the state database before it runs, and a partition
loaded again goes on from its checkpoint in the destination, so no row is loaded twice. A batch
whose worker died is also sent again by the service's sweeper once its heartbeat is stale,
without waiting for the broker. Cancelling is read from the job's status in the state database:
a thread of the batch looks at it every few tenths of a second and the engine stops after its batch.

The worker's processes each open the state database once (:func:`_store`), after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from portl.errors import ServiceError
from portl.service.settings import whole_number

if TYPE_CHECKING:
    from celery import Celery

    from portl.service.store import Store

log = logging.getLogger("portl.service")

BROKER_VARIABLE = "PORTL_BROKER"
VISIBILITY_VARIABLE = "PORTL_BROKER_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_S = 12 * 3600
"""How long a delivered task may run before the broker gives it to another worker: above the
longest job, or a job still running would be delivered again and run twice at once."""
START_TASK = "portl.start_job"
BATCH_TASK = "portl.run_batch"
DEFAULT_QUEUE = "portl"

_apps: dict[tuple[str, int], Celery] = {}
_stores: dict[int, Store] = {}


def broker_url(environ: Mapping[str, str] | None = None) -> str:
    """``PORTL_BROKER``, or '' when it is not set."""
    environ = os.environ if environ is None else environ
    return environ.get(BROKER_VARIABLE, "").strip()


def visibility_timeout(environ: Mapping[str, str] | None = None) -> int:
    return whole_number(os.environ if environ is None else environ, VISIBILITY_VARIABLE, DEFAULT_VISIBILITY_S,
                        "seconds", "a whole number above the longest job's duration")


def make_app(broker: str, visibility_s: int = DEFAULT_VISIBILITY_S) -> Celery:
    """A Celery app on ``broker`` with the settings the service's guarantees rest on."""
    from celery import Celery

    app = Celery("portl", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=DEFAULT_QUEUE,
        broker_connection_retry_on_startup=True,
        # A sweep for tasks of dead workers several times per visibility timeout (at most every 10 s).
        broker_transport_options={"visibility_timeout": visibility_s,
                                  "unacked_restore_interval": max(1, min(10, visibility_s // 4)),
                                  "unacked_restore_throttle": 1},
        worker_hijack_root_logger=False,
    )
    app.task(name=START_TASK, bind=False)(start_job_task)
    app.task(name=BATCH_TASK, bind=False)(run_batch_task)
    return app


def celery_app() -> Celery:
    """The app of this process, from ``PORTL_BROKER``; a clear error when it is unset."""
    broker = broker_url()
    if not broker:
        raise ServiceError(f"{BROKER_VARIABLE} is not set: set it to the Redis broker the service and its workers "
                           "share, e.g. redis://127.0.0.1:6379/0")
    key = (broker, visibility_timeout())
    if key not in _apps:
        _apps[key] = make_app(*key)
    return _apps[key]


def check_broker(app: Celery, timeout_s: float = 5.0) -> None:
    """Fail with a ServiceError that names the broker when it cannot be reached."""
    from portl.secrets import mask_url

    shown = mask_url(app.conf.broker_url)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:
        reason = str(exc).rstrip(".")
        raise ServiceError(f"cannot reach the broker {shown} ({BROKER_VARIABLE}): {reason}; start Redis there, "
                           f"or fix {BROKER_VARIABLE}") from exc


def send_start(app: Celery, job_id: uuid.UUID, resume: bool = False) -> None:
    """Queue a job's start for the workers."""
    _send(app, START_TASK, [str(job_id), resume], f"job {job_id}")


def send_batch(app: Celery, batch_id: int) -> None:
    """Queue a batch for the workers."""
    _send(app, BATCH_TASK, [int(batch_id)], f"batch {batch_id}")


def _send(app: Celery, task: str, args: list[object], what: str) -> None:
    from portl.secrets import mask_url

    try:
        app.send_task(task, args=args, queue=DEFAULT_QUEUE)
    except Exception as exc:
        raise ServiceError(f"could not queue {what} on the broker {mask_url(app.conf.broker_url)}: {exc}; "
                           "it stays as the state database has it, and is sent again when the broker is back: "
                           "is Redis running?") from exc


class _Sender:
    """Units of work sent from a worker: to the broker of the app it runs."""

    def __init__(self, app: Celery):
        self.app = app

    def send_start(self, job_id: uuid.UUID, resume: bool = False) -> None:
        send_start(self.app, job_id, resume)

    def send_batch(self, batch_id: int) -> None:
        send_batch(self.app, batch_id)


def start_job_task(job_id: str, resume: bool = False) -> None:
    """Start a job (the task): admitted when its tenant has room, its batches sent."""
    from portl.service.work import start_job

    start_job(_store(), uuid.UUID(job_id), _Sender(celery_app()), resume=resume)


def run_batch_task(batch_id: int) -> None:
    """Run one batch (the task)."""
    from portl.service.work import run_batch

    run_batch(_store(), int(batch_id), _Sender(celery_app()), threading.Event())


def _store() -> Store:
    """The state database of this worker process, opened once per process (never across a fork)."""
    from portl.service.store import open_store

    pid = os.getpid()
    if pid not in _stores:
        _stores.clear()
        _stores[pid] = open_store()
    return _stores[pid]
