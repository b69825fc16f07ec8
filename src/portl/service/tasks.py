"""The Celery side of the service: the app, configured from the environment, and its one task,
``portl.run_job``, which runs a submitted job on a worker with :func:`portl.service.runner.run_job`.

Delivery is at least once: tasks are acknowledged when they end (``task_acks_late``) and a task
whose worker died is delivered again once the broker's visibility timeout has passed. A job
delivered again while its row says ``running`` is resumed from the destination's checkpoints,
so no row is loaded twice. Cancelling is read from the job's status in the state database: a
thread of the task looks at it every :data:`CANCEL_POLL_S` and the engine stops after its batch.

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
TASK_NAME = "portl.run_job"
DEFAULT_QUEUE = "portl"
CANCEL_POLL_S = 0.25

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
    app.task(name=TASK_NAME, bind=False)(run_job_task)
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


def send_job(app: Celery, job_id: uuid.UUID, resume: bool = False) -> None:
    """Queue a job for the workers."""
    from portl.secrets import mask_url

    try:
        app.send_task(TASK_NAME, args=[str(job_id), resume], queue=DEFAULT_QUEUE)
    except Exception as exc:
        raise ServiceError(f"could not queue job {job_id} on the broker {mask_url(app.conf.broker_url)}: {exc}; "
                           "it stays queued in the state database: is Redis running?") from exc


def run_job_task(job_id: str, resume: bool = False) -> None:
    """Run one job (the task). Already ``running`` (delivered again): resumed from its checkpoints."""
    from portl.service.runner import run_job
    from portl.service.status import JobStatus

    store = _store()
    the_id = uuid.UUID(job_id)
    status = _status(store, the_id)
    if status is None:
        log.warning("job %s is not in the state database; nothing to run", job_id)
        return
    if status == JobStatus.RUNNING:
        log.info("job %s was running when this task was delivered again; it is resumed", job_id)
    cancel = threading.Event()
    done = threading.Event()
    watcher = threading.Thread(target=_watch_cancel, args=(store, the_id, cancel, done), daemon=True,
                               name=f"portl-cancel-{job_id}")
    watcher.start()
    try:
        run_job(store, the_id, cancel, resume=resume or status == JobStatus.RUNNING)
    finally:
        done.set()
        watcher.join()


def _watch_cancel(store: Store, job_id: uuid.UUID, cancel: threading.Event, done: threading.Event) -> None:
    """Set ``cancel`` once the job is ``cancelling``; the runner then ends it ``cancelled``."""
    from portl.service.status import JobStatus

    while not done.wait(CANCEL_POLL_S):
        try:
            if _status(store, job_id) == JobStatus.CANCELLING:
                cancel.set()
                return
        except Exception:  # the state database briefly unreachable: look again
            log.warning("could not read the status of job %s", job_id, exc_info=True)


def _status(store: Store, job_id: uuid.UUID) -> str | None:
    from sqlalchemy import select

    from portl.service.models import Job

    with store.sessions() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id, Job.deleted_at.is_(None)))


def _store() -> Store:
    """The state database of this worker process, opened once per process (never across a fork)."""
    from portl.service.store import open_store

    pid = os.getpid()
    if pid not in _stores:
        _stores.clear()
        _stores[pid] = open_store()
    return _stores[pid]
