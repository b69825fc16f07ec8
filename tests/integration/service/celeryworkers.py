"""Real Celery workers for tests: ``portl worker`` subprocesses on the machine's Redis, on a
database number of the test file's own (flushed before and after), each stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.service.apiserver import PORTL

REDIS = "redis://127.0.0.1:6379"


def redis_broker(database: int) -> str:
    """The broker URL on ``database``, emptied; skips (fails under PORTL_REQUIRE_SERVICES=1) when
    Redis is not there."""
    import redis

    client = redis.Redis.from_url(f"{REDIS}/{database}", socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("PORTL_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"Redis is not reachable at {REDIS}: {exc}")
    finally:
        client.close()
    return f"{REDIS}/{database}"


def flush(broker: str) -> None:
    import redis

    client = redis.Redis.from_url(broker)
    try:
        client.flushdb()
    finally:
        client.close()


@dataclass
class Workers:
    """Starts ``portl worker`` processes sharing one state database and broker."""

    home: Path
    broker: str
    database: str | None = None
    visibility_s: int = 3600
    started: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "PORTL_HOME": str(self.home), "PORTL_BROKER": self.broker,
               "PORTL_BROKER_VISIBILITY_TIMEOUT": str(self.visibility_s)}
        env.pop("PORTL_SERVICE_DATABASE", None)
        if self.database:
            env["PORTL_SERVICE_DATABASE"] = self.database
        return env

    def start(self, concurrency: int = 1) -> subprocess.Popen:
        log = self.home.parent / f"worker-{len(self.started)}.log"
        # Its own session: killing its process group kills the pool's processes too, as a lost machine would.
        process = subprocess.Popen([*PORTL, "worker", "--concurrency", str(concurrency)], env=self.environment(),
                                   cwd=self.home.parent, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((process, log))
        return process

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for _, log in self.started if log.exists())

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool's processes."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process, _ in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
