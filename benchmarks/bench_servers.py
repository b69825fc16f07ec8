"""Postgres and MySQL paths: Portl beside each reference tool, measured in the same run.

    python benchmarks/bench_servers.py [--rows N] [--repeat R] [--case NAME ...] [--keep]

Cases (1M rows x 10 columns by default, the same generated CSV as the SQLite benchmarks):

  pg-append    CSV -> Postgres append          vs psql \\copy t FROM 'file' CSV HEADER    target >= 0.85x, RSS < 300 MB
  pg-parallel  the same with parallel.workers 2 vs psql \\copy                              target >= 1.20x
  pg-upsert    CSV -> Postgres upsert, every key present (overwrite)
                                               vs psql: COPY into a temp table + one INSERT ... ON CONFLICT DO UPDATE
                                                                                           target >= 0.80x
  pg-copy      Postgres -> Postgres table copy vs psql COPY t TO STDOUT | psql COPY t2 FROM STDIN   target >= 0.70x
  my-append    CSV -> MySQL append             vs mysql LOAD DATA LOCAL INFILE             target >= 0.70x
  my-to-pg     MySQL -> Postgres table copy    vs pgloader (skipped with a clear line when not installed;
                                               sh benchmarks/setup.sh installs it)         target >= 2.00x

Each case loads into a table created beforehand with the same definition on both sides, in its
own database (created and dropped here; --keep leaves them, and the job files, for profiling), and
checks the row count afterwards. Peak RSS is the Portl process's own. Prints PASS/FAIL per target,
a detail line with every run and the CPU time of each side, and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

PG_HOST, PG_USER = "127.0.0.1", "postgres"
MY_HOST, MY_USER = "127.0.0.1", "root"

PG_COLUMNS = ("id bigint PRIMARY KEY, name text, email text, city text, signup_date date, amount numeric(12,2), "
              "active boolean, quantity integer, score double precision, notes text")
MY_COLUMNS = ("id BIGINT PRIMARY KEY, name TEXT, email TEXT, city TEXT, signup_date DATE, amount DECIMAL(12,2), "
              "active TINYINT(1), quantity INT, score DOUBLE, notes TEXT")
TYPES = {"id": "bigint", "signup_date": "date", "amount": "decimal(12,2)", "active": "bool", "quantity": "int", "score": "float"}
KEEP = False  # --keep: leave the scratch databases for a look (or a profile) afterwards


def psql(db: str, *args: str) -> list[str]:
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-U", PG_USER, "-d", db, *args]


def sh(argv: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip()[:400]}")
    return done.stdout


class Pg:
    """A scratch Postgres database for one case."""

    def __init__(self) -> None:
        self.name = f"portl_bench_{uuid.uuid4().hex[:8]}"
        sh(psql("postgres", "-c", f"CREATE DATABASE {self.name}"))
        self.url = f"postgresql://{PG_USER}@{PG_HOST}:5432/{self.name}"

    def run(self, sql: str) -> str:
        return sh(psql(self.name, "-At", "-c", sql))

    def table(self, name: str = "t") -> None:
        self.run(f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({PG_COLUMNS})")

    def count(self, name: str = "t") -> int:
        return int(self.run(f"SELECT count(*) FROM {name}").strip())

    def drop(self) -> None:
        if KEEP:
            print(f"  kept Postgres database {self.name}")
            return
        subprocess.run(psql("postgres", "-c", f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"), capture_output=True)


class My:
    """A scratch MySQL/MariaDB database for one case."""

    def __init__(self) -> None:
        self.name = f"portl_bench_{uuid.uuid4().hex[:8]}"
        sh(["mysql", "-h", MY_HOST, "-u", MY_USER, "-e", f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4"])
        self.url = f"mysql://{MY_USER}@{MY_HOST}:3306/{self.name}"

    def run(self, sql: str) -> str:
        return sh(["mysql", "--local-infile=1", "-N", "-h", MY_HOST, "-u", MY_USER, self.name, "-e", sql])

    def table(self, name: str = "t") -> None:
        self.run(f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({MY_COLUMNS}) ENGINE=InnoDB")

    def count(self, name: str = "t") -> int:
        return int(self.run(f"SELECT count(*) FROM {name}").strip())

    def drop(self) -> None:
        if KEEP:
            print(f"  kept MySQL database {self.name}")
            return
        subprocess.run(["mysql", "-h", MY_HOST, "-u", MY_USER, "-e", f"DROP DATABASE IF EXISTS {self.name}"], capture_output=True)


def job_file(work: Path, name: str, source: str, destination: str, extra: str = "") -> Path:
    path = work / f"{name}.yaml"
    path.write_text(f"name: {name}\nsource: {source}\ndestination: {destination}\nvalidation: {{max_rejects: 0}}\n{extra}")
    return path


def csv_source(data: c.Dataset) -> str:
    return f"{{type: csv, path: '{data.path}'}}"


def typed_mapping() -> str:
    return "mapping:\n  auto: true\n  columns:\n" + "".join(f"    {k}: {{type: '{v}'}}\n" for k, v in TYPES.items())


Side = Callable[[], c.Measured]


def compare(label: str, rows: int, repeat: int, portl_side: Side, reference_side: Side, reset: Callable[[], None],
            check: Callable[[], int], min_ratio: float, max_rss: float | None, reference_name: str) -> list[tuple[str, bool, str]]:
    """Run both sides ``repeat`` times (alternating which goes first); compare median times."""
    times: dict[str, list[float]] = {"portl": [], "ref": []}
    cpu: dict[str, list[float]] = {"portl": [], "ref": []}
    rss: list[float] = []
    for attempt in range(repeat):
        order = [("portl", portl_side), ("ref", reference_side)]
        if attempt % 2:
            order.reverse()
        for who, side in order:
            reset()
            m = side()
            if m.returncode != 0:
                raise RuntimeError(f"{label}: {who} side failed: {m.failure()}")
            got = check()
            if got != rows:
                raise RuntimeError(f"{label}: {who} side left {got:,} rows, expected {rows:,}")
            times[who].append(m.seconds)
            if m.cpu_seconds is not None:
                cpu[who].append(m.cpu_seconds)
            if who == "portl" and m.peak_rss_mb is not None:
                rss.append(m.peak_rss_mb)
    portl_s, ref_s = c.median(times["portl"]), c.median(times["ref"])
    ratio = ref_s / portl_s if portl_s > 0 else 0.0
    peak = max(rss) if rss else None
    ok_speed = ratio >= min_ratio
    line = (f"{label:<13} portl {portl_s:6.2f} s ({c.rate(rows, portl_s)})   {reference_name} {ref_s:6.2f} s   "
            f"ratio {ratio:.2f}x (target >= {min_ratio:.2f}x)")
    results = [(f"{label}: throughput >= {min_ratio:.2f}x {reference_name}", ok_speed, f"{ratio:.2f}x ({portl_s:.2f} s vs {ref_s:.2f} s)")]
    if peak is not None:
        line += f"  peak RSS {peak:.0f} MB" + (f" (target < {max_rss:.0f} MB)" if max_rss else "")
        if max_rss:
            results.append((f"{label}: Portl peak RSS < {max_rss:.0f} MB", peak < max_rss, f"{peak:.0f} MB"))
    print(line + "  " + c.verdict(all(r[1] for r in results)), flush=True)
    runs = {who: "/".join(f"{t:.2f}" for t in times[who]) for who in times}
    used = {who: f"{c.median(cpu[who]):.2f} s" if cpu[who] else "?" for who in cpu}
    print(f"  runs: portl {runs['portl']} s, {reference_name} {runs['ref']} s; client CPU (median): portl {used['portl']}, "
          f"{reference_name} {used['ref']} (the servers' own CPU is not counted)", flush=True)
    return results


def run_portl(job: Path, work: Path) -> c.Measured:
    return c.run_portl(job, work)


def case_pg_append(data: c.Dataset, repeat: int, workers: int = 1) -> list:
    pg, work = Pg(), c.workdir("pg")
    try:
        extra = typed_mapping() + (f"parallel: {{workers: {workers}}}\n" if workers > 1 else "")
        job = job_file(work, f"pg-append-{workers}", csv_source(data), f"{{type: postgres, url: '{pg.url}', table: t}}", extra)
        label, target = ("pg-parallel", 1.20) if workers > 1 else ("pg-append", 0.85)
        results = compare(label, data.rows, repeat, lambda: run_portl(job, work),
                          lambda: c.measure(psql(pg.name, "-c", f"\\copy t FROM '{data.path}' CSV HEADER")),
                          lambda: pg.table(), lambda: pg.count(), target, 300 if workers == 1 else None, "psql \\copy")
        if workers > 1:
            two_streams(data, pg, work, repeat)
        return results
    finally:
        pg.drop()


def two_streams(data: c.Dataset, pg: Pg, work: Path, repeat: int) -> None:
    """Context for pg-parallel, not a target: two psql \\copy of the file's halves at once, the
    most two COPY streams give on this machine with a client that does no work of its own."""
    halves = [work / "half-1.csv", work / "half-2.csv"]
    with open(data.path, "rb") as f:
        f.readline()
        body = f.read()
    middle = body.index(b"\n", len(body) // 2) + 1
    halves[0].write_bytes(body[:middle])
    halves[1].write_bytes(body[middle:])
    both = " & ".join(shlex.join(psql(pg.name, "-c", f"\\copy t FROM '{half}' CSV")) for half in halves) + "; wait"
    one, two = [], []
    for _ in range(repeat):
        pg.table()
        one.append(c.measure(psql(pg.name, "-c", f"\\copy t FROM '{data.path}' CSV HEADER")).seconds)
        pg.table()
        two.append(c.measure(["bash", "-c", both]).seconds)
        if pg.count() != data.rows:
            raise RuntimeError("pg-parallel context: the two psql streams did not load every row")
    for half in halves:
        half.unlink()
    print(f"  context: two psql \\copy streams of the file's halves at once {c.median(two):.2f} s against one stream "
          f"{c.median(one):.2f} s ({c.median(one) / c.median(two):.2f}x): the most two streams give here", flush=True)


def case_pg_upsert(data: c.Dataset, repeat: int) -> list:
    pg, work = Pg(), c.workdir("pg")
    try:
        job = job_file(work, "pg-upsert", csv_source(data), f"{{type: postgres, url: '{pg.url}', table: t}}",
                       typed_mapping() + "conflict: {key: [id], strategy: overwrite}\n")
        columns = [x.split()[0] for x in PG_COLUMNS.split(", ")]
        sets = ", ".join(f"{col} = EXCLUDED.{col}" for col in columns if col != "id")
        script = work / "upsert.sql"
        script.write_text(f"BEGIN;\nCREATE TEMP TABLE s (LIKE t) ON COMMIT DROP;\n\\copy s FROM '{data.path}' CSV HEADER\n"
                          f"INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET {sets};\nCOMMIT;\n")

        def reset() -> None:  # every key already present
            pg.table()
            sh(psql(pg.name, "-c", f"\\copy t FROM '{data.path}' CSV HEADER"))

        return compare("pg-upsert", data.rows, repeat, lambda: run_portl(job, work),
                       lambda: c.measure(psql(pg.name, "-f", str(script))), reset, lambda: pg.count(), 0.80, None,
                       "COPY + INSERT ON CONFLICT")
    finally:
        pg.drop()


def case_pg_copy(data: c.Dataset, repeat: int) -> list:
    pg, work = Pg(), c.workdir("pg")
    try:
        pg.table("t")
        sh(psql(pg.name, "-c", f"\\copy t FROM '{data.path}' CSV HEADER"))
        job = job_file(work, "pg-copy", f"{{type: postgres, url: '{pg.url}', table: t}}",
                       f"{{type: postgres, url: '{pg.url}', table: t2}}")
        pipe = shlex.join(psql(pg.name, "-c", "COPY t TO STDOUT")) + " | " + shlex.join(psql(pg.name, "-c", "COPY t2 FROM STDIN"))
        return compare("pg-copy", data.rows, repeat, lambda: run_portl(job, work), lambda: c.measure(["bash", "-c", pipe]),
                       lambda: pg.table("t2"), lambda: pg.count("t2"), 0.70, 300, "psql COPY | psql COPY")
    finally:
        pg.drop()


def case_my_append(data: c.Dataset, repeat: int) -> list:
    my, work = My(), c.workdir("mysql")
    try:
        job = job_file(work, "my-append", csv_source(data), f"{{type: mysql, url: '{my.url}', table: t}}", typed_mapping())
        load = (f"LOAD DATA LOCAL INFILE '{data.path}' INTO TABLE t FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
                "IGNORE 1 LINES (id, name, email, city, signup_date, amount, @active, quantity, score, notes) "
                "SET active = (@active = 'true')")
        return compare("my-append", data.rows, repeat, lambda: run_portl(job, work),
                       lambda: c.measure(["mysql", "--local-infile=1", "-h", MY_HOST, "-u", MY_USER, my.name, "-e", load]),
                       lambda: my.table(), lambda: my.count(), 0.70, 300, "LOAD DATA LOCAL INFILE")
    finally:
        my.drop()


def case_my_to_pg(data: c.Dataset, repeat: int) -> list:
    loader = shutil.which("pgloader")
    my, pg, work = My(), Pg(), c.workdir("mysql")
    try:
        my.table()
        my.run(f"LOAD DATA LOCAL INFILE '{data.path}' INTO TABLE t FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
               "IGNORE 1 LINES (id, name, email, city, signup_date, amount, @active, quantity, score, notes) "
               "SET active = (@active = 'true')")
        job = job_file(work, "my-to-pg", f"{{type: mysql, url: '{my.url}', table: t}}", f"{{type: postgres, url: '{pg.url}', table: t}}")
        if loader is None:
            pg.table()
            m = run_portl(job, work)
            ok = m.returncode == 0 and pg.count() == data.rows
            print(f"my-to-pg      portl {m.seconds:6.2f} s ({c.rate(data.rows, m.seconds)})   pgloader not installed "
                  f"(Debian package pgloader; sh benchmarks/setup.sh installs it): comparison skipped  "
                  f"peak RSS {m.peak_rss_mb or 0:.0f} MB  {'loaded' if ok else 'FAILED: ' + m.failure()}", flush=True)
            return [("my-to-pg: throughput >= 2.00x pgloader", True, "SKIP (pgloader not installed)")]
        # pgloader creates its own schema, named after the MySQL database, and its own table there.
        command = [loader, "--quiet", f"mysql://{MY_USER}@{MY_HOST}/{my.name}", f"postgresql://{PG_USER}@{PG_HOST}/{pg.name}"]

        def reset() -> None:
            pg.run(f"DROP SCHEMA IF EXISTS {my.name} CASCADE")
            pg.table()

        def count() -> int:
            if pg.run(f"SELECT to_regclass('{my.name}.t') IS NOT NULL").strip() == "t":
                return int(pg.run(f"SELECT count(*) FROM {my.name}.t").strip())
            return pg.count()

        return compare("my-to-pg", data.rows, repeat, lambda: run_portl(job, work), lambda: c.measure(command),
                       reset, count, 2.00, 300, "pgloader")
    finally:
        my.drop()
        pg.drop()


CASES = {
    "pg-append": lambda d, r: case_pg_append(d, r, 1),
    "pg-parallel": lambda d, r: case_pg_append(d, r, 2),
    "pg-upsert": case_pg_upsert,
    "pg-copy": case_pg_copy,
    "my-append": case_my_append,
    "my-to-pg": case_my_to_pg,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated file (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, alternating which goes first (default 3)")
    parser.add_argument("--case", nargs="*", choices=sorted(CASES), help="which cases (default: all)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch databases and job files (benchmarks/.data/work/) afterwards")
    args = parser.parse_args()
    global KEEP
    KEEP = args.keep
    print(c.environment_line())
    for tool in ("psql", "mysql"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: the cases that use it are skipped")
    data = c.dataset(args.rows)
    c.warm_cache(data.path)
    results: list[tuple[str, bool, str]] = []
    for name in args.case or list(CASES):
        needs = "mysql" if name.startswith("my") else "psql"
        if shutil.which(needs) is None:
            results.append((name, True, f"SKIP ({needs} not installed)"))
            continue
        try:
            results += CASES[name](data, args.repeat)
        except Exception as exc:  # one broken case must not hide the others
            print(f"{name}: ERROR {exc}", flush=True)
            results.append((name, False, f"error: {exc}"))
    print(f"\nsummary: Postgres and MySQL paths, {data.rows:,} rows, {data.megabytes:,.1f} MB CSV, repeat {args.repeat}")
    skipped = [r for r in results if r[2].startswith("SKIP")]
    for label, ok, detail in results:
        verdict = "SKIP" if (label, ok, detail) in skipped else "PASS" if ok else "FAIL"
        print(f"  {label:<60} {verdict}  {detail}")
    measured = len(results) - len(skipped)
    missed = sum(1 for r in results if not r[1] and r not in skipped)
    print(f"overall: {'PASS' if not missed else 'FAIL'} ({missed} of {measured} measured targets missed, {len(skipped)} skipped)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
