"""The CSV lines a MySQL server writes for the verbatim read: picking one field out of a line."""

from __future__ import annotations

from portl.connectors.mysql.csvrows import field_of


def test_field_of_finds_a_field_after_quoted_commas_quotes_and_newlines():
    line = b'7,"a, b","say ""hi""\nthere",,\\x00FF,42'
    assert [field_of(line, i) for i in range(6)] == ["7", "a, b", 'say "hi"\nthere', "", "\\x00FF", "42"]


def test_field_of_reads_past_a_field_longer_than_the_csv_modules_limit():
    huge = b"\\x" + b"00FF" * 100_000  # a 200 KB blob as hex
    line = b'18446744073709551615,"' + "é".encode() * 80_000 + b'",' + huge + b",3"
    assert field_of(line, 0) == "18446744073709551615"
    assert field_of(line, 1) == "é" * 80_000
    assert field_of(line, 3) == "3"
