"""Type fidelity through a search index: the fixture table goes Parquet → Elasticsearch (or
OpenSearch) → Parquet, and every value arrives exactly, except what docs/connectors.md says an
index cannot hold (NaN and ±Infinity become null, with a warning). Against the in-memory stand-in
cluster of tests/fakes/search_server.py (not a real server: none can run here)."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

import portl
from tests.fakes.search_server import SearchServer
from tests.integration.fidelity.systems import Place, read_back, seed
from tests.integration.fidelity.table import NAMES, ROWS


def run(place: Place, text: str) -> portl.RunReport:
    path = place.folder / "job.yaml"
    path.write_text(textwrap.dedent(text))
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(place.folder / "state")))
    finally:
        the_plan.close()


def expected(name: str, value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def same(name: str, want, got) -> bool:
    if name == "c_json" and want is not None and got is not None:
        return json.loads(want) == json.loads(got)
    return want == got


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_every_value_goes_through_an_index_and_back(tmp_path, flavor):
    place = Place(tmp_path)
    seed("parquet", place)
    with SearchServer(flavor) as cluster:
        into = run(place, f"""
            name: into
            source: {{type: parquet, path: src.parquet}}
            destination: {{type: {flavor}, url: '{cluster.url}', index: fidelity}}
            """)
        assert (into.counts.read, into.counts.inserted, into.counts.rejected) == (len(ROWS), len(ROWS), 0)
        assert [w for w in into.warnings if "NaN" in w] == [
            "column c_float: NaN and ±Infinity cannot be stored in a JSON document; they were written as null"]
        types = {n: m["type"] for n, m in cluster.indices["fidelity"].mappings["properties"].items()}
        assert (types["c_int"], types["c_bigint"], types["c_dec38"], types["c_tstz"], types["c_json"]) == (
            "integer", "long", "keyword", "date", "object")
        back = run(place, f"""
            name: back
            source: {{type: {flavor}, url: '{cluster.url}', index: fidelity, sort: id}}
            destination: {{type: parquet, path: out.parquet}}
            """)
    assert (back.counts.read, back.counts.inserted, back.counts.rejected) == (len(ROWS), len(ROWS), 0)
    rows, declared = read_back("parquet", place)
    assert declared["c_dec38"] == "decimal128(38, 10)" and declared["c_tstz"].startswith("timestamp[us, tz=")
    problems = [f"row {want['id']} {name}: {want[name]!r} came back as {got[name]!r}"
                for want, got in zip(ROWS, rows) for name in NAMES
                if not same(name, expected(name, want[name]), got[name])]
    assert len(rows) == len(ROWS) and not problems, "\n".join(p[:300] for p in problems)
