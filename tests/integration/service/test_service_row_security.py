"""PostgreSQL's row-level security is a second wall between tenants: a role that is neither
superuser nor the tables' owner, with ``portl.tenant_id`` set, sees and writes only its
tenant's rows, and with it unset sees none."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy

from portl.service.db import create_engine
from portl.service.migrate import upgrade
from portl.service.settings import normalise_url
from tests.services import unique_name


@pytest.fixture
def as_service_role(pg_url):
    """A connection to a migrated database holding the tenants acme (1) and globex (2), each with
    two jobs, switched to a fresh role that is not superuser; yields (connection, acme_job_ids)."""
    url = normalise_url(pg_url)
    upgrade(url)
    engine = create_engine(url)
    role = unique_name("portl_api")
    acme_jobs = [uuid.uuid4(), uuid.uuid4()]
    with engine.begin() as admin:
        for tenant_id, name in ((1, "acme"), (2, "globex")):
            admin.exec_driver_sql(
                "INSERT INTO tenants (id, name, created_at, allow_local_files, allow_code_hooks, allow_private_network, "
                "max_running_jobs, requests_per_minute) VALUES (%s, %s, now(), false, false, false, 4, 600)", (tenant_id, name))
        for tenant_id, job_id in [(1, acme_jobs[0]), (1, acme_jobs[1]), (2, uuid.uuid4()), (2, uuid.uuid4())]:
            admin.exec_driver_sql(
                "INSERT INTO jobs (id, tenant_id, labels, job_text, status, counts, rows_done, bytes_done, attempts, "
                "created_at) VALUES (%s, %s, '{}', 'source: {}', 'queued', '{}', 0, 0, 0, now())", (job_id, tenant_id))
        admin.exec_driver_sql(f'CREATE ROLE "{role}" NOSUPERUSER NOBYPASSRLS')
        admin.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        admin.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    connection = engine.connect()
    try:
        connection.exec_driver_sql(f'SET ROLE "{role}"')
        yield connection, acme_jobs
    finally:
        connection.rollback()
        connection.exec_driver_sql("RESET ROLE")
        connection.close()
        with engine.begin() as admin:
            admin.exec_driver_sql(f'DROP OWNED BY "{role}"')
            admin.exec_driver_sql(f'DROP ROLE "{role}"')
        engine.dispose()


def test_a_tenant_sees_only_its_own_jobs(as_service_role):
    connection, acme_jobs = as_service_role
    connection.exec_driver_sql("SET portl.tenant_id = '1'")

    rows = connection.exec_driver_sql("SELECT id, tenant_id FROM jobs ORDER BY id").all()

    assert sorted(rows) == sorted((job_id, 1) for job_id in acme_jobs)


def test_without_a_tenant_set_no_row_is_visible(as_service_role):
    connection, _ = as_service_role

    assert connection.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 0
    connection.exec_driver_sql("SET portl.tenant_id = ''")  # as after RESET in a pooled connection
    assert connection.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 0


def test_another_tenants_rows_cannot_be_changed_or_written(as_service_role):
    connection, _ = as_service_role
    connection.exec_driver_sql("SET portl.tenant_id = '1'")

    changed = connection.exec_driver_sql("UPDATE jobs SET status = 'cancelled' WHERE tenant_id = 2").rowcount
    assert changed == 0
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="row-level security policy"):
        connection.exec_driver_sql(
            "INSERT INTO jobs (id, tenant_id, labels, job_text, status, counts, rows_done, bytes_done, attempts, "
            "created_at) VALUES (%s, 2, '{}', 'x', 'queued', '{}', 0, 0, 0, now())", (uuid.uuid4(),))


def test_switching_the_tenant_switches_what_is_visible(as_service_role):
    connection, _ = as_service_role
    connection.exec_driver_sql("SET portl.tenant_id = '2'")

    tenants = connection.exec_driver_sql("SELECT DISTINCT tenant_id FROM jobs").scalars().all()

    assert tenants == [2]


def test_the_apis_tenant_requests_connect_as_a_role_that_row_level_security_holds(tmp_path, pg_url):
    """PORTL_SERVICE_API_DATABASE: the API's tenant requests run as a role that owns no table, so
    that a query forgetting its tenant filter would still see the caller's rows only."""
    from sqlalchemy import select

    from portl.service.models import Job
    from portl.service.store import open_store
    from tests.integration.service.apiserver import ServiceServer
    from tests.service_jobs import write_people

    role = unique_name("portl_api")
    admin = create_engine(normalise_url(pg_url))
    api_url = pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")
    server = ServiceServer(tmp_path / "home", database=pg_url,
                           environment={"PORTL_SERVICE_API_DATABASE": api_url})
    server.home.mkdir()
    try:
        upgrade(normalise_url(pg_url))
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
            connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA public TO "{role}"')
            connection.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
            connection.exec_driver_sql(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        acme_key, acme = server.tenant("acme")
        globex_key, _ = server.tenant("globex")
        write_people(server.files(acme), 20)
        server.start()
        with server.client(acme_key) as client, server.client(globex_key) as other:
            submitted = client.post("/api/v1/jobs", json={"job": "source: {type: csv, path: people.csv}\n"
                                    "destination: {type: sqlite, path: out.db, table: people}\n"}).json()
            mine = client.get("/api/v1/jobs").json()["jobs"]
            theirs = other.get("/api/v1/jobs").json()["jobs"]
            hidden = other.get(f"/api/v1/jobs/{submitted['id']}")
            policy = client.put("/api/v1/retry-policies", json={"max_attempts": 5}).json()
        assert [j["id"] for j in mine] == [submitted["id"]] and theirs == []
        assert hidden.status_code == 404
        assert policy["max_attempts"] == 5 and policy["source"] == "the tenant's policy"

        # The wall itself: as the API role, a query with no tenant filter sees the named tenant's rows only.
        with open_store(server.settings.__class__(server.home, normalise_url(pg_url), normalise_url(api_url))) as store:
            assert store.tenant_engine is not None
            with store.tenant_sessions() as session:
                session.execute(sqlalchemy.text("SELECT set_config('portl.tenant_id', '2', true)"))
                assert session.scalars(select(Job.id)).all() == []
                session.rollback()
                session.execute(sqlalchemy.text(f"SELECT set_config('portl.tenant_id', '{acme}', true)"))
                assert [str(i) for i in session.scalars(select(Job.id))] == [submitted["id"]]
    finally:
        server.stop()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
            connection.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()
