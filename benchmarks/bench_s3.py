"""CSV on S3 -> PostgreSQL beside the same load from local disk, measured in the same run.

    python benchmarks/bench_s3.py [--rows N] [--repeat R] [--workers W] [--keep]

S3 is moto's server on 127.0.0.1 (started here, in this process), reached by boto3 through
``AWS_ENDPOINT_URL`` as AWS would be; the object is the generated benchmark CSV (1M rows x 10
columns by default), uploaded once, held in the server's memory. Both sides are ``portl run`` of the same job into a fresh
Postgres table, with the same typed mapping; only the source path differs (``s3://…`` or the
local file). The ratio is local time / S3 time; target >= 0.80x. A second line does the same with
the object split into 8 objects read through a glob. Prints PASS/FAIL per target; exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_servers as servers  # noqa: E402
import common as c  # noqa: E402

BUCKET = "portl-bench"


def start_s3() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def upload(endpoint: str, data: c.Dataset, pieces: int) -> None:
    """The dataset as ``all.csv`` and as ``split/part-NN.csv`` (``pieces`` objects, each with the header)."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(data.path), BUCKET, "all.csv", Config=TransferConfig(multipart_threshold=64 << 20))
    with open(data.path, "rb") as f:
        header = f.readline()
        body = f.read()
    start = 0
    for n in range(pieces):
        end = len(body) if n == pieces - 1 else body.index(b"\n", len(body) * (n + 1) // pieces) + 1
        client.put_object(Bucket=BUCKET, Key=f"split/part-{n:02d}.csv", Body=header + body[start:end])
        start = end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="parallel.workers on both sides")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and job files")
    args = parser.parse_args()
    servers.KEEP = args.keep
    print(c.environment_line())
    data = c.dataset(args.rows)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    # moto keeps an object over 5 MiB in a temporary file and reads all of it for every GET, even
    # a ranged one: S3 does neither. Held in memory, a GET costs about what S3's would on loopback.
    os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(1 << 30)
    server, endpoint = start_s3()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    results = []
    try:
        upload(endpoint, data, 8)
        print(f"s3: moto at {endpoint}, bucket {BUCKET}: all.csv ({data.megabytes:,.1f} MB) and 8 split objects")
        pg, work = servers.Pg(), c.workdir("s3")
        try:
            extra = servers.typed_mapping() + (f"parallel: {{workers: {args.workers}}}\n" if args.workers > 1 else "")
            target = f"{{type: postgres, url: '{pg.url}', table: t}}"
            local = servers.job_file(work, "local-csv", servers.csv_source(data), target, extra)
            for label, path in (("s3-object", f"s3://{BUCKET}/all.csv"), ("s3-glob", f"s3://{BUCKET}/split/*.csv")):
                remote = servers.job_file(work, label, f"{{type: csv, path: '{path}'}}", target, extra)
                results += servers.compare(label, data.rows, args.repeat, lambda job=remote: c.run_portl(job, work),
                                           lambda: c.run_portl(local, work), lambda: pg.table(), lambda: pg.count(),
                                           0.80, None, "local file")
        finally:
            pg.drop()
    finally:
        server.stop()
    print()
    for name, ok, detail in results:
        print(f"{c.verdict(ok)}  {name}: {detail}")


if __name__ == "__main__":
    main()
