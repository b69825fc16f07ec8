"""Whole-database copies name tables and columns one way in every statement (the source's names
exactly by default, or folded to lower case), keep declared text lengths, and say what to set
when run again over tables that hold rows."""

from __future__ import annotations

import pytest

import portl
from portl.errors import ConfigError
from tests.integration.test_database_copy import Db
from tests.integration.test_database_copy_resume import write_sqlite

# The shape of the user report: bracketed mixed-case names, NVARCHAR lengths, named keys.
SENSORS = """
    CREATE TABLE [Sensor] ([SensorId] INTEGER NOT NULL, [Label] NVARCHAR(160) NOT NULL, [Site] VARCHAR(20),
                           CONSTRAINT [PK_Sensor] PRIMARY KEY ([SensorId]));
    CREATE TABLE [Reading] ([ReadingId] INTEGER NOT NULL, [SensorId] INTEGER NOT NULL, [Value] REAL,
                            CONSTRAINT [PK_Reading] PRIMARY KEY ([ReadingId]),
                            CONSTRAINT [FK_Reading_Sensor] FOREIGN KEY ([SensorId]) REFERENCES [Sensor] ([SensorId]));
    CREATE INDEX [IX_Reading_SensorId] ON [Reading] ([SensorId]);
    INSERT INTO [Sensor] VALUES (1, 'Boiler room', 'North'), (2, 'Roof', NULL);
    INSERT INTO [Reading] VALUES (10, 1, 21.5), (11, 1, 22.0), (12, 2, -3.5);
"""


def job_file(tmp_path, destination: str, extra: str = "", name: str = "copy") -> str:
    job = tmp_path / f"{name}.yaml"
    job.write_text(f"name: {name}\nsource: {{type: sqlite, path: src.db, tables: '*'}}\n"
                   f"destination: {destination}\n{extra}")
    return str(job)


def plan_and_run(job: str, tmp_path):
    the_plan = portl.plan(portl.load_job(job))
    try:
        described = the_plan.to_dict()
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    return described, report


def plan_text(job: str) -> str:
    """The plan as ``portl plan`` prints it."""
    from rich.console import Console

    from portl.cli.render import render_plan

    console = Console(record=True, width=200, color_system=None)
    the_plan = portl.plan(portl.load_job(job))
    try:
        render_plan(console, the_plan)
    finally:
        the_plan.close()
    return console.export_text()


def columns_of(target: Db, table: str) -> list[tuple[str, str, int | None, str]]:
    """(name, data type, character length, nullable) of each column, in order."""
    schema = "current_schema()" if target.kind == "postgres" else "database()"
    return [tuple(r) for r in target.all(
        "SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns "
        f"WHERE table_schema = {schema} AND table_name = '{table}' ORDER BY ordinal_position")]


def tables_of(target: Db) -> set[str]:
    schema = "current_schema()" if target.kind == "postgres" else "database()"
    return {r[0] for r in target.all(f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema} "
                                     "AND left(table_name, 6) <> '_portl'")}


def test_mixed_case_names_arrive_in_postgres_exactly_with_keys_lengths_and_identity(tmp_path, pg_url):
    write_sqlite(tmp_path / "src.db", SENSORS)
    described, report = plan_and_run(job_file(tmp_path, f"{{type: postgres, url: '{pg_url}'}}"), tmp_path)

    assert report.status == "succeeded" and report.counts.inserted == 5
    assert described["identifiers"] == "keep"
    assert any('"Sensor"' in s and '"Label" varchar(160)' in s for t in described["tables"] for s in t["ddl"])
    target = Db("postgres", pg_url)
    try:
        assert tables_of(target) == {"Sensor", "Reading"}
        assert columns_of(target, "Sensor") == [("SensorId", "bigint", None, "NO"),
                                                ("Label", "character varying", 160, "NO"),
                                                ("Site", "character varying", 20, "YES")]
        assert [c[0] for c in columns_of(target, "Reading")] == ["ReadingId", "SensorId", "Value"]
        assert target.all('SELECT "Label" FROM "Sensor" ORDER BY "SensorId"') == [("Boiler room",), ("Roof",)]
        assert target.constraint_count("PRIMARY KEY") == 2 and target.constraint_count("FOREIGN KEY") == 1
        assert target.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'IX_Reading_SensorId'") == \
            'CREATE INDEX "IX_Reading_SensorId" ON public."Reading" USING btree ("SensorId")'
        with pytest.raises(Exception, match="violates foreign key"):
            target.execute('INSERT INTO "Reading" ("ReadingId", "SensorId") VALUES (99, 42)')
        assert target.scalar('INSERT INTO "Sensor" ("Label") VALUES (\'Cellar\') RETURNING "SensorId"') == 3
    finally:
        target.close()


def test_mixed_case_names_arrive_in_mysql_exactly_with_keys_lengths_and_auto_increment(tmp_path, mysql_url):
    write_sqlite(tmp_path / "src.db", SENSORS)
    _, report = plan_and_run(job_file(tmp_path, f"{{type: mysql, url: '{mysql_url}'}}"), tmp_path)

    assert report.status == "succeeded" and report.counts.inserted == 5
    target = Db("mysql", mysql_url)
    try:
        assert tables_of(target) == {"Sensor", "Reading"}
        assert columns_of(target, "Sensor") == [("SensorId", "bigint", None, "NO"),
                                                ("Label", "varchar", 160, "NO"),
                                                ("Site", "varchar", 20, "YES")]
        assert target.constraint_count("PRIMARY KEY") == 2 and target.constraint_count("FOREIGN KEY") == 1
        assert target.scalar("SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = database() "
                             "AND index_name = 'IX_Reading_SensorId'") == 1
        target.execute("INSERT INTO `Sensor` (`Label`) VALUES ('Cellar')")
        assert target.scalar("SELECT `SensorId` FROM `Sensor` WHERE `Label` = 'Cellar'") == 3
    finally:
        target.close()


def test_identifiers_lower_folds_every_name_in_every_statement(tmp_path, pg_url):
    write_sqlite(tmp_path / "src.db", SENSORS)
    job = job_file(tmp_path, f"{{type: postgres, url: '{pg_url}'}}", "copy: {identifiers: lower}\n")
    described, report = plan_and_run(job, tmp_path)

    assert report.status == "succeeded" and report.counts.inserted == 5
    assert described["identifiers"] == "lower"
    assert "Names: folded to lower case (copy.identifiers: lower)" in plan_text(job)
    statements = described["constraints"] + [s for t in described["tables"] for s in t["ddl"]]
    assert statements and not any(name in s for s in statements for name in ("Sensor", "Label", "Reading"))
    target = Db("postgres", pg_url)
    try:
        assert tables_of(target) == {"sensor", "reading"}
        assert [c[0] for c in columns_of(target, "sensor")] == ["sensorid", "label", "site"]
        assert target.all("SELECT label FROM sensor ORDER BY sensorid") == [("Boiler room",), ("Roof",)]
        assert target.constraint_count("PRIMARY KEY") == 2 and target.constraint_count("FOREIGN KEY") == 1
        assert target.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_reading_sensorid'") == 1
        assert target.scalar("INSERT INTO sensor (label) VALUES ('Cellar') RETURNING sensorid") == 3
    finally:
        target.close()


def test_a_single_table_job_still_names_columns_as_auto_mapping_does(tmp_path, pg_url):
    write_sqlite(tmp_path / "src.db", SENSORS)
    job = tmp_path / "one.yaml"
    job.write_text(f"name: one\nsource: {{type: sqlite, path: src.db, table: Sensor}}\n"
                   f"destination: {{type: postgres, url: '{pg_url}', table: sensors}}\n")
    the_plan = portl.plan(portl.load_job(str(job)))
    try:
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()

    assert report.status == "succeeded" and report.counts.inserted == 2
    target = Db("postgres", pg_url)
    try:
        assert [(c[0], c[1]) for c in columns_of(target, "sensors")] == [
            ("sensorid", "bigint"), ("label", "text"), ("site", "text")]
    finally:
        target.close()


# --- a second run over tables that hold rows ---------------------------------------------------

TARGETS = ["postgres", "mysql"]


def target_of(request, kind: str) -> str:
    url = request.getfixturevalue("pg_url" if kind == "postgres" else "mysql_url")
    return f"{{type: {kind}, url: '{url}'}}", url


@pytest.mark.parametrize("kind", TARGETS)
def test_a_second_run_stops_before_writing_and_says_what_to_set(tmp_path, request, kind):
    write_sqlite(tmp_path / "src.db", SENSORS)
    destination, url = target_of(request, kind)
    job = job_file(tmp_path, destination)
    plan_and_run(job, tmp_path)

    the_plan = portl.plan(portl.load_job(job))
    try:
        assert any("Sensor (2 rows)" in w and "copy.if_exists: replace" in w for w in the_plan.warnings)
        with pytest.raises(ConfigError) as caught:
            portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    message = str(caught.value)
    assert "has 2 tables of this copy with rows already: Reading (3 rows), Sensor (2 rows); a copy creates its tables" \
        in message
    assert "copy.if_exists: replace" in message and "copy.if_exists: skip" in message
    target = Db(kind, url)
    try:
        q = '"' if kind == "postgres" else "`"
        assert target.scalar(f"SELECT count(*) FROM {q}Reading{q}") == 3
    finally:
        target.close()


@pytest.mark.parametrize("kind", TARGETS)
def test_if_exists_replace_drops_and_copies_again_with_every_key(tmp_path, request, kind):
    write_sqlite(tmp_path / "src.db", SENSORS)
    destination, url = target_of(request, kind)
    plan_and_run(job_file(tmp_path, destination), tmp_path)
    target = Db(kind, url)
    q = '"' if kind == "postgres" else "`"
    target.execute(f"DELETE FROM {q}Reading{q} WHERE {q}ReadingId{q} = 12")  # changed since the first copy

    described, report = plan_and_run(job_file(tmp_path, destination, "copy: {if_exists: replace}\n", "again"), tmp_path)
    try:
        assert report.status == "succeeded" and report.counts.inserted == 5
        assert any("DROP TABLE" in s for s in described["before"])
        assert target.scalar(f"SELECT count(*) FROM {q}Reading{q}") == 3
        assert target.scalar(f"SELECT count(*) FROM {q}Sensor{q}") == 2
        assert target.constraint_count("PRIMARY KEY") == 2 and target.constraint_count("FOREIGN KEY") == 1
    finally:
        target.close()


@pytest.mark.parametrize("kind", TARGETS)
def test_if_exists_skip_leaves_filled_tables_and_copies_the_others(tmp_path, request, kind):
    write_sqlite(tmp_path / "src.db", SENSORS)
    destination, url = target_of(request, kind)
    plan_and_run(job_file(tmp_path, destination), tmp_path)
    target = Db(kind, url)
    q = '"' if kind == "postgres" else "`"
    target.execute(f"DROP TABLE {q}Reading{q}")

    described, report = plan_and_run(job_file(tmp_path, destination, "copy: {if_exists: skip}\n", "again"), tmp_path)
    try:
        assert report.status == "succeeded" and report.counts.inserted == 3
        assert [t["job"] for t in described["tables"]] == ["again.Reading"]
        assert "table Sensor is not copied: the destination has it with 2 rows (copy.if_exists: skip)" in report.warnings
        assert target.scalar(f"SELECT count(*) FROM {q}Sensor{q}") == 2
        assert target.scalar(f"SELECT count(*) FROM {q}Reading{q}") == 3
        assert target.constraint_count("FOREIGN KEY") == 1
    finally:
        target.close()


def test_a_resumed_copy_finishes_a_table_it_had_begun_even_with_if_exists_skip(tmp_path, pg_url, crash_hook):
    write_sqlite(tmp_path / "src.db", SENSORS)
    job = job_file(tmp_path, f"{{type: postgres, url: '{pg_url}'}}",
                   "copy: {if_exists: skip}\nbatch: {size: 1}\n" + crash_hook.yaml)
    crash_hook.arm()  # Reading, copied first, stops after two of its three rows
    the_plan = portl.plan(portl.load_job(job))
    try:
        with pytest.raises(Exception, match="simulated crash"):
            portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    crash_hook.disarm()

    the_plan = portl.plan(portl.load_job(job))
    try:
        assert any(w.startswith("table Reading is not copied") for w in the_plan.warnings)  # as a new run would
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state"), resume=True))
    finally:
        the_plan.close()
    assert report.status == "succeeded"
    target = Db("postgres", pg_url)
    try:
        assert target.all('SELECT "ReadingId" FROM "Reading" ORDER BY 1') == [(10,), (11,), (12,)]
        assert target.scalar('SELECT count(*) FROM "Sensor"') == 2
        assert target.constraint_count("PRIMARY KEY") == 2 and target.constraint_count("FOREIGN KEY") == 1
    finally:
        target.close()


def test_mode_replace_copies_the_whole_database_again_keys_and_all(tmp_path, pg_url):
    write_sqlite(tmp_path / "src.db", SENSORS)
    job = job_file(tmp_path, f"{{type: postgres, url: '{pg_url}'}}", "mode: replace\n")
    first, _ = plan_and_run(job, tmp_path)
    again, report = plan_and_run(job, tmp_path)

    assert first["if_exists"] == again["if_exists"] == "replace" and first["before"] == []
    assert again["before"] == ['DROP TABLE IF EXISTS "public"."Reading" CASCADE', 'DROP TABLE IF EXISTS "public"."Sensor" CASCADE']
    assert report.status == "succeeded" and report.counts.inserted == 5
    target = Db("postgres", pg_url)
    try:
        assert target.scalar('SELECT count(*) FROM "Reading"') == 3 and target.scalar('SELECT count(*) FROM "Sensor"') == 2
        assert target.constraint_count("PRIMARY KEY") == 2 and target.constraint_count("FOREIGN KEY") == 1
    finally:
        target.close()


def test_a_new_run_over_an_unfinished_copy_also_points_to_resume(tmp_path, pg_url, crash_hook):
    write_sqlite(tmp_path / "src.db", SENSORS)
    job = job_file(tmp_path, f"{{type: postgres, url: '{pg_url}'}}", "batch: {size: 1}\n" + crash_hook.yaml)
    crash_hook.arm()
    the_plan = portl.plan(portl.load_job(job))
    try:
        with pytest.raises(Exception, match="simulated crash"):
            portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    crash_hook.disarm()

    the_plan = portl.plan(portl.load_job(job))
    try:
        with pytest.raises(ConfigError, match=r"Reading \(2 rows\).*or continue the unfinished run \S+ with portl "
                                              r"run --resume$"):
            portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
