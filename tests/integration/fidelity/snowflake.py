"""Snowflake in the type-fidelity tests: naming it in a job, seeding the fixture table as a
source, reading a destination table back with the driver, and what it must then hold.

Snowflake runs here as fakesnow (DuckDB behind Snowflake's HTTP protocol), which differs from
Snowflake in a few places named in :data:`FAKESNOW`; each such difference is a documented gap of
these tests, never of what Portl writes. Reading back corrects one of them: fakesnow sends a NULL
timestamp as 1970-01-01, so each timestamp column is read with ``IS NULL`` beside it.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from tests.integration.fidelity.table import LOGICAL, NAMES, ROWS

SOURCE_TABLE, DESTINATION_TABLE = "fidelity", "fidelity_out"
UTC = dt.timezone.utc

DDL = f"""CREATE TABLE "{SOURCE_TABLE}" ("id" NUMBER(10,0), "c_int" NUMBER(10,0), "c_bigint" NUMBER(19,0),
    "c_ubigint" NUMBER(20,0), "c_dec38" NUMBER(38,10), "c_dec12" NUMBER(12,2), "c_float" FLOAT, "c_bool" BOOLEAN,
    "c_text" VARCHAR, "c_long" VARCHAR, "c_unicode" VARCHAR, "c_date" DATE, "c_ts" TIMESTAMP_NTZ(6),
    "c_tstz" TIMESTAMP_TZ(6), "c_json" VARIANT, "c_bytes" BINARY, "c_uuid" VARCHAR(36))"""

CREATED = {"int": "NUMBER(10,0)", "bigint": "NUMBER(19,0)", "float": "FLOAT", "bool": "BOOLEAN", "text": "TEXT",
           "date": "DATE", "timestamp": "TIMESTAMP_NTZ", "timestamptz": "TIMESTAMP_TZ", "json": "VARIANT",
           "bytes": "BINARY", "uuid": "TEXT"}
"""The type information_schema declares for each logical type's column Portl creates (decimals:
NUMBER(p,s))."""

FAKESNOW: dict[tuple[str, int | None], str] = {}
"""(column, id or None for every row) whose values fakesnow does not keep as Snowflake does, and why:
none since bytes are staged as hex text and converted with TO_BINARY (fakesnow ignores
BINARY_FORMAT and would keep a BINARY field's hex text as its bytes)."""

FAKESNOW_SOURCE = {
    (name, row["id"]): "fakesnow sends a NULL timestamp as 1970-01-01 00:00:00"
    for name in ("c_ts", "c_tstz") for row in ROWS if row[name] is None
}
"""(column, id) Portl's source cannot read as Snowflake would send it from fakesnow, and why."""


def yaml(place, table: str) -> str:
    return f"{{type: snowflake, {place.yaml}, table: {table}}}"


def seed(place) -> None:
    """The fixture table as a Snowflake table of Snowflake's own types, inserted with the driver."""
    conn = place.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(DDL)
            for row in ROWS:
                values = []
                for name in NAMES:
                    value = row[name]
                    if name == "c_json" and value is not None:
                        values.append(f"PARSE_JSON({_literal(value)})")
                    elif name == "c_bytes" and value is not None:
                        values.append(f"TO_BINARY('{value.hex()}', 'HEX')")
                    else:
                        values.append(_literal(value))
                cur.execute(f'INSERT INTO "{SOURCE_TABLE}" SELECT ' + ", ".join(values))
    finally:
        conn.close()


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return f"'{value!r}'::FLOAT" if value == value and abs(value) != float("inf") else \
            {"nan": "'NaN'::FLOAT", "inf": "'inf'::FLOAT", "-inf": "'-inf'::FLOAT"}[repr(value)]
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, dt.datetime):
        stamp = value.astimezone(UTC) if value.tzinfo else value
        text = stamp.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return f"'{text}+00:00'::TIMESTAMP_TZ" if value.tzinfo else f"'{text}'::TIMESTAMP_NTZ"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'::DATE"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_back(place) -> tuple[list[dict], dict[str, str]]:
    """The destination table's rows in id order, and each column's declared type."""
    declared = {name: (kind if kind != "NUMBER" else f"NUMBER({p},{s})") for name, kind, p, s in place.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_schema = CURRENT_SCHEMA() AND table_name = %s", (DESTINATION_TABLE,))}
    stamps = [n for n in NAMES if declared.get(n, "").startswith("TIMESTAMP")]
    nulls = ", ".join(f'"{n}" IS NULL' for n in stamps)
    conn = place.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT *, {nulls} FROM "{DESTINATION_TABLE}" ORDER BY "id"')
            names = [d.name for d in cur.description]
            rows = []
            for values in cur.fetchall():
                row = dict(zip(names[:len(names) - len(stamps)], values))
                for name, null in zip(stamps, values[len(names) - len(stamps):]):
                    if null:
                        row[name] = None
                rows.append(row)
    finally:
        conn.close()
    return rows, declared


def stored(logical: str, value):
    """A value of ``logical`` type as the driver reads it from the column Portl created."""
    if value is None:
        return None
    if logical == "timestamptz":
        return value.astimezone(UTC)
    if logical == "json":
        return json.dumps(json.loads(value), sort_keys=True)
    if logical.endswith(",0)"):
        return int(value)  # the driver reads a NUMBER(p,0) as an int
    return value


def normalised(logical: str, value):
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if logical == "json":
        return json.dumps(json.loads(value), sort_keys=True)
    if logical in ("int", "bigint") and isinstance(value, Decimal):
        return int(value)
    if isinstance(value, bytearray):
        return bytes(value)  # the driver's form of BINARY
    return value


def declared_type(logical: str) -> str:
    if logical.startswith("decimal"):
        return "NUMBER" + logical[len("decimal"):]
    return CREATED[logical]


def logical_read(name: str) -> str:
    """The logical type Portl's source reads a column of :data:`DDL` as."""
    kind = LOGICAL[name]
    return {"c_uuid": "text"}.get(name, kind)
