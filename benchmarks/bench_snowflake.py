"""CSV -> Snowflake: Portl beside a hand-written PUT + COPY INTO, measured in the same run.

    python benchmarks/bench_snowflake.py [--rows N] [--repeat R]

No Snowflake account is reachable here, so both sides load into fakesnow in server mode (DuckDB
behind Snowflake's HTTP protocol, NOT Snowflake), started here as its own process, through the
same snowflake-connector-python:

  portl      portl run: CSV -> table, the four typed columns mapped, a gzip CSV file PUT and
             COPY'd per batch of 50,000 rows with its checkpoint in the batch's transaction
  reference  a script that gzips the CSV file as it is, PUTs it to a temporary stage and runs ONE
             COPY INTO a table declared with the same types (SKIP_HEADER = 1)

The ratio is reference time / Portl time (above 1: Portl is faster). fakesnow's own cost (DuckDB
reading the CSV) is in both times, so the ratio says how much Portl adds around COPY (reading,
typing and writing the batches again, a transaction and a checkpoint per batch); it says nothing
of a real warehouse's speed. Target >= 0.50x. Prints PASS/FAIL and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.50
DDL = ('CREATE TABLE "{table}" ("id" NUMBER(19,0), "name" VARCHAR, "email" VARCHAR, "city" VARCHAR, '
       '"signup_date" DATE, "amount" NUMBER(12,2), "active" BOOLEAN, "quantity" VARCHAR, "score" VARCHAR, '
       '"notes" VARCHAR)')

REFERENCE = r'''
import gzip, os, shutil, sys, tempfile
import snowflake.connector
port, database, path, table = sys.argv[1:5]
conn = snowflake.connector.connect(user="fake", password="snow", account="fakesnow", host="127.0.0.1", port=int(port),
                                   protocol="http", database=database, schema="PUBLIC", network_timeout=600,
                                   session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False})
cur = conn.cursor()
folder = tempfile.mkdtemp()
packed = os.path.join(folder, "data.csv.gz")
with open(path, "rb") as source, gzip.open(packed, "wb", compresslevel=1) as target:
    shutil.copyfileobj(source, target)
cur.execute("CREATE TEMPORARY STAGE REF_STAGE")
cur.execute(f"PUT 'file://{packed}' @REF_STAGE/ AUTO_COMPRESS = FALSE")
cur.execute(f'COPY INTO "{table}" FROM @REF_STAGE/ FILE_FORMAT = (TYPE = CSV COMPRESSION = GZIP SKIP_HEADER = 1 '
            "FIELD_OPTIONALLY_ENCLOSED_BY = '\"') ON_ERROR = ABORT_STATEMENT")
print(sum(row[3] for row in cur.fetchall()))
shutil.rmtree(folder)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fakesnow", "-s", "-p", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fakesnow did not start")


def prepare(port: int, database: str, table: str) -> None:
    import snowflake.connector

    conn = snowflake.connector.connect(user="fake", password="snow", account="fakesnow", host="127.0.0.1", port=port,
                                       protocol="http",
                                       session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False})
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.PUBLIC")
        cur.execute(f"USE SCHEMA {database}.PUBLIC")
        cur.execute(DDL.format(table=table))
    conn.close()


def job_text(port: int, database: str, csv_path: Path, table: str) -> str:
    return (f"name: bench\nsource: {{type: csv, path: '{csv_path}'}}\n"
            f"destination: {{type: snowflake, account: fakesnow, user: fake, password: snow, host: 127.0.0.1, "
            f"port: {port}, protocol: http, database: {database}, table: {table}, network_timeout: 600, "
            "session_parameters: {CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED: false}}\n"
            "batch: {size: 50000}\n"
            "mapping:\n  columns:\n    id: {type: bigint}\n    name: {}\n    email: {}\n    city: {}\n"
            "    signup_date: {type: date}\n    amount: {type: 'decimal(12,2)'}\n    active: {type: bool}\n"
            "    quantity: {}\n    score: {}\n    notes: {}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    data = c.dataset(options.rows)
    print(c.environment_line())
    print(f"{c.short(options.rows)} rows, {data.megabytes:.0f} MB of CSV -> Snowflake (fakesnow, not Snowflake)")
    work = c.workdir("snowflake")
    script = work / "reference.py"
    script.write_text(REFERENCE)
    summary = c.Summary("CSV -> Snowflake (fakesnow)")

    def attempts():
        for attempt in range(options.repeat):
            proc, port = start_server()
            try:
                prepare(port, "BENCH", f"portl{attempt}")
                prepare(port, "BENCH", f"ref{attempt}")
                job = work / "job.yaml"
                job.write_text(job_text(port, "BENCH", data.path, f"portl{attempt}"))
                mine = c.run_portl(job, work)
                theirs = c.measure([sys.executable, str(script), str(port), "BENCH", str(data.path), f"ref{attempt}"],
                                   cwd=ROOT)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            yield mine, theirs

    c.head_to_head(summary, f"Portl >= {TARGET:.2f}x PUT + one COPY", TARGET, options.rows, attempts())


if __name__ == "__main__":
    main()
