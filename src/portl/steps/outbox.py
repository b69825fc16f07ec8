"""The outbox: external calls written into the job's database transaction, delivered after commit.

An ``outbox.enqueue`` step does not call anything: :func:`enqueue` inserts the call into
``portl_outbox`` inside the flow's transaction, so the call exists if and only if the job's
database work committed. ``portl outbox drain`` then delivers pending calls in id order, each with
its dedup key as idempotency key, and marks each delivered in its own short transaction.

Guarantees: a rolled-back job leaves no outbox rows; a re-run enqueues nothing new (the dedup
key is unique); a call marked delivered is never sent again; concurrent drains never send the same
call at once (the row is locked while it is sent, ``FOR UPDATE SKIP LOCKED``). Delivery is
*at least once with the same key*: a crash after the receiver answered and before the row is
marked sends the call again, with the same idempotency key. Calls that keep failing move to
``portl_outbox_dead`` with their last error; ``retry`` moves them back.

Works on an open DB-API connection of psycopg 3 (``"postgres"``) or PyMySQL (``"mysql"``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from portl.engine.retry import backoff_delays
from portl.errors import CallError, OutboxError
from portl.spec.models import Retry

OUTBOX = "portl_outbox"
DEAD = "portl_outbox_dead"
MAX_TEXT = 255  # dedup keys, job, step and connection names: VARCHAR(255) on MySQL
MAX_ERROR = 2000
MAX_BACKOFF_MS = 300_000


@dataclass(frozen=True)
class OutboxCall:
    """A call to deliver after commit.

    ``request`` is what the step rendered: for ``api`` ``{method, url or path, headers, query,
    body}``, for ``lambda`` ``{function, payload}``; either may add ``retry_on`` (a list) and
    ``timeout_s``. It never holds resolved secrets: those stay in the named ``connection`` and are
    read from the flow file when the call is delivered. ``dedup_key`` is the idempotency key.
    """

    job: str
    step_id: str
    idx: int | None
    kind: Literal["api", "lambda"]
    connection: str | None
    request: dict[str, Any]
    dedup_key: str


@dataclass(frozen=True)
class StoredCall:
    """A row of ``portl_outbox`` (status pending or delivered) or of ``portl_outbox_dead`` (dead)."""

    id: int
    dedup_key: str
    job: str
    step_id: str
    idx: int | None
    kind: str
    connection: str | None
    request: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    moved_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: (value.isoformat() if isinstance(value, datetime) else value) for name, value in self.__dict__.items()}


# --- the two dialects, as data ---------------------------------------------------------------------

COLUMNS = ("id", "dedup_key", "job", "step_id", "idx", "kind", "connection", "request", "status", "attempts",
           "last_error", "created_at", "next_attempt_at", "delivered_at")
_CALL = "dedup_key, job, step_id, idx, kind, connection, request"
_REST = "last_error, created_at, next_attempt_at, delivered_at"


@dataclass(frozen=True)
class SqlDialect:
    """The outbox's statements on one kind of database. Table and column names are fixed by Portl;
    every value is a bound parameter."""

    name: str
    now: str
    later: str  # now plus a bound number of seconds
    until_due: str  # seconds from now until next_attempt_at
    ddl_commits: bool  # DDL ends the open transaction (MySQL)
    tables_exist: str
    create: tuple[str, ...]
    enqueue: str
    skip_locked: str = " FOR UPDATE SKIP LOCKED"

    def select_columns(self, dead: bool) -> str:
        return ", ".join(COLUMNS + (("moved_at",) if dead else ()))

    @property
    def pick(self) -> str:
        return ("SELECT {columns} FROM {table}{where} AND next_attempt_at <= " + self.now +
                " ORDER BY id LIMIT 1" + self.skip_locked)

    @property
    def next_due(self) -> str:
        return f"SELECT {self.until_due} FROM {OUTBOX}{{where}} ORDER BY next_attempt_at LIMIT 1{self.skip_locked}"

    @property
    def reschedule(self) -> str:
        return f"UPDATE {OUTBOX} SET attempts = %s, last_error = %s, next_attempt_at = {self.later} WHERE id = %s"

    @property
    def delivered(self) -> str:
        return (f"UPDATE {OUTBOX} SET status = 'delivered', attempts = %s, last_error = NULL, delivered_at = {self.now} "
                "WHERE id = %s")

    @property
    def bury(self) -> str:
        return (f"INSERT INTO {DEAD} (id, {_CALL}, status, attempts, {_REST}, moved_at) "
                f"SELECT id, {_CALL}, 'dead', attempts, {_REST}, {self.now} FROM {OUTBOX} WHERE id = %s")

    @property
    def revive(self) -> str:
        return (f"INSERT INTO {OUTBOX} (id, {_CALL}, status, attempts, {_REST}) "
                f"SELECT id, {_CALL}, 'pending', 0, last_error, created_at, {self.now}, NULL FROM {DEAD} WHERE id IN ({{ids}})")


_PG_COLUMNS = """
    dedup_key text NOT NULL UNIQUE,
    job text NOT NULL,
    step_id text NOT NULL,
    idx integer,
    kind text NOT NULL,
    connection text,
    request jsonb NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz"""

_MYSQL_COLUMNS = """
    dedup_key VARCHAR(255) NOT NULL,
    job VARCHAR(255) NOT NULL,
    step_id VARCHAR(255) NOT NULL,
    idx INT NULL,
    kind VARCHAR(16) NOT NULL,
    connection VARCHAR(255) NULL,
    request LONGTEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    last_error TEXT NULL,
    created_at DATETIME(6) NOT NULL,
    next_attempt_at DATETIME(6) NOT NULL,
    delivered_at DATETIME(6) NULL"""
_MYSQL_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

DIALECTS = {
    "postgres": SqlDialect(
        name="postgres",
        now="now()",
        later="now() + make_interval(secs => %s)",
        until_due="EXTRACT(EPOCH FROM (next_attempt_at - now()))",
        ddl_commits=False,
        tables_exist="SELECT (to_regclass(%s) IS NOT NULL)::int + (to_regclass(%s) IS NOT NULL)::int",
        create=(
            f"CREATE TABLE IF NOT EXISTS {OUTBOX} (\n    id bigserial PRIMARY KEY,{_PG_COLUMNS},\n"
            "    CHECK (kind IN ('api', 'lambda')),\n    CHECK (status IN ('pending', 'delivered'))\n)",
            f"CREATE INDEX IF NOT EXISTS {OUTBOX}_due ON {OUTBOX} (job, id) WHERE status = 'pending'",
            f"CREATE TABLE IF NOT EXISTS {DEAD} (\n    id bigint PRIMARY KEY,{_PG_COLUMNS},\n"
            "    moved_at timestamptz NOT NULL DEFAULT now()\n)",
        ),
        enqueue=(f"INSERT INTO {OUTBOX} ({_CALL}, status) SELECT %s, %s, %s, %s, %s, %s, %s::jsonb, 'pending' "
                 f"WHERE NOT EXISTS (SELECT 1 FROM {DEAD} WHERE dedup_key = %s) ON CONFLICT (dedup_key) DO NOTHING"),
    ),
    "mysql": SqlDialect(
        name="mysql",
        now="UTC_TIMESTAMP(6)",
        later="TIMESTAMPADD(MICROSECOND, ROUND(%s * 1000000), UTC_TIMESTAMP(6))",
        until_due="TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), next_attempt_at) / 1000000",
        ddl_commits=True,
        tables_exist=("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                      "AND table_name IN (%s, %s)"),
        create=(
            f"CREATE TABLE IF NOT EXISTS {OUTBOX} (\n    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,{_MYSQL_COLUMNS},\n"
            f"    UNIQUE KEY {OUTBOX}_dedup (dedup_key),\n    KEY {OUTBOX}_due (status, job, id)\n) {_MYSQL_TABLE}",
            f"CREATE TABLE IF NOT EXISTS {DEAD} (\n    id BIGINT NOT NULL PRIMARY KEY,{_MYSQL_COLUMNS},\n"
            f"    moved_at DATETIME(6) NOT NULL,\n    UNIQUE KEY {DEAD}_dedup (dedup_key)\n) {_MYSQL_TABLE}",
        ),
        # INSERT IGNORE skips a duplicate dedup key; over-long values are refused before (_check).
        enqueue=(f"INSERT IGNORE INTO {OUTBOX} ({_CALL}, status, created_at, next_attempt_at) "
                 "SELECT %s, %s, %s, %s, %s, %s, %s, 'pending', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM DUAL "
                 f"WHERE NOT EXISTS (SELECT 1 FROM {DEAD} WHERE dedup_key = %s)"),
    ),
}


# --- inside the flow's transaction -----------------------------------------------------------------


def ensure_outbox(conn: Any, dialect: str) -> None:
    """Create ``portl_outbox`` and ``portl_outbox_dead`` when missing.

    On Postgres this happens inside the caller's transaction. MySQL commits any open transaction
    before DDL, so there it must be called before the flow's transaction begins; called inside an
    open transaction with the tables missing, it raises instead of committing half a job.
    """
    sql = _dialect(dialect)
    with _cursor(conn, dialect, "checking for the outbox tables") as cur:
        if _tables_exist(cur, sql):
            return
        if sql.ddl_commits and _in_transaction(conn):
            raise OutboxError(f"the outbox tables {OUTBOX} and {DEAD} do not exist yet, and creating them on MySQL "
                              "would commit the open transaction; create them before it begins (ensure_outbox)")
        for statement in sql.create:
            cur.execute(statement)


def enqueue(conn: Any, dialect: str, call: OutboxCall) -> bool:
    """Insert ``call`` in the caller's transaction. False when its dedup key is already in the
    outbox or the dead-letter table (a re-run of the same input): nothing is inserted then."""
    _check(call)
    request = json.dumps(call.request, default=str, ensure_ascii=False)
    sql = _dialect(dialect)
    with _cursor(conn, dialect, f"adding call {call.step_id} to the outbox") as cur:
        cur.execute(sql.enqueue, (call.dedup_key, call.job, call.step_id, call.idx, call.kind, call.connection, request,
                                  call.dedup_key))
        return cur.rowcount == 1


def _check(call: OutboxCall) -> None:
    if call.kind not in ("api", "lambda"):
        raise OutboxError(f"outbox call {call.step_id}: kind must be api or lambda, not {call.kind!r}")
    if not call.dedup_key:
        raise OutboxError(f"outbox call {call.step_id}: the dedup key is empty")
    for name in ("dedup_key", "job", "step_id", "connection"):
        value = getattr(call, name)
        if value is not None and len(value) > MAX_TEXT:
            raise OutboxError(f"outbox call {call.step_id}: {name} is {len(value)} characters long; at most {MAX_TEXT} fit")


# --- reading and changing the outbox (the portl outbox commands) -----------------------------------


@dataclass
class DrainOptions:
    """How ``drain`` retries: ``max_attempts`` deliveries per call before it goes to the dead-letter
    table, waits doubling from ``backoff_ms``; ``wait`` keeps draining until no call is pending
    (else calls not due yet are left for the next drain); ``limit`` stops after that many calls."""

    max_attempts: int = 5
    backoff_ms: int = 1000
    wait: bool = True
    limit: int | None = None


@dataclass
class DrainReport:
    """What a drain did: calls delivered, failed attempts left for later, calls moved to the
    dead-letter table (their ids), and calls still pending at the end."""

    delivered: int = 0
    failed_attempts: int = 0
    dead: list[int] = field(default_factory=list)
    pending: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class DrainEvent:
    """One thing that happened to one call: ``delivered``, ``retry_later`` or ``dead``."""

    event: str
    call: StoredCall
    details: dict[str, Any]


#: ``send(call) -> CallResult`` delivers one call once, raising CallError (``.retryable``) on failure.
Send = Callable[[StoredCall], Any]


class Outbox:
    """The outbox of one database, for the ``portl outbox`` commands. Each method runs its own
    short transactions; the connection must be in autocommit mode between them."""

    def __init__(self, conn: Any, dialect: str, where: str = "the database"):
        self.conn = conn
        self.dialect = dialect
        self.sql = _dialect(dialect)
        self.where = where
        if self.sql.ddl_commits and not _skips_locked_rows(conn):
            # Older servers lock instead: a second drain waits for the first rather than skipping ahead.
            self.sql = replace(self.sql, skip_locked=" FOR UPDATE")

    def exists(self) -> bool:
        with _cursor(self.conn, self.dialect, "checking for the outbox tables") as cur:
            return _tables_exist(cur, self.sql)

    def calls(self, job: str | None, *, dead: bool = False, status: str | None = None, limit: int | None = None) -> list[StoredCall]:
        """Calls of ``job`` (every job when None) in id order: the dead ones, or the others
        (pending and delivered, or only ``status``)."""
        if not self.exists():
            return []
        table = DEAD if dead else OUTBOX
        where, params = _filters(job, None if dead else status)
        statement = f"SELECT {self.sql.select_columns(dead)} FROM {table}{where} ORDER BY id"
        if limit is not None:
            statement += " LIMIT %s"
            params.append(int(limit))
        with _cursor(self.conn, self.dialect, f"reading {table}") as cur:
            cur.execute(statement, params)
            return [_stored(row, dead) for row in cur.fetchall()]

    def counts(self, job: str | None) -> dict[str, int]:
        """How many calls of ``job`` are pending, delivered and dead."""
        found = {"pending": 0, "delivered": 0, "dead": 0}
        if not self.exists():
            return found
        where, params = _filters(job, None)
        with _cursor(self.conn, self.dialect, "counting the outbox") as cur:
            cur.execute(f"SELECT status, COUNT(*) FROM {OUTBOX}{where} GROUP BY status", params)
            for status, count in cur.fetchall():
                found[status] = int(count)
            cur.execute(f"SELECT COUNT(*) FROM {DEAD}{where}", params)
            found["dead"] = int(cur.fetchone()[0])
        return found

    def retry(self, job: str | None, ids: Sequence[int] | None = None) -> list[int]:
        """Move dead calls of ``job`` back to pending (attempts from zero, due now): those with
        ``ids``, or every one when ``ids`` is None. Returns the ids moved, in order."""
        if not self.exists():
            if ids:
                raise OutboxError(f"no outbox tables in {self.where}: there are no dead calls to retry")
            return []
        with self._transaction("moving dead calls back to the outbox") as cur:
            where, params = _filters(job, None)
            if ids is not None:
                wanted = sorted({int(i) for i in ids})
                if not wanted:
                    return []
                where += (" AND " if where else " WHERE ") + f"id IN ({', '.join(['%s'] * len(wanted))})"
                params += wanted
            cur.execute(f"SELECT id FROM {DEAD}{where} ORDER BY id FOR UPDATE", params)
            found = [int(row[0]) for row in cur.fetchall()]
            if ids is not None and len(found) != len(wanted):
                missing = ", ".join(str(i) for i in wanted if i not in set(found))
                whose = f" of job {job!r}" if job else ""
                raise OutboxError(f"no dead call{'s' if len(wanted) - len(found) > 1 else ''} {missing}{whose} in "
                                  f"{DEAD}; `portl outbox list --dead` shows them")
            if not found:
                return []
            marks = ", ".join(["%s"] * len(found))
            cur.execute(self.sql.revive.format(ids=marks), found)
            cur.execute(f"DELETE FROM {DEAD} WHERE id IN ({marks})", found)
            return found

    def drain(self, job: str | None, send: Send, options: DrainOptions | None = None,
              on_event: Callable[[DrainEvent], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> DrainReport:
        """Deliver the pending calls of ``job`` in id order with ``send``, one at a time, each
        locked while it is sent and marked in the same short transaction."""
        options = options or DrainOptions()
        report = DrainReport()
        started = time.perf_counter()
        if not self.exists():
            return report
        handled = 0
        while options.limit is None or handled < options.limit:
            wait_s = self._drain_one(job, send, options, report, on_event)
            if wait_s is None:
                handled += 1
                continue
            if not options.wait or wait_s < 0:
                break
            sleep(wait_s)
        report.pending = self.counts(job)["pending"]
        report.seconds = time.perf_counter() - started
        return report

    def deliver(self, job: str | None, connections: Mapping[str, Any], options: DrainOptions | None = None,
                on_event: Callable[[DrainEvent], None] | None = None) -> DrainReport:
        """:meth:`drain` through the flow's ``connections`` (http and lambda, by name): what
        ``portl outbox drain`` and a run with ``outbox: {deliver: after_commit}`` do."""
        from portl.steps.calls.delivery import Deliverer

        deliverer = Deliverer(connections)
        try:
            return self.drain(job, lambda call: deliverer.send_once(call.kind, call.connection, call.request, call.dedup_key),
                              options, on_event)
        finally:
            deliverer.close()

    def _drain_one(self, job: str | None, send: Send, options: DrainOptions, report: DrainReport,
                   on_event: Callable[[DrainEvent], None] | None) -> float | None:
        """Deliver the next due call: None when one was handled, else seconds until the next call
        falls due (-1 when no call is pending, or every pending call is another drain's now)."""
        where, params = _filters(job, "pending")
        with self._transaction("delivering from the outbox") as cur:
            cur.execute(self.sql.pick.format(table=OUTBOX, columns=self.sql.select_columns(False), where=where), params)
            row = cur.fetchone()
            if row is None:
                cur.execute(self.sql.next_due.format(where=where), params)
                due = cur.fetchone()
                return -1.0 if due is None or due[0] is None else max(float(due[0]), 0.0)
            call = _stored(row, False)
            attempt = call.attempts + 1
            try:
                result = send(call)
            except CallError as exc:
                error = str(exc)[:MAX_ERROR]
                if exc.retryable and attempt < options.max_attempts:
                    delay = _delay(options, attempt)
                    cur.execute(self.sql.reschedule, (attempt, error, delay, call.id))
                    report.failed_attempts += 1
                    self._tell(on_event, "retry_later", call, attempt, options,
                               {"error": error, "retry_in_ms": round(delay * 1000)})
                else:
                    cur.execute(f"UPDATE {OUTBOX} SET attempts = %s, last_error = %s WHERE id = %s", (attempt, error, call.id))
                    cur.execute(self.sql.bury, (call.id,))
                    cur.execute(f"DELETE FROM {OUTBOX} WHERE id = %s", (call.id,))
                    report.dead.append(call.id)
                    self._tell(on_event, "dead", call, attempt, options,
                               {"error": error, "retryable": exc.retryable})
                return None
            cur.execute(self.sql.delivered, (attempt, call.id))
            report.delivered += 1
            status = getattr(result, "status", None)
            self._tell(on_event, "delivered", call, attempt, options, {"status": status})
            return None

    def _tell(self, on_event, event: str, call: StoredCall, attempt: int, options: DrainOptions, details: dict) -> None:
        if on_event:
            on_event(DrainEvent(event, call, {"attempt": attempt, "max_attempts": options.max_attempts, **details}))

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[Any]:
        with _translated(self.dialect, doing):
            if hasattr(self.conn, "transaction"):  # psycopg 3
                with self.conn.transaction(), self.conn.cursor() as cur:
                    yield cur
                return
            self.conn.begin()
            try:
                with self.conn.cursor() as cur:
                    yield cur
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()


#: The outbox dialect of each database connector type.
DIALECT_OF = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def open_outbox(config: Any, base_dir: str) -> Outbox:
    """An :class:`Outbox` on a new autocommit connection to the database ``config`` describes
    (a postgres or mysql connection of the flow)."""
    kind = getattr(config, "type", None)
    dialect = DIALECT_OF.get(kind)
    if dialect is None:
        raise OutboxError(f"the outbox lives in a postgres or mysql database, not in a {kind} connection")
    if dialect == "postgres":
        from portl.connectors.postgres.connection import connect

        conn = connect(config, base_dir)
    else:
        from portl.connectors.mysql.client import Server

        conn = Server(config, base_dir, "destination").connect()
    return Outbox(conn, dialect, config.describe())


# --- shared pieces ---------------------------------------------------------------------------------


def _dialect(name: str) -> SqlDialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise OutboxError(f"the outbox works on {' and '.join(DIALECTS)} databases, not {name!r}") from None


def _tables_exist(cur: Any, sql: SqlDialect) -> bool:
    cur.execute(sql.tables_exist, (OUTBOX, DEAD))
    return int(cur.fetchone()[0]) == 2


def _skips_locked_rows(conn: Any) -> bool:
    """MariaDB 10.6+ and MySQL 8+ know ``SKIP LOCKED``."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = str(cur.fetchone()[0])
    numbers = [int(part) for part in version.split("-")[0].split(".")[:2] if part.isdigit()]
    major, minor = (numbers + [0, 0])[:2]
    return (major, minor) >= ((10, 6) if "mariadb" in version.lower() else (8, 0))


def _in_transaction(conn: Any) -> bool:
    status = getattr(conn, "server_status", 0) or 0
    return bool(status & 1)  # SERVER_STATUS_IN_TRANS


def _filters(job: str | None, status: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if job is not None:
        clauses.append("job = %s")
        params.append(job)
    if status is not None:
        clauses.append("status = %s")
        params.append(status)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _delay(options: DrainOptions, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from backoff_ms, capped, jittered."""
    attempts = min(attempt + 1, 100)
    policy = Retry(attempts=attempts, backoff_ms=options.backoff_ms, max_backoff_ms=MAX_BACKOFF_MS)
    return backoff_delays(policy)[-1]


def _stored(row: Sequence[Any], dead: bool) -> StoredCall:
    # Values are typed here: a MySQL connection may hand every value over as text.
    values = dict(zip(COLUMNS + (("moved_at",) if dead else ()), row))
    request = values["request"]
    if isinstance(request, (str, bytes)):
        request = json.loads(request)
    values["request"] = request
    for name in ("id", "attempts", "idx"):
        if values[name] is not None:
            values[name] = int(values[name])
    for name in ("dedup_key", "job", "step_id", "kind", "connection", "status", "last_error"):
        if isinstance(values[name], bytes):
            values[name] = values[name].decode("utf-8")
    for name in ("created_at", "next_attempt_at", "delivered_at", "moved_at"):
        value = values.get(name)
        if isinstance(value, (str, bytes)):
            value = datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # MySQL DATETIME columns hold UTC
        if name in values:
            values[name] = value
    return StoredCall(**values)


@contextmanager
def _cursor(conn: Any, dialect: str, doing: str) -> Iterator[Any]:
    with _translated(dialect, doing), conn.cursor() as cur:
        yield cur


@contextmanager
def _translated(dialect: str, doing: str) -> Iterator[None]:
    """Driver errors become an OutboxError that says what was being done."""
    try:
        yield
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("psycopg", "pymysql"):
            raise
        raise OutboxError(f"{doing} failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
