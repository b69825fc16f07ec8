"""Type fidelity of Snowflake: every logical type and its edge values, Parquet → Snowflake and
Snowflake → Parquet, arrive exactly or as docs/connectors.md (section Snowflake) documents.

Snowflake is fakesnow here; the values it cannot hold as Snowflake does are the documented gaps of
:mod:`tests.integration.fidelity.snowflake`, checked to be the only differences."""

from __future__ import annotations

import textwrap


import portl
from tests.integration.fidelity import expected
from tests.integration.fidelity import snowflake as sf
from tests.integration.fidelity.systems import Place, _read_parquet, _seed_parquet
from tests.integration.fidelity.table import NAMES, ROWS




def run_job(folder, text: str) -> portl.RunReport:
    path = folder / "job.yaml"
    path.write_text(textwrap.dedent(text))
    the_plan = portl.plan(portl.load_job(str(path)))
    try:
        return portl.run(the_plan, portl.RunOptions(state_dir=str(folder / "state")))
    finally:
        the_plan.close()


def differences(rows: list[dict], expect, declared: dict[str, str], wanted_type, gaps: dict) -> list[str]:
    """One line per value (outside ``gaps``: (column, id or None)) or column type that differs from
    the expectation."""
    problems = []
    assert [r["id"] for r in rows] == [r["id"] for r in ROWS]
    for name in NAMES:
        if declared.get(name) != wanted_type(name):
            problems.append(f"{name}: declared {declared.get(name)}, expected {wanted_type(name)}")
        for source_row, row in zip(ROWS, rows):
            if (name, None) in gaps or (name, source_row["id"]) in gaps:
                continue
            want, got = expect(name, source_row[name], row[name])
            if not expected.same(want, got):
                problems.append(f"{name}, id {source_row['id']}: expected {expected.shown(want)}, "
                                f"found {expected.shown(got)}")
    return problems


def test_parquet_to_snowflake_keeps_every_value(tmp_path, snowflake_place):
    _seed_parquet(Place(tmp_path))
    report = run_job(tmp_path, f"""
        name: fidelity
        source: {{type: parquet, path: src.parquet}}
        destination: {sf.yaml(snowflake_place, sf.DESTINATION_TABLE)}
    """)
    assert report.status == "succeeded", report.error
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (len(ROWS), len(ROWS), 0)
    assert report.warnings == []
    rows, declared = sf.read_back(snowflake_place)

    def expect(name, value, got):
        logical, carried = expected.carried("parquet", name, value)
        return sf.stored(logical, carried), sf.normalised(logical, got)

    def wanted_type(name):
        return sf.declared_type(expected.carried("parquet", name, None)[0])

    problems = differences(rows, expect, declared, wanted_type, sf.FAKESNOW)
    assert not problems, "parquet -> snowflake:\n  " + "\n  ".join(problems)


def test_snowflake_to_parquet_keeps_every_value(tmp_path, snowflake_place):
    sf.seed(snowflake_place)
    report = run_job(tmp_path, f"""
        name: fidelity
        source: {sf.yaml(snowflake_place, sf.SOURCE_TABLE)}
        destination: {{type: parquet, path: out.parquet}}
    """)
    assert report.status == "succeeded", report.error
    assert (report.counts.read, report.counts.inserted, report.counts.rejected) == (len(ROWS), len(ROWS), 0)
    rows, declared = _read_parquet(Place(tmp_path))

    def expect(name, value, got):
        logical = sf.logical_read(name)
        want, got = expected.stored("parquet", logical, value), expected.normalised("parquet", logical, "", got)
        if logical == "json" and want is not None and got is not None:  # a VARIANT keeps the document, not its text
            return expected.canonical_json(want), expected.canonical_json(got)
        return want, got

    def wanted_type(name):
        return next(iter(expected.declared_type("parquet", sf.logical_read(name))))

    problems = differences(rows, expect, declared, wanted_type, sf.FAKESNOW_SOURCE)
    assert not problems, "snowflake -> parquet:\n  " + "\n  ".join(problems)
