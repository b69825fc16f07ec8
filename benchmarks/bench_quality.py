"""Data-quality checks during a load and on the source alone, on a large generated TSV (Q1–Q4).

    python benchmarks/bench_quality.py [--gb SIZE] [--repeat R] [--side NAME ...] [--keep]

The file (benchmarks/quality_data.py: ~83M rows x 10 columns at the default 10 GB, a ``day``
column of business days over three years with 5 business days left out and 4 days of four times
the usual volume) is measured five ways, each a whole process:

  copy     psql \\copy into table t, no checks (the reference of Q1)
  checks   portl run of a job with quality: checks (not_null on 3 columns, unique id, date
           completeness with the US holiday calendar, volume anomaly, 2 range checks)
  plain    portl run of the same job without its quality: list (the reference of Q2)
  check    portl check of the checks job: the checks on the file alone, nothing loaded
  duckdb   the same checks as SQL in DuckDB over the file (benchmarks/quality_duckdb.py; the
           reference of Q3; skipped when duckdb is not installed: .venv/bin/python -m pip install duckdb)

Targets: Q1 checks >= 0.85x copy, and the checks find exactly the planted gaps and spikes (read
from the run's JSON report); Q2 checks >= 0.90x plain (the checks cost at most 10% of the
throughput); Q3 check >= 0.50x duckdb (ratio = duckdb time / portl check time); Q4 peak RSS of
every Portl process < 300 MB. Each load goes into table t of its own scratch database (created
beforehand with the same types for every side, no key; dropped afterwards), and the table must
hold every row. Prints each side, the ratios, PASS/FAIL per target, what was planted against what
each side found, and the figures extrapolated to 100 GB; always exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_servers  # noqa: E402
import common as c  # noqa: E402
import quality_data as qd  # noqa: E402
from bench_servers import Pg, psql  # noqa: E402

TABLE = ("id bigint, day date, customer text, email text, amount numeric(12,2), qty integer, status text, "
         "country text, price double precision, note text")
TYPES = {"id": "bigint", "day": "date", "amount": "decimal(12,2)", "qty": "int", "price": "float"}
CHECKS = """quality:
  - {check: not_null, columns: [id, day, customer], severity: critical}
  - {check: unique, columns: [id]}
  - {check: date_completeness, column: day, weekdays_only: true, holidays: {country: US}, severity: warning}
  - {check: volume_anomaly, column: day, severity: warning}
  - {check: range, column: amount, min: 0, max: 100000}
  - {check: range, column: qty, min: 1, max: 1000}
"""
SIDES = ["copy", "checks", "plain", "check", "duckdb"]
LABELS = {"copy": "psql \\copy (no checks)", "checks": "portl run, checks", "plain": "portl run, no checks",
          "check": "portl check", "duckdb": "duckdb, same checks"}
MAX_RSS_MB = 300
DUCKDB_MEMORY = "4GB"


@dataclass
class Findings:
    """What one side's checks found."""

    rows: int
    missing: list[str]
    spikes: list[str]
    not_null: int
    duplicate_keys: int
    amount: int
    qty: int

    def problems(self, data: qd.Data) -> list[str]:
        """How these findings differ from what the generator planted (empty: exactly the same)."""
        out = []
        if self.rows != data.rows:
            out.append(f"{self.rows:,} rows checked, not {data.rows:,}")
        if self.missing != data.missing:
            out.append(f"missing dates {self.missing} instead of {data.missing}")
        if self.spikes != data.spikes:
            out.append(f"spike dates {self.spikes} instead of {data.spikes}")
        for what, n in (("not_null", self.not_null), ("duplicate keys", self.duplicate_keys),
                        ("range(amount)", self.amount), ("range(qty)", self.qty)):
            if n:
                out.append(f"{n:,} {what} failures, none planted")
        return out


@dataclass
class Side:
    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    findings: list[Findings] = field(default_factory=list)
    spilled_bytes: int | None = None
    skipped: str | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return c.median(self.seconds) if self.seconds else None


WORKERS = 2
"""Portl's parallel.workers, with and without checks (--workers): one file read in byte ranges."""


def job_text(name: str, data: qd.Data, url: str, report: Path | None) -> str:
    mapping = "mapping:\n  auto: true\n  columns:\n" + "".join(f"    {k}: {{type: '{v}'}}\n" for k, v in TYPES.items())
    text = (f"name: {name}\nsource: {{type: tsv, path: '{data.path}'}}\n"
            f"destination: {{type: postgres, url: '{url}', table: t}}\n{mapping}parallel: {{workers: {WORKERS}}}\n")
    if report is not None:
        text += CHECKS + f"reports: {{json: '{report}'}}\n"
    return text


def report_findings(path: Path) -> tuple[Findings, int | None]:
    """The findings in a Portl quality report (JSON), and the bytes the unique check spilled."""
    report = json.loads(path.read_text())
    by_name = {r["name"]: r for r in report["results"]}
    completeness, volume = by_name["date_completeness(day)"], by_name["volume_anomaly(day)"]
    unique = by_name["unique(id)"]["details"]
    found = Findings(rows=report["rows"], missing=list(completeness["details"].get("missing", [])),
                     spikes=[p["key"] for p in volume["details"].get("points", []) if p["anomalous"]],
                     not_null=by_name["not_null(id, day, customer)"]["failing_rows"],
                     duplicate_keys=unique.get("duplicate_keys", 0), amount=by_name["range(amount)"]["failing_rows"],
                     qty=by_name["range(qty)"]["failing_rows"])
    return found, unique.get("spilled_bytes")


def run_load(side: Side, data: qd.Data, work: Path) -> None:
    """One load (copy, checks or plain) into a fresh scratch database; the table must hold every row."""
    pg = Pg()
    try:
        pg.run(f"CREATE TABLE t ({TABLE})")
        if side.name == "copy":
            m = c.measure(psql(pg.name, "-c", f"\\copy t FROM '{data.path}' WITH (FORMAT csv, DELIMITER E'\\t', HEADER)"))
        else:
            report = work / "report-checks.json" if side.name == "checks" else None
            if report is not None:
                report.unlink(missing_ok=True)
            job = work / f"quality-{side.name}.yaml"
            job.write_text(job_text(f"quality_{side.name}", data, pg.url, report))
            m = c.run_portl(job, work)
        if m.returncode != 0:
            raise RuntimeError(f"{LABELS[side.name]} failed: {m.failure()}")
        got = pg.count()
        if got != data.rows:
            raise RuntimeError(f"{LABELS[side.name]} left {got:,} rows in t, expected {data.rows:,}")
        if side.name == "checks":
            found, side.spilled_bytes = report_findings(report)
            side.findings.append(found)
        record(side, m)
    finally:
        pg.drop()


def run_check(side: Side, data: qd.Data, work: Path) -> None:
    """``portl check`` of the checks job (its destination is named, never opened)."""
    job, report = work / "quality-check.yaml", work / "report-check.json"
    report.unlink(missing_ok=True)
    job.write_text(job_text("quality_check", data, "postgresql://postgres@127.0.0.1:5432/unused", None) + CHECKS)
    shutil.rmtree(work / ".portl", ignore_errors=True)  # no anomaly history from an earlier pass
    m = c.measure([*c.portl_command(), "check", str(job), "--json", str(report)], cwd=work, env=c.portl_env())
    if m.returncode != 0:
        raise RuntimeError(f"portl check failed: {m.failure()}")
    found, side.spilled_bytes = report_findings(report)
    side.findings.append(found)
    record(side, m)


def run_duckdb(side: Side, data: qd.Data, work: Path) -> None:
    spill = work / "duckdb.tmp"
    # Capped so that the id GROUP BY of a 10 GB file leaves room for the rest of a shared machine; it spills past that.
    m = c.measure([sys.executable, str(c.HERE / "quality_duckdb.py"), "--file", str(data.path), "--temp", str(spill),
                   "--memory-limit", DUCKDB_MEMORY])
    if m.returncode != 0:
        raise RuntimeError(f"duckdb failed: {m.failure()}")
    got = json.loads(m.stdout.strip().splitlines()[-1])
    side.findings.append(Findings(got["rows"], got["missing"], got["spikes"], got["not_null_failing"],
                                  got["duplicate_keys"], got["amount_failing"], got["qty_failing"]))
    record(side, m)


def record(side: Side, m: c.Measured) -> None:
    side.seconds.append(m.seconds)
    if m.cpu_seconds is not None:
        side.cpu.append(m.cpu_seconds)
    if m.peak_rss_mb is not None:
        side.rss.append(m.peak_rss_mb)
    rss = f", peak RSS {m.peak_rss_mb:.0f} MB" if m.peak_rss_mb is not None else ""
    print(f"  {LABELS[side.name]:<24} {m.seconds:8.2f} s{rss}, CPU {m.cpu_seconds or 0:.1f} s", flush=True)


RUNNERS = {"copy": run_load, "checks": run_load, "plain": run_load, "check": run_check, "duckdb": run_duckdb}


def ratio_target(summary: c.Summary, number: str, text: str, faster: Side, slower: Side, target: float,
                 cpu: bool = False) -> None:
    """``faster``'s time over ``slower``'s (the throughput ratio of ``slower``) against ``target``;
    ``cpu``: also the two processes' CPU times (steadier on a busy machine; not for psql, whose
    work is done by the server)."""
    for side in (faster, slower):
        if side.skipped or side.error or side.median is None:
            status = "SKIP" if side.skipped else "ERROR"
            summary.add(number, text, status, side.skipped or side.error or "not measured")
            return
    ratio = faster.median / slower.median
    used = (f"; CPU {c.median(slower.cpu):.1f} s against {c.median(faster.cpu):.1f} s"
            if cpu and slower.cpu and faster.cpu else "")
    summary.add(number, text, c.verdict(ratio >= target),
                f"{ratio:.2f}x ({slower.median:.1f} s against {faster.median:.1f} s{used})")


def compare_findings(summary: c.Summary, data: qd.Data, sides: dict[str, Side]) -> None:
    print(f"\nplanted: missing {', '.join(data.missing)}; spikes ({qd.SPIKE_FACTOR:g}x) {', '.join(data.spikes)}")
    for name in ("checks", "check", "duckdb"):
        side = sides.get(name)
        if side is None or not side.findings:
            continue
        problems = [p for f in side.findings for p in f.problems(data)]
        last = side.findings[-1]
        print(f"  {LABELS[name]:<24} found missing {', '.join(last.missing) or 'none'}; spikes "
              f"{', '.join(last.spikes) or 'none'}; not_null {last.not_null}, duplicate keys {last.duplicate_keys}, "
              f"range {last.amount}+{last.qty} -> {'exactly as planted' if not problems else 'DIFFERS: ' + '; '.join(problems)}")
        if name == "checks":
            summary.add("Q1", "the load's checks find exactly the planted gaps and spikes", c.verdict(not problems),
                        f"{len(last.missing)} missing, {len(last.spikes)} spikes, over {len(side.findings)} run(s)")


def extrapolate(data: qd.Data, sides: dict[str, Side]) -> None:
    scale = 100e9 / data.bytes
    print(f"\n100 GB, extrapolated linearly from {data.gigabytes:.2f} GB (x{scale:.1f}; about {data.rows * scale / 1e6:,.0f}M rows):")
    for name, side in sides.items():
        if side.median is None:
            continue
        memory = f", peak RSS {max(side.rss):.0f} MB measured here" if side.rss and name != "copy" else ""
        print(f"  {LABELS[name]:<24} {side.median * scale / 60:7.1f} min{memory}")
    spilled = next((s.spilled_bytes for s in sides.values() if s.spilled_bytes), None)
    print("  memory: Portl holds batch x workers rows at a time, whatever the input size; what grows is on disk: the "
          "unique check's keys spill to 256 bucket files, read back one at a time at the end")
    if spilled:
        at_100 = spilled * scale
        print(f"  unique(id) spilled {spilled / 1e6:,.0f} MB here; at 100 GB about {at_100 / 1e9:,.1f} GB of keys on disk, "
              f"{at_100 / 256 / 1e6:,.0f} MB a bucket (here {spilled / 256 / 1e6:,.1f} MB); a bucket past 64 MB is split "
              "further before it is judged, so the memory of the judging stays bounded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=10.0, help="size of the generated TSV in GB (default 10)")
    parser.add_argument("--repeat", type=int, help="runs per side, the order rotating (default 1 from 5 GB, else 3)")
    parser.add_argument("--side", nargs="*", choices=SIDES, help="which sides to run (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases and job files")
    parser.add_argument("--workers", type=int, default=2, help="Portl's parallel.workers for its runs (default 2)")
    args = parser.parse_args()
    bench_servers.KEEP = args.keep
    global WORKERS
    WORKERS = args.workers
    repeat = args.repeat or (1 if args.gb >= 5 else 3)
    print(c.environment_line())
    note = c.load_warning()
    if note:
        print(note)
    data = qd.dataset(args.gb)
    print(f"data: {data.rows:,} rows, {data.gigabytes:.2f} GB, {len(data.business_days)} business days; "
          f"{len(data.missing)} missing and {len(data.spikes)} spike days planted")
    work = c.workdir("quality")
    names = args.side or SIDES
    sides = {name: Side(name) for name in names}
    if "duckdb" in sides and importlib.util.find_spec("duckdb") is None:
        sides["duckdb"].skipped = "duckdb not installed (.venv/bin/python -m pip install duckdb)"
        print(f"SKIP duckdb: {sides['duckdb'].skipped}")
    c.warm_cache(data.path)
    started = time.perf_counter()
    for attempt in range(repeat):
        print(f"run {attempt + 1} of {repeat}:", flush=True)
        order = names[attempt % len(names):] + names[:attempt % len(names)]
        for name in order:
            side = sides[name]
            if side.skipped or side.error:
                continue
            try:
                RUNNERS[name](side, data, work)
            except Exception as exc:  # one broken side must not hide the others
                side.error = str(exc)[:300]
                print(f"  {LABELS[name]:<24} ERROR {side.error}", flush=True)
    print(f"\nmedians of {repeat} run(s), {data.rows:,} rows, {data.gigabytes:.2f} GB ({time.perf_counter() - started:.0f} s in all):")
    for name, side in sides.items():
        if side.median is not None:
            cpu = f", CPU {c.median(side.cpu):.1f} s" if side.cpu else ""
            rss = f", peak RSS {max(side.rss):.0f} MB" if side.rss else ""
            print(f"  {LABELS[name]:<24} {side.median:8.2f} s ({c.rate(data.rows, side.median)}, "
                  f"{data.bytes / 1e6 / side.median:,.0f} MB/s){rss}{cpu}")
    summary = c.Summary(f"quality checks on {data.gigabytes:.2f} GB ({data.rows:,} rows), repeat {repeat}")
    if "checks" in sides and "copy" in sides:
        ratio_target(summary, "Q1", "portl run with checks >= 0.85x psql \\copy without", sides["copy"], sides["checks"], 0.85)
    compare_findings(summary, data, sides)
    if "checks" in sides and "plain" in sides:
        ratio_target(summary, "Q2", "with checks >= 0.90x the same load without", sides["plain"], sides["checks"], 0.90,
                     cpu=True)
    if "check" in sides and "duckdb" in sides:
        ratio_target(summary, "Q3", "portl check >= 0.50x duckdb (duckdb time / portl time)", sides["duckdb"],
                     sides["check"], 0.50, cpu=True)
    for name in ("checks", "plain", "check"):
        side = sides.get(name)
        if side is not None and side.rss:
            summary.add("Q4", f"peak RSS < {MAX_RSS_MB} MB: {LABELS[name]}", c.verdict(max(side.rss) < MAX_RSS_MB),
                        f"{max(side.rss):.0f} MB")
    extrapolate(data, sides)
    summary.print()


if __name__ == "__main__":
    main()
