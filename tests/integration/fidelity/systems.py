"""The five systems of the matrix: seed the fixture table as a source, name a source or a
destination in a job file, and read a destination back.

Each source is seeded the way a user's data would sit in that system, with its own driver or
library (never with Portl), holding what the system can hold: MySQL has no time zones and no NaN,
SQLite no NaN either. Reading back also goes through the system's own driver, so what is
compared is what a user of that system would see.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.integration.fidelity.table import COLUMNS, LOGICAL, NAMES, ROWS

KINDS = ("csv", "parquet", "sqlite", "postgres", "mysql")
SOURCE_TABLE, DESTINATION_TABLE = "fidelity", "fidelity_out"


@dataclass
class Place:
    """Where one test's systems live: its folder, and its own Postgres and MySQL databases."""

    folder: Path
    pg_url: str | None = None
    mysql_url: str | None = None


# --- naming a system in a job file ---------------------------------------------------------------


def source_yaml(kind: str, place: Place) -> str:
    return {
        "csv": "{type: csv, path: src.csv}",
        "parquet": "{type: parquet, path: src.parquet}",
        "sqlite": f"{{type: sqlite, path: src.db, table: {SOURCE_TABLE}}}",
        "postgres": f"{{type: postgres, url: '{place.pg_url}', table: {SOURCE_TABLE}}}",
        "mysql": f"{{type: mysql, url: '{place.mysql_url}', table: {SOURCE_TABLE}}}",
    }[kind]


def destination_yaml(kind: str, place: Place) -> str:
    return {
        "csv": "{type: csv, path: out.csv}",
        "parquet": "{type: parquet, path: out.parquet}",
        "sqlite": f"{{type: sqlite, path: out.db, table: {DESTINATION_TABLE}}}",
        "postgres": f"{{type: postgres, url: '{place.pg_url}', table: {DESTINATION_TABLE}}}",
        "mysql": f"{{type: mysql, url: '{place.mysql_url}', table: {DESTINATION_TABLE}}}",
    }[kind]


def csv_mapping() -> str:
    """A CSV file has no types: the job names each column's type, and how bytes are written."""
    lines = ["mapping:", "  columns:"]
    for column in COLUMNS:
        extra = ", format: base64" if column.logical == "bytes" else ""
        lines.append(f"    {column.name}: {{type: '{column.logical}'{extra}}}")
    return "\n".join(lines) + "\n"


# --- seeding sources ------------------------------------------------------------------------------


def seed(kind: str, place: Place) -> None:
    """Write the fixture table into ``kind`` as the job's source."""
    {"csv": _seed_csv, "parquet": _seed_parquet, "sqlite": _seed_sqlite, "postgres": _seed_postgres,
     "mysql": _seed_mysql}[kind](place)


def _csv_field(logical: str, value) -> str:
    """A value as CSV text, every value quoted (a quoted empty field is an empty string, an
    unquoted one NULL)."""
    if value is None:
        return ""
    if logical == "bool":
        text = "true" if value else "false"
    elif logical == "bytes":
        text = base64.b64encode(value).decode("ascii")
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ", timespec="microseconds")
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return '"' + text.replace('"', '""') + '"'


def _seed_csv(place: Place) -> None:
    lines = [",".join(NAMES)]
    lines += [",".join(_csv_field(LOGICAL[n], row[n]) for n in NAMES) for row in ROWS]
    (place.folder / "src.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


PARQUET_TYPES = {
    "id": pa.int32(), "c_int": pa.int32(), "c_bigint": pa.int64(), "c_ubigint": pa.uint64(),
    "c_dec38": pa.decimal128(38, 10), "c_dec12": pa.decimal128(12, 2), "c_float": pa.float64(),
    "c_bool": pa.bool_(), "c_text": pa.string(), "c_long": pa.large_string(), "c_unicode": pa.string(),
    "c_date": pa.date32(), "c_ts": pa.timestamp("us"), "c_tstz": pa.timestamp("us", "+05:30"),
    "c_json": pa.json_(), "c_bytes": pa.binary(), "c_uuid": pa.uuid(),
}


def _seed_parquet(place: Place) -> None:
    """A Parquet file as other tools write one: unsigned 64-bit integers, a zoned timestamp column,
    and Parquet's own UUID and JSON types."""
    import uuid

    columns = {}
    for name in NAMES:
        values = [row[name] for row in ROWS]
        if name == "c_ubigint":
            values = [None if v is None else int(v) for v in values]
        if name == "c_uuid":
            values = [None if v is None else uuid.UUID(v).bytes for v in values]
        columns[name] = pa.array(values, PARQUET_TYPES[name])
    pq.write_table(pa.table(columns), place.folder / "src.parquet")


SQLITE_DDL = f"""CREATE TABLE {SOURCE_TABLE} (id INTEGER PRIMARY KEY, c_int INTEGER, c_bigint BIGINT,
    c_ubigint DECIMAL(20,0), c_dec38 DECIMAL(38,10), c_dec12 DECIMAL(12,2), c_float REAL, c_bool BOOLEAN,
    c_text TEXT, c_long TEXT, c_unicode TEXT, c_date DATE, c_ts TIMESTAMP, c_tstz TIMESTAMPTZ, c_json JSONTEXT,
    c_bytes BLOB, c_uuid UUID)"""


def _sqlite_value(value):
    if isinstance(value, Decimal):
        return str(value)  # SQLite's NUMERIC affinity turns the digits into a number, as it would for Portl
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _seed_sqlite(place: Place) -> None:
    conn = sqlite3.connect(place.folder / "src.db")
    try:
        conn.execute(SQLITE_DDL)
        marks = ", ".join("?" * len(NAMES))
        conn.executemany(f"INSERT INTO {SOURCE_TABLE} VALUES ({marks})",
                         [[_sqlite_value(row[n]) for n in NAMES] for row in ROWS])
        conn.commit()
    finally:
        conn.close()


POSTGRES_DDL = f"""CREATE TABLE {SOURCE_TABLE} (id integer PRIMARY KEY, c_int integer, c_bigint bigint,
    c_ubigint numeric(20,0), c_dec38 numeric(38,10), c_dec12 numeric(12,2), c_float double precision,
    c_bool boolean, c_text text, c_long text, c_unicode text, c_date date, c_ts timestamp, c_tstz timestamptz,
    c_json jsonb, c_bytes bytea, c_uuid uuid)"""


def _seed_postgres(place: Place) -> None:
    import psycopg

    casts = {"c_json": "::jsonb", "c_uuid": "::uuid"}
    marks = ", ".join("%s" + casts.get(n, "") for n in NAMES)
    with psycopg.connect(place.pg_url, autocommit=True) as conn:
        conn.execute(POSTGRES_DDL)
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {SOURCE_TABLE} VALUES ({marks})", [[row[n] for n in NAMES] for row in ROWS])


MYSQL_DDL = f"""CREATE TABLE {SOURCE_TABLE} (id INT PRIMARY KEY, c_int INT, c_bigint BIGINT,
    c_ubigint BIGINT UNSIGNED, c_dec38 DECIMAL(38,10), c_dec12 DECIMAL(12,2), c_float DOUBLE, c_bool TINYINT(1),
    c_text LONGTEXT, c_long LONGTEXT, c_unicode VARCHAR(100), c_date DATE, c_ts DATETIME(6), c_tstz DATETIME(6),
    c_json JSON, c_bytes LONGBLOB, c_uuid UUID) ENGINE=InnoDB"""


def mysql_connect(url: str):
    """A PyMySQL connection to the database of a ``mysql://`` URL."""
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", database=parts.path.lstrip("/"), autocommit=True,
                           charset="utf8mb4")


def _mysql_value(value):
    """What a MySQL table can hold: an instant as its UTC time, no NaN and no infinities."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def _seed_mysql(place: Place) -> None:
    conn = mysql_connect(place.mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute(MYSQL_DDL)
            marks = ", ".join(["%s"] * len(NAMES))
            cur.executemany(f"INSERT INTO {SOURCE_TABLE} VALUES ({marks})",
                            [[_mysql_value(row[n]) for n in NAMES] for row in ROWS])
    finally:
        conn.close()


# --- reading destinations back --------------------------------------------------------------------


def read_back(kind: str, place: Place) -> tuple[list[dict], dict[str, str]]:
    """The destination's rows in id order, as the system's driver gives them, and each column's
    type as the destination declares it."""
    return {"csv": _read_csv, "parquet": _read_parquet, "sqlite": _read_sqlite, "postgres": _read_postgres,
            "mysql": _read_mysql}[kind](place)


def _read_csv(place: Place) -> tuple[list[dict], dict[str, str]]:
    """Every field as text; an unquoted empty field is NULL, a quoted one an empty string."""
    path = place.folder / "out.csv"
    with open(path, encoding="utf-8") as f:
        names = f.readline().rstrip("\n").split(",")
    table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(
                               column_types={n: pa.string() for n in names}, null_values=[""],
                               strings_can_be_null=True, quoted_strings_can_be_null=False))
    return _by_id(table.to_pylist(), int), {n: "text" for n in names}


def _read_parquet(place: Place) -> tuple[list[dict], dict[str, str]]:
    table = pq.read_table(place.folder / "out.parquet")
    rows = table.to_pylist()
    for row in rows:
        for name, value in row.items():
            if type(value).__name__ == "UUID":
                row[name] = str(value)
    return _by_id(rows), {f.name: str(f.type) for f in table.schema}


def _read_sqlite(place: Place) -> tuple[list[dict], dict[str, str]]:
    conn = sqlite3.connect(place.folder / "out.db")
    try:
        cur = conn.execute(f"SELECT * FROM {DESTINATION_TABLE}")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        declared = {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({DESTINATION_TABLE})")}
    finally:
        conn.close()
    return _by_id(rows), declared


def _read_postgres(place: Place) -> tuple[list[dict], dict[str, str]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(place.pg_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows = conn.execute(f"SELECT * FROM {DESTINATION_TABLE}").fetchall()
        declared = {r["attname"]: r["type"] for r in conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", (DESTINATION_TABLE,))}
    for row in rows:
        for name, value in row.items():
            if type(value).__name__ == "UUID":
                row[name] = str(value)
            elif declared.get(name) in ("json", "jsonb") and value is not None:
                row[name] = json.dumps(value)  # psycopg parses JSON; compare it as a document
    return _by_id(rows), declared


def _read_mysql(place: Place) -> tuple[list[dict], dict[str, str]]:
    conn = mysql_connect(place.mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{DESTINATION_TABLE}`")
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
            cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (DESTINATION_TABLE,))
            declared = dict(cur.fetchall())
    finally:
        conn.close()
    return _by_id(rows), declared


def _by_id(rows: list[dict], convert=lambda v: v) -> list[dict]:
    return sorted(rows, key=lambda r: convert(r["id"]))
