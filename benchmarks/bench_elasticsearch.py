"""CSV -> Elasticsearch: Portl beside a hand-written bulk loader, measured in the same run.

    python benchmarks/bench_elasticsearch.py [--rows N] [--repeat R] [--flavor elasticsearch|opensearch]

No Elasticsearch server runs here, so both sides load into the in-memory stand-in cluster of
``tests/fakes/search_server.py`` (NOT a real server), started here as its own process. Both sides
send the same documents through the same client's ``helpers.bulk`` (1,000 documents a request):

  portl      portl run: CSV -> index, typed mapping, deterministic _ids, a checkpoint per batch
  reference  a script that reads the CSV with the csv module, converts the same four columns and
             calls helpers.streaming_bulk once over all rows

The ratio is reference time / Portl time (above 1: Portl is faster). The stand-in server's own
cost is in both times, so the ratio says how much Portl adds around the bulk requests (mapping,
checkpoints, accounting); it says nothing of a real cluster's speed. Target >= 0.80x. Prints
PASS/FAIL and a summary; always exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as c  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.80

REFERENCE = r'''
import csv, sys
from decimal import Decimal
flavor, url, path, index = sys.argv[1:5]
if flavor == "opensearch":
    from opensearchpy import OpenSearch as Client, helpers
    client = Client(hosts=[url])
else:
    from elasticsearch import Elasticsearch as Client, helpers
    client = Client(url)

def actions():
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            row["id"] = int(row["id"])
            row["amount"] = str(Decimal(row["amount"])) if row["amount"] else None
            row["active"] = row["active"].lower() in ("true", "1", "yes") if row["active"] else None
            row["quantity"] = int(row["quantity"]) if row["quantity"] else None
            row["score"] = float(row["score"]) if row["score"] else None
            yield {"_index": index, "_id": str(row["id"]), "_source": row}

done = sum(1 for ok, _ in helpers.streaming_bulk(client, actions(), chunk_size=1000, raise_on_error=True))
print(done)
'''


def start_cluster(flavor: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.search_server", "--flavor", flavor, "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def job_text(flavor: str, url: str, csv_path: Path, index: str) -> str:
    return (f"name: bench\nsource: {{type: csv, path: '{csv_path}'}}\n"
            f"destination: {{type: {flavor}, url: '{url}', index: {index}, chunk_rows: 1000}}\n"
            "batch: {size: 10000}\n"
            "mapping:\n  columns:\n    id: {type: bigint}\n    name: {}\n    email: {}\n    city: {}\n"
            "    signup_date: {type: date}\n    amount: {type: 'decimal(12,2)'}\n    active: {type: bool}\n"
            "    quantity: {type: int}\n    score: {type: float}\n    notes: {}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flavor", choices=("elasticsearch", "opensearch"), default="elasticsearch")
    options = parser.parse_args()
    data = c.dataset(options.rows)
    print(c.environment_line())
    print(f"{c.short(options.rows)} rows, {data.megabytes:.0f} MB of CSV -> {options.flavor} (in-memory stand-in)")
    work = c.workdir("elasticsearch")
    script = work / "reference.py"
    script.write_text(REFERENCE)
    summary = c.Summary("CSV -> Elasticsearch (stand-in cluster)")

    def attempts():
        for attempt in range(options.repeat):
            proc, url = start_cluster(options.flavor)
            try:
                job = work / "job.yaml"
                job.write_text(job_text(options.flavor, url, data.path, f"portl{attempt}"))
                mine = c.run_portl(job, work)
                theirs = c.measure([sys.executable, str(script), options.flavor, url, str(data.path), f"ref{attempt}"],
                                   cwd=ROOT)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            yield mine, theirs

    c.head_to_head(summary, f"Portl >= {TARGET:.2f}x the bulk loader", TARGET, options.rows, attempts())


if __name__ == "__main__":
    main()
