"""The outbox on the real Postgres and MariaDB servers: enqueue inside the flow's transaction,
drain after commit, dead letters and retry. Every test runs on both databases."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from portl.errors import CallError, ConfigError, OutboxError
from portl.steps.calls.config import HttpConnection, LambdaConnection
from portl.steps.idempotency import idempotency_key
from portl.steps.outbox import DEAD, OUTBOX, DrainOptions, OutboxCall, enqueue, ensure_outbox, open_outbox

FAST = DrainOptions(max_attempts=3, backoff_ms=1)


class Database:
    """One test database: an Outbox on it, and transactions the way a flow opens them."""

    def __init__(self, outbox, dialect: str, config):
        self.outbox = outbox
        self.conn = outbox.conn
        self.dialect = dialect
        self.config = config

    @contextmanager
    def transaction(self):
        """The flow's transaction: commits at the end, rolls back on an exception."""
        if self.dialect == "postgres":
            with self.conn.transaction():
                yield self.conn
            return
        ensure_outbox(self.conn, self.dialect)  # MySQL: DDL before the transaction begins
        self.conn.begin()
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def enqueue(self, *calls: OutboxCall) -> list[bool]:
        with self.transaction() as conn:
            ensure_outbox(conn, self.dialect)
            return [enqueue(conn, self.dialect, call) for call in calls]

    def count(self, table: str) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            return int(cur.fetchone()[0])

    def statuses(self) -> list[tuple[int, str, int]]:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT id, status, attempts FROM {OUTBOX} ORDER BY id")
            return [(int(i), status, int(attempts)) for i, status, attempts in cur.fetchall()]


@pytest.fixture(params=["postgres", "mysql"])
def db(request):
    if request.param == "postgres":
        from portl.connectors.postgres import Config

        config = Config(type="postgres", url=request.getfixturevalue("pg_url"))
    else:
        from portl.connectors.mysql.config import Config

        config = Config(type="mysql", url=request.getfixturevalue("mysql_url"))
    outbox = open_outbox(config, ".")
    yield Database(outbox, request.param, config)
    outbox.close()


def api_call(i: int, job: str = "flow_a", path: str = "/notify", connection: str | None = "api", **request) -> OutboxCall:
    body = {"method": "POST", "path": path, "body": {"n": i}, **request}
    return OutboxCall(job, "notify", i, "api", connection, body, idempotency_key(job, "notify", str(i)))


def connections(recorder) -> dict:
    return {"api": HttpConnection(type="http", base_url=recorder.base_url, headers={"Authorization": "Bearer tok-123456"})}


# --- enqueue -----------------------------------------------------------------------------------


def test_ensure_outbox_creates_both_tables_and_can_run_again(db):
    ensure_outbox(db.conn, db.dialect)
    ensure_outbox(db.conn, db.dialect)
    assert (db.count(OUTBOX), db.count(DEAD)) == (0, 0)


def test_a_rolled_back_transaction_leaves_no_outbox_rows(db):
    ensure_outbox(db.conn, db.dialect)
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            assert enqueue(conn, db.dialect, api_call(1))
            raise RuntimeError("a later DB step failed")
    assert db.count(OUTBOX) == 0


def test_a_committed_call_is_stored_pending_with_its_request(db):
    db.enqueue(api_call(1, query={"dry": "no"}))
    (call,) = db.outbox.calls("flow_a")
    assert (call.status, call.attempts, call.step_id, call.idx, call.kind, call.connection) == ("pending", 0, "notify", 1, "api", "api")
    assert call.request == {"method": "POST", "path": "/notify", "body": {"n": 1}, "query": {"dry": "no"}}
    assert call.dedup_key == idempotency_key("flow_a", "notify", "1")
    assert call.created_at is not None and call.created_at.tzinfo is not None


def test_enqueueing_a_known_dedup_key_again_inserts_nothing(db):
    assert db.enqueue(api_call(1), api_call(2)) == [True, True]
    assert db.enqueue(api_call(1), api_call(3)) == [False, True]
    assert db.count(OUTBOX) == 3


def test_a_dedup_key_longer_than_the_column_is_refused(db):
    ensure_outbox(db.conn, db.dialect)
    call = OutboxCall("flow_a", "notify", 1, "api", "api", {"method": "POST"}, "k" * 300)
    with pytest.raises(OutboxError, match="dedup_key is 300 characters long; at most 255 fit"):
        enqueue(db.conn, db.dialect, call)


def test_on_mysql_creating_the_tables_inside_an_open_transaction_is_refused(mysql_url):
    from portl.connectors.mysql.config import Config

    outbox = open_outbox(Config(type="mysql", url=mysql_url), ".")
    try:
        outbox.conn.begin()
        with pytest.raises(OutboxError, match="would commit the open transaction; create them before it begins"):
            ensure_outbox(outbox.conn, "mysql")
        outbox.conn.rollback()
        assert not outbox.exists()
    finally:
        outbox.close()


# --- drain -------------------------------------------------------------------------------------


def test_drain_delivers_each_call_once_in_queue_order_with_its_key(db, http_recorder):
    db.enqueue(*(api_call(i) for i in range(3)))
    report = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert (report.delivered, report.dead, report.pending) == (3, [], 0)
    assert [r.body for r in http_recorder.requests] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [r.headers["Idempotency-Key"] for r in http_recorder.requests] == [idempotency_key("flow_a", "notify", str(i)) for i in range(3)]
    assert all(r.headers["Authorization"] == "Bearer tok-123456" for r in http_recorder.requests)
    assert [status for _, status, _ in db.statuses()] == ["delivered"] * 3


def test_a_second_drain_delivers_nothing_new(db, http_recorder):
    db.enqueue(api_call(1), api_call(2))
    db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    again = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert again.delivered == 0
    assert len(http_recorder.requests) == 2


def test_a_failing_endpoint_is_tried_max_attempts_times_then_the_call_is_dead(db, http_recorder):
    db.enqueue(api_call(1))
    http_recorder.respond("POST", "/notify", 503, {"error": "down for maintenance"})
    report = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert (report.delivered, report.failed_attempts, len(report.dead)) == (0, 2, 1)
    assert len(http_recorder.requests) == 3
    assert (db.count(OUTBOX), db.count(DEAD)) == (0, 1)
    (dead,) = db.outbox.calls("flow_a", dead=True)
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert "answered 503 Service Unavailable" in dead.last_error and "down for maintenance" in dead.last_error
    assert dead.moved_at is not None


def test_a_4xx_answer_sends_the_call_to_the_dead_letter_table_at_once(db, http_recorder):
    db.enqueue(api_call(1))
    http_recorder.respond("POST", "/notify", 422, {"error": "n is invalid"})
    report = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert len(report.dead) == 1 and len(http_recorder.requests) == 1
    assert db.outbox.calls("flow_a", dead=True)[0].attempts == 1


def test_a_stored_retry_on_makes_a_4xx_worth_retrying(db, http_recorder):
    db.enqueue(api_call(1, retry_on=["429"]))
    http_recorder.fail_next(1, 429)
    report = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert (report.delivered, report.failed_attempts) == (1, 1)


def test_retry_moves_a_dead_call_back_and_the_next_drain_delivers_it(db, http_recorder):
    db.enqueue(api_call(1), api_call(2))
    http_recorder.fail_next(1, 400)
    first = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert first.dead == [1] and first.delivered == 1
    assert db.outbox.retry("flow_a", [1]) == [1]
    assert (db.count(OUTBOX), db.count(DEAD)) == (2, 0)
    (revived,) = db.outbox.calls("flow_a", status="pending")
    assert (revived.id, revived.attempts) == (1, 0)
    second = db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert second.delivered == 1
    assert [r.headers["Idempotency-Key"] for r in http_recorder.requests] == [
        idempotency_key("flow_a", "notify", "1"), idempotency_key("flow_a", "notify", "2"), idempotency_key("flow_a", "notify", "1")]


def test_retry_of_an_id_that_is_not_dead_fails_naming_it_and_moves_nothing(db, http_recorder):
    db.enqueue(api_call(1))
    http_recorder.fail_next(1, 400)
    db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    with pytest.raises(OutboxError, match="no dead call 7 of job 'flow_a'"):
        db.outbox.retry("flow_a", [1, 7])
    assert db.count(DEAD) == 1


def test_a_dead_call_is_not_enqueued_again_by_a_rerun(db, http_recorder):
    db.enqueue(api_call(1))
    http_recorder.fail_next(1, 400)
    db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert db.enqueue(api_call(1)) == [False]
    assert db.count(OUTBOX) == 0


def test_without_wait_a_failed_call_stays_pending_for_the_next_drain(db, http_recorder):
    db.enqueue(api_call(1))
    http_recorder.fail_next(1, 503)
    report = db.outbox.deliver("flow_a", connections(http_recorder), DrainOptions(backoff_ms=60_000, wait=False))
    assert (report.delivered, report.failed_attempts, report.pending) == (0, 1, 1)
    (call,) = db.outbox.calls("flow_a")
    assert (call.status, call.attempts) == ("pending", 1)
    assert "503" in call.last_error


def test_a_call_another_drain_holds_is_skipped_not_sent_twice(db, http_recorder):
    db.enqueue(api_call(1), api_call(2))
    holder = _second_connection(db)
    try:
        _lock_call(holder, db.dialect, 1)
        report = db.outbox.deliver("flow_a", connections(http_recorder), DrainOptions(wait=False))
    finally:
        holder.rollback()
        holder.close()
    assert report.delivered == 1 and report.pending == 1
    assert [r.body for r in http_recorder.requests] == [{"n": 2}]


def test_calls_of_other_jobs_are_left_alone(db, http_recorder):
    db.enqueue(api_call(1, job="flow_a"), api_call(1, job="flow_b"))
    db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert db.outbox.counts("flow_b") == {"pending": 1, "delivered": 0, "dead": 0}
    assert len(http_recorder.requests) == 1


def test_a_lambda_call_is_delivered_through_its_connection(db, lambda_server):
    seen = []
    lambda_server.register("notify", lambda payload: seen.append(payload) or {"ok": True})
    call = OutboxCall("flow_a", "invoke", None, "lambda", "fn", {"function": "notify", "payload": {"id": 5}}, "key-lambda-1")
    db.enqueue(call)
    lambdas = {"fn": LambdaConnection(type="lambda", endpoint_url=lambda_server.endpoint_url, access_key_id="test",
                                      secret_access_key="test")}
    report = db.outbox.deliver("flow_a", lambdas, FAST)
    assert report.delivered == 1 and seen == [{"id": 5}]


def test_a_connection_missing_from_the_flow_stops_the_drain_and_keeps_the_call_pending(db, http_recorder):
    db.enqueue(api_call(1, connection="billing"))
    with pytest.raises(ConfigError, match="connection 'billing', which the flow file does not define"):
        db.outbox.deliver("flow_a", connections(http_recorder), FAST)
    assert db.statuses() == [(1, "pending", 0)]


def test_drain_with_a_send_function_marks_what_it_delivered(db):
    db.enqueue(api_call(1), api_call(2))
    sent = []

    def send(call):
        sent.append(call.id)
        if call.idx == 2:
            raise CallError("answered 400", retryable=False)

    report = db.outbox.drain("flow_a", send, FAST)
    assert sent == [1, 2] and report.dead == [2]
    assert db.statuses() == [(1, "delivered", 1)]


# --- helpers -----------------------------------------------------------------------------------


def _second_connection(db: Database):
    """Another session on the same database, in a transaction of its own."""
    if db.dialect == "postgres":
        import psycopg

        return psycopg.connect(**db.config.connect_kwargs("."))  # not autocommit: the first statement begins
    from portl.connectors.mysql.client import Server

    conn = Server(db.config, ".", "destination").connect()
    conn.begin()
    return conn


def _lock_call(conn, dialect: str, call_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {OUTBOX} WHERE id = %s FOR UPDATE", (call_id,))
        assert cur.fetchone() is not None
