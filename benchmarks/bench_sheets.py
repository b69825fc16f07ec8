"""Google Sheets: a CSV into a sheet through the local Sheets API, Portl beside a hand-written script.

    python benchmarks/bench_sheets.py [--rows N] [--small N] [--batch N]

Target G1: 100,000 rows x 10 columns into a tab in at most 20 write requests (counted at the
server), with memory flat: Portl's peak RSS for 100,000 rows <= 1.20x its peak for 10,000 rows.
Printed beside it: a hand-written google-api-python-client script doing one values.append per
1,000 rows (what most scripts do), its requests and its time, and the ratio.

The server is the tests' local Sheets API (tests/fakes/sheets_server.py) in its own process, so
its memory is not Portl's; both sides pay its own cost per request and per cell. It is not Google:
Google's quotas (60 write requests per minute per user by default) make the request count, not the
time measured here, what decides how long a real load takes: Portl's 17 requests fit in a minute's
quota, the script's 101 do not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFRESH = "bench-refresh-token"
WRITES = ("batchUpdate", "values.append", "values.update", "values.clear")
TYPES = {"id": "bigint", "signup_date": "date", "amount": "decimal(12,2)", "active": "bool", "quantity": "int",
         "score": "float"}


class Server:
    """The local Sheets API in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.sheets_server", "--port", "0",
                                      "--refresh-token", REFRESH], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()

    def call(self, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data)) as answer:
            return json.loads(answer.read())

    def create(self, spreadsheet: str) -> None:
        self.call("/_fake/create", {"spreadsheetId": spreadsheet, "sheets": {"Sheet1": []}})

    def writes(self) -> int:
        counts = self.call("/_fake/requests")
        return sum(counts.get(k, 0) for k in WRITES)

    def rows(self, spreadsheet: str, tab: str) -> int:
        return len(self.call("/_fake/values", {"spreadsheetId": spreadsheet, "sheet": tab})["values"]) - 1

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def credentials(folder: Path, server: Server) -> Path:
    path = folder / "google-user.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "bench", "client_secret": "bench",
                                "refresh_token": REFRESH, "token_uri": server.url + "/token"}))
    return path


def portl_job(folder: Path, name: str, data: Path, server: Server, creds: Path, spreadsheet: str, batch: int) -> Path:
    columns = ", ".join(f"{k}: {{type: '{TYPES[k]}'}}" if k in TYPES else f"{k}: {{}}" for k in c.COLUMNS)
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        f"source: {{type: csv, path: '{data}'}}\n"
        f"destination: {{type: gsheet, spreadsheet: {spreadsheet}, sheet: data, endpoint: '{server.url}', "
        f"credentials: '{creds}'}}\n"
        f"batch: {{size: {batch}}}\n"
        f"mapping: {{columns: {{{columns}}}}}\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="Rows of the run memory is compared with.")
    parser.add_argument("--batch", type=int, default=10_000)
    options = parser.parse_args()
    print(c.environment_line())
    big, small = c.dataset(options.rows), c.dataset(options.small)
    folder = c.workdir("sheets")
    server = Server()
    summary = c.Summary("Google Sheets (local Sheets API)")
    try:
        creds = credentials(folder, server)
        runs = {}
        for label, data in (("small", small), ("big", big)):
            spreadsheet = f"portl-{label}"
            server.create(spreadsheet)
            job = portl_job(folder, f"sheet_{label}", data.path, server, creds, spreadsheet, options.batch)
            before = server.writes()
            measured = c.run_portl(job, folder)
            if measured.returncode != 0:
                raise SystemExit(f"portl failed: {measured.failure()}")
            runs[label] = (measured, server.writes() - before, server.rows(spreadsheet, "data"))
        server.create("script")
        before = server.writes()
        script = c.measure([sys.executable, str(Path(__file__).with_name("sheets_handwritten.py")), str(big.path),
                            "script", "Sheet1", server.url, str(creds), "1000"], cwd=ROOT)
        if script.returncode != 0:
            raise SystemExit(f"the hand-written script failed: {script.failure()}")
        script_writes = server.writes() - before
        script_rows = server.rows("script", "Sheet1")
    finally:
        server.close()

    (portl, writes, loaded), (small_run, small_writes, small_loaded) = runs["big"], runs["small"]
    print(f"portl  {c.short(options.rows)} rows: {portl.seconds:6.1f} s  {c.rate(options.rows, portl.seconds):>12}  "
          f"{writes} write requests  peak RSS {portl.peak_rss_mb:.0f} MB  rows in the sheet {loaded:,}")
    print(f"portl  {c.short(options.small)} rows: {small_run.seconds:6.1f} s  {c.rate(options.small, small_run.seconds):>12}  "
          f"{small_writes} write requests  peak RSS {small_run.peak_rss_mb:.0f} MB  rows in the sheet {small_loaded:,}")
    print(f"script {c.short(options.rows)} rows: {script.seconds:6.1f} s  {c.rate(options.rows, script.seconds):>12}  "
          f"{script_writes} write requests (values.append per 1,000 rows)  peak RSS {script.peak_rss_mb:.0f} MB  "
          f"rows in the sheet {script_rows:,}")
    print(f"ratio: Portl {script.seconds / portl.seconds:.2f}x the script's throughput, "
          f"{script_writes / max(writes, 1):.1f}x fewer write requests; typed cells (numbers, dates, booleans) and "
          "a checkpoint with every batch against the script's text")
    growth = portl.peak_rss_mb / small_run.peak_rss_mb
    ok = writes <= 20 and growth <= 1.20 and loaded == options.rows
    summary.add("G1", f"{c.short(options.rows)} rows in <= 20 write requests, peak RSS <= 1.20x the "
                f"{c.short(options.small)}-row run", c.verdict(ok),
                f"{writes} requests, RSS {portl.peak_rss_mb:.0f} MB vs {small_run.peak_rss_mb:.0f} MB ({growth:.2f}x)")
    summary.print()


if __name__ == "__main__":
    main()
