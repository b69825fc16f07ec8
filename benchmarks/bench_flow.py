"""Flow A over 5,000 CSV rows: Portl beside the same work written by hand, measured in one run.

    python benchmarks/bench_flow.py [--rows N] [--repeat R]

Portl runs ``portl run`` on examples/flow_a.yaml (a copy pointing at the generated CSV); the
reference is ``benchmarks/flow_handwritten.py`` (psycopg + httpx + boto3), making the same SQL
statements and HTTP and Lambda calls in the same order, in one transaction. Both are timed as
whole processes (interpreter start included), each against a fresh Postgres database with the
example schema, and the same two local servers started once as their own processes: the
recording HTTP server and the Lambda Invoke API (``tests/fakes``), serving ``enrich-resource``
from examples/flows/functions.py.

Target: Portl's wall time <= 1.30x the reference's (median of the repeats; sides alternate which
goes first). Each run must leave N resources and N versions and make 2N HTTP requests, else it
fails. Prints PASS/FAIL and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

ROOT = c.HERE.parent
TARGET = 1.30
PG_ADMIN = os.environ.get("PORTL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SOURCES = ["catalog", "archive", "feed"]


def resources_csv(rows: int, seed: int) -> Path:
    """A seeded CSV of ``rows`` resources (code, source, name, content), written once."""
    path = c.DATA_DIR / "flow" / f"resources_{rows}_{seed}.csv"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    words = "wind solar hydro grid store pump heat tidal array field link plant station pilot farm line".split()
    lines = ["code,source,name,content"]
    for n in range(1, rows + 1):
        name = " ".join(rng.choice(words) for _ in range(rng.randint(2, 4)))
        content = f"\"{rng.randint(1, 500)} MW, {' '.join(rng.choice(words) for _ in range(rng.randint(3, 9)))}\""
        lines.append(f"R-{n:06d},{SOURCES[n % 3]},{name},{content}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


class Server:
    """A fake server in its own process; its URL is the first line it prints."""

    def __init__(self, module: str, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise RuntimeError(f"{module} did not start")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def control(recorder: Server, name: str, method: str = "POST") -> object:
    request = urllib.request.Request(f"{recorder.url}/__recorder__/{name}", method=method,
                                     data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


class Database:
    """A fresh Postgres database with the example schema, dropped on close."""

    def __init__(self, label: str):
        import psycopg
        from psycopg import sql

        self.name = f"portl_bench_flow_{label}_{uuid.uuid4().hex[:8]}"
        self._admin = psycopg.connect(PG_ADMIN, autocommit=True)
        self._sql = sql
        self._admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.name
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute((ROOT / "examples" / "flows" / "schema.sql").read_text())

    def counts(self) -> tuple[int, int]:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return (conn.execute("SELECT count(*) FROM resources").fetchone()[0],
                    conn.execute("SELECT count(*) FROM resources_versions").fetchone()[0])

    def close(self) -> None:
        self._admin.execute(self._sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(self._sql.Identifier(self.name)))
        self._admin.close()


def flow_file(csv_path: Path, work: Path) -> Path:
    text = (ROOT / "examples" / "flow_a.yaml").read_text()
    path = work / "flow_a.yaml"
    path.write_text(text.replace("path: flows/resources.csv", f"path: {json.dumps(str(csv_path))}"), encoding="utf-8")
    return path


def run_side(side: str, flow: Path, csv_path: Path, recorder: Server, lam: Server, work: Path) -> tuple[c.Measured, str | None]:
    db = Database(side)
    try:
        control(recorder, "reset")
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
               "PORTL_STATE_DIR": str(work / "state"), "FLOW_PG_URL": db.url, "FLOW_API_URL": recorder.url,
               "FLOW_LAMBDA_URL": lam.url}
        if side == "portl":
            argv = [*c.portl_command(), "run", str(flow)]
        else:
            argv = [sys.executable, str(c.HERE / "flow_handwritten.py"), "--csv", str(csv_path), "--pg-url", db.url,
                    "--api-url", recorder.url, "--lambda-url", lam.url]
        measured = c.measure(argv, cwd=work, env=env)
        if measured.returncode != 0:
            return measured, measured.failure()
        rows = sum(1 for _ in open(csv_path, encoding="utf-8")) - 1
        resources, versions = db.counts()
        requests = len(control(recorder, "requests", "GET"))
        if (resources, versions, requests) != (rows, rows, 2 * rows):
            return measured, f"expected {rows} resources, {rows} versions, {2 * rows} requests; got {resources}, {versions}, {requests}"
        return measured, None
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Flow A: Portl vs the same calls written by hand.")
    parser.add_argument("--rows", type=int, default=5_000, help="CSV rows (default 5,000).")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per side; medians are compared (default 3).")
    parser.add_argument("--seed", type=int, default=c.DEFAULT_SEED)
    options = parser.parse_args()

    print(c.environment_line())
    warning = c.load_warning()
    if warning:
        print(warning)
    summary = c.Summary("bench_flow.py")
    csv_path = resources_csv(options.rows, options.seed)
    work = c.workdir("flow")
    flow = flow_file(csv_path, work)
    try:
        recorder = Server("tests.fakes.http_recorder")
        lam = Server("tests.fakes.lambda_server", "--function", "enrich-resource=examples.flows.functions:enrich_resource")
    except (RuntimeError, OSError) as exc:
        print(f"flow A: cannot start the local servers: {exc}")
        summary.add("1", f"flow A, {c.short(options.rows)} rows: portl <= {TARGET:.2f}x hand-written", "ERROR", str(exc))
        summary.print()
        return
    times: dict[str, list[float]] = {"portl": [], "reference": []}
    cpu: dict[str, list[float]] = {"portl": [], "reference": []}
    problem = None
    try:
        for repeat in range(options.repeat):
            order = ["portl", "reference"] if repeat % 2 == 0 else ["reference", "portl"]
            for side in order:
                measured, problem = run_side(side, flow, csv_path, recorder, lam, work)
                if problem:
                    print(f"flow A {side}: {problem}")
                    break
                times[side].append(measured.seconds)
                cpu[side].append(measured.cpu_seconds or 0.0)
            if problem:
                break
    finally:
        recorder.close()
        lam.close()

    label = f"flow A, {c.short(options.rows)} rows: portl wall time <= {TARGET:.2f}x hand-written"
    if problem:
        summary.add("1", label, "ERROR", problem)
    else:
        portl, reference = c.median(times["portl"]), c.median(times["reference"])
        ratio = portl / reference
        status = c.verdict(ratio <= TARGET)
        print(f"flow A {c.short(options.rows)} rows    portl {portl:.2f} s   hand-written {reference:.2f} s   "
              f"ratio {ratio:.2f}x (target <= {TARGET:.2f}x)  {status}")
        print(f"  runs: portl {', '.join(f'{t:.2f}' for t in times['portl'])} s; hand-written "
              f"{', '.join(f'{t:.2f}' for t in times['reference'])} s; CPU portl {c.median(cpu['portl']):.2f} s, "
              f"hand-written {c.median(cpu['reference']):.2f} s")
        summary.add("1", label, status, f"{ratio:.2f}x")
    summary.print()


if __name__ == "__main__":
    main()
