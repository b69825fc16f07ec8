"""A defect inside the API is answered as a 500 in the one error shape, saying nothing of the
inside; the service's log has the traceback, with passwords masked."""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from portl.service.api import create_app
from portl.service.settings import ServiceSettings
from portl.service.store import open_store


class BrokenExecutor:
    kind = "broken"

    def submit(self, job_id):
        raise RuntimeError("cannot reach postgresql://worker:hunter2@queue.internal/jobs")

    def cancel(self, job_id):
        raise AssertionError("not used")

    def close(self):
        pass


def test_an_unexpected_failure_is_a_500_without_its_traceback_and_logged_masked(tmp_path, caplog):
    settings = ServiceSettings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    with open_store(settings) as store:
        key = store.tenants.create("acme").api_key
        client = TestClient(create_app(store, BrokenExecutor()), raise_server_exceptions=False)
        with caplog.at_level(logging.ERROR, logger="portl.service.api"):
            answer = client.post("/api/v1/jobs", headers={"Authorization": f"Bearer {key}"}, json={
                "job": "source: {type: csv, path: a.csv}\ndestination: {type: sqlite, path: o.db, table: t}\n"})
            health = client.get("/api/v1/health").json()
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal", "problems": [], "message": "the service failed to answer "
                                       "this request; the error is in its log. Try again, or tell its operator"}}
    [record] = caplog.records
    logged = record.getMessage()
    assert logged.startswith("POST /api/v1/jobs failed:\nTraceback (most recent call last):")
    assert "postgresql://worker:**********@queue.internal/jobs" in logged and "hunter2" not in logged
    assert health["executor"] == "broken"


def test_health_is_503_when_the_state_database_cannot_be_reached(tmp_path):
    import dataclasses

    import sqlalchemy

    settings = ServiceSettings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}")
    with open_store(settings) as store:
        gone = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'service.db'}")
        unreachable = dataclasses.replace(store, engine=gone)
        answer = TestClient(create_app(unreachable, BrokenExecutor())).get("/api/v1/health")
        gone.dispose()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "version": "0.1.0", "database": "unreachable",
                             "database_revision": None, "executor": "broken", "broker": None, "workers": None}
