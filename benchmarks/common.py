"""Shared pieces of the benchmarks: the test file, running and measuring a command, result lines.

The test file is generated from a seed, a block of rows at a time, each block from its own
``random.Random`` seeded with (seed, block number): the same rows, seed and generator version
always give the same bytes, and the first N rows of a bigger file are the N-row file. A file is
written once into ``benchmarks/.data/`` (gitignored) with a small ``.json`` beside it, and reused
while that description still matches the file on disk.

A measured command runs as its own process, so its peak resident set size is its own: under
GNU ``/usr/bin/time -v`` when that is installed, otherwise through ``os.wait4``, which returns the
``rusage`` (``ru_maxrss``) of exactly that child.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
GENERATOR_VERSION = 1
DEFAULT_SEED = 20240601
BLOCK_ROWS = 50_000
TABLE = "t"

# --- the columns --------------------------------------------------------------------------------

COLUMNS = ["id", "name", "email", "city", "signup_date", "amount", "active", "quantity", "score", "notes"]
"""id int, a name, an email, a city, an ISO date, a decimal amount, a bool flag, a small int, a
float and a longer free-text field; about 120 bytes per row."""

PLAIN_TYPES = {name: "TEXT" for name in COLUMNS}
"""Target 1: every column TEXT, on both sides. Portl reads CSV values as text and, with no mapping
and a TEXT table, writes them as they are; ``.import`` stores the same text."""

COERCED = {"id": "bigint", "amount": "decimal(12,2)", "signup_date": "date", "active": "bool"}
"""Target 2: the four columns Portl's mapping converts from text (the job's ``type:``)."""

COERCED_TYPES = {**PLAIN_TYPES, "id": "INTEGER", "amount": "DECIMAL(12,2)", "signup_date": "DATE", "active": "BOOLEAN"}
"""Target 2's table, on both sides: the coerced columns declared with their types (``.import``
then applies SQLite's type affinity to them), the others TEXT."""

_FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony
Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth
Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald Stephanie Jason Rebecca Edward
Sharon Jeffrey Laura Ryan Cynthia Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Zoë José
Chloé Søren Łukasz Renée""".split()
_LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez
Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green
Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Müller Østergaard O'Brien
Nakamura Kowalski Dubois""".split()
_DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "post.example.de",
            "inbox.example.io", "example.fr", "webmail.example.com"]
_CITIES = ["London", "Paris", "Berlin", "New York", "São Paulo", "Tokyo", "Sydney", "Toronto", "Madrid",
           "Rome", "Amsterdam", "Lisbon", "Dublin", "Chicago", "Los Angeles", "Mexico City", "Mumbai",
           "Seoul", "Cape Town", "Zürich", "Kraków", "Montréal", "Oslo", "Stockholm", "Vienna",
           "Buenos Aires", "Singapore", "Auckland", "Nairobi", "Reykjavík"]
_WORDS = """order shipped late customer asked refund invoice paid twice address changed phone
support ticket closed priority follow up next week account upgraded plan discount applied
delivery window missed call back requested package damaged replacement sent note from sales
renewal due contract signed trial ended payment failed card expired email bounced duplicate
merged record verified manually""".split()
_DAYS = [dt.date.fromordinal(dt.date(2015, 1, 1).toordinal() + n).isoformat()
         for n in range((dt.date(2024, 12, 31) - dt.date(2015, 1, 1)).days + 1)]


def _block_lines(seed: int, block: int, first_id: int, rows: int) -> str:
    """``rows`` CSV lines (ids from ``first_id``), from their own seeded generator."""
    rng = random.Random(f"portl-bench:{GENERATOR_VERSION}:{seed}:{block}")
    first = rng.choices(_FIRST, k=rows)
    last = rng.choices(_LAST, k=rows)
    domains = rng.choices(_DOMAINS, k=rows)
    cities = rng.choices(_CITIES, k=rows)
    days = rng.choices(_DAYS, k=rows)
    rand, randrange, choices = rng.random, rng.randrange, rng.choices
    out = []
    for i in range(rows):
        f, l = first[i], last[i]
        name = f"{f} {l}"
        email = f"{f}.{l}{randrange(1, 1000)}@{domains[i]}".lower().replace("'", "")
        city = "" if rand() < 0.01 else cities[i]  # ~1% empty: NULL for Portl, '' for .import
        cents = randrange(0, 2_500_000)
        amount = f"{'-' if rand() < 0.05 else ''}{cents // 100}.{cents % 100:02d}"
        active = "true" if rand() < 0.7 else "false"
        words = choices(_WORDS, k=randrange(2, 6))
        if rand() < 0.25:
            words[randrange(len(words))] += ","
        if rand() < 0.05:
            words.append('"urgent"')
        notes = " ".join(words)
        if "," in notes or '"' in notes:
            notes = '"' + notes.replace('"', '""') + '"'
        out.append(f"{first_id + i},{name},{email},{city},{days[i]},{amount},{active},{randrange(1, 100)},"
                   f"{rand() * 100:.4f},{notes}\n")
    return "".join(out)


@dataclass(frozen=True)
class Dataset:
    path: Path
    rows: int
    seed: int
    bytes: int

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


def dataset(rows: int, seed: int = DEFAULT_SEED, quiet: bool = False) -> Dataset:
    """The CSV file of ``rows`` rows for ``seed``: reused when present, else generated once."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"rows-{rows}-seed-{seed}-v{GENERATOR_VERSION}.csv"
    meta_path = path.with_suffix(".json")
    wanted = {"rows": rows, "seed": seed, "generator": GENERATOR_VERSION, "columns": COLUMNS}
    if cached(path, wanted) is not None:
        if not quiet:
            print(f"data: reusing {_rel(path)} ({rows:,} rows, {path.stat().st_size / 1e6:,.1f} MB)")
        return Dataset(path, rows, seed, path.stat().st_size)
    need = rows * 125 * 2.2  # the file, and a database of about the same size beside it
    free = shutil.disk_usage(DATA_DIR).free
    if free < need:
        raise SystemExit(f"not enough free disk space in {DATA_DIR}: {free / 1e9:.1f} GB free, "
                         f"about {need / 1e9:.1f} GB needed for {rows:,} rows")
    if not quiet:
        print(f"data: generating {_rel(path)} ({rows:,} rows, seed {seed}) ...", flush=True)
    started = time.perf_counter()
    tmp = path.with_suffix(".csv.partial")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        for block, first in enumerate(range(0, rows, BLOCK_ROWS)):
            f.write(_block_lines(seed, block, first + 1, min(BLOCK_ROWS, rows - first)))
    os.replace(tmp, path)
    size = path.stat().st_size
    meta_path.write_text(json.dumps({**wanted, "bytes": size}, indent=1) + "\n")
    if not quiet:
        print(f"data: wrote {size / 1e6:,.1f} MB ({size / max(rows, 1):.0f} bytes/row) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    return Dataset(path, rows, seed, size)


def cached(path: Path, wanted: dict) -> dict | None:
    """The description (the ``.json`` beside it) of a generated file still as ``wanted`` describes
    it, and of the size it says; None when the file must be written again."""
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        return None
    if {k: meta.get(k) for k in wanted} == wanted and meta.get("bytes") == path.stat().st_size:
        return meta
    return None


def warm_cache(path: Path) -> None:
    """Read the file once so that both sides start with it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- running and measuring ----------------------------------------------------------------------


@dataclass
class Measured:
    argv: list[str]
    seconds: float
    peak_rss_kb: int | None
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float | None = None
    """User plus system CPU time of the process (all its threads)."""

    @property
    def peak_rss_mb(self) -> float | None:
        return None if self.peak_rss_kb is None else self.peak_rss_kb / 1024

    def failure(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-6:]
        return f"exit code {self.returncode}: " + " | ".join(line.strip() for line in tail)


def _gnu_time() -> str | None:
    path = "/usr/bin/time"
    if not os.access(path, os.X_OK):
        return None
    try:
        probe = subprocess.run([path, "-v", "true"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "Maximum resident set size" in probe.stderr else None


GNU_TIME = _gnu_time()


def rss_method() -> str:
    return "/usr/bin/time -v" if GNU_TIME else "os.wait4 rusage (ru_maxrss of the child)"


def measure(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` as a child process; its wall time and peak RSS.

    Dirty pages left by an earlier run (a database just written) are flushed first, outside the
    timing, so that their writeback does not land inside this run's time.
    """
    os.sync()
    with tempfile.TemporaryDirectory(prefix="portl-bench-") as tmp:
        out_path, err_path, time_path = (Path(tmp) / n for n in ("out", "err", "time"))
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if GNU_TIME:
                started = time.perf_counter()
                proc = subprocess.run([GNU_TIME, "-v", "-o", str(time_path), *argv], stdout=out, stderr=err,
                                      cwd=cwd, env=env)
                seconds = time.perf_counter() - started
                code = proc.returncode
                report = time_path.read_text(errors="replace") if time_path.exists() else ""
                found = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", report)
                rss = int(found.group(1)) if found else None
                cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\):\s*([0-9.]+)", report)) or None
            else:
                started = time.perf_counter()
                proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd, env=env)
                _, status, usage = os.wait4(proc.pid, 0)
                seconds = time.perf_counter() - started
                proc.returncode = code = os.waitstatus_to_exitcode(status)
                rss = int(usage.ru_maxrss)  # kilobytes on Linux
                cpu = usage.ru_utime + usage.ru_stime
        return Measured(argv, seconds, rss, code, out_path.read_text(errors="replace"),
                        err_path.read_text(errors="replace"), cpu)


def portl_command() -> list[str]:
    """The ``portl`` command line of the environment running the benchmark."""
    beside = Path(sys.executable).parent / "portl"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("portl")
    return [found] if found else [sys.executable, "-m", "portl.cli.app"]


def sqlite3_cli() -> str | None:
    return shutil.which("sqlite3")


def sqlite3_cli_version(cli: str) -> str:
    try:
        return subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def portl_version() -> str:
    try:
        from importlib.metadata import version
        return version("portl")
    except Exception:
        return "?"


def pyarrow_version() -> str:
    try:
        import pyarrow
        return pyarrow.__version__
    except ImportError:
        return "?"


def _cpu_busy(seconds: float = 1.0) -> float | None:
    """The share of all CPUs busy (not idle, not waiting on I/O) over the next ``seconds``."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return None if total <= 0 else 1 - (idle1 - idle0) / total


def load_warning() -> str | None:
    """A note when other processes keep the CPUs busy: wall-clock ratios get noisy then."""
    busy = _cpu_busy()
    if busy is None or busy < 0.15:
        return None
    return (f"note: other processes kept {busy:.0%} of the {os.cpu_count()} cpus busy just before starting, "
            "so times and ratios are noisier; CPU times are shown beside them")


def environment_line() -> str:
    cli = sqlite3_cli()
    return (f"env: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
            f"pyarrow {pyarrow_version()}, portl {portl_version()}, sqlite3 module {sqlite3.sqlite_version}, "
            f"sqlite3 CLI {sqlite3_cli_version(cli) if cli else 'not installed'}, peak RSS via {rss_method()}")


# --- databases and jobs -------------------------------------------------------------------------


def fresh_database(path: Path, types: dict[str, str], table: str = TABLE) -> None:
    """A new database file holding one empty table with ``types`` (column -> declared type)."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        columns = ", ".join(f'"{name}" {declared}' for name, declared in types.items())
        conn.execute(f'CREATE TABLE "{table}" ({columns})')
        conn.commit()
    finally:
        conn.close()


def count_rows(path: Path, table: str = TABLE) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        conn.close()


def column_storage(path: Path, columns: list[str], table: str = TABLE) -> dict[str, list[str]]:
    """The storage classes (``typeof``) found in each column, over the whole table."""
    conn = sqlite3.connect(path)
    try:
        return {c: sorted(r[0] for r in conn.execute(f'SELECT DISTINCT typeof("{c}") FROM "{table}"'))
                for c in columns}
    finally:
        conn.close()


def remove_database(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def write_job(path: Path, name: str, csv_path: Path, db_path: Path, coerced: dict[str, str] | None = None,
              table: str = TABLE) -> None:
    """A Portl job file: the CSV appended to ``table``; with ``coerced``, those columns are
    converted to the given logical types and the other columns are auto-mapped as text."""
    lines = [
        f"name: {name}",
        "source:",
        "  type: csv",
        f"  path: {json.dumps(str(csv_path))}",
        "destination:",
        "  type: sqlite",
        f"  path: {json.dumps(str(db_path))}",
        f"  table: {table}",
        "mode: append",
        "validation:",
        "  max_rejects: 0",
    ]
    if coerced:
        lines += ["mapping:", "  auto: true", "  columns:"]
        lines += [f"    {column}: {{type: {json.dumps(logical)}}}" for column, logical in coerced.items()]
    path.write_text("\n".join(lines) + "\n")


def portl_env() -> dict[str, str]:
    """The environment Portl runs in: with its bytecode cached, as an installed package has it
    compiled, even where ``PYTHONDONTWRITEBYTECODE`` is set (which would make every run compile
    Portl's modules again); compiled once, before the first run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(NO_COLOR="1", COLUMNS="200")
    if not _COMPILED:
        import portl

        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(portl.__file__).parent)], env=env,
                       capture_output=True)
        _COMPILED.append(True)
    return env


_COMPILED: list[bool] = []


def run_portl(job: Path, workdir: Path) -> Measured:
    """``portl run job.yaml --no-progress`` in ``workdir`` (its run ledger starts empty)."""
    shutil.rmtree(workdir / ".portl", ignore_errors=True)
    return measure([*portl_command(), "run", str(job), "--no-progress"], cwd=workdir, env=portl_env())


def run_sqlite_import(cli: str, db_path: Path, csv_path: Path, table: str = TABLE) -> Measured:
    """``sqlite3 db ".mode csv" ".import --skip 1 file t"`` into the existing table."""
    return measure([cli, str(db_path), ".mode csv", f".import --skip 1 {csv_path} {table}"])


def import_problems(m: Measured) -> str | None:
    """``.import`` reports bad lines on stderr but still exits 0 for some of them."""
    if m.returncode != 0:
        return m.failure()
    text = (m.stderr + m.stdout).strip()
    return f"sqlite3 said: {text.splitlines()[0]}" if text else None


def portl_reported_seconds(m: Measured) -> float | None:
    found = re.search(r"\bin ([0-9.]+) s\b", m.stdout + m.stderr)
    return float(found.group(1)) if found else None


def workdir(name: str) -> Path:
    path = DATA_DIR / "work" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- reporting ----------------------------------------------------------------------------------


def rate(rows: int, seconds: float) -> str:
    per_s = rows / seconds if seconds > 0 else 0.0
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f}M rows/s"
    return f"{per_s / 1e3:.0f}k rows/s"


def short(rows: int) -> str:
    """10000000 -> '10M', 250000 -> '250k', 1234 -> '1,234'."""
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return f"{rows:,}"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class Target:
    """One target of one benchmark, for the summary."""

    number: str
    text: str
    status: str  # PASS, FAIL, SKIP or ERROR
    measured: str = ""


@dataclass
class Summary:
    title: str
    targets: list[Target] = field(default_factory=list)

    def add(self, number: str, text: str, status: str, measured: str = "") -> None:
        self.targets.append(Target(number, text, status, measured))

    def print(self) -> None:
        print()
        print(f"summary: {self.title}")
        width = max((len(t.text) for t in self.targets), default=0)
        for t in self.targets:
            print(f"  {t.number:<3} {t.text:<{width}}  {t.status:<5} {t.measured}")
        failed = [t for t in self.targets if t.status in ("FAIL", "ERROR")]
        skipped = [t for t in self.targets if t.status == "SKIP"]
        if failed:
            verdict = f"FAIL ({len(failed)} of {len(self.targets)} targets missed)"
        elif skipped:
            verdict = f"PASS for the targets measured ({len(skipped)} skipped)"
        else:
            verdict = "PASS (the target was met)" if len(self.targets) == 1 else f"PASS (all {len(self.targets)} targets met)"
        print(f"overall: {verdict}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def head_to_head(summary: Summary, target_text: str, target: float, rows: int,
                 attempts: Iterator[tuple[Measured, Measured]]) -> None:
    """Portl against a reference script, one ``(portl, reference)`` pair of measurements per
    attempt: print each pair, then the medians and their ratio (reference time / Portl time)
    against ``target``, and add it to ``summary`` (an attempt that failed ends it as ERROR)."""
    portl_times, reference_times = [], []
    for attempt, (mine, theirs) in enumerate(attempts, 1):
        if mine.returncode != 0 or theirs.returncode != 0:
            failed = mine if mine.returncode else theirs
            print(f"run {attempt}: ERROR {failed.failure()}")
            summary.add("1", target_text, "ERROR", failed.failure()[:80])
            summary.print()
            return
        portl_times.append(mine.seconds)
        reference_times.append(theirs.seconds)
        print(f"run {attempt}: portl {mine.seconds:.2f} s ({rate(rows, mine.seconds)}, "
              f"{mine.peak_rss_mb or 0:.0f} MB), reference {theirs.seconds:.2f} s "
              f"({rate(rows, theirs.seconds)}, {theirs.peak_rss_mb or 0:.0f} MB)")
    ratio = median(reference_times) / median(portl_times)
    print(f"median: portl {median(portl_times):.2f} s, reference {median(reference_times):.2f} s, "
          f"ratio {ratio:.2f}x (target >= {target:.2f}x): {verdict(ratio >= target)}")
    summary.add("1", target_text, verdict(ratio >= target), f"{ratio:.2f}x")
    summary.print()
