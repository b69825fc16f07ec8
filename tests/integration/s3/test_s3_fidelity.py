"""Type fidelity through S3 objects: every logical type and its edge values (the fixture table of
tests/integration/fidelity) goes through an object of each format (Parquet, CSV, gzip CSV, JSON
lines) exactly as through a local file of the same format. The same jobs run twice, once with an
``s3://`` path and once with a local one, and nothing may differ: not the bytes written, not a
value read back, not a count, warning or reject. Three ways in: an object Portl wrote, one put
with boto3 as another tool would, and a glob of three objects; and an object written by a run
killed halfway and resumed. Against moto's S3 server (tests/fakes/s3_server.py), through boto3."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import math
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import portl
from tests.fakes.s3_server import S3Bucket
from tests.integration.fidelity import expected
from tests.integration.fidelity.systems import Place, _csv_field, csv_mapping, seed
from tests.integration.fidelity.table import LOGICAL, NAMES, ROWS

# Each format as a file name, its job type, and whether reading it needs the typed mapping the
# matrix gives a CSV source (a CSV or JSON lines file keeps no types of its own).
FORMATS = {
    "parquet": ("data.parquet", "parquet", False),
    "csv": ("data.csv", "csv", True),
    "csv.gz": ("data.csv.gz", "csv", True),
    "jsonl": ("data.jsonl", "jsonl", True),
}

def run_yaml(folder: Path, name: str, source: str, destination: str, extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nsource: {source}\ndestination: {destination}\n" + textwrap.dedent(extra))
    return path


def run_plan(job: Path, folder: Path, **options) -> portl.RunReport:
    the_plan = portl.plan(portl.load_job(str(job)))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(folder / "state"), **options))
    finally:
        the_plan.close()


def run(folder: Path, name: str, source: str, destination: str, extra: str = "") -> portl.RunReport:
    return run_plan(run_yaml(folder, name, source, destination, extra), folder)


def outcome(report: portl.RunReport, path: str, local: str, written: str = "") -> dict:
    """What a run says about its rows: status, counts, warnings about values (not the one that a
    Parquet file, or object, is written again on resume), and the text of the rejects it wrote;
    where it names the object ``path`` it reads as if it named the ``local`` file instead, and
    where it names the Parquet file ``written`` (each run its own) it reads ``out.parquet``."""
    rejects = Path(report.reject_path).read_text() if report.reject_path and Path(report.reject_path).exists() else ""
    warnings = [w.replace(f"object {path}", f"file {local}").replace(written or "\0", "out.parquet")
                for w in report.warnings if "cannot be continued" not in w]
    return {"status": report.status, "error": report.error,
            "counts": (report.counts.read, report.counts.inserted, report.counts.rejected),
            "warnings": sorted(warnings), "rejects": rejects.replace(path, local)}


def same_rows(left: list[dict], right: list[dict]) -> list[str]:
    """Rows that differ in a value or its kind (NaN equals NaN, 12.30 is not 12.3)."""
    problems = []
    for a, b in zip(left, right):
        for name in a:
            x, y = a[name], b.get(name)
            if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
                continue
            if type(x) is not type(y) or x != y or (isinstance(x, Decimal) and x.as_tuple() != y.as_tuple()) or (
                    isinstance(x, dt.datetime) and x.tzinfo != y.tzinfo):
                problems.append(f"id {a.get('id')} {name}: {expected.shown(x)} vs {expected.shown(y)}")
    if len(left) != len(right):
        problems.append(f"{len(left)} rows vs {len(right)}")
    return problems


def parquet_rows(path: Path) -> tuple[list[dict], dict[str, str]]:
    table = pq.read_table(path)
    rows = sorted(table.to_pylist(), key=lambda r: int(r["id"]))
    for row in rows:
        for name, value in row.items():
            if type(value).__name__ == "UUID":
                row[name] = str(value)
    return rows, {f.name: str(f.type) for f in table.schema}


def back_to_parquet(folder: Path, name: str, kind: str, path: str,
                    extra: str = "") -> tuple[dict, list[dict], dict[str, str]]:
    """Read ``path`` (a file of ``kind``, local or an object) into a local Parquet file: the run's
    outcome, the rows, and each column's type in the file."""
    file, job_type, typed = FORMATS[kind]
    report = run(folder, name, f"{{type: {job_type}, path: '{path}'}}", f"{{type: parquet, path: {name}.parquet}}",
                 (csv_mapping() if typed else "") + extra)
    rows, schema = parquet_rows(folder / f"{name}.parquet")
    return outcome(report, path, file, f"{name}.parquet"), rows, schema


# How the jobs run: as they are given, in batches of two rows, or with three workers. Small pieces
# put the object's boundaries inside the fixture's values: its parts (written) and the GETs and
# read-ahead chunks it is read in land mid-row, mid-field, inside a multi-byte character.
VARIANTS = {
    "whole": ("", False),
    "batches-of-2-small-pieces": ("batch: {size: 2}\n", True),
    "3-workers-small-pieces": ("parallel: {workers: 3}\n", True),
}


def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 256 bytes (moto told to take them, S3's 5 MiB least being no rule of the format), a
    first GET of 1001 bytes, streamed chunks of 4099 bytes and ranged reads of 1 KiB."""
    import moto.s3.models

    from portl.connectors import objectsink
    from portl.connectors.objectstore import streams

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    monkeypatch.setattr(objectsink, "PART_BYTES", 256)
    monkeypatch.setattr(streams.RemoteObject, "_HEAD_BYTES", 1001)
    monkeypatch.setattr(streams._ReadAhead, "_CHUNK", 4099)
    monkeypatch.setattr(streams.ObjectFile, "_AHEAD", 1 << 10)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_value_goes_through_an_object_as_through_a_local_file(tmp_path, s3_bucket: S3Bucket, monkeypatch,
                                                                    kind, variant):
    extra, small = VARIANTS[variant]
    if small:
        small_pieces(monkeypatch)
    place = Place(tmp_path)
    seed("parquet", place)
    file, job_type, _ = FORMATS[kind]
    obj = s3_bucket.url(f"fidelity/{file}")

    source = "{type: parquet, path: src.parquet}"
    into_local = run(tmp_path, "into_local", source, f"{{type: {job_type}, path: {file}}}", extra)
    into_s3 = run(tmp_path, "into_s3", source, f"{{type: {job_type}, path: '{obj}'}}", extra)
    assert outcome(into_local, file, file)["counts"] == (len(ROWS), len(ROWS), 0), outcome(into_local, file, file)
    assert outcome(into_s3, obj, file) == outcome(into_local, file, file)
    assert s3_bucket.keys() == [f"fidelity/{file}"]  # no sidecar or tail left beside it
    assert s3_bucket.get(f"fidelity/{file}") == (tmp_path / file).read_bytes(), "the object differs from the file"
    if variant.startswith("batches") and kind != "parquet":  # Parquet is uploaded from a local file at the end
        etag = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=f"fidelity/{file}")["ETag"]
        assert int(etag.strip('"').rsplit("-", 1)[1]) >= 3  # a multipart object's ETag counts its parts

    from_local = back_to_parquet(tmp_path, "back_local", kind, file, extra)
    from_s3 = back_to_parquet(tmp_path, "back_s3", kind, obj, extra)
    assert from_local[0]["counts"] == (len(ROWS), len(ROWS), 0), from_local[0]
    assert from_s3[0] == from_local[0]
    assert from_s3[2] == from_local[2], "the Parquet schemas differ"
    problems = same_rows(from_local[1], from_s3[1])
    assert not problems, "read from the object, values differ from the local file's:\n" + "\n".join(problems)
    # and both are exact, as the matrix expects of a file of that format
    problems = expected.mismatches("parquet" if kind == "parquet" else "csv", "parquet", list(ROWS), *from_s3[1:])
    assert not problems, "\n".join(p[:300] for p in problems)


def seeded_source(place: Place, kind: str) -> bytes:
    """The fixture table as another tool wrote it: the matrix's CSV file (every value quoted) and
    Parquet file (Parquet's own UUID and JSON types, unsigned integers, a +05:30 time zone), the
    CSV gzipped, and JSON lines from Python's json module (decimals, dates and times as text,
    bytes in base64, NaN and the infinities as its bare NaN and Infinity)."""
    if kind == "jsonl":
        def plain(value):
            if isinstance(value, bytes):
                return base64.b64encode(value).decode("ascii")
            return str(value) if isinstance(value, (Decimal, dt.date)) else value
        return "".join(json.dumps({k: plain(v) for k, v in row.items()}, ensure_ascii=False) + "\n"
                       for row in ROWS).encode("utf-8")
    seed("parquet" if kind == "parquet" else "csv", place)
    data = (place.folder / ("src.parquet" if kind == "parquet" else "src.csv")).read_bytes()
    return gzip.compress(data, mtime=0) if kind == "csv.gz" else data


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("kind", list(FORMATS))
def test_an_object_put_with_boto3_reads_as_the_local_file_does(tmp_path, s3_bucket: S3Bucket, monkeypatch,
                                                               kind, variant):
    extra, small = VARIANTS[variant]
    if small:
        small_pieces(monkeypatch)
    place = Place(tmp_path)
    file = FORMATS[kind][0]
    data = seeded_source(place, kind)
    (tmp_path / file).write_bytes(data)
    s3_bucket.put(f"seeded/{file}", data)

    from_local = back_to_parquet(tmp_path, "local", kind, file, extra)
    from_s3 = back_to_parquet(tmp_path, "object", kind, s3_bucket.url(f"seeded/{file}"), extra)
    assert from_s3[0] == from_local[0] and from_s3[2] == from_local[2]
    problems = same_rows(from_local[1], from_s3[1])
    assert not problems, "read from the object, values differ from the local file's:\n" + "\n".join(problems)
    # And both are exact, as the matrix expects of that source into Parquet (a JSON lines file
    # through the typed mapping arrives as a CSV file does).
    assert from_s3[0]["counts"] == (len(ROWS), len(ROWS), 0), from_s3[0]
    problems = expected.mismatches("parquet" if kind == "parquet" else "csv", "parquet", list(ROWS), *from_s3[1:])
    assert not problems, "\n".join(p[:300] for p in problems)


def split_source(kind: str, data: bytes) -> list[bytes]:
    """``data`` (a file of ``kind`` holding the fixture table) cut into three files of three rows,
    each a whole file of its format: a CSV file's header in each, a gzip file compressed alone."""
    if kind == "parquet":
        table = pq.read_table(pa.BufferReader(data))
        out = []
        for first in (0, 3, 6):
            sink = pa.BufferOutputStream()
            pq.write_table(table.slice(first, 3), sink)
            out.append(sink.getvalue().to_pybytes())
        return out
    text = (gzip.decompress(data) if kind == "csv.gz" else data).decode("utf-8")
    if kind == "jsonl":
        lines = text.splitlines(keepends=True)
        pieces = ["".join(lines[first:first + 3]) for first in (0, 3, 6)]
    else:  # the matrix's CSV, its records written again three by three under its header
        header = text.split("\n", 1)[0] + "\n"
        pieces = [header + "".join(",".join(_csv_field(LOGICAL[n], row[n]) for n in NAMES) + "\n"
                                   for row in ROWS[first:first + 3]) for first in (0, 3, 6)]
    encoded = [p.encode("utf-8") for p in pieces]
    return [gzip.compress(e, mtime=0) for e in encoded] if kind == "csv.gz" else encoded


@pytest.mark.parametrize("variant", ["whole", "3-workers-small-pieces"])  # workers share out whole files
@pytest.mark.parametrize("kind", list(FORMATS))
def test_a_glob_of_objects_reads_as_a_glob_of_local_files(tmp_path, s3_bucket: S3Bucket, monkeypatch, kind, variant):
    extra, small = VARIANTS[variant]
    if small:
        small_pieces(monkeypatch)
    place = Place(tmp_path)
    file = FORMATS[kind][0]
    ext = file.split(".", 1)[1]
    (tmp_path / "parts").mkdir()
    for n, data in enumerate(split_source(kind, seeded_source(place, kind)), start=1):
        (tmp_path / "parts" / f"part-{n}.{ext}").write_bytes(data)
        s3_bucket.put(f"parts/part-{n}.{ext}", data)

    from_local = back_to_parquet(tmp_path, "local", kind, f"parts/*.{ext}", extra)
    from_s3 = back_to_parquet(tmp_path, "object", kind, s3_bucket.url(f"parts/*.{ext}"), extra)
    from_s3[0]["rejects"] = from_s3[0]["rejects"].replace(s3_bucket.url(""), "")
    assert from_s3[0] == from_local[0] and from_s3[2] == from_local[2]
    problems = same_rows(from_local[1], from_s3[1])
    assert not problems, "read from the objects, values differ from the local files':\n" + "\n".join(problems)
    assert from_s3[0]["counts"] == (len(ROWS), len(ROWS), 0), from_s3[0]
    problems = expected.mismatches("parquet" if kind == "parquet" else "csv", "parquet", list(ROWS), *from_s3[1:])
    assert not problems, "\n".join(p[:300] for p in problems)


@pytest.mark.parametrize("kind", list(FORMATS))
def test_an_object_resumed_after_a_crash_holds_what_a_resumed_local_file_holds(tmp_path, s3_bucket: S3Bucket,
                                                                              monkeypatch, crash_hook, kind):
    small_pieces(monkeypatch)
    seed("parquet", Place(tmp_path))
    file, job_type, _ = FORMATS[kind]
    obj = s3_bucket.url(f"resumed/{file}")
    source = "{type: parquet, path: src.parquet}"
    whole = run(tmp_path, "whole", source, f"{{type: {job_type}, path: 'whole.{file}'}}", "batch: {size: 2}\n")
    assert whole.counts.inserted == len(ROWS)
    outcomes = {}
    for name, path in (("local", file), ("object", obj)):
        job = run_yaml(tmp_path, name, source, f"{{type: {job_type}, path: '{path}'}}",
                       "batch: {size: 2}\n" + crash_hook.yaml)
        crash_hook.arm()
        with pytest.raises(portl.HookError):
            run_plan(job, tmp_path)
        crash_hook.disarm()
        report = run_plan(job, tmp_path, resume=True)
        assert report.resumed
        outcomes[name] = outcome(report, path, file)
    assert outcomes["object"] == outcomes["local"]
    assert outcomes["local"]["rejects"] == "" and outcomes["local"]["counts"][2] == 0
    assert s3_bucket.keys() == [f"resumed/{file}"]  # no sidecar, tail or upload left
    assert s3_bucket.uploads() == []
    assert s3_bucket.get(f"resumed/{file}") == (tmp_path / file).read_bytes(), "the object differs from the file"
    assert (tmp_path / file).read_bytes() == (tmp_path / f"whole.{file}").read_bytes(), "resuming changed the file"
