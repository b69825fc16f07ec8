"""The Celery app the service and its workers share: configured from the environment with the
settings its guarantees rest on (late acknowledgement, one job per process, JSON only)."""

from __future__ import annotations

import pytest

from portl.errors import ServiceError
from portl.service.tasks import BATCH_TASK, DEFAULT_VISIBILITY_S, START_TASK, celery_app, make_app, visibility_timeout


def test_tasks_are_acknowledged_late_taken_one_at_a_time_and_sent_as_json():
    conf = make_app("redis://127.0.0.1:6379/9", 600).conf

    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert (conf.task_serializer, conf.accept_content) == ("json", ["json"])
    assert conf.broker_transport_options["visibility_timeout"] == 600
    assert conf.task_default_queue == "portl"


def test_the_app_knows_the_start_and_batch_tasks():
    tasks = make_app("redis://127.0.0.1:6379/9").tasks
    assert START_TASK in tasks and BATCH_TASK in tasks


def test_the_visibility_timeout_defaults_to_twelve_hours_and_is_read_from_the_environment():
    assert visibility_timeout({}) == DEFAULT_VISIBILITY_S == 43200
    assert visibility_timeout({"PORTL_BROKER_VISIBILITY_TIMEOUT": " 90 "}) == 90


@pytest.mark.parametrize("text", ["soon", "0", "-5"])
def test_a_visibility_timeout_that_is_not_a_number_of_seconds_is_refused(text):
    with pytest.raises(ServiceError, match=rf"PORTL_BROKER_VISIBILITY_TIMEOUT='{text}' is not a number of seconds"):
        visibility_timeout({"PORTL_BROKER_VISIBILITY_TIMEOUT": text})


def test_without_a_broker_the_app_says_to_set_it(monkeypatch):
    monkeypatch.delenv("PORTL_BROKER", raising=False)

    with pytest.raises(ServiceError, match=r"PORTL_BROKER is not set: set it to the Redis broker .* redis://127\.0\.0\.1:6379/0"):
        celery_app()
