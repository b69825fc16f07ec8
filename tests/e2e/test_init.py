"""`portl init` as a person uses it: the real command in a pseudo-terminal, answered key by key.

Each test types its answers into ``portl init`` running under pexpect in its own folder, then
checks what was written (and, for "run now", what was loaded) with the real files and databases.
"""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

from portl.spec.loader import job_names, load_job

from .conftest import PORTL, Portl, query

CUSTOMERS = (
    "customer_id,First Name,Email,Signup Date,Lifetime Value\n"
    '1001,Ada, ADA@Example.com ,2023-01-15,"$1,234.50"\n'
    "1002,Alan,alan@example.com,16/02/2023,$980.00\n"
    '1003,Grace,grace@example.com,2023-03-01,"$12,400.00"\n'
    "1004,Edsger,edsger@example.nl,13/04/2023,$310.25\n"
)


class Wizard:
    """``portl init`` running in a pseudo-terminal. ``TERM=dumb`` keeps rich from styling the
    text (escape codes would split the words the test waits for); COLUMNS and LINES keep lines
    long enough not to wrap."""

    def __init__(self, portl: Portl, *args: str):
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable, ["-m", "portl.cli.app", "init", *args], cwd=str(portl.cwd),
            env=portl.env(TERM="dumb", LINES="60"), encoding="utf-8", timeout=30, dimensions=(60, 250),
        )
        self.child.logfile_read = self.log

    def answer(self, prompt: str, text: str = "") -> None:
        """Wait for a prompt containing ``prompt``, then type ``text`` and Enter."""
        try:
            self.child.expect_exact(prompt)
        except (pexpect.EOF, pexpect.TIMEOUT):
            raise AssertionError(f"no prompt {prompt!r}; the wizard printed:\n{self.transcript}") from None
        self.child.sendline(text)

    def answers(self, *steps: tuple[str, str]) -> None:
        for prompt, text in steps:
            self.answer(prompt, text)

    def expect(self, text: str) -> None:
        try:
            self.child.expect_exact(text)
        except (pexpect.EOF, pexpect.TIMEOUT):
            raise AssertionError(f"{text!r} was not printed; the wizard printed:\n{self.transcript}") from None

    def finish(self) -> int:
        """Wait for the command to end; its exit code."""
        self.child.expect(pexpect.EOF, timeout=120)
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -self.child.signalstatus

    @property
    def transcript(self) -> str:
        return self.log.getvalue()


REST = (("Add hooks", ""), ("Batch size", ""), ("When writing a batch fails", ""), ("Attempts per batch", ""),
        ("Parallel workers", ""), ("Before writing", ""), ("After the run", ""), ("Stop when more rows", ""),
        ("Rows to preview", ""))


@pytest.fixture
def customers_csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    return path


def test_csv_into_sqlite_with_auto_mapping_runs_now(portl, customers_csv, tmp_path):
    wizard = Wizard(portl)
    wizard.answers(("Source type", "csv"), ("Source file path", "customers.csv"))
    wizard.expect("Found CSV file customers.csv: 5 columns")
    wizard.answers(("Destination type", "sqlite"), ("Destination path", "shop.db"), ("Destination table", ""),
                   ("Map columns", "auto"), ("Key columns", "customer_id"), ("On a conflict", "overwrite"),
                   ("Apply these conversions", "y"), ("Transforms", "Email=trim,lower"), *REST)
    wizard.expect("The first 4 rows as they would be written")
    wizard.answers(("Save the job as", "customers.yaml"), ("Job name", ""))
    wizard.expect("Plan for job customers")
    wizard.answer("Run now?", "y")

    assert wizard.finish() == 0, wizard.transcript
    assert "succeeded job customers" in wizard.transcript
    rows = query(tmp_path / "shop.db", "SELECT customer_id, email, signup_date, lifetime_value FROM customers "
                                       "ORDER BY customer_id")
    assert rows == [(1001, "ada@example.com", "2023-01-15", 1234.5), (1002, "alan@example.com", "2023-02-16", 980.0),
                    (1003, "grace@example.com", "2023-03-01", 12400.0), (1004, "edsger@example.nl", "2023-04-13", 310.25)]
    assert portl("validate", "customers.yaml").code == 0


def test_postgres_to_csv_with_manual_mapping_a_transform_and_a_hook_is_saved_without_running(portl, pg_url, tmp_path):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer text, placed text, amount numeric(10,2), "
                     "note text)")
        conn.execute("INSERT INTO orders VALUES (1, ' ada ', '15/01/2024', 12.50, 'x'), (2, 'alan', '16/02/2024', 7, "
                     "NULL)")
    (tmp_path / "hooks.py").write_text("def tag(row):\n    row['customer'] += '!'\n    return row\n")

    wizard = Wizard(portl)
    wizard.answers(("Source type", "postgres"), ("Connection URL", pg_url), ("Schema", ""))
    wizard.expect("orders")
    wizard.answer("Source table", "orders")
    wizard.expect("primary key: id")
    wizard.answers(("Destination type", "csv"), ("Destination path", "orders.csv"), ("Map columns", "manual"),
                   ("destination column", ""), ("type", ""), ("transforms", ""),
                   ("destination column", ""), ("type", ""), ("transforms", "trim,upper"),
                   ("destination column", "placed_on"), ("type", "date"), ("formats", ""), ("transforms", ""),
                   ("destination column", ""), ("type", ""), ("transforms", ""),
                   ("destination column", "-"),
                   ("Write mode", ""),
                   ("Add hooks", "y"), ("Before each row", "python"), ("function", "hooks:tag"),
                   ("After each row", ""), ("Before each batch", ""), ("After each batch", ""),
                   ("Before the job", ""), ("After the job", ""),
                   *REST[1:], ("Save the job as", "orders.yaml"), ("Job name", ""), ("Run now?", "n"))

    assert wizard.finish() == 0, wizard.transcript
    assert not (tmp_path / "orders.csv").exists()
    job = load_job(str(tmp_path / "orders.yaml"), environ={}).job
    assert (job.source.type, job.source.table, job.destination.path) == ("postgres", "orders", "orders.csv")
    assert list(job.mapping.columns) == ["id", "customer", "placed_on", "amount"]
    assert [t.name for t in job.mapping.columns["customer"].transform] == ["trim", "upper"]
    assert (job.mapping.columns["placed_on"].type, job.mapping.columns["placed_on"].formats) == ("date", ["%d/%m/%Y"])
    assert job.hooks.before_row[0].function == "hooks:tag"
    assert portl("validate", "orders.yaml").code == 0

    ran = portl("run", "orders.yaml")  # the saved job does what was asked for
    assert ran.code == 0, ran.log
    with open(tmp_path / "orders.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["id", "customer", "placed_on", "amount"],
                                            ["1", "ADA!", "2024-01-15", "12.50"], ["2", "ALAN!", "2024-02-16", "7.00"]]


def test_a_second_job_is_appended_to_an_existing_file_and_runs_by_name(portl, customers_csv, tmp_path):
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        # Customer loads.
        source: {type: csv, path: customers.csv}
        destination: {type: sqlite, path: shop.db, table: customers}
    """))

    wizard = Wizard(portl, "--source-path", "customers.csv", "--destination-path", "shop.db")
    wizard.answers(("Destination table", "emails"), ("Map columns", "manual"),
                   ("destination column", "id"), ("type", "bigint"), ("transforms", ""),
                   ("destination column", "-"),
                   ("destination column", "email"), ("type", ""), ("transforms", "trim,lower"),
                   ("destination column", "-"), ("destination column", "-"),
                   ("Key columns", "id"), ("On a conflict", "skip"), *REST, ("Save the job as", "jobs.yaml"))
    wizard.expect("The file exists")
    wizard.answers(("append this job to it, or overwrite it", ""), ("Job name", "emails"), ("Run now?", "n"))

    assert wizard.finish() == 0, wizard.transcript
    assert job_names(str(tmp_path / "jobs.yaml")) == ["jobs", "emails"]
    assert (tmp_path / "jobs.yaml").read_text().startswith("jobs:\n    # Customer loads.\n  - name: jobs\n")
    ran = portl("run", "jobs.yaml", "--job", "emails")
    assert ran.code == 0, ran.log
    assert query(tmp_path / "shop.db", "SELECT id, email FROM emails ORDER BY id") == [
        (1001, "ada@example.com"), (1002, "alan@example.com"), (1003, "grace@example.com"), (1004, "edsger@example.nl")]
    assert portl("validate", "jobs.yaml").code == 0


def test_an_invalid_answer_is_explained_and_asked_again(portl, customers_csv, tmp_path):
    wizard = Wizard(portl, "--destination-path", "shop.db")
    wizard.answers(("Source type", "csv"), ("Source file path", "customer.csv"))
    wizard.expect("✗ no such file: customer.csv (did you mean 'customers.csv'?)")
    wizard.answer("Source file path", "customers.csv")
    wizard.answers(("Destination table", ""), ("Map columns", ""), ("Key columns", ""), ("Write mode", ""),
                   ("Apply these conversions", ""), ("Transforms", ""), ("Add hooks", ""), ("Batch size", "lots"))
    wizard.expect("✗ 'lots' is not a whole number")
    wizard.answers(("Batch size", "500"), *REST[2:], ("Save the job as", ""), ("Job name", ""), ("Run now?", "n"))

    assert wizard.finish() == 0, wizard.transcript
    job = load_job(str(tmp_path / "customers.yaml"), environ={}).job
    assert (job.source.path, job.batch.size) == ("customers.csv", 500)


def test_an_unreachable_server_and_a_wrong_table_are_explained_and_asked_again(portl, mysql_url, tmp_path):
    import pymysql

    from tests.services import MYSQL_HOST, MYSQL_PORT

    database = mysql_url.rsplit("/", 1)[1]
    with pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", database=database,
                         autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40))")
        cur.execute("INSERT INTO people VALUES (1, 'Ada'), (2, 'Alan')")
    with socket.socket() as probe:  # a port nothing listens on once the socket is closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    wizard = Wizard(portl, "--destination-path", "people.csv")
    wizard.answers(("Source type", "mysql"), ("Connection URL", ""), ("Host", MYSQL_HOST), ("Port", "lots"))
    wizard.expect("✗ 'lots' is not a whole number")
    wizard.answers(("Port", str(closed_port)), ("User", "root"), ("Password", ""), ("Database", database))
    wizard.expect(f"cannot reach the MySQL server at {MYSQL_HOST}:{closed_port}")
    wizard.expect("Check the connection details")
    wizard.answers(("Connection URL", ""), ("Host", ""), ("Port", str(MYSQL_PORT)), ("User", ""), ("Password", ""),
                   ("Database", ""), ("Source table", "peeple"))
    wizard.expect("✗ 'peeple' is not a valid table; did you mean 'people'?")
    wizard.answers(("Source table", "people"), ("Map columns", ""), ("Write mode", ""), ("Transforms", ""), *REST,
                   ("Save the job as", ""), ("Job name", ""), ("Run now?", "y"))

    assert wizard.finish() == 0, wizard.transcript
    assert "Traceback" not in wizard.transcript
    with open(tmp_path / "people.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["id", "name"], ["1", "Ada"], ["2", "Alan"]]


def test_ctrl_c_at_the_last_question_writes_nothing_and_exits_130(portl, customers_csv, tmp_path):
    wizard = Wizard(portl, "--source-path", "customers.csv", "--destination-path", "shop.db")
    wizard.answers(("Destination table", ""), ("Map columns", ""), ("Key columns", ""), ("Write mode", ""),
                   ("Apply these conversions", ""), ("Transforms", ""), *REST, ("Save the job as", ""), ("Job name", ""))
    wizard.expect("Run now?")
    wizard.child.sendintr()

    assert wizard.finish() == 130, wizard.transcript
    assert "cancelled: nothing was written" in wizard.transcript
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


def test_ctrl_c_at_the_first_question_exits_130(portl, tmp_path):
    wizard = Wizard(portl)
    wizard.expect("Source type")
    wizard.child.sendintr()

    assert wizard.finish() == 130, wizard.transcript
    assert list(tmp_path.iterdir()) == []


def test_ctrl_d_at_a_question_writes_nothing_and_exits_130(portl, customers_csv, tmp_path):
    wizard = Wizard(portl, "--source-path", "customers.csv")
    wizard.expect("Destination type")
    wizard.child.sendeof()

    assert wizard.finish() == 130, wizard.transcript
    assert "cancelled: nothing was written" in wizard.transcript
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


def test_yes_on_a_terminal_asks_nothing(portl, customers_csv, tmp_path):
    wizard = Wizard(portl, "--yes", "--source-path", "customers.csv", "--destination-path", "shop.db")

    assert wizard.finish() == 0, wizard.transcript
    assert "saved job customers to customers.yaml" in wizard.transcript
    assert portl("validate", "customers.yaml").code == 0


def test_without_a_terminal_every_missing_answer_is_listed_and_nothing_is_written(portl, tmp_path):
    done = subprocess.run([*PORTL, "init", "--destination-type", "sqlite", "--batch-size", "lots"], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=portl.env())

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for expected in ("--source-type (source_type): missing",
                     "--source-path or --source-url or --source-connection",
                     "--batch-size (batch_size): 'lots' is not a whole number"):
        assert expected in done.stderr
    assert list(tmp_path.iterdir()) == []
