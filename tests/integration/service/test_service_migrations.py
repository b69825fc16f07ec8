"""The state database's schema: created by the one initial migration on SQLite and on the real
PostgreSQL, exactly as the models describe it; applying it again changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from portl.errors import ServiceError
from portl.service.db import create_engine
from portl.service.migrate import VERSION_TABLE, head_revision, upgrade, upgrade_engine
from portl.service.models import TENANT_OWNED, Base
from portl.service.settings import normalise_url

SERVICE_TABLES = {"tenants", *TENANT_OWNED}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return normalise_url(request.getfixturevalue("pg_url"))


def tables_of(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_and_returns_the_newest_revision(url):
    revision = upgrade(url)

    assert revision == head_revision() == "0002"
    assert tables_of(url) == SERVICE_TABLES | {VERSION_TABLE}


def test_upgrading_twice_changes_nothing(url):
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO tenants (name, created_at, allow_local_files, allow_code_hooks, "
                                       "allow_private_network, max_running_jobs, requests_per_minute) "
                                       "VALUES ('acme', CURRENT_TIMESTAMP, false, false, false, 4, 600)")
        again = upgrade_engine(engine)
        with engine.connect() as connection:
            names = connection.exec_driver_sql("SELECT name FROM tenants").scalars().all()
    finally:
        engine.dispose()

    assert (again.before, again.after, again.changed) == ("0002", "0002", False)
    assert names == ["acme"]


def test_the_migrated_schema_is_exactly_what_the_models_describe(url):
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_every_tenant_owned_table_has_an_indexed_tenant_id():
    for table in Base.metadata.sorted_tables:
        if table.name == "tenants":
            continue
        assert table.name in TENANT_OWNED
        assert any(list(index.columns)[0].name == "tenant_id" for index in table.indexes), table.name


def test_a_database_upgraded_by_a_newer_portl_is_refused_with_what_to_do(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '0042'")
        with pytest.raises(ServiceError) as info:
            upgrade_engine(engine)
    finally:
        engine.dispose()

    assert str(info.value) == (f"the state database {url} is at schema revision 0042, which this Portl does not know "
                               "(its newest is 0002): it was upgraded by a newer Portl; upgrade Portl here too")


def test_on_postgresql_every_tenant_owned_table_has_row_level_security(pg_url):
    url = normalise_url(pg_url)
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            secured = dict(connection.exec_driver_sql(
                "SELECT relname, relrowsecurity FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace").all())
            policies = set(connection.exec_driver_sql("SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation'").scalars())
    finally:
        engine.dispose()

    assert {t for t, on in secured.items() if on} == set(TENANT_OWNED)
    assert policies == set(TENANT_OWNED)


def test_processes_upgrading_at_the_same_time_create_the_schema_once(url, tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PORTL_SERVICE_DATABASE": url}
    runs = [subprocess.Popen([sys.executable, "-m", "portl.cli.app", "service", "migrate", "--format", "json"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]

    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    documents = [json.loads(out) for _, out, _ in results]
    assert sorted(d["changed"] for d in documents) == [False, False, True]
    assert {d["revision"] for d in documents} == {"0002"}
    assert tables_of(url) == SERVICE_TABLES | {VERSION_TABLE}


def test_a_failed_upgrade_leaves_no_half_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:  # a table in the way of the migration's fifth table
            connection.exec_driver_sql("CREATE TABLE record_log (id INTEGER PRIMARY KEY)")
        with pytest.raises(ServiceError) as info:
            upgrade_engine(engine)
    finally:
        engine.dispose()

    assert str(info.value).startswith(f"could not upgrade the state database {url} to schema revision 0002: "
                                      "table record_log already exists; nothing was changed")
    assert tables_of(url) == {"record_log"}
