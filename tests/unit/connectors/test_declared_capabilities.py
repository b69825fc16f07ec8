"""What each connector declares it can do (``portl connectors``) is what its sinks report."""

import pytest

from portl.connectors import registry


@pytest.mark.parametrize("kind,settings", [
    ("csv", {"path": "out.csv"}),
    ("jsonl", {"path": "out.jsonl"}),
    ("parquet", {"path": "out.parquet"}),
    ("sqlite", {"path": "out.db", "table": "t"}),
])
def test_a_new_file_or_table_sink_reports_the_declared_capabilities(kind, settings, tmp_path):
    module = registry.module_for(kind)
    sink = registry.open_sink(module.Config(type=kind, **settings), str(tmp_path))

    declared = module.sink_capabilities()

    assert (sink.capabilities.modes, sink.capabilities.upsert_strategies) == (declared.modes, declared.upsert_strategies)
    assert (sink.capabilities.transactional, sink.capabilities.resumable) == (declared.transactional, declared.resumable)
    assert sink.capabilities.concurrent_writers == declared.concurrent_writers


def test_postgres_declares_its_sinks_capabilities():
    from portl.connectors.postgres.sink import PostgresSink

    assert registry.module_for("postgres").sink_capabilities() is PostgresSink.capabilities


def test_every_connector_with_a_sink_declares_its_capabilities():
    described = registry.connector_types()

    assert [t.names[0] for t in described if t.destination and t.capabilities is None] == []
    assert {name for t in described for name in t.names} == set(registry.modules())
