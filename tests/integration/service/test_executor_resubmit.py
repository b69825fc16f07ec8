"""A job submitted again while its last run is still ending (retried just after it was cancelled)
runs again once that run is over, with what the second submission asked: never two runs at once,
never dropped."""

from __future__ import annotations

import threading

from portl.service import runner
from portl.service.executor import InProcessExecutor
from tests.service_jobs import add_job, add_tenant, people_job, sqlite_store


def test_a_job_submitted_again_while_it_runs_runs_again_after_with_resume(tmp_path, monkeypatch):
    store = sqlite_store(tmp_path)
    tenant = add_tenant(store, "acme")
    job_id = add_job(store, tenant, people_job())
    release = threading.Event()
    runs: list[tuple[bool, int]] = []
    active = [0]

    def stand_in(store_, job, stop, *, resume=False):
        active[0] += 1
        runs.append((resume, active[0]))
        if len(runs) == 1:
            release.wait(10)
        active[0] -= 1

    monkeypatch.setattr(runner, "run_job", stand_in)
    executor = InProcessExecutor(store, workers=2)
    try:
        executor.submit(job_id)
        while not runs:
            threading.Event().wait(0.005)
        executor.submit(job_id, resume=True)
        assert executor.waiting() == [] and executor.running() == [job_id]
        release.set()
        assert executor.wait(10)
    finally:
        executor.close()
        store.close()
    assert runs == [(False, 1), (True, 1)]
