"""The service under load: `portl serve` with Celery workers, measured from its HTTP API.

    python benchmarks/bench_service.py [--quick] [--case load|retry|cancel|single ...] [--keep-logs]

Everything runs on this machine: a state database and a destination database created here on the
local PostgreSQL (127.0.0.1:5432, user postgres), Redis database 14 as the broker (flushed before
and after), `portl serve` on a free port and two `portl worker --concurrency 1` processes, all
stopped by their PIDs and dropped at the end. Targets (S1 to S5 in benchmarks/README.md):

  S1  50 jobs of 5 tenants (40, 3, 3, 2, 2 jobs; CSV -> PostgreSQL, 20,000-100,000 rows each)
      submitted at once: >= 1,000,000 rows per minute from the first submit to the last job
      finished, each job's rows in its own table exactly once
  S2  under that load: GET /api/v1/jobs/{id} p99 < 100 ms; the small tenants' last job finishes
      before the big tenant's median job
  S3  a batch failing transiently is started again within 1 s of its failure (p95)
  S4  a running job's cancel is confirmed (GET shows cancelled) within 2 s of the PUT (p95)
  S5  one 1M-row job through the service >= 0.90x the throughput of `portl run` of the same job

Prints PASS/FAIL per target beside its reference, a summary table, and always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

PG_HOST, PG_USER = "127.0.0.1", "postgres"
REDIS_DB = 14
BROKER = f"redis://127.0.0.1:6379/{REDIS_DB}"
# No primary key: a row loaded twice would stay in the table, and count(DISTINCT id) would show it.
PG_COLUMNS = ("id bigint, name text, email text, city text, signup_date date, amount numeric(12,2), "
              "active boolean, quantity integer, score double precision, notes text")
TYPES = {"id": "bigint", "signup_date": "date", "amount": "decimal(12,2)", "active": "bool", "quantity": "int",
         "score": "float"}
FINISHED = {"succeeded", "failed", "partial", "cancelled"}
ENGINE_WRITE_ATTEMPTS = 3
"""The engine tries a failing write this many times itself (a job's ``retry.attempts`` default)
before the batch fails and the service's retry policy takes over."""


@dataclass(frozen=True)
class Sizes:
    tenants: tuple[int, ...]
    rows: tuple[int, ...]
    retry_jobs: int
    cancel_jobs: int
    cancel_rows: int
    big_rows: int


FULL = Sizes(tenants=(40, 3, 3, 2, 2), rows=(20_000, 30_000, 40_000, 60_000, 100_000), retry_jobs=6,
             cancel_jobs=6, cancel_rows=300_000, big_rows=1_000_000)
QUICK = Sizes(tenants=(12, 3, 3, 2, 2), rows=(20_000, 30_000, 40_000), retry_jobs=3, cancel_jobs=3,
              cancel_rows=200_000, big_rows=300_000)


def psql(db: str, sql: str) -> str:
    done = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-U", PG_USER, "-d", db,
                           "-c", sql], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"psql on database {db} failed: {done.stderr.strip()[:400]}")
    return done.stdout.strip()


def parse_time(value: str | None) -> float | None:
    """An API timestamp as seconds since the epoch (the server runs on this machine's clock)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with ``share`` of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the service: databases, broker and processes -----------------------------------------------


@dataclass
class Tenant:
    name: str
    key: str
    client: httpx.Client


@dataclass
class Stack:
    """The state and destination databases, the broker's database, `portl serve` and the workers;
    :meth:`close` stops every process it started, by PID, and drops what it created."""

    workers: int = 2
    concurrency: int = 1
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="portl-bench-service-")))
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.state_db, self.dest_db = f"portl_bench_state_{tag}", f"portl_bench_dest_{tag}"
        self.home = self.tmp / "home"
        self.dest_url = f"postgresql://{PG_USER}@{PG_HOST}:5432/{self.dest_db}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = c.portl_env()
        env.update(PORTL_HOME=str(self.home), PORTL_BROKER=BROKER,
                   PORTL_SERVICE_DATABASE=f"postgresql://{PG_USER}@{PG_HOST}:5432/{self.state_db}")
        env.pop("PORTL_JOB_PARTITIONS", None)  # the default, 4
        return env

    def portl(self, *args: str) -> str:
        done = subprocess.run([*c.portl_command(), *args], env=self.env(), cwd=self.tmp, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"portl {' '.join(args[:3])} failed: {(done.stderr or done.stdout).strip()[-400:]}")
        return done.stdout

    def start(self) -> None:
        import redis

        self.home.mkdir(parents=True)
        for db in (self.state_db, self.dest_db):
            psql("postgres", f"CREATE DATABASE {db}")
            self.databases.append(db)
        with redis.Redis.from_url(BROKER) as broker:
            broker.flushdb()
        self.portl("service", "migrate")
        self._spawn("serve", [*c.portl_command(), "serve", "--port", str(self.port)])
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                raise RuntimeError(f"portl serve did not answer within 30 s; see {self.tmp / 'serve.log'}")
            time.sleep(0.1)
        for n in range(self.workers):
            self._spawn(f"worker-{n}", [*c.portl_command(), "worker", "--concurrency", str(self.concurrency)])

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.tmp / f"{name}.log", "w")
        # Its own process group, so that a worker's pool processes can be stopped with it.
        self.processes.append(subprocess.Popen(argv, env=self.env(), cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
        log.close()

    def tenant(self, name: str, *, local_files: bool = False) -> Tenant:
        key = json.loads(self.portl("tenants", "create", name, "--format", "json"))["api_key"]
        allow = ["--private-network"] + (["--local-files"] if local_files else [])
        self.portl("tenants", "allow", name, *allow)
        # The polling below asks far more than a person would; the default 600 a minute would refuse it.
        self.portl("tenants", "set", name, "--requests-per-minute", "1000000")
        client = httpx.Client(base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.clients.append(client)
        return Tenant(name, key, client)

    def table(self, name: str) -> None:
        psql(self.dest_db, f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({PG_COLUMNS})")

    def counts(self, name: str) -> tuple[int, int]:
        total, distinct = psql(self.dest_db, f"SELECT count(*), count(DISTINCT id) FROM {name}").split("|")
        return int(total), int(distinct)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by `portl serve` and by the workers with their pool processes."""
        return _cpu_seconds(self.processes[0].pid), sum(_cpu_seconds(p.pid) for p in self.processes[1:])

    def close(self, keep_logs: bool) -> None:
        for client in self.clients:
            client.close()
        for proc in reversed(self.processes):  # workers first, then the server
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            if proc.poll() is not None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # a pool process left behind by its worker
                except ProcessLookupError:
                    pass
        for db in self.databases:
            subprocess.run(["psql", "-X", "-q", "-h", PG_HOST, "-U", PG_USER, "-d", "postgres", "-c",
                            f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True)
        try:
            import redis

            with redis.Redis.from_url(BROKER) as broker:
                broker.flushdb()
        except Exception as exc:  # the report matters more than this cleanup
            print(f"note: could not flush Redis database {REDIS_DB}: {exc}")
        if keep_logs:
            print(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its live descendants, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError, ValueError):
        return 0.0
    return own + sum(_cpu_seconds(int(child)) for child in children)


def machine_cpu() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs so far (from /proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- jobs ---------------------------------------------------------------------------------------


def job_text(name: str, path: str, dest_url: str, table: str) -> str:
    columns = "".join(f"    {k}: {{type: '{v}'}}\n" for k, v in TYPES.items())
    return (f"name: {name}\nsource: {{type: csv, path: '{path}'}}\n"
            f"destination: {{type: postgres, url: '{dest_url}', table: {table}}}\nmode: append\n"
            f"validation: {{max_rejects: 0}}\nmapping:\n  auto: true\n  columns:\n{columns}")


def submit(tenant: Tenant, text: str) -> str:
    answer = tenant.client.post("/jobs", json={"job": text})
    if answer.status_code != 201:
        raise RuntimeError(f"POST /jobs for tenant {tenant.name} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()["id"]


def upload(tenant: Tenant, data: c.Dataset) -> str:
    name = data.path.name
    with open(data.path, "rb") as f:
        answer = tenant.client.post("/files", files={"file": (name, f, "text/csv")}, timeout=300)
    if answer.status_code != 201:
        raise RuntimeError(f"uploading {name} for tenant {tenant.name} answered {answer.status_code}: {answer.text[:300]}")
    return name


def wait_job(tenant: Tenant, job_id: str, timeout: float, pause: float = 0.1) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = tenant.client.get(f"/jobs/{job_id}").json()
        if job["status"] in FINISHED:
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} of tenant {tenant.name} still {job['status']} after {timeout:.0f} s")
        time.sleep(pause)


class Poller(threading.Thread):
    """Reads every unfinished job, one GET /jobs/{id} after another with a short pause, timing each
    request; keeps the last answer of each job; ends when every job has finished."""

    def __init__(self, jobs: dict[str, Tenant], pause: float, timeout: float):
        super().__init__(daemon=True)
        self.jobs, self.pause, self.timeout = jobs, pause, timeout
        self.latencies: list[float] = []
        self.last: dict[str, dict] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        waiting = list(self.jobs)
        while waiting and time.monotonic() < deadline:
            for job_id in list(waiting):
                started = time.perf_counter()
                try:
                    answer = self.jobs[job_id].client.get(f"/jobs/{job_id}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    self.errors.append(f"GET /jobs/{job_id}: {answer.status_code} {answer.text[:200]}")
                    continue
                self.last[job_id] = answer.json()
                if self.last[job_id]["status"] in FINISHED:
                    waiting.remove(job_id)
                time.sleep(self.pause)


# --- S1 and S2: fifty jobs of five tenants ------------------------------------------------------


@dataclass
class Result:
    label: str
    measured: str
    target: str
    ok: bool | None  # None: not measured
    detail: str = ""


def load_case(stack: Stack, sizes: Sizes, results: list[Result], idle: Idle) -> None:
    names = ["big", "small-a", "small-b", "tiny-a", "tiny-b"]
    tenants = [stack.tenant(f"load-{name}") for name in names]
    files = {rows: c.dataset(rows, quiet=True) for rows in sizes.rows}
    rng = random.Random(7)
    plan: list[tuple[Tenant, int, int]] = []  # tenant, job number, rows
    number = 0
    for tenant, count in zip(tenants, sizes.tenants):
        used = set()
        for _ in range(count):
            rows = rng.choice(sizes.rows)
            used.add(rows)
            plan.append((tenant, number, rows))
            number += 1
        for rows in sorted(used):
            upload(tenant, files[rows])
    for _, k, _ in plan:
        stack.table(f"load_{k}")
    total_rows = sum(rows for _, _, rows in plan)
    print(f"S1/S2: {len(plan)} jobs of {len(tenants)} tenants ({', '.join(map(str, sizes.tenants))} jobs), "
          f"{total_rows:,} rows; each tenant's limit 4 running jobs; submitting the big tenant's first", flush=True)

    texts = [(tenant, k, rows, job_text(f"load-{k}", files[rows].path.name, stack.dest_url, f"load_{k}"))
             for tenant, k, rows in plan]
    cpu_before, machine_before = stack.cpu(), machine_cpu()
    first_submit = time.time()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda item: submit(item[0], item[3]), texts))
    submitted = time.time()
    owners = {job_id: item[0] for job_id, item in zip(ids, texts)}
    poller = Poller(owners, pause=0.05, timeout=1800)
    poller.start()
    poller.join()
    cpu_after, machine_after = stack.cpu(), machine_cpu()
    busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
    if len(poller.last) < len(ids) or any(j["status"] not in FINISHED for j in poller.last.values()):
        raise RuntimeError(f"jobs not finished after 30 minutes: {sum(1 for j in poller.last.values() if j['status'] not in FINISHED)}")

    finished = {job_id: parse_time(poller.last[job_id]["finished_at"]) for job_id in ids}
    wall = max(finished.values()) - first_submit
    per_minute = total_rows / wall * 60
    wrong = []
    for job_id, (tenant, k, rows, _) in zip(ids, texts):
        job = poller.last[job_id]
        total, distinct = stack.counts(f"load_{k}")
        if job["status"] != "succeeded" or job["counts"]["inserted"] != rows or total != rows or distinct != rows:
            wrong.append(f"load-{k} ({tenant.name}): {job['status']}, inserted {job['counts']['inserted']}, "
                         f"table {total} rows ({distinct} distinct ids), CSV {rows}; {job.get('error') or ''}")
    for line in wrong[:5]:
        print(f"  wrong: {line}")
    ok = per_minute >= 1_000_000 and not wrong
    line = (f"S1 aggregate        {per_minute:,.0f} rows/min ({total_rows:,} rows in {wall:.1f} s, submits took "
            f"{submitted - first_submit:.1f} s)   target >= 1,000,000 rows/min, every job exactly once "
            f"({len(ids) - len(wrong)} of {len(ids)} right)   {c.verdict(ok)}")
    print(line, flush=True)
    print(f"  CPU over the load: the machine {busy:.0%} busy; the workers {cpu_after[1] - cpu_before[1]:.0f} s, "
          f"portl serve {cpu_after[0] - cpu_before[0]:.0f} s, of {wall * (os.cpu_count() or 1):.0f} core-seconds "
          "(the rest: PostgreSQL, Redis, this script, other processes)", flush=True)
    results.append(Result(f"S1 {len(plan)} jobs, {len(tenants)} tenants: aggregate rows/min", f"{per_minute:,.0f}/min", ">= 1,000,000/min",
                          ok, f"{total_rows:,} rows, {wall:.1f} s; {len(ids) - len(wrong)}/{len(ids)} exactly once"))

    lat = [x * 1000 for x in poller.latencies]
    p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    ok = p99 < 100
    print(f"S2 GET /jobs/{{id}}   p99 {p99:.1f} ms (p50 {p50:.1f}, max {max(lat):.1f}; {len(lat)} requests during the "
          f"load)   target p99 < 100 ms   idle service p99 {idle.p99:.1f} ms (p50 {idle.p50:.1f})   {c.verdict(ok)}",
          flush=True)
    if poller.errors:
        print(f"  {len(poller.errors)} failed requests, first: {poller.errors[0]}")
    results.append(Result("S2 GET /jobs/{id} under load, p99", f"{p99:.1f} ms", "< 100 ms", ok,
                          f"p50 {p50:.1f} ms, max {max(lat):.1f} ms, {len(lat)} requests; idle p99 {idle.p99:.1f} ms"))

    by_tenant: dict[str, list[float]] = {}
    for job_id in ids:
        by_tenant.setdefault(owners[job_id].name, []).append(finished[job_id] - first_submit)
    big = sorted(by_tenant[tenants[0].name])
    small_last = max(max(by_tenant[t.name]) for t in tenants[1:])
    ok = small_last < statistics.median(big)
    print(f"S2 fairness         small tenants' last job done at {small_last:.1f} s; big tenant's median job at "
          f"{statistics.median(big):.1f} s (first {big[0]:.1f}, last {big[-1]:.1f})   target: before the median   "
          f"{c.verdict(ok)}", flush=True)
    for tenant in tenants:
        done = sorted(by_tenant[tenant.name])
        print(f"  {tenant.name:<14} {len(done):>2} jobs finished at " + ", ".join(f"{x:.1f}" for x in done[:8])
              + (" ..." if len(done) > 8 else "") + " s")
    results.append(Result("S2 small tenants not held behind the big one", f"{small_last:.1f} s",
                          f"< {statistics.median(big):.1f} s (big's median)", ok,
                          f"big tenant's jobs end {big[0]:.1f}-{big[-1]:.1f} s"))


# --- S3: a failed batch started again -----------------------------------------------------------


def retry_case(stack: Stack, sizes: Sizes, results: list[Result]) -> None:
    tenant = stack.tenant("retrying")
    answer = tenant.client.put("/retry-policies", json={"max_attempts": 3, "backoff_s": 0.1, "max_backoff_s": 0.1})
    if answer.status_code != 200:
        raise RuntimeError(f"PUT /retry-policies answered {answer.status_code}: {answer.text[:300]}")
    rows = 40_000
    data = c.dataset(rows, quiet=True)
    upload(tenant, data)
    delays: list[float] = []
    backoffs: list[float] = []
    missed = 0
    wrong = []
    print(f"S3: {sizes.retry_jobs} jobs of {rows:,} rows, one after another; in each, the rows of two partitions "
          f"(3 and 4 of 4) refused with SQLSTATE 40001 for the engine's {ENGINE_WRITE_ATTEMPTS} write attempts, "
          "so each of those batches fails once", flush=True)
    for n in range(sizes.retry_jobs):
        table = f"retry_{n}"
        stack.table(table)
        # Two rows ranges, each refused (transiently) the first three times a write reaches it.
        ranges = [(rows // 2 + 200, rows // 2 + 210), (rows * 3 // 4 + 200, rows * 3 // 4 + 210)]
        checks = "\n".join(
            f"IF NEW.id BETWEEN {low} AND {high} AND nextval('{table}_refusals_{i}') <= {ENGINE_WRITE_ATTEMPTS} THEN "
            f"RAISE EXCEPTION 'row % refused for the benchmark', NEW.id USING ERRCODE = '40001'; END IF;"
            for i, (low, high) in enumerate(ranges))
        psql(stack.dest_db, "".join(f"CREATE SEQUENCE {table}_refusals_{i};" for i in range(len(ranges)))
             + f"CREATE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {checks} RETURN NEW; "
             f"END $$; CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_refuse()")
        job_id = submit(tenant, job_text(f"retry-{n}", data.path.name, stack.dest_url, table))
        failures: dict[int, dict] = {}  # batch id -> the batch as seen while it waited for its retry
        deadline = time.monotonic() + 300
        while True:
            status = tenant.client.get(f"/jobs/{job_id}/retry-status").json()
            for batch in status["batches"]:
                if batch["status"] == "retrying" and batch["id"] not in failures:
                    failures[batch["id"]] = batch
            if status["status"] in FINISHED or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for batch in status["batches"]:
            seen = failures.get(batch["id"])
            if seen is None:
                missed += batch["attempts"] > 1
                continue
            failed_at, next_at = parse_time(seen["finished_at"]), parse_time(seen["next_retry_at"])
            started = parse_time(batch["started_at"])
            if batch["attempts"] > seen["attempts"] and started and failed_at:
                delays.append(started - failed_at)
                if next_at:
                    backoffs.append(next_at - failed_at)
        total, distinct = stack.counts(table)
        if status["status"] != "succeeded" or total != rows or distinct != rows:
            wrong.append(f"{table}: {status['status']}, {total} rows ({distinct} distinct ids) of {rows}")
    for line in wrong:
        print(f"  wrong: {line}")
    if not delays:
        results.append(Result("S3 failed batch's retry starts, p95", "no retries seen", "< 1 s", None))
        print("S3 retry start      no failed batch was seen retrying: nothing measured")
        return
    p95 = percentile(delays, 0.95)
    ok = p95 < 1.0 and not wrong
    print(f"S3 retry start      p95 {p95:.2f} s (median {statistics.median(delays):.2f}, max {max(delays):.2f}; "
          f"{len(delays)} retries, of which the policy's wait {statistics.median(backoffs):.2f} s)   target p95 < 1 s   "
          f"{c.verdict(ok)}", flush=True)
    if missed:
        print(f"  {missed} retried batches were not seen while waiting (not counted)")
    results.append(Result("S3 failed batch's retry starts, p95", f"{p95:.2f} s", "< 1 s", ok,
                          f"median {statistics.median(delays):.2f} s, {len(delays)} retries; "
                          f"{sizes.retry_jobs - len(wrong)}/{sizes.retry_jobs} jobs then loaded every row once"))


# --- S4: cancel ---------------------------------------------------------------------------------


def cancel_case(stack: Stack, sizes: Sizes, results: list[Result]) -> None:
    tenant = stack.tenant("cancelling")
    data = c.dataset(sizes.cancel_rows, quiet=True)
    upload(tenant, data)
    confirmed: list[float] = []
    print(f"S4: {sizes.cancel_jobs} jobs of {sizes.cancel_rows:,} rows, one at a time, each cancelled once it has "
          "loaded rows", flush=True)
    for n in range(sizes.cancel_jobs):
        table = f"cancel_{n}"
        stack.table(table)
        job_id = submit(tenant, job_text(f"cancel-{n}", data.path.name, stack.dest_url, table))
        deadline = time.monotonic() + 120
        while True:
            job = tenant.client.get(f"/jobs/{job_id}").json()
            if job["status"] == "running" and job["counts"]["read"] > 0 or job["status"] in FINISHED:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cancel-{n} did not start loading within 120 s (status {job['status']})")
            time.sleep(0.05)
        if job["status"] in FINISHED:
            print(f"  cancel-{n} finished ({job['status']}) before it could be cancelled: not counted")
            continue
        started = time.perf_counter()
        answer = tenant.client.put(f"/jobs/{job_id}/cancel")
        if answer.status_code != 200:
            print(f"  cancel-{n}: PUT cancel answered {answer.status_code}: {answer.text[:200]}")
            continue
        while True:
            job = tenant.client.get(f"/jobs/{job_id}").json()
            if job["status"] in FINISHED:
                break
            if time.perf_counter() - started > 60:
                break
            time.sleep(0.02)
        took = time.perf_counter() - started
        if job["status"] != "cancelled":
            print(f"  cancel-{n}: {job['status']} {took:.2f} s after the cancel, not cancelled")
            continue
        confirmed.append(took)
        total, distinct = stack.counts(table)
        print(f"  cancel-{n}: cancelled after {took:.2f} s, {total:,} rows loaded ({distinct:,} distinct ids)")
    if not confirmed:
        results.append(Result("S4 cancel confirmed, p95", "nothing cancelled", "< 2 s", None))
        return
    p95 = percentile(confirmed, 0.95)
    ok = p95 < 2.0 and len(confirmed) == sizes.cancel_jobs
    print(f"S4 cancel           p95 {p95:.2f} s (median {statistics.median(confirmed):.2f}, {len(confirmed)} of "
          f"{sizes.cancel_jobs} cancels confirmed)   target p95 < 2 s   {c.verdict(ok)}", flush=True)
    results.append(Result("S4 cancel confirmed, p95", f"{p95:.2f} s", "< 2 s", ok,
                          f"median {statistics.median(confirmed):.2f} s, {len(confirmed)} cancels"))


# --- S5: one large job --------------------------------------------------------------------------


def single_case(stack: Stack, sizes: Sizes, results: list[Result]) -> None:
    tenant = stack.tenant("single", local_files=True)
    data = c.dataset(sizes.big_rows)
    c.warm_cache(data.path)
    text = job_text("single", str(data.path), stack.dest_url, "single")
    job = stack.tmp / "single.yaml"
    job.write_text(text)
    print(f"S5: one job of {data.rows:,} rows ({data.megabytes:,.0f} MB): `portl run`, then the service", flush=True)

    stack.table("single")
    workdir = stack.tmp / "run"
    workdir.mkdir(exist_ok=True)
    ran = c.run_portl(job, workdir)
    if ran.returncode != 0:
        raise RuntimeError(f"portl run failed: {ran.failure()}")
    if stack.counts("single") != (data.rows, data.rows):
        raise RuntimeError(f"portl run left {stack.counts('single')} rows (distinct ids) of {data.rows}")

    stack.table("single")
    os.sync()
    started = time.time()
    job_id = submit(tenant, text)
    done = wait_job(tenant, job_id, timeout=900)
    service_s = parse_time(done["finished_at"]) - started
    counted = stack.counts("single")
    right = done["status"] == "succeeded" and counted == (data.rows, data.rows)
    batches = tenant.client.get(f"/jobs/{job_id}/retry-status").json()["batches"]
    spans = [parse_time(b["finished_at"]) - parse_time(b["started_at"]) for b in batches if b["started_at"]]
    ratio = ran.seconds / service_s
    ok = ratio >= 0.9 and right
    print(f"S5 one large job    service {service_s:.2f} s ({c.rate(data.rows, service_s)})   portl run {ran.seconds:.2f} s "
          f"({c.rate(data.rows, ran.seconds)})   ratio {ratio:.2f}x (target >= 0.90x)   {c.verdict(ok)}", flush=True)
    print(f"  service: {len(batches)} batches, each {', '.join(f'{s:.2f}' for s in spans)} s; started "
          f"{parse_time(done['started_at']) - started:.2f} s after the submit; {done['status']}, {counted[0]:,} rows "
          f"({counted[1]:,} distinct ids)", flush=True)
    results.append(Result(f"S5 one {data.rows:,}-row job: service vs portl run", f"{ratio:.2f}x", ">= 0.90x", ok,
                          f"service {service_s:.2f} s, portl run {ran.seconds:.2f} s"))


# --- the run ------------------------------------------------------------------------------------


def warm_up(stack: Stack) -> Idle:
    """A small job through both workers, so that the measured jobs do not pay their start-up; then
    the reference for S2: the same GET as under load, on the service with nothing to do."""
    tenant = stack.tenant("warm-up")
    data = c.dataset(20_000, quiet=True)
    upload(tenant, data)
    stack.table("warm_up")
    job_id = submit(tenant, job_text("warm-up", data.path.name, stack.dest_url, "warm_up"))
    done = wait_job(tenant, job_id, 120)
    if done["status"] != "succeeded":
        raise RuntimeError(f"the warm-up job {done['status']}: {done.get('error')}")
    time.sleep(1)
    serve_before, _ = stack.cpu()
    time.sleep(3)
    serve_idle, _ = stack.cpu()
    latencies = []
    for _ in range(200):
        started = time.perf_counter()
        tenant.client.get(f"/jobs/{job_id}").raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    serve_after, _ = stack.cpu()
    span = sum(latencies) / 1000 + 200 * 0.01
    per_request = (serve_after - serve_idle - (serve_idle - serve_before) / 3 * span) / 200 * 1000
    idle = Idle(percentile(latencies, 0.5), percentile(latencies, 0.99), per_request, (serve_idle - serve_before) / 3)
    print(f"idle service: GET /jobs/{{id}} p50 {idle.p50:.1f} ms, p99 {idle.p99:.1f} ms (200 requests); portl serve "
          f"uses {idle.cpu_ms:.1f} ms of CPU a request, and {idle.idle_share:.0%} of a core with nothing to do",
          flush=True)
    return idle


@dataclass(frozen=True)
class Idle:
    """GET /jobs/{id} on the service with nothing to do: S2's reference."""

    p50: float
    p99: float
    cpu_ms: float
    idle_share: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: 22 jobs, 300,000 rows for S5")
    parser.add_argument("--case", nargs="*", choices=["load", "retry", "cancel", "single"],
                        help="run only these cases (default: all)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server's and workers' logs")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    cases = args.case or ["load", "retry", "cancel", "single"]
    print(c.environment_line())
    warning = c.load_warning()
    if warning:
        print(warning)
    for rows in {*sizes.rows, 20_000, 40_000, sizes.cancel_rows}:
        c.dataset(rows, quiet=True)
    stack = Stack()
    results: list[Result] = []
    began = time.perf_counter()
    try:
        stack.start()
        print(f"service: portl serve on port {stack.port}, {stack.workers} x portl worker --concurrency "
              f"{stack.concurrency}, broker Redis db {REDIS_DB}, state and destination on PostgreSQL "
              f"{psql('postgres', 'SHOW server_version')}", flush=True)
        idle = warm_up(stack)
        for name, case in (("load", load_case), ("retry", retry_case), ("cancel", cancel_case),
                           ("single", single_case)):
            if name not in cases:
                continue
            try:
                case(stack, sizes, results, idle) if name == "load" else case(stack, sizes, results)
            except Exception as exc:
                print(f"{name}: ERROR {exc}", flush=True)
                results.append(Result(f"{name}: not measured", "error", "", None, str(exc)[:200]))
    except Exception as exc:
        print(f"ERROR {exc}", flush=True)
    finally:
        stack.close(args.keep_logs)
    print(f"\nsummary: the service, {'--quick' if args.quick else 'full'} sizes, {time.perf_counter() - began:.0f} s")
    for r in results:
        verdict = "SKIP" if r.ok is None else c.verdict(r.ok)
        print(f"  {r.label:<46} {r.measured:>16}  target {r.target:<26} {verdict}  {r.detail}")
    missed = sum(1 for r in results if r.ok is False)
    print(f"overall: {'PASS' if not missed and results else 'FAIL'} ({missed} of {len(results)} targets missed)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted")
    sys.exit(0)
