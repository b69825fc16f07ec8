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


def test_a_block_with_a_zero_or_impossible_date_is_not_canonical():
    from portl.connectors.mysql.csvrows import canonical

    assert canonical(b'1,2024-02-29,"x"\n2,2024-01-31 23:59:59,""\n')
    for date in (b"0000-00-00", b"0000-01-01", b"2024-00-10", b"2024-05-00", b"2024-02-30", b"2024-04-31",
                 b"2023-02-29"):
        assert not canonical(b'1,2024-01-01,"x"\n2,' + date + b' 10:00:00,"y"\n'), date
        assert not canonical(b"3," + date), date


def test_a_date_like_text_inside_quotes_leaves_a_block_canonical():
    from portl.connectors.mysql.csvrows import canonical

    assert canonical(b'1,"2024-00-01 is no date",2024-01-01\n')
