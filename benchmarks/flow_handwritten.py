"""Flow A written by hand with psycopg, httpx and boto3: the reference of ``bench_flow.py``.

It makes the same calls as ``portl run examples/flow_a.yaml``, in the same order, for each CSV
row: Lambda ``enrich-resource``; the resource upsert; the latest version; an insert or update of
the version; ``POST /resources``; the current version; ``POST /versions``; everything the
database sees in one transaction, committed at the end. HTTP calls carry the same idempotency
keys as Portl's (sha256 of the flow, step and item key).

    python benchmarks/flow_handwritten.py --csv FILE --pg-url URL --api-url URL --lambda-url URL
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json

import boto3
import httpx
import psycopg
from botocore.config import Config

UPSERT = ('INSERT INTO "resources" ("code", "source", "name", "category", "updated_at") VALUES (%s, %s, %s, %s, %s) '
          'ON CONFLICT ("code", "source") DO UPDATE SET "name" = EXCLUDED."name", "category" = EXCLUDED."category", '
          '"updated_at" = EXCLUDED."updated_at" RETURNING "id", (xmax = 0) AS "was_inserted"')
LATEST = ("SELECT id, version_number, status FROM resources_versions WHERE resource_id = %s "
          "ORDER BY version_number DESC LIMIT 1")
INSERT_VERSION = ('INSERT INTO "resources_versions" ("resource_id", "version_number", "md5", "status") '
                  'VALUES (%s, %s, %s, %s) RETURNING "id", "version_number"')
UPDATE_VERSION = 'UPDATE "resources_versions" SET "md5" = %s, "status" = %s, "updated_at" = %s WHERE "id" = %s'
CURRENT = "SELECT version_number FROM resources_versions WHERE resource_id = %s ORDER BY version_number DESC LIMIT 1"


def key(step: str, item: str) -> str:
    text = json.dumps(["flow_a", step, item], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--csv", "--pg-url", "--api-url", "--lambda-url"):
        parser.add_argument(name, required=True)
    options = parser.parse_args()

    lam = boto3.session.Session().client(
        "lambda", region_name="us-east-1", endpoint_url=options.lambda_url, aws_access_key_id="local",
        aws_secret_access_key="local", config=Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=10))
    http = httpx.Client(follow_redirects=False)
    auth = {"Authorization": "Bearer local-token"}
    conn = psycopg.connect(options.pg_url)
    with open(options.csv, newline="", encoding="utf-8") as handle, conn.cursor() as cur:
        for row in csv.DictReader(handle):
            row = {k: (v if v != "" else None) for k, v in row.items()}
            item = f"{row['source']}:{row['code']}"
            payload = {"code": row["code"], "source": row["source"], "name": row["name"], "content": row["content"]}
            answer = lam.invoke(FunctionName="enrich-resource", InvocationType="RequestResponse",
                                Payload=json.dumps(payload).encode())
            enrich = json.loads(answer["Payload"].read())
            now = datetime.datetime.now(datetime.timezone.utc)
            rid, created = cur.execute(UPSERT, (row["code"], row["source"], enrich["title"], enrich["category"], now)).fetchone()
            latest = cur.execute(LATEST, (rid,)).fetchone()
            if latest is None or latest[2] == "published":
                cur.execute(INSERT_VERSION, (rid, latest[1] + 1 if latest else 1, enrich["md5"], "draft")).fetchone()
            else:
                cur.execute(UPDATE_VERSION, (enrich["md5"], "draft", datetime.datetime.now(datetime.timezone.utc), latest[0]))
            body = {"row": row, "enrichment": enrich, "resource_id": rid, "created": created}
            http.post(f"{options.api_url}/resources", json=body,
                      headers={**auth, "Idempotency-Key": key("announce", item)}).raise_for_status()
            current = cur.execute(CURRENT, (rid,)).fetchone()
            http.post(f"{options.api_url}/versions", json={"resource_id": rid, "version_number": current[0]},
                      headers={**auth, "Idempotency-Key": key("publish", item)}).raise_for_status()
    conn.commit()
    conn.close()


if __name__ == "__main__":
    main()
