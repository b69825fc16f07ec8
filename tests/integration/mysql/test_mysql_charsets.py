"""Text in every character set and collation a real MySQL/MariaDB schema uses (latin1, the legacy
utf8 = utf8mb3, utf8mb4, binary), nullable or not, is read character for character."""

from __future__ import annotations

import datetime as dt

from tests.integration.mysql.support import read_all


def test_a_legacy_utf8mb3_table_with_not_null_text_reads_its_rows(sql, source):
    sql("SET time_zone = '+00:00'")
    sql("CREATE TABLE d (id smallint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, label varchar(45) NOT NULL, "
        "changed timestamp NOT NULL DEFAULT current_timestamp()) DEFAULT CHARSET=utf8mb3")
    sql("INSERT INTO d (label, changed) VALUES ('first', '2024-03-01 10:00:00'), ('second', '2024-03-02 11:30:00')")
    assert read_all(source(table="d")) == [
        {"id": 1, "label": "first", "changed": dt.datetime(2024, 3, 1, 10, 0)},
        {"id": 2, "label": "second", "changed": dt.datetime(2024, 3, 2, 11, 30)},
    ]
