"""Finding files at the wizard's path prompts: Tab completion and what a glob matches."""

from __future__ import annotations

from pathlib import Path

from portl.wizard.browse import matches_of, path_completions, size_text

from .test_interactive import DESTINATION, NO_KEY, REST, SAVE, answered


def test_completion_offers_the_files_and_folders_that_start_with_what_was_typed(tmp_path: Path):
    (tmp_path / "customers.csv").write_text("id\n")
    (tmp_path / "customers_2023.csv").write_text("id\n")
    (tmp_path / "cust-archive").mkdir()
    (tmp_path / "orders.csv").write_text("id\n")
    (tmp_path / ".customers.swp").write_text("")

    assert path_completions("cust", str(tmp_path)) == ["cust-archive/", "customers.csv", "customers_2023.csv"]
    assert path_completions("", str(tmp_path)) == ["cust-archive/", "customers.csv", "customers_2023.csv", "orders.csv"]
    assert path_completions(".cust", str(tmp_path)) == [".customers.swp"]


def test_completion_goes_into_folders_and_keeps_the_folder_as_typed(tmp_path: Path):
    (tmp_path / "exports" / "2024").mkdir(parents=True)
    (tmp_path / "exports" / "2024" / "jan.csv").write_text("id\n")
    (tmp_path / "exports" / "2024" / "feb.csv").write_text("id\n")

    assert path_completions("exports/", str(tmp_path)) == ["exports/2024/"]
    assert path_completions("exports/2024/j", str(tmp_path)) == ["exports/2024/jan.csv"]
    assert path_completions(f"{tmp_path}/exports/2024/f", "/") == [f"{tmp_path}/exports/2024/feb.csv"]
    assert path_completions("nowhere/x", str(tmp_path)) == []


def test_sizes_read_in_decimal_units():
    assert [size_text(n) for n in (0, 999, 1_000, 3_400_000_000, 12_345_678_901_234)] == \
        ["0 B", "999 B", "1.0 kB", "3.4 GB", "12.3 TB"]


def test_a_glob_lists_its_first_ten_files_and_the_total():
    found = [(f"part-{i:02d}.csv", 300_000_000) for i in range(12)]

    lines = matches_of("part-*.csv", found).lines()

    assert lines[0] == "part-*.csv matches 12 files, 3.6 GB:"
    assert lines[1] == "  part-00.csv   300.0 MB"
    assert len(lines) == 1 + 10 + 1 and lines[-1] == "  ... and 2 more"


def test_the_wizard_shows_what_a_source_glob_matches_before_reading_it(scripted, folder: Path):
    header = "customer_id,Email\n"
    for i in range(12):
        (folder / f"part-{i:02d}.csv").write_text(header + f"{i},p{i}@example.com\n" * (i + 1))
    steps = [("Source type", "csv"), ("Source file path", "part-*.csv")] + DESTINATION + [("Map columns", "")]
    steps += answered(NO_KEY, apply_these_conversions="") + REST + SAVE

    written = scripted(steps)

    total = sum((folder / f"part-{i:02d}.csv").stat().st_size for i in range(12))
    assert f"part-*.csv matches 12 files, {size_text(total)}:" in written.transcript
    assert "  part-00.csv" in written.transcript and "  part-09.csv" in written.transcript
    assert "part-10.csv" not in written.transcript.split("matches 12 files")[1].split("... and 2 more")[0]
    assert written.job().job.source.path == "part-*.csv"
