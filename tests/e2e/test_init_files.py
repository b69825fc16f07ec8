"""`portl init` and files: Tab completes the source path, a glob shows what it matches, and
``--check-file`` says whether a job written before can load a new file."""

from __future__ import annotations

from pathlib import Path

from portl.wizard.browse import size_text

from .test_init import CUSTOMERS, Wizard


def test_tab_completes_the_source_path_on_a_terminal(portl, tmp_path: Path):
    (tmp_path / "customers_export.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "orders.csv").write_text("id\n1\n", encoding="utf-8")
    wizard = Wizard(portl)
    wizard.answer("Source type", "csv")
    wizard.expect("Source file path")
    wizard.child.send("cust\t")
    wizard.child.sendline("")

    wizard.expect("Found CSV file customers_export.csv: 5 columns")
    wizard.child.sendintr()
    assert wizard.finish() == 130, wizard.transcript


def test_a_glob_at_the_source_path_lists_the_files_it_matches_with_their_sizes(portl, tmp_path: Path):
    for month in range(1, 13):
        (tmp_path / f"sales-{month:02d}.csv").write_text("id,amount\n" + "1,2.50\n" * month, encoding="utf-8")
    total = sum((tmp_path / f"sales-{m:02d}.csv").stat().st_size for m in range(1, 13))
    wizard = Wizard(portl)
    wizard.answers(("Source type", "csv"), ("Source file path", "sales-*.csv"))

    wizard.expect(f"sales-*.csv matches 12 files, {size_text(total)}:")
    wizard.expect("sales-01.csv")
    wizard.expect("... and 2 more")
    wizard.expect("Destination type")
    wizard.child.sendintr()
    assert wizard.finish() == 130, wizard.transcript
    listing = wizard.transcript.split("matches 12 files")[1].split("... and 2 more")[0]
    assert "sales-10.csv" in listing and "sales-11.csv" not in listing, wizard.transcript


def people_job(write) -> None:
    write("old.csv", "id,Email,Signup Date,name\n1,a@example.com,2023-01-01,Ada\n")
    write("people.yaml", """
        name: people
        source: {type: csv, path: old.csv}
        destination: {type: sqlite, path: people.db, table: people}
        mapping:
          columns:
            id: {type: bigint}
            email: {from: Email}
            signup_date: {from: Signup Date, type: date}
            name: {}
    """)


def test_check_file_accepts_a_file_with_the_columns_of_the_job(portl, write):
    people_job(write)
    write("next.csv", "id,Email,Signup Date,name\n2,b@example.com,2023-02-01,Bob\n")

    checked = portl("init", "--check-file", "next.csv", "--job-file", "people.yaml")

    assert checked.code == 0, checked.log
    assert checked.stdout.splitlines() == [
        "job people can load next.csv (4 columns; compared with the job's source old.csv)", "  same columns"]


def test_check_file_lists_missing_extra_and_renamed_columns_and_exits_1(portl, write):
    people_job(write)
    write("next.csv", "id,E-mail,Signup Date,city\n2,b@example.com,2023-02-01,Paris\n")

    checked = portl("init", "--check-file", "next.csv", "--job-file", "people.yaml")

    assert checked.code == 1, checked.log
    lines = checked.stdout.splitlines()
    assert lines[0] == "job people cannot load next.csv (4 columns; compared with the job's source old.csv)", checked.log
    assert "  renamed?  Email -> E-mail" in lines, checked.log
    assert "  missing:  name" in lines, checked.log
    assert "  extra:    city: not loaded (not in the mapping)" in lines, checked.log
    problems = [line for line in lines if line.startswith("  problem:")]
    assert len(problems) == 2 and "the source has no column 'Email'; did you mean 'E-mail'?" in problems[0], checked.log


def test_check_file_of_an_auto_mapped_job_compares_with_the_mapping_when_its_source_is_gone(portl, write, tmp_path):
    write("job.yaml", """
        name: auto
        source: {type: csv, path: gone.csv}
        destination: {type: sqlite, path: out.db, table: auto}
        mapping: {auto: true, columns: {total: {from: amount, type: float}}}
    """)
    write("next.csv", "id,amount,note\n1,2.5,x\n")

    checked = portl("init", "--check-file", "next.csv", "--job-file", "job.yaml")

    assert checked.code == 0, checked.log
    lines = checked.stdout.splitlines()
    assert lines[0] == "job auto can load next.csv (3 columns; compared with the columns its mapping names)", checked.log
    assert "  extra:    id, note: loaded as new columns (auto mapping)" in lines, checked.log


def test_check_file_needs_both_files_and_says_which_is_missing(portl, write):
    people_job(write)

    alone = portl("init", "--check-file", "old.csv")
    absent = portl("init", "--check-file", "nothere.csv", "--job-file", "people.yaml")

    assert alone.code == 2 and "--check-file needs --job-file too" in alone.stderr, alone.log
    assert absent.code == 2 and "no file 'nothere.csv'" in absent.stderr, absent.log
