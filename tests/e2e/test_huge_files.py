"""A glob of many files into PostgreSQL with two workers: each file its own partition, large plain
files cut into byte ranges. ``kill -9`` at random moments then ``--resume`` loads every row of
every file exactly once; a damaged gzip file fails the run naming it, after the other files
loaded, and ``--resume`` with a good copy loads it once."""

from __future__ import annotations

import gzip
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .test_resume import Running

BATCH = 5_000


@dataclass(frozen=True)
class Expected:
    """What one file holds: rows, and the sum of its amount column."""

    rows: int
    amount: int


def write_file(path: Path, part: str, first: int, count: int, rng: random.Random) -> Expected:
    """``count`` rows ``id,part,amount`` with ids from ``first``; gzip-compressed for ``.gz``."""
    amounts = [rng.randrange(0, 1_000_000) for _ in range(count)]
    text = "id,part,amount\n" + "".join(f"{first + i},{part},{a}\n" for i, a in enumerate(amounts))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), compresslevel=1, mtime=0))
    else:
        path.write_text(text)
    return Expected(count, sum(amounts))


def job_text(pg_url: str, pattern: str, batch: int = BATCH) -> str:
    return f"""\
name: huge
source: {{type: csv, path: "{pattern}"}}
destination: {{type: postgres, url: "{pg_url}", table: rows}}
parallel: {{workers: 2}}
batch: {{size: {batch}}}
mapping:
  auto: true
  columns:
    id: {{type: bigint}}
    amount: {{type: bigint}}
"""


def per_file(pg_url: str) -> dict[str, tuple[int, int, int]]:
    """part -> (rows, distinct ids, sum of amount) in the destination."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        exists = conn.execute("SELECT to_regclass('rows') IS NOT NULL").fetchone()[0]
        if not exists:
            return {}
        found = conn.execute("SELECT part, count(*), count(DISTINCT id), sum(amount) FROM rows GROUP BY part").fetchall()
    return {part: (rows, ids, int(total)) for part, rows, ids, total in found}


def complete(expected: dict[str, Expected]) -> dict[str, tuple[int, int, int]]:
    return {part: (e.rows, e.rows, e.amount) for part, e in expected.items()}


@pytest.mark.slow
def test_kill_9_during_a_load_of_files_in_ranges_then_resume_loads_every_row_of_every_file_once(
        portl, write, tmp_path, pg_url, monkeypatch):
    rng = random.Random(20261208)
    data = tmp_path / "data"
    expected = {
        "a": write_file(data / "a.csv", "a", 1, 250_000, rng),  # large and plain: cut into ranges
        "b": write_file(data / "b.csv", "b", 1_000_001, 200_000, rng),  # the same
        "c": write_file(data / "c.csv.gz", "c", 2_000_001, 120_000, rng),  # compressed: whole
        "d": write_file(data / "d.csv", "d", 3_000_001, 3_000, rng),
    }
    total = sum(e.rows for e in expected.values())
    # Each file is about 1.3 MB on average: a and b hold two ranges of that size each.
    monkeypatch.setenv("PORTL_SPLIT_BYTES", "500000")
    write("job.yaml", job_text(pg_url, "data/*.csv*"))

    args = ["run", "job.yaml", "--log-format", "json"]
    targets = sorted(rng.uniform(0.1, 0.75) for _ in range(3))  # kill after about these shares of the rows
    kills: list[tuple[int, int]] = []  # (exit code, rows in the destination)
    for target in targets:
        running = Running(portl.start(*args))
        started = running.wait_for(lambda e: e["event"] in ("run_started", "nothing_to_resume"))
        assert started is not None and started["event"] == "run_started", running.log
        assert started["details"]["partitions"] == 6, running.log  # a and b in two ranges, c and d whole
        running.wait_for(lambda e: e["event"] == "batch_committed" and e["details"]["totals"]["read"] >= target * total,
                         timeout=60, must=False)
        time.sleep(rng.uniform(0, 0.05))  # the kill lands in a batch being written, or between two
        running.proc.kill()
        code = running.finish()
        assert code in (0, -signal.SIGKILL), running.log
        kills.append((code, sum(rows for rows, _, _ in per_file(pg_url).values())))
        if code == 0:
            break
        args = ["run", "job.yaml", "--resume", "--log-format", "json"]

    result = portl("run", "job.yaml", "--resume", "--log-format", "json")

    assert result.code == 0, result.log
    assert [code for code, _ in kills].count(-signal.SIGKILL) >= 3, kills
    assert all(0 < rows < total for code, rows in kills if code == -signal.SIGKILL), kills
    assert per_file(pg_url) == complete(expected)
    counts = result.report["counts"]
    assert (counts["read"], counts["inserted"], counts["rejected"]) == (total, total, 0)


def damage(path: Path, how: str) -> bytes:
    """Damage a gzip file in place (a member cut short, or its CRC wrong); returns the good bytes."""
    good = path.read_bytes()
    if how == "truncated":
        path.write_bytes(good[: len(good) * 7 // 10])
    else:
        bad = bytearray(good)
        bad[-8] ^= 0xFF  # the member's CRC-32, in its 8-byte trailer
        path.write_bytes(bytes(bad))
    return good


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "bad-crc"])
def test_a_damaged_gzip_file_fails_the_run_naming_it_after_the_other_files_loaded_and_resume_loads_it_once(
        portl, write, tmp_path, pg_url, how):
    rng = random.Random(7)
    data = tmp_path / "data"
    expected = {}
    for n, name in enumerate(["p1.csv", "p2.csv.gz", "p3.csv.gz", "p4.csv", "p5.csv.gz"]):
        # p3 holds 3 MB of text: its damage lies past the first megabyte, which opening the file reads
        rows = 150_000 if name == "p3.csv.gz" else 40_000
        expected[f"p{n + 1}"] = write_file(data / name, f"p{n + 1}", n * 1_000_000 + 1, rows, rng)
    good = damage(data / "p3.csv.gz", how)
    write("job.yaml", job_text(pg_url, "data/*.csv*", batch=2_000))

    failed = portl("run", "job.yaml")

    assert failed.code == 1, failed.log
    error = " ".join(failed.stderr.split())  # rich may wrap the message
    damaged = "data/p3.csv.gz"
    assert f"error: cannot read gzip file {damaged} at compressed byte " in error, failed.log
    assert ("Compressed file ended before the end-of-stream marker" if how == "truncated" else "CRC check failed") in error
    assert f"Put a good copy of {damaged} in its place" in error and "--resume" in error
    loaded = per_file(pg_url)
    others = {part: counts for part, counts in complete(expected).items() if part != "p3"}
    assert {part: counts for part, counts in loaded.items() if part != "p3"} == others
    partial = loaded.get("p3", (0, 0, 0))
    assert 0 < partial[0] == partial[1] < expected["p3"].rows  # rows committed before the damage, each once
    for name in ("p1.csv", "p2.csv.gz", "p4.csv", "p5.csv.gz"):
        assert f"loaded data/{name}: " in failed.stderr, failed.log

    (data / "p3.csv.gz").write_bytes(good)
    resumed = portl("run", "job.yaml", "--resume", "--log-format", "json")

    assert resumed.code == 0, resumed.log
    assert per_file(pg_url) == complete(expected)
    finished = [e["details"] for e in resumed.events if e.get("event") == "file_finished"]
    assert [(d["file"], d["rows"], d["earlier_rows"]) for d in finished] == \
        [(damaged, 150_000 - partial[0], partial[0])], finished
    assert resumed.report["counts"]["read"] == 4 * 40_000 + 150_000
