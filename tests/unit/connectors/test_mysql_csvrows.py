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



def test_a_block_with_a_date_marked_as_no_date_is_parsed_with_that_date_as_its_text():
    from portl.connectors.mysql.columns import column_of_schema
    from portl.connectors.mysql.csvrows import canonical, texts_of

    columns = [column_of_schema("id", "int", "int", None, None), column_of_schema("d", "date", "date", None, None)]
    block = b'1,2024-01-31\n2,\xff0000-00-00\n3,\xff2024-02-30\n4,\n'
    assert canonical(b'1,2024-01-31\n4,\n') and not canonical(block)
    assert [t.to_pylist() for t in texts_of(block, columns)] == [
        ["1", "2", "3", "4"], ["2024-01-31", "0000-00-00", "2024-02-30", None]]
