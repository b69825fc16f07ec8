"""Counting a run's rejects by reason for `portl report`: Portl beside a plain Python loop.

    python benchmarks/bench_report_rejects.py [--rows N] [--repeat R]

A run without quality checks still gets a report, with its rejected rows counted by reason from
its reject file (see docs/reports.md). The file of a large run can hold millions of rows, and
`portl report` reads it every time. This generates a reject file of N rows (1M by default, five
kinds of error with the value quoted in each message, as the engine writes them) and counts it
twice per attempt, each in its own process: Portl's ``rejects_by_reason`` (Arrow reads the file
in blocks and blanks the values block by block), and the reference, the loop one writes without
Arrow (``csv.reader`` and the same regular expressions row by row). Both must find the same
counts. Target R1: Portl's time at most that of the reference (ratio = reference / Portl >=
1.0x). Prints each attempt, the medians and the ratio, PASS or FAIL; always exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

TARGET = 1.0
ERRORS = [
    ("qty", "value '{v}' does not fit column qty (int64)"),
    ("signup_date", "'{v}' is not a date"),
    ("email", "required value is missing"),
    ("name", "refused by the destination: value too long for type character varying(20)"),
    ("id", "refused by the destination: duplicate key value violates unique constraint \"t_pkey\"; Key (id)=({v}) already exists."),
]

PORTL = """
import json, sys
from portl.quality.reports.ledger_report import rejects_by_reason
counts, note = rejects_by_reason(sys.argv[1])
print(json.dumps({"counts": counts, "note": note}, sort_keys=True))
"""

REFERENCE = r"""
import csv, json, re, sys
quoted, key = re.compile(r"'[^']{0,200}'"), re.compile(r"=\([^)]{0,200}\)")
counts = {}
with open(sys.argv[1], newline="", encoding="utf-8") as handle:
    reader = csv.reader(handle)
    header = next(reader)
    error, column = header.index("error"), header.index("column")
    for row in reader:
        reason = key.sub("=(…)", quoted.sub("'…'", row[error].strip())) or "no reason given"
        name = row[column]
        if name and not re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", reason):
            reason = name + ": " + reason
        reason = reason if len(reason) <= 300 else reason[:299] + "…"
        counts[reason] = counts.get(reason, 0) + 1
print(json.dumps({"counts": counts, "note": None}, sort_keys=True))
"""


def reject_file(rows: int) -> Path:
    """A reject file of ``rows`` rows in benchmarks/.data, written once per size."""
    path = c.DATA_DIR / f"rejects-{c.short(rows)}.csv"
    if path.exists():
        return path
    c.DATA_DIR.mkdir(parents=True, exist_ok=True)
    generator = random.Random(c.DEFAULT_SEED)
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source", "line", "record", "column", "value", "error", "original"])
        for record in range(1, rows + 1):
            column, error = ERRORS[generator.randrange(len(ERRORS))]
            value = f"v{generator.randrange(10**6)}"
            writer.writerow(["data.csv", record + 1, record, column, value, error.format(v=value),
                             f"{record},{value},some,other,fields"])
    partial.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(c.environment_line())
    warning = c.load_warning()
    if warning:
        print(warning)
    path = reject_file(args.rows)
    print(f"reject file: {path.name}, {c.short(args.rows)} rows, {path.stat().st_size / 1e6:.0f} MB")
    summary = c.Summary("counting rejects by reason (portl report)")
    c.warm_cache(path)

    def attempts():
        for _ in range(args.repeat):
            mine = c.measure([sys.executable, "-c", PORTL, str(path)])
            theirs = c.measure([sys.executable, "-c", REFERENCE, str(path)])
            if mine.returncode == 0 and theirs.returncode == 0 and json.loads(mine.stdout) != json.loads(theirs.stdout):
                mine.returncode = 1
                mine.stderr = f"the counts differ: portl {mine.stdout.strip()[:200]} reference {theirs.stdout.strip()[:200]}"
            yield mine, theirs

    c.head_to_head(summary, f"R1 rejects by reason, {c.short(args.rows)} rows: portl >= {TARGET:.1f}x the plain loop",
                   TARGET, args.rows, attempts())


if __name__ == "__main__":
    main()
