"""`portl init` suggests types, not only conversions: numbers become bigint or a decimal sized from
the sample, percentages a decimal for their fractions, and the mapping shows what a transform writes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import portl
from portl.wizard.samples import ColumnSample, suggest

from .test_interactive import DESTINATION, REST, SAVE, SOURCE

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart" / "customers.csv"


def text_column(*values):
    return ColumnSample("c", "text", list(values))


def test_an_id_column_with_a_stray_word_is_still_bigint_and_the_word_is_named():
    found = suggest(text_column("1001", "1002", "abc", "1003", "1004", "1005"))
    assert (found.type, found.reason) == ("bigint", "whole numbers; 1 of the sampled values would be rejected ('abc')")


def test_whole_numbers_beside_a_decimal_make_a_decimal_not_a_rejected_row():
    found = suggest(text_column(*[str(i) for i in range(9)], "3.25"))
    assert (found.type, found.reason) == ("decimal(18,2)", "decimal numbers")


def test_a_decimal_is_sized_from_the_sample_with_room_to_spare():
    assert suggest(text_column("12345678901234.5", "1.25")).type == "decimal(38,2)"
    assert suggest(text_column("1.5", "n/a", "2.125", "3", "4")).type == "decimal(18,3)"


def test_mostly_words_get_no_number_type():
    assert suggest(text_column("1", "two", "three", "4")) is None


def test_percentages_get_a_decimal_for_the_fractions_the_transform_writes():
    found = suggest(text_column("10%", "7.5%", "0%", "100%"))
    # 7.5% is written 0.075: three decimals.
    assert (found.type, found.transforms) == ("decimal(18,3)", ("percent",))


def test_money_beside_plain_amounts_stays_money():
    found = suggest(text_column("980.00", "1.00", "2.00", "3.00", "$1,234.50"))
    assert (found.type, found.transforms) == ("decimal(18,2)", ("money",))


def test_the_quick_start_csv_loads_its_ids_as_integers(init, folder):
    shutil.copy(QUICKSTART, folder / "customers.csv")
    written = init(source_path="customers.csv", destination_type="sqlite")
    columns = written.job().job.mapping.columns
    assert columns["customer_id"].type == "bigint"
    assert (columns["discount"].type, [t.name for t in columns["discount"].transform]) == ("decimal(18,3)", ["percent"])

    the_plan = portl.plan(written.job())
    try:
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(folder / "state")))
    finally:
        the_plan.close()
    conn = sqlite3.connect(folder / "customers.db")
    try:
        kinds = conn.execute("SELECT DISTINCT typeof(customer_id) FROM customers").fetchall()
        discounts = conn.execute("SELECT discount FROM customers WHERE customer_id = 1004").fetchall()
    finally:
        conn.close()
    assert kinds == [("integer",)]
    assert str(discounts[0][0]) == "0.075"
    assert report.counts.rejected >= 1  # the row whose id is abc


def test_the_mapping_table_shows_the_type_a_transform_writes(scripted):
    manual = [
        ("Map columns", "manual"),
        ("destination column", "-"), ("destination column", "-"),
        ("destination column", "mail"), ("type", ""), ("transforms", "trim,lower"),
        ("destination column", "-"),
        ("destination column", "value"), ("type", ""), ("transforms", "money"),
        ("destination column", "-"),
    ]
    written = scripted(SOURCE + DESTINATION + manual + [("Key columns", ""), ("Write mode", "")] + REST + SAVE)
    rows = {line.split()[0]: line for line in written.transcript.splitlines() if line.startswith(("Email", "Lifetime"))}
    # No type given: the column is what its last transform writes, not "as the source".
    assert rows["Email"].split() == ["Email", "trim,", "lower", "mail", "text", "(what", "lower", "writes)"]
    # An empty answer takes the suggested type.
    assert rows["Lifetime"].split() == ["Lifetime", "Value", "money", "value", "decimal(18,2)"]
