"""Text in every character set and collation a real MySQL/MariaDB schema uses (latin1, the legacy
utf8 = utf8mb3, utf8mb4, binary), nullable or not, is read character for character: by the source
itself (the packed read and the query read), into PostgreSQL (the verbatim CSV path) and into
SQLite (the Arrow path)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import psycopg
import pytest

import portl
from tests.integration.mysql.support import job_file, read_all

LATIN1 = ["café", "Straße", "niño", "Ærø Øst Åse", "€ 5, ±1 ¿qué? «ça»", 'quote " comma , back\\slash',
          "line\nbreak\ttab", "", "plain ascii"]
UTF8MB3 = LATIN1 + ["Zoë 李小龙", "Ωμέγα Жж", "ﬁ ligature ✓"]
UTF8MB4 = UTF8MB3 + ["grinning 😀", "𝄞 clef and 🇳🇴 flag"]
TEXTS = {"latin1": LATIN1, "utf8mb3": UTF8MB3, "utf8mb4": UTF8MB4}

COLLATIONS = [
    ("latin1", "latin1_swedish_ci"), ("latin1", "latin1_general_ci"), ("latin1", "latin1_bin"),
    ("utf8mb3", "utf8mb3_general_ci"), ("utf8mb3", "utf8mb3_unicode_ci"), ("utf8mb3", "utf8mb3_bin"),
    ("utf8mb4", "utf8mb4_general_ci"), ("utf8mb4", "utf8mb4_unicode_ci"), ("utf8mb4", "utf8mb4_bin"),
    ("binary", "binary"),
]


NULLABILITY = ["NOT NULL", "NULL"]


def expected_rows(charset: str, nullability: str) -> list[dict]:
    """One row per text, in a varchar and a text column; in a nullable table every second label and
    every third body is NULL. A binary table holds the UTF-8 bytes of the texts, and bytes that are no UTF-8 at all."""
    if charset == "binary":
        values: list = [t.encode() for t in UTF8MB4] + [b"\x00\xff\xfd\xfe", b"\xff"]
    else:
        values = TEXTS[charset]
    nullable = nullability == "NULL"
    return [{"id": i, "label": None if nullable and i % 2 == 0 else v, "body": None if nullable and i % 3 == 0 else v}
            for i, v in enumerate(values, 1)]


@pytest.fixture
def legacy_table(sql):
    """``legacy_table(charset, collation, nullability)``: table ``t`` in that character set and
    collation, its text columns ``NULL`` or ``NOT NULL``, holding :func:`expected_rows`; returns the rows."""

    def make(charset: str, collation: str, nullability: str) -> list[dict]:
        sql(f"CREATE TABLE t (id INT NOT NULL PRIMARY KEY, label VARCHAR(60) {nullability}, body TEXT {nullability}) "
            f"DEFAULT CHARSET={charset} COLLATE={collation}")
        rows = expected_rows(charset, nullability)
        for r in rows:
            sql("INSERT INTO t VALUES (%s, %s, %s)", (r["id"], r["label"], r["body"]))
        return rows

    return make


def matrix(test):
    """Run ``test`` for each collation, its text columns NOT NULL and nullable."""
    test = pytest.mark.parametrize("nullability", NULLABILITY, ids=["not-null", "nullable"])(test)
    return pytest.mark.parametrize("charset, collation", COLLATIONS, ids=[c for _, c in COLLATIONS])(test)


def copy_job(tmp_path, mysql_url: str, destination: str, table: str = "t") -> tuple[portl.RunReport, bool]:
    """Run a job copying one MySQL table; returns its report and whether it went the verbatim way."""
    path = job_file(tmp_path, f"name: copy\nsource: {{type: mysql, url: '{mysql_url}', table: {table}}}\n"
                              f"destination: {destination}\nbatch: {{size: 4}}\n")
    the_plan = portl.plan(portl.load_job(path))
    try:
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
        return report, the_plan.verbatim is not None
    finally:
        the_plan.close()


def test_a_legacy_utf8mb3_table_with_not_null_text_reads_its_rows(sql, source):
    sql("SET time_zone = '+00:00'")
    sql("CREATE TABLE d (id smallint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, label varchar(45) NOT NULL, "
        "changed timestamp NOT NULL DEFAULT current_timestamp()) DEFAULT CHARSET=utf8mb3")
    sql("INSERT INTO d (label, changed) VALUES ('first', '2024-03-01 10:00:00'), ('second', '2024-03-02 11:30:00')")
    assert read_all(source(table="d")) == [
        {"id": 1, "label": "first", "changed": dt.datetime(2024, 3, 1, 10, 0)},
        {"id": 2, "label": "second", "changed": dt.datetime(2024, 3, 2, 11, 30)},
    ]


@matrix
def test_the_source_reads_every_character_of_a_table_in_each_charset(legacy_table, source, sql, charset, collation,
                                                                     nullability):
    rows = legacy_table(charset, collation, nullability)
    assert sql("SELECT DISTINCT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
               "AND TABLE_NAME = 't' AND DATA_TYPE <> 'int'") == [(None if charset == "binary" else collation,)]
    assert read_all(source(table="t"), batch_rows=5) == rows
    assert read_all(source(query="SELECT * FROM t ORDER BY id"), batch_rows=5) == rows


@matrix
def test_a_table_in_each_charset_arrives_in_postgres_value_for_value(tmp_path, legacy_table, mysql_url, pg_url,
                                                                    charset, collation, nullability):
    rows = legacy_table(charset, collation, nullability)
    report, verbatim = copy_job(tmp_path, mysql_url, f"{{type: postgres, url: '{pg_url}', table: t}}")
    assert verbatim
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (len(rows), len(rows), 0)
    with psycopg.connect(pg_url) as pg:
        got = pg.execute("SELECT id, label, body FROM t ORDER BY id").fetchall()
        types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 't' AND column_name <> 'id'").fetchall())
    assert [dict(zip(rows[0], r)) for r in got] == rows
    assert set(types.values()) == {"bytea" if charset == "binary" else "text"}


@matrix
def test_a_table_in_each_charset_arrives_in_sqlite_value_for_value(tmp_path, legacy_table, mysql_url,
                                                                  charset, collation, nullability):
    rows = legacy_table(charset, collation, nullability)
    report, verbatim = copy_job(tmp_path, mysql_url, "{type: sqlite, path: out.db, table: t}")
    assert not verbatim
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (len(rows), len(rows), 0)
    conn = sqlite3.connect(tmp_path / "out.db")
    try:
        got = conn.execute("SELECT id, label, body FROM t ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [dict(zip(rows[0], r)) for r in got] == rows


def test_a_table_whose_columns_each_have_another_charset_reads_every_one(tmp_path, sql, source, mysql_url, pg_url):
    sql("CREATE TABLE t (id INT PRIMARY KEY, western VARCHAR(20) CHARSET latin1 COLLATE latin1_german1_ci NOT NULL, "
        "legacy VARCHAR(20) CHARSET utf8mb3 COLLATE utf8mb3_general_ci NOT NULL, "
        "legacy_bin VARCHAR(20) CHARSET utf8mb3 COLLATE utf8mb3_bin NULL, "
        "modern VARCHAR(20) CHARSET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL, "
        "plain VARCHAR(20) CHARSET ascii NOT NULL, cyrillic VARCHAR(20) CHARSET cp1251 NULL, "
        "wide VARCHAR(20) CHARSET ucs2 NULL, raw VARBINARY(20) NOT NULL)")
    row = {"id": 1, "western": "Grüße", "legacy": "李小龙", "legacy_bin": "ß", "modern": "😀", "plain": "ascii",
           "cyrillic": "Жж", "wide": "Ωé", "raw": b"\xff\x00\xfd"}
    empty = {"id": 2, "western": "", "legacy": "", "legacy_bin": None, "modern": "", "plain": "", "cyrillic": None,
             "wide": None, "raw": b""}
    for r in (row, empty):
        sql(f"INSERT INTO t VALUES ({', '.join(['%s'] * len(r))})", tuple(r.values()))
    assert read_all(source(table="t")) == [row, empty]
    report, verbatim = copy_job(tmp_path, mysql_url, f"{{type: postgres, url: '{pg_url}', table: t}}")
    assert verbatim and report.counts.inserted == 2
    with psycopg.connect(pg_url) as pg:
        got = pg.execute(f"SELECT {', '.join(row)} FROM t ORDER BY id").fetchall()
    assert [dict(zip(row, r)) for r in got] == [row, empty]


@pytest.mark.parametrize("charset", ["latin1", "utf8mb3", "utf8mb4"])
def test_enum_set_and_char_labels_outside_ascii_read_exactly(tmp_path, sql, source, mysql_url, pg_url, charset):
    sql(f"CREATE TABLE t (id INT PRIMARY KEY, colour ENUM('rød','grøn','blå') NOT NULL, "
        f"marks SET('é','ß','ñ') NOT NULL, code CHAR(6) NOT NULL, padded BINARY(4) NOT NULL) DEFAULT CHARSET={charset}")
    sql("INSERT INTO t VALUES (1, 'rød', 'é,ñ', 'Åb  ', 'ab'), (2, 'blå', '', '', '')")
    # CHAR drops its trailing spaces when read; BINARY keeps the zero bytes that fill it.
    rows = [{"id": 1, "colour": "rød", "marks": "é,ñ", "code": "Åb", "padded": b"ab\x00\x00"},
            {"id": 2, "colour": "blå", "marks": "", "code": "", "padded": b"\x00" * 4}]
    assert read_all(source(table="t")) == rows
    report, verbatim = copy_job(tmp_path, mysql_url, f"{{type: postgres, url: '{pg_url}', table: t}}")
    assert verbatim and report.counts.inserted == 2
    with psycopg.connect(pg_url) as pg:
        got = pg.execute("SELECT id, colour, marks, code, padded FROM t ORDER BY id").fetchall()
    assert [dict(zip(rows[0], r)) for r in got] == rows
