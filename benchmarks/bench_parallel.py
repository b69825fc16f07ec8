"""Two workers on one large CSV into PostgreSQL: Portl beside its own single stream and beside psql.

    python benchmarks/bench_parallel.py [--rows N] [--repeat R] [--keep]

The generated CSV (5M rows x 10 columns by default, about 620 MB, written once into
benchmarks/.data/ and shared with the other benchmarks) is loaded into table t of a scratch
PostgreSQL database by four sides, each as its own process, in the same run:

  portl w1    portl run of the pg-append job (six columns typed), parallel.workers: 1
  portl w2    the same job with parallel.workers: 2 (the file cut into two byte ranges)
  psql x1     psql -c "\\copy t FROM 'file' CSV HEADER"
  psql x2     two psql \\copy of the file's halves, run at once

Targets (issue): portl w2 >= 1.25x portl w1, and portl w2 >= 0.85x psql x2 (ratio = the other
side's median time / portl w2's). The sides rotate which goes first; each run starts from an
empty table and is checked for the row count afterwards. Besides the wall times it prints each
side's client CPU, the CPU the PostgreSQL processes used during it (sampled from /proc, so only
for a local server) and the CPU of every other process of the machine meanwhile, which show
where a 2-core machine's time went and whether other work disturbed a run. Always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_servers  # noqa: E402
import common as c  # noqa: E402
from bench_servers import Pg, job_file, psql, typed_mapping  # noqa: E402

DEFAULT_ROWS = 5_000_000
OVER_ONE_STREAM = 1.25  # portl w2 against portl w1
OVER_PSQL = 0.85  # portl w2 against two psql streams
SIDES = ("portl w1", "portl w2", "psql x1", "psql x2")


class ServerCpu:
    """CPU seconds used by the local PostgreSQL processes while a side runs, and by the whole
    machine (to tell how much other work ran alongside).

    A backend takes its CPU time with it when it exits, so /proc is sampled every 50 ms and the
    last value seen of each process counts."""

    def __init__(self) -> None:
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._seen: dict[str, float] = {}
        self._before: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> dict[str, float]:
        found = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.index("(") + 1:stat.rindex(")")].startswith("postgres"):
                fields = stat[stat.rindex(")") + 2:].split()
                found[pid] = (int(fields[11]) + int(fields[12])) / self._ticks  # utime + stime
        return found

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._seen.update(self._read())

    def _busy(self) -> float:
        """Core-seconds the machine has been busy (not idle, not waiting on I/O) since boot."""
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return (sum(values) - values[3] - values[4]) / self._ticks

    def __enter__(self) -> ServerCpu:
        self._busy_before = self._busy()
        self._before = self._read()
        self._seen = dict(self._before)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._seen.update(self._read())
        self.machine = self._busy() - self._busy_before

    @property
    def seconds(self) -> float:
        return sum(v - self._before.get(pid, 0.0) for pid, v in self._seen.items())


def halves(data: c.Dataset, work: Path) -> list[Path]:
    """The file's data rows in two files cut at the line nearest the middle, for psql x2."""
    paths = [work / f"{data.path.stem}-half-{k}.csv" for k in (1, 2)]
    if all(p.exists() for p in paths) and sum(p.stat().st_size for p in paths) + _header_size(data) == data.bytes:
        return paths
    with open(data.path, "rb") as f:
        f.readline()
        body = f.read()
    middle = body.index(b"\n", len(body) // 2) + 1
    paths[0].write_bytes(body[:middle])
    paths[1].write_bytes(body[middle:])
    return paths


def _header_size(data: c.Dataset) -> int:
    with open(data.path, "rb") as f:
        return len(f.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows in the generated file (default {DEFAULT_ROWS:,})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, rotating which goes first (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database, job files and halves afterwards")
    args = parser.parse_args()
    bench_servers.KEEP = args.keep
    print(c.environment_line())
    busy = c.load_warning()
    if busy:
        print(busy)
    summary = c.Summary(f"parallel.workers: 2, CSV -> PostgreSQL, {c.short(args.rows)} rows")
    texts = (f"portl w2 >= {OVER_ONE_STREAM:.2f}x portl w1", f"portl w2 >= {OVER_PSQL:.2f}x two psql \\copy streams")
    data = c.dataset(args.rows)
    work = c.workdir("parallel")
    pg = Pg()
    parts: list[Path] = []
    try:
        parts = halves(data, work)
        for path in (data.path, *parts):
            c.warm_cache(path)
        destination = f"{{type: postgres, url: '{pg.url}', table: t}}"
        jobs = {workers: job_file(work, f"parallel-{workers}", f"{{type: csv, path: '{data.path}'}}", destination,
                                  typed_mapping() + f"parallel: {{workers: {workers}}}\n") for workers in (1, 2)}
        two = " & ".join(shlex.join(psql(pg.name, "-c", f"\\copy t FROM '{half}' CSV")) for half in parts) + "; wait"
        commands = {
            "portl w1": lambda: c.run_portl(jobs[1], work),
            "portl w2": lambda: c.run_portl(jobs[2], work),
            "psql x1": lambda: c.measure(psql(pg.name, "-c", f"\\copy t FROM '{data.path}' CSV HEADER")),
            "psql x2": lambda: c.measure(["bash", "-c", two]),
        }
        times: dict[str, list[float]] = {side: [] for side in SIDES}
        client: dict[str, list[float]] = {side: [] for side in SIDES}
        server: dict[str, list[float]] = {side: [] for side in SIDES}
        others: dict[str, list[float]] = {side: [] for side in SIDES}
        for attempt in range(args.repeat):
            order = SIDES[attempt % len(SIDES):] + SIDES[:attempt % len(SIDES)]
            for side in order:
                pg.table()
                with ServerCpu() as cpu:
                    m = commands[side]()
                if m.returncode != 0:
                    raise RuntimeError(f"{side} failed: {m.failure()}")
                rows = pg.count()
                if rows != data.rows:
                    raise RuntimeError(f"{side} left {rows:,} rows in the table, expected {data.rows:,}")
                times[side].append(m.seconds)
                client[side].append(m.cpu_seconds or 0.0)
                server[side].append(cpu.seconds)
                other = max(0.0, cpu.machine - cpu.seconds - (m.cpu_seconds or 0.0))
                others[side].append(other)
                print(f"run {attempt + 1} {side:<9} {m.seconds:6.2f} s  client CPU {m.cpu_seconds or 0:5.2f} s  "
                      f"postgres CPU {cpu.seconds:5.2f} s  other processes {other:5.2f} s", flush=True)
        med = {side: c.median(times[side]) for side in SIDES}
        print()
        for side in SIDES:
            print(f"{side:<9} median {med[side]:6.2f} s ({c.rate(data.rows, med[side])})  runs "
                  f"{'/'.join(f'{t:.2f}' for t in times[side])} s  client CPU {c.median(client[side]):5.2f} s  "
                  f"postgres CPU {c.median(server[side]):5.2f} s  other processes {c.median(others[side]):5.2f} s")
        print(f"  (CPU in core-seconds, medians; the machine has {os.cpu_count()} cores: other processes' CPU "
              "above a second or so means the times are not the quiet machine's)")
        over_one = med["portl w1"] / med["portl w2"]
        over_psql = med["psql x2"] / med["portl w2"]
        print(f"portl w2 against portl w1: {over_one:.2f}x (target >= {OVER_ONE_STREAM:.2f}x)  "
              f"{c.verdict(over_one >= OVER_ONE_STREAM)}")
        print(f"portl w2 against psql x2:  {over_psql:.2f}x (target >= {OVER_PSQL:.2f}x)  {c.verdict(over_psql >= OVER_PSQL)}")
        # On a shared machine the run of each side that other processes disturbed least is a
        # second view, beside the medians the targets are judged on.
        quiet = {side: min(zip(others[side], times[side]))[1] for side in SIDES}
        print("  the least disturbed run of each side: " + ", ".join(f"{side} {quiet[side]:.2f} s" for side in SIDES)
              + f"; w2 against w1 {quiet['portl w1'] / quiet['portl w2']:.2f}x, against psql x2 "
              f"{quiet['psql x2'] / quiet['portl w2']:.2f}x")
        print(f"  context: psql x2 against psql x1 {med['psql x1'] / med['psql x2']:.2f}x (what two COPY streams give "
              f"here), portl w1 against psql x1 {med['psql x1'] / med['portl w1']:.2f}x")
        summary.add("P1", texts[0], c.verdict(over_one >= OVER_ONE_STREAM),
                    f"{over_one:.2f}x ({med['portl w2']:.2f} s vs {med['portl w1']:.2f} s)")
        summary.add("P1", texts[1], c.verdict(over_psql >= OVER_PSQL),
                    f"{over_psql:.2f}x ({med['portl w2']:.2f} s vs {med['psql x2']:.2f} s)")
    except Exception as exc:  # a benchmark reports and exits 0
        print(f"ERROR: {exc}")
        summary.add("P1", texts[0], "ERROR", str(exc)[:200])
    finally:
        if args.keep:
            print(f"  kept {work} and Postgres database {pg.name}")
        else:
            pg.drop()
            for path in parts:
                path.unlink(missing_ok=True)
    summary.print()


if __name__ == "__main__":
    main()
