"""What a whole-database copy carries besides rows and keys: CHECK constraints and column
defaults (or, for each one that does not translate, a note in the plan saying why), tables whose
foreign keys refer to each other, and views (copied when their query translates, else named in
the plan and the run report)."""

from __future__ import annotations

import pytest

import portl
from tests.integration.test_database_copy import Db
from tests.integration.test_database_copy_resume import write_sqlite

# --- CHECK constraints and defaults ------------------------------------------------------------

# ``code GLOB ...`` is SQLite's own operator: it does not translate, and the copy goes on without it.
SQLITE_STOCK = """
    CREATE TABLE stock (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL DEFAULT 0 CHECK (qty >= 0),
                        label VARCHAR(20) DEFAULT 'n/a', code TEXT CHECK (code GLOB '[A-Z]*'),
                        added TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT ck_label CHECK (length(label) <= 10));
    INSERT INTO stock (id, qty, label, code) VALUES (1, 5, 'bolts', 'B'), (2, 0, 'nuts', 'N');
"""
POSTGRES_STOCK = """
    CREATE TABLE stock (id integer PRIMARY KEY, qty integer NOT NULL DEFAULT 0 CONSTRAINT ck_qty CHECK (qty >= 0),
                        label varchar(20) DEFAULT 'n/a', code text CONSTRAINT ck_code CHECK (code ~ '^[A-Z]+$'),
                        added timestamp DEFAULT now(), CONSTRAINT ck_label CHECK (length(label) <= 10));
    INSERT INTO stock (id, qty, label, code) VALUES (1, 5, 'bolts', 'B'), (2, 0, 'nuts', 'N')
"""
MYSQL_STOCK = """
    CREATE TABLE stock (id INT PRIMARY KEY, qty INT NOT NULL DEFAULT 0, label VARCHAR(20) DEFAULT 'n/a',
                        code VARCHAR(10), added DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
                        CONSTRAINT ck_qty CHECK (qty >= 0), CONSTRAINT ck_label CHECK (char_length(label) <= 10),
                        CONSTRAINT ck_code CHECK (code REGEXP '^[A-Z]+$'))
        DEFAULT CHARSET=utf8mb3;
    INSERT INTO stock (id, qty, label, code) VALUES (1, 5, 'bolts', 'B'), (2, 0, 'nuts', 'N')
"""


def copy(tmp_path, source: str, destination: str, extra: str = ""):
    """Plan and run a whole-database copy; the plan's data, its warnings and the run report."""
    job = tmp_path / "copy.yaml"
    job.write_text(f"name: copy\nsource: {source}\ndestination: {destination}\n{extra}")
    the_plan = portl.plan(portl.load_job(str(job)))
    try:
        described, warnings = the_plan.to_dict(), list(the_plan.warnings)
        report = portl.run(the_plan, portl.RunOptions(state_dir=str(tmp_path / "state")))
    finally:
        the_plan.close()
    return described, warnings, report


def source_of(kind: str, request, tmp_path, script: str) -> str:
    """A source database holding ``script``'s tables, as a job's ``source:``."""
    if kind == "sqlite":
        write_sqlite(tmp_path / "src.db", script)
        return "{type: sqlite, path: src.db, tables: '*'}"
    url = request.getfixturevalue("pg_url" if kind == "postgres" else "mysql_url")
    db = Db(kind, url)
    db.script(script)
    db.close()
    return f"{{type: {kind}, url: '{url}', tables: '*'}}"


def destination_of(kind: str, request) -> tuple[str, str]:
    url = request.getfixturevalue("pg_url" if kind == "postgres" else "mysql_url")
    return f"{{type: {kind}, url: '{url}'}}", url


STOCK = {"sqlite": SQLITE_STOCK, "postgres": POSTGRES_STOCK, "mysql": MYSQL_STOCK}
# The CHECK each source writes in its own dialect only, and the reason the plan gives for it.
UNTRANSLATED = {"sqlite": ("code GLOB '[A-Z]*'", "it refers to GLOB"),
                "postgres": ("(code ~ '^[A-Z]+$'::text)", "it uses '~'"),
                "mysql": ("regexp '^[A-Z]+$'", "it refers to regexp")}
DIRECTIONS = [("sqlite", "postgres"), ("sqlite", "mysql"), ("postgres", "mysql"), ("mysql", "postgres")]


@pytest.mark.parametrize("source_kind,target_kind", DIRECTIONS, ids=[f"{a}-to-{b}" for a, b in DIRECTIONS])
def test_checks_and_defaults_are_copied_and_an_untranslatable_check_is_named(tmp_path, request, source_kind,
                                                                           target_kind):
    source = source_of(source_kind, request, tmp_path, STOCK[source_kind])
    destination, url = destination_of(target_kind, request)
    described, warnings, report = copy(tmp_path, source, destination)

    assert report.status == "succeeded" and report.counts.inserted == 2
    fragment, reason = UNTRANSLATED[source_kind]
    skipped = [w for w in warnings if "is not copied" in w]
    assert len(skipped) == 1 and fragment.lower() in skipped[0].lower() and reason in skipped[0]
    assert "of table stock is not copied" in skipped[0]
    assert skipped[0] in report.warnings
    assert sum("CHECK" in s for s in described["constraints"]) == 2

    target = Db(target_kind, url)
    try:
        with pytest.raises(Exception, match="(?i)check|constraint"):  # qty >= 0
            target.execute("INSERT INTO stock (id, qty, label) VALUES (3, -1, 'washers')")
        with pytest.raises(Exception, match="(?i)check|constraint"):  # length(label) <= 10
            target.execute("INSERT INTO stock (id, qty, label) VALUES (4, 1, 'far too long a label')")
        target.execute("INSERT INTO stock (id, code) VALUES (5, 'lower')")  # that CHECK was not copied
        qty, label, added = target.all("SELECT qty, label, added FROM stock WHERE id = 5")[0]
        assert (qty, label) == (0, "n/a") and added is not None
        assert list(target.all("SELECT id, qty, label FROM stock WHERE id < 3 ORDER BY id")) == [(1, 5, "bolts"), (2, 0, "nuts")]
    finally:
        target.close()


# --- circular foreign keys and views -----------------------------------------------------------

# departments.manager_id -> employees, employees.department_id -> departments: neither table can
# be loaded first with its keys in place. The second view uses a function no other database has.
CIRCULAR = {
    "sqlite": """
        CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL, manager_id INTEGER REFERENCES employees (id));
        CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT NOT NULL, department_id INTEGER REFERENCES departments (id));
        INSERT INTO departments VALUES (1, 'Research', 10), (2, 'Sales', 11);
        INSERT INTO employees VALUES (10, 'Ada', 1), (11, 'Grace', 2), (12, 'Linus', 1);
        CREATE VIEW research AS SELECT e.id, e.name FROM employees e WHERE e.department_id = 1;
        CREATE VIEW hired_this_year AS SELECT id FROM employees WHERE strftime('%Y', 'now') > '2000'
    """,
    "postgres": """
        CREATE TABLE departments (id integer PRIMARY KEY, name text NOT NULL, manager_id integer);
        CREATE TABLE employees (id integer PRIMARY KEY, name text NOT NULL, department_id integer REFERENCES departments (id));
        ALTER TABLE departments ADD CONSTRAINT departments_manager_fk FOREIGN KEY (manager_id) REFERENCES employees (id)
            DEFERRABLE INITIALLY DEFERRED;
        BEGIN;
        INSERT INTO departments VALUES (1, 'Research', 10), (2, 'Sales', 11);
        INSERT INTO employees VALUES (10, 'Ada', 1), (11, 'Grace', 2), (12, 'Linus', 1);
        COMMIT;
        CREATE VIEW research AS SELECT e.id, e.name FROM employees e WHERE e.department_id = 1;
        CREATE VIEW hired_this_year AS SELECT id FROM employees WHERE date_part('year', now()) > 2000
    """,
    "mysql": """
        CREATE TABLE departments (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, manager_id INT) DEFAULT CHARSET=utf8mb3;
        CREATE TABLE employees (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, department_id INT,
                                CONSTRAINT employees_department_fk FOREIGN KEY (department_id) REFERENCES departments (id))
            DEFAULT CHARSET=utf8mb3;
        SET foreign_key_checks = 0;
        ALTER TABLE departments ADD CONSTRAINT departments_manager_fk FOREIGN KEY (manager_id) REFERENCES employees (id);
        INSERT INTO departments VALUES (1, 'Research', 10), (2, 'Sales', 11);
        INSERT INTO employees VALUES (10, 'Ada', 1), (11, 'Grace', 2), (12, 'Linus', 1);
        SET foreign_key_checks = 1;
        CREATE VIEW research AS SELECT e.id, e.name FROM employees e WHERE e.department_id = 1;
        CREATE VIEW hired_this_year AS SELECT id FROM employees WHERE year(curdate()) > 2000
    """,
}
CIRCULAR_DIRECTIONS = [("sqlite", "postgres"), ("sqlite", "mysql"), ("postgres", "mysql"), ("mysql", "postgres"),
                       ("postgres", "postgres")]


def second_pg_database(request) -> str:
    import psycopg

    from tests.services import PG_ADMIN, unique_name

    name = unique_name()
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: (admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), admin.close()))
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


@pytest.mark.parametrize("source_kind,target_kind", CIRCULAR_DIRECTIONS,
                         ids=[f"{a}-to-{b}" for a, b in CIRCULAR_DIRECTIONS])
def test_tables_referring_to_each_other_copy_and_a_view_that_translates_is_created(tmp_path, request, source_kind,
                                                                                  target_kind):
    source = source_of(source_kind, request, tmp_path, CIRCULAR[source_kind])
    if source_kind == target_kind:
        url = second_pg_database(request)
        destination = f"{{type: postgres, url: '{url}'}}"
    else:
        destination, url = destination_of(target_kind, request)
    described, warnings, report = copy(tmp_path, source, destination)

    assert report.status == "succeeded" and report.counts.inserted == 5
    assert sum("FOREIGN KEY" in s for s in described["constraints"]) == 2
    assert len(described["views"]) == (2 if source_kind == target_kind else 1)
    if source_kind != target_kind:
        skipped = [w for w in warnings if w.startswith("view hired_this_year is not copied: it calls")]
        assert len(skipped) == 1 and skipped[0] in report.warnings
    if source_kind == "postgres":  # the manager key is checked at commit in the source, and so it is in Postgres
        deferred = [s for s in described["constraints"] if "departments_manager_fk" in s]
        if target_kind == "postgres":
            assert deferred[0].endswith("ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED")
        else:
            assert ("foreign key departments_manager_fk of table departments is DEFERRABLE INITIALLY DEFERRED in the "
                    "source; MySQL checks foreign keys row by row") in warnings
    target = Db(target_kind, url)
    try:
        assert target.constraint_count("FOREIGN KEY") == 2
        with pytest.raises(Exception, match="(?i)foreign key"):
            target.execute("INSERT INTO employees (id, name, department_id) VALUES (13, 'Ken', 9)")
        assert list(target.all("SELECT id, name FROM research ORDER BY id")) == [(10, "Ada"), (12, "Linus")]
    finally:
        target.close()


def test_what_a_postgres_source_cannot_describe_is_named_in_the_plan_and_the_copy_goes_on(tmp_path, request):
    source = source_of("postgres", request, tmp_path, """
        CREATE TABLE tickets (id serial PRIMARY KEY, seat serial, name text NOT NULL DEFAULT 'guest');
        CREATE INDEX tickets_lower_name ON tickets (lower(name));
        INSERT INTO tickets (name) VALUES ('Ada'), ('Grace')
    """)
    url = second_pg_database(request)
    _, warnings, report = copy(tmp_path, source, f"{{type: postgres, url: '{url}'}}")

    assert report.status == "succeeded" and report.counts.inserted == 2
    assert "index tickets_lower_name of public.tickets uses expressions or a WHERE clause; it is not copied" in warnings
    assert ("the default nextval('tickets_seat_seq'::regclass) of column seat of table tickets is not copied: it draws "
            "from a sequence of the source") in warnings
    target = Db("postgres", url)
    try:
        assert target.scalar("INSERT INTO tickets (seat) VALUES (7) RETURNING id::text || ':' || name") == "3:guest"
    finally:
        target.close()


def test_a_view_reading_another_is_created_after_it_in_the_destination_schema(tmp_path, pg_url):
    write_sqlite(tmp_path / "src.db", """
        CREATE TABLE items (id INTEGER PRIMARY KEY, price REAL);
        INSERT INTO items VALUES (1, 5.0), (2, 50.0), (3, 500.0);
        CREATE VIEW a_dear AS SELECT id FROM b_priced WHERE price > 10;
        CREATE VIEW b_priced AS SELECT id, price FROM items WHERE price IS NOT NULL;
        CREATE VIEW c_listed (item, cost) AS SELECT id, price FROM items
    """)
    _, warnings, report = copy(tmp_path, "{type: sqlite, path: src.db, tables: '*'}",
                               f"{{type: postgres, url: '{pg_url}', schema: shop}}")

    assert report.status == "succeeded"
    assert "view c_listed is not copied: it names its columns in a list (item, cost), which Portl does not copy" in warnings
    assert not [w for w in report.warnings if "refused" in w]
    target = Db("postgres", pg_url)
    try:
        assert target.all("SELECT id FROM shop.a_dear ORDER BY id") == [(2,), (3,)]
    finally:
        target.close()


# --- what a copy leaves out: triggers -------------------------------------------------------------

TRIGGERS = {
    "sqlite": """
        CREATE TABLE item (id INTEGER PRIMARY KEY, n INTEGER);
        CREATE TABLE log (id INTEGER PRIMARY KEY, n INTEGER);
        CREATE TRIGGER item_log AFTER INSERT ON item BEGIN INSERT INTO log (n) VALUES (NEW.n); END;
        INSERT INTO item (id, n) VALUES (1, 1);
    """,
    "postgres": """
        CREATE TABLE item (id integer PRIMARY KEY, n integer);
        CREATE TRIGGER item_log BEFORE UPDATE ON item FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
        INSERT INTO item (id, n) VALUES (1, 1)
    """,
}


@pytest.mark.parametrize("source_kind", sorted(TRIGGERS))
def test_a_trigger_is_named_as_not_copied_in_the_plan_and_the_report(tmp_path, request, source_kind):
    source = source_of(source_kind, request, tmp_path, TRIGGERS[source_kind])
    target_kind = "mysql" if source_kind == "postgres" else "postgres"
    destination, _ = destination_of(target_kind, request)

    _, warnings, report = copy(tmp_path, source, destination)

    note = "trigger item_log of table item is not copied"
    assert any(note in w for w in warnings), warnings
    assert report.status == "succeeded" and any(note in w for w in report.warnings), report.warnings
