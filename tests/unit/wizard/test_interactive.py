"""The wizard on a terminal, each prompt answered from a script (the e2e tests use a real one)."""

from __future__ import annotations

import pytest

from portl.connectors.base import WriteMode

from .conftest import make_table

SOURCE = [("Source type", "csv"), ("Source file path", "customers.csv")]
DESTINATION = [("Destination type", "sqlite"), ("Destination path", "out.db"), ("Destination table", "")]
AUTO = [("Map columns", "")]
NO_KEY = [("Key columns", ""), ("Write mode", ""), ("Apply these conversions", ""), ("Transforms", "")]
REST = [
    ("Add hooks", ""), ("Batch size", ""), ("When writing a batch fails", ""), ("Attempts per batch", ""),
    ("Parallel workers", ""), ("Before writing", ""), ("After the run", ""), ("Stop when more rows", ""),
    ("Rows to preview", ""),
]
SAVE = [("Save the job as", ""), ("Job name", ""), ("Run now", "")]


def answered(steps, **changes):
    """``steps`` with the answers of the prompts named in ``changes`` (by the start of their text) replaced."""
    out = []
    for prompt, answer in steps:
        for start, value in changes.items():
            if prompt.lower().startswith(start.replace("_", " ").lower()):
                answer = value
        out.append((prompt, answer))
    return out


def test_enter_at_every_question_writes_a_job_that_loads(scripted, folder):
    written = scripted(SOURCE + DESTINATION + AUTO + NO_KEY + REST + SAVE)

    job = written.job().job
    assert written.path == folder / "customers.yaml"
    assert (job.destination.path, job.destination.table, job.write_mode) == ("out.db", "customers", WriteMode.APPEND)
    assert job.mapping.columns["signup_date"].formats == ["%Y-%m-%d", "%d/%m/%Y"]
    assert written.outcome.run is False


def test_what_was_found_is_shown_before_the_next_question(scripted):
    written = scripted(SOURCE + DESTINATION + AUTO + NO_KEY + REST + SAVE)

    assert "Found CSV file customers.csv: 6 columns" in written.transcript
    assert "Signup Date     → date (%Y-%m-%d or %d/%m/%Y)" in written.transcript
    assert "out.db does not exist yet: it is created by the first run." in written.transcript
    assert "The first 4 rows as they would be written" in written.transcript


def test_a_wrong_answer_is_explained_and_asked_again(scripted):
    steps = [("Source type", "csvv"), ("Source type", "csv"), ("Source file path", "customer.csv"),
             ("Source file path", "customers.csv")] + DESTINATION + AUTO + NO_KEY + REST + SAVE

    written = scripted(steps)

    assert "✗ 'csvv' is not a valid source type; did you mean 'csv'?" in written.transcript
    assert "✗ no such file: customer.csv (did you mean 'customers.csv'?)" in written.transcript
    assert written.job().job.source.path == "customers.csv"


def test_answers_given_as_flags_are_shown_and_not_asked(scripted):
    written = scripted(DESTINATION + AUTO + NO_KEY + REST + SAVE, source_path="customers.csv", source_type="csv")

    assert "Source type: csv (given)" in written.transcript
    assert "Source file path: customers.csv (given)" in written.transcript


def test_a_given_answer_that_is_wrong_is_asked_for(scripted):
    written = scripted([("Source file path", "customers.csv")] + DESTINATION + AUTO + NO_KEY + REST + SAVE,
                       source_type="csv", source_path="missing.csv")

    assert "✗ --source-path 'missing.csv': no such file: missing.csv" in written.transcript
    assert written.job().job.source.path == "customers.csv"


def test_manual_mapping_asks_column_by_column(scripted):
    manual = [
        ("Map columns", "manual"),
        ("destination column", "id"), ("type", "bigint"), ("transforms", ""),
        ("destination column", "-"),
        ("destination column", "mail"), ("type", ""), ("transforms", "trim,lower"),
        ("destination column", ""), ("type", "date"), ("formats", ""), ("transforms", ""),
        ("destination column", "-"),
        ("destination column", "-"),
    ]
    steps = SOURCE + DESTINATION + manual + [("Key columns", "id"), ("On a conflict", "skip")] + REST + SAVE

    written = scripted(steps)

    job = written.job().job
    columns = job.mapping.columns
    assert list(columns) == ["id", "mail", "signup_date"]
    assert (columns["id"].from_, columns["id"].type) == ("customer_id", "bigint")
    assert [t.name for t in columns["mail"].transform] == ["trim", "lower"]
    assert (columns["signup_date"].type, columns["signup_date"].formats) == ("date", ["%Y-%m-%d", "%d/%m/%Y"])
    assert (job.conflict.key, job.conflict.strategy.value) == (["id"], "skip")
    assert "not loaded: First Name, Lifetime Value, Active" in written.transcript


def test_a_destination_column_mapped_twice_is_refused(scripted):
    manual = [
        ("Map columns", "manual"),
        ("destination column", "id"), ("type", ""), ("transforms", ""),
        ("destination column", "id"), ("destination column", "name"), ("type", ""), ("transforms", ""),
        ("destination column", "-"), ("destination column", "-"), ("destination column", "-"),
        ("destination column", "-"),
    ]
    written = scripted(SOURCE + DESTINATION + manual + [("Key columns", ""), ("Write mode", "")] + REST + SAVE)

    assert "✗ id is already mapped from customer_id; choose another name" in written.transcript
    assert list(written.job().job.mapping.columns) == ["id", "name"]


def test_declining_the_suggested_conversions_leaves_the_columns_as_they_are(scripted):
    steps = SOURCE + DESTINATION + AUTO + answered(NO_KEY, apply_these_conversions="n") + REST + SAVE

    written = scripted(steps)

    assert written.job().job.mapping.columns == {}


def test_hooks_are_asked_event_by_event(scripted):
    hooks = [
        ("Add hooks", "y"),
        ("Before each row", "python"), ("function", "hooks:clean_row"),
        ("After each row", ""), ("Before each batch", ""),
        ("After each batch", "script"), ("command", "./notify.sh"),
        ("Before the job", ""), ("After the job", "http"), ("URL", "https://hooks.example.com/done"),
    ]
    steps = SOURCE + DESTINATION + AUTO + NO_KEY + hooks + REST[1:] + SAVE

    hooks_of = scripted(steps).job().job.hooks

    assert hooks_of.before_row[0].function == "hooks:clean_row"
    assert hooks_of.after_batch[0].command == "./notify.sh"
    assert hooks_of.after_job[0].url == "https://hooks.example.com/done"
    assert hooks_of.after_row == [] and hooks_of.before_job == []


def test_a_problem_in_the_dry_run_leads_back_to_the_mapping(scripted, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (customer_id TEXT, active DATE)")
    destination = [("Destination type", "sqlite"), ("Destination path", "shop.db"), ("Destination table", "")]
    mapping = [("Map columns", ""), ("Add the columns", ""), ("Destination columns nothing maps to", "")]
    first = [("Key columns", ""), ("Write mode", ""), ("Apply these conversions", "y"), ("Transforms", "")]
    again = [("Key columns", ""), ("Write mode", ""), ("Apply these conversions", "n"), ("Transforms", "")]
    # Without the conversions, 'yes' is no date either: the second dry run finds every row rejected,
    # and this time the job is saved as it is.
    steps = (SOURCE + destination + mapping + first + REST + [("Go back", "y")] + mapping + again
             + [("Go back", "n")] + SAVE)

    written = scripted(steps)

    assert "column active: the mapping produces bool but the destination column is DATE" in written.transcript
    assert written.job().job.mapping.columns == {}


def test_a_dry_run_that_rejects_every_row_offers_to_go_back_and_asks_the_given_types_again(scripted):
    again = NO_KEY[:3] + [("Column types", "first_name=keep")] + NO_KEY[3:]
    steps = SOURCE + DESTINATION + AUTO + NO_KEY + REST + [("Go back", "y")] + AUTO + again + SAVE

    written = scripted(steps, column_types="first_name=bigint")

    flat = " ".join(written.transcript.split())
    assert "every one of the 4 rows previewed would be rejected (row 1, column first_name:" in flat
    assert "first_name" not in written.job().job.mapping.columns


def test_a_date_format_that_reads_none_of_the_sample_is_refused(scripted):
    transforms = [("Transforms", "Signup Date=date(%d.%m.%Y)"), ("Transforms", "Signup Date=date(%d/%m/%Y)")]
    steps = SOURCE + DESTINATION + AUTO + NO_KEY[:3] + transforms + REST + SAVE

    written = scripted(steps)

    assert ("✗ %d.%m.%Y reads none of the sampled values of Signup Date ('2023-01-15', '16/02/2023', "
            "'2023-03-01') as a date; these fit: %Y-%m-%d|%d/%m/%Y") in " ".join(written.transcript.split())
    assert written.job().job.mapping.columns["signup_date"].transform[0].args == ["%d/%m/%Y"]


@pytest.mark.parametrize("answer", ["y", "n"])
def test_the_last_question_decides_whether_the_job_runs(scripted, answer):
    written = scripted(SOURCE + DESTINATION + AUTO + NO_KEY + REST + answered(SAVE, run_now=answer))

    assert written.outcome.run is (answer == "y")
    assert written.path.exists()


def test_stopping_at_the_last_question_writes_nothing(scripted, folder):
    steps = SOURCE + DESTINATION + AUTO + NO_KEY + REST + SAVE[:2]

    def interrupt(prompt, secret):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scripted(steps + [("Run now", interrupt)])

    assert sorted(p.name for p in folder.iterdir()) == ["customers.csv"]


def test_a_mapping_that_loads_no_column_is_explained_and_asked_again(scripted, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (code TEXT, label TEXT)")
    destination = [("Destination type", "sqlite"), ("Destination path", "shop.db"), ("Destination table", "")]
    first = [("Map columns", ""), ("Add the columns", "n"), ("Destination columns nothing maps to", "")]
    again = [("Map columns", ""), ("Add the columns", "y"), ("Destination columns nothing maps to", "")]
    steps = SOURCE + destination + first + again + NO_KEY + REST + SAVE

    written = scripted(steps)

    assert ("✗ no source column has a column of the same name in customers (code, label), and the missing columns "
            "are not to be added") in " ".join(written.transcript.split())
    assert written.job().job.mapping.create_missing_columns is True


def test_a_new_destination_table_named_like_an_existing_one_is_pointed_out(scripted, folder):
    make_table(folder / "shop.db", "CREATE TABLE customers (customer_id TEXT)")
    destination = [("Destination type", "sqlite"), ("Destination path", "shop.db"), ("Destination table", "customer")]

    written = scripted(SOURCE + destination + AUTO + NO_KEY + REST + SAVE)

    assert "note: no table customer yet (did you mean customers?); the first run creates it" in written.transcript
    assert written.job().job.destination.table == "customer"


def test_an_empty_destination_ends_with_as_many_rows_as_the_source_when_upserting(scripted):
    keyed = [("Key columns", "customer_id"), ("On a conflict", ""), ("Apply these conversions", ""), ("Transforms", "")]

    written = scripted(SOURCE + DESTINATION + AUTO + keyed + REST + SAVE)

    assert ("Row counts: source about 4; destination now 0; after the run 4 (fewer when a key repeats in the "
            "source)") in " ".join(written.transcript.split())


FULL = SOURCE + DESTINATION + AUTO + NO_KEY + REST + SAVE
MANUAL_WITH_HOOKS = SOURCE + DESTINATION + [
    ("Map columns", "manual"),
    ("destination column", "id"), ("type", "bigint"), ("transforms", ""),
    ("destination column", "-"),
    ("destination column", ""), ("type", ""), ("transforms", "trim,lower"),
    ("destination column", ""), ("type", "date"), ("formats", ""), ("transforms", ""),
    ("destination column", "-"), ("destination column", "-"),
    ("Key columns", "id"), ("On a conflict", "skip"),
    ("Add hooks", "y"), ("Before each row", "python"), ("function", "hooks:clean_row"), ("After each row", ""),
    ("Before each batch", ""), ("After each batch", ""), ("Before the job", ""), ("After the job", ""),
] + REST[1:] + SAVE


@pytest.mark.parametrize(("script", "position"), [("auto", i) for i in range(len(FULL))]
                         + [("manual", i) for i in range(len(MANUAL_WITH_HOOKS))])
def test_ctrl_c_at_any_question_writes_nothing(scripted, folder, script, position):
    steps = FULL if script == "auto" else MANUAL_WITH_HOOKS

    def interrupt(prompt, secret):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scripted(steps[:position] + [(steps[position][0], interrupt)])

    assert sorted(p.name for p in folder.iterdir()) == ["customers.csv"]


def test_ctrl_d_at_a_question_writes_nothing(scripted, folder):
    def end_of_input(prompt, secret):
        raise EOFError

    with pytest.raises(EOFError):
        scripted(FULL[:5] + [(FULL[5][0], end_of_input)])

    assert sorted(p.name for p in folder.iterdir()) == ["customers.csv"]


def test_a_date_type_for_a_column_that_holds_no_dates_is_refused_before_its_formats(scripted):
    manual = [
        ("Map columns", "manual"),
        ("destination column", "-"), ("destination column", "-"),
        ("destination column", "joined"), ("type", "date"), ("type", "keep"), ("transforms", ""),
        ("destination column", ""), ("type", "date"), ("formats", "%d.%m.%Y"), ("formats", "ISO"), ("transforms", ""),
        ("destination column", "-"), ("destination column", "-"),
    ]
    steps = SOURCE + DESTINATION + manual + [("Key columns", ""), ("Write mode", "")] + REST + SAVE

    written = scripted(steps)

    flat = " ".join(written.transcript.split())
    assert "✗ no date format reads the sampled values of Email; keep its type, or choose another" in flat
    assert "✗ %d.%m.%Y reads none of the sampled values of Signup Date" in flat
    assert "✗ ISO 8601 reads none" not in flat  # two of the four sampled dates are ISO: accepted
    columns = written.job().job.mapping.columns
    assert (columns["joined"].from_, columns["joined"].type) == ("Email", None)
    assert (columns["signup_date"].type, columns["signup_date"].formats) == ("date", [])
