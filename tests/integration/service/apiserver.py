"""A real ``portl serve`` for tests: a subprocess on a free port with its own PORTL_HOME (and, if
given, its own state database), reached with httpx, stopped by its PID with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from portl.service.settings import ServiceSettings, normalise_url
from portl.service.store import open_store
from portl.service.workspace import files_dir

_INSTALLED = Path(sys.executable).with_name("portl")
PORTL = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "portl.cli.app"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServiceServer:
    home: Path
    database: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    environment: dict[str, str] = field(default_factory=dict)
    """Variables the server gets on top of the test's own environment."""

    @property
    def settings(self) -> ServiceSettings:
        url = normalise_url(self.database) if self.database else f"sqlite:///{self.home / 'service.db'}"
        return ServiceSettings(self.home, url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tenant(self, name: str, **allowed: bool) -> tuple[str, int]:
        """A new tenant's key and id, made in the state database as `portl tenants create` does."""
        with open_store(self.settings) as store:
            made = store.tenants.create(name)
            if allowed:
                store.tenants.allow(name, **allowed)
            tenant_id = next(t.id for t in store.tenants.list() if t.name == name)
        return made.api_key, tenant_id

    def files(self, tenant_id: int) -> Path:
        return files_dir(self.settings, tenant_id)

    def limit_running(self, tenant_id: int, jobs: int) -> None:
        """Set the tenant's ``max_running_jobs``."""
        from sqlalchemy import update

        from portl.service.models import Tenant

        with open_store(self.settings) as store, store.sessions() as session:
            session.execute(update(Tenant).where(Tenant.id == tenant_id).values(max_running_jobs=jobs))
            session.commit()

    def start(self) -> None:
        env = {**os.environ, "PORTL_HOME": str(self.home)}
        env.pop("PORTL_SERVICE_DATABASE", None)
        if self.database:
            env["PORTL_SERVICE_DATABASE"] = self.database
        env.update(self.environment)
        self.log = open(self.home.parent / f"serve-{self.port}.log", "w+")
        self.process = subprocess.Popen([*PORTL, "serve", "--port", str(self.port)], env=env, cwd=self.home.parent,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"portl serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"portl serve did not answer within 30 s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> int:
        """SIGTERM, and its exit code once it has stopped."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"portl serve did not stop on SIGTERM within 15 s:\n{self.output()}") from None
        finally:
            self.log.close()

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)
