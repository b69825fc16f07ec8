"""The flow's database: one connection, its transaction, and the ``db.*`` steps.

:class:`Session` opens one connection to the flow's database (psycopg 3 for Postgres, PyMySQL for
MySQL/MariaDB) with autocommit off, so every statement of the flow runs in one transaction until
:meth:`Session.commit` (``transaction: {scope: db}``: once at the end; ``scope: item``: after each
item of a top-level batch). Any failure rolls it back. Driver errors become Portl's, through the
connectors' own translators.

The ``db.*`` actions render their values and bind them to statements built once by
:mod:`portl.steps.sql`. Results keep the driver's types (ints, decimals, datetimes).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

from portl.errors import ConfigError, ConnectorError, StepError
from portl.spec.flow_models import DbInsertStep, DbQueryOneStep, DbQueryStep, DbUpdateStep, DbUpsertStep, StepBase
from portl.steps import sql
from portl.steps.actions import Action, FlowInfo, Prepared, shown_value
from portl.steps.context import Scope
from portl.steps.templating import Placeholder, compile_value, jsonable


class Session:
    """One connection to the flow's database, in a transaction until commit or rollback."""

    def __init__(self, config: Any, base_dir: str):
        self.config = config
        self.dialect = sql.dialect_for(config.type)
        self.where = config.describe()
        self._auto_increment: dict[str, str | None] = {}
        if self.dialect.name == "postgres":
            from portl.connectors.postgres.connection import connect

            from psycopg.rows import dict_row

            self.conn = connect(config, base_dir)
            self.conn.autocommit = False
            self._location = f"PostgreSQL {config.location()}/{config.database_name()}"
            # One cursor for the whole run: statements run one after another, never at once.
            self._cursor = self.conn.cursor(row_factory=dict_row)
        else:
            import pymysql
            import pymysql.cursors
            from portl.connectors.mysql.client import Server

            self._server = Server(config, base_dir, "destination")
            try:
                self.conn = pymysql.connect(**config.connect_kwargs(base_dir), autocommit=False,
                                            init_command="SET SESSION time_zone = '+00:00'")
            except pymysql.MySQLError as exc:
                raise self._server.error(exc, "connecting to the flow's MySQL database", during_run=False) from None
            self._cursor = self.conn.cursor(pymysql.cursors.DictCursor)

    @property
    def outbox_dialect(self) -> str:
        return self.dialect.name

    def execute(self, statement: sql.Statement, values: Sequence[Any]) -> tuple[list[dict[str, Any]], int, int | None]:
        """Run one statement with bound ``values``: its rows as mappings, the affected row count,
        and the new AUTO_INCREMENT value (MySQL)."""
        params = [self._adapt(v) for v in values]
        cur = self._cursor
        try:
            if self.dialect.name == "postgres":
                cur.execute(statement.text, params)
                return (cur.fetchall() if cur.description else []), cur.rowcount, None
            count = cur.execute(statement.text, params)
            return (list(cur.fetchall()) if cur.description else []), count, cur.lastrowid
        except Exception as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: BaseException) -> ConnectorError:
        """A driver error as a Portl error naming the database and the server's message."""
        if isinstance(exc, ConnectorError):
            return exc
        if self.dialect.name == "postgres":
            import psycopg
            from portl.connectors.postgres.connection import translate

            if isinstance(exc, psycopg.Error):
                return translate(exc, self._location)
        else:
            import pymysql

            if isinstance(exc, pymysql.MySQLError):
                return self._server.error(exc, "running the statement")
        return ConnectorError(f"{self.where}: {type(exc).__name__}: {exc}")

    def auto_increment_column(self, table: str) -> str | None:
        """The AUTO_INCREMENT column of a MySQL table (cached), to read back an inserted row."""
        if table not in self._auto_increment:
            parts = table.split(".")
            schema_sql = "%s" if len(parts) == 2 else "DATABASE()"
            query = sql.Statement(
                "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = " + schema_sql
                + " AND TABLE_NAME = %s AND EXTRA LIKE '%%auto_increment%%'", "")
            rows, _, _ = self.execute(query, parts)
            self._auto_increment[table] = rows[0]["name"] if rows else None
        return self._auto_increment[table]

    def commit(self) -> None:
        try:
            self.conn.commit()
        except Exception as exc:
            raise self.translate(exc) from exc

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # noqa: BLE001 - a broken connection has nothing left to roll back
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    def _adapt(self, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            if self.dialect.name == "postgres":
                from psycopg.types.json import Json

                return Json(jsonable(value))
            return json.dumps(jsonable(value), ensure_ascii=False)
        if isinstance(value, Placeholder):
            raise StepError(f"a dry-run placeholder ({value}) reached the database; please report this", step_id="?")
        if self.dialect.name == "mysql" and isinstance(value, datetime.datetime) and value.tzinfo is not None:
            # The session is in UTC; PyMySQL would drop the offset without converting.
            return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value


# --- the db steps ------------------------------------------------------------------------------


class _DbAction(Action):
    kind = "sql"
    #: The key the step's values are written under (mapping, params), for template failures.
    field = "mapping"

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        if info.dialect is None:
            raise ConfigError(f"step {step.id} needs the flow's database connection")
        self.dialect = info.dialect
        self.statements: list[sql.Statement] = []
        where = (lambda name: f"{self.field}.{name}") if self.field else str
        self.renders = [(name, compile_value(value, where(name))) for name, value in self.inputs().items()]

    def inputs(self) -> dict[str, Any]:
        """Parameter name -> its value as written (template or plain value)."""
        raise NotImplementedError

    def shown_names(self) -> dict[str, str]:
        """Parameter name -> the name plans show (``:name`` in the shown SQL)."""
        return {}

    def prepare(self, scope: Scope) -> Prepared:
        values = {name: render(scope.values) for name, render in self.renders}

        def show() -> dict[str, Any]:
            names = self.shown_names()
            return {"sql": [s.shown for s in self.statements],
                    "params": {names.get(k, k): shown_value(names.get(k, k), v) for k, v in values.items()}}

        return Prepared(values=values, show=show)

    def run(self, runtime: Any, statement: sql.Statement, values: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int | None]:
        return runtime.session.execute(statement, [values[name] for name in statement.params])


class Upsert(_DbAction):
    """``db.upsert`` -> ``{<returning>..., was_inserted}``."""

    step: DbUpsertStep

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        self.statements = sql.upsert(self.dialect, step.table, list(step.mapping), step.key, step.returning)

    def inputs(self) -> dict[str, Any]:
        return dict(self.step.mapping)

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        try:
            return self._upsert(prepared, runtime)
        except ConnectorError as exc:
            raise self._explained(exc) from exc

    def _upsert(self, prepared: Prepared, runtime: Any) -> dict[str, Any]:
        rows, count, _ = self.run(runtime, self.statements[0], prepared.values)
        if self.dialect.returning:
            return dict(rows[0]) if rows else {c: None for c in [*self.step.returning, "was_inserted"]}
        # MySQL's affected rows: 1 inserted, 2 updated, 0 found unchanged.
        result: dict[str, Any] = {}
        if len(self.statements) > 1:
            found, _, _ = self.run(runtime, self.statements[1], prepared.values)
            result = dict(found[0]) if found else {c: None for c in self.step.returning}
        result["was_inserted"] = count == 1
        return result

    def _explained(self, exc: ConnectorError) -> ConnectorError:
        """A table without an ``id`` column fails on the default ``returning: [id]``, which the
        user never wrote: say where the ``id`` comes from and how to change it."""
        text = str(exc)
        if "returning" in self.step.model_fields_set or not any(s in text for s in ('column "id"', "column 'id'")):
            return exc
        return ConnectorError(f"{text} (db.upsert returns the column id unless told otherwise: set returning: to "
                              "columns the table has, e.g. returning: [code], or returning: [] for none)")

    def placeholder(self, prepared: Prepared) -> Any:
        name = self.step.name
        return {**{c: Placeholder(f"{name}.{c}") for c in self.step.returning}, "was_inserted": Placeholder(f"{name}.was_inserted")}


class Insert(_DbAction):
    """``db.insert`` -> ``{count, <returning>...}``."""

    step: DbInsertStep

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        self.statements = sql.insert(self.dialect, step.table, list(step.mapping), step.returning)
        self._read_back: sql.Statement | None = None

    def inputs(self) -> dict[str, Any]:
        return dict(self.step.mapping)

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        rows, count, _ = self.run(runtime, self.statements[0], prepared.values)
        if not self.step.returning:
            return {"count": count}
        if self.dialect.returning:
            return {"count": count, **(dict(rows[0]) if rows else {})}
        if self._read_back is None:
            column = runtime.session.auto_increment_column(self.step.table)
            if column is None:
                raise StepError(f"step {self.step.id}: on MySQL, returning reads the new row back by its AUTO_INCREMENT "
                                f"column, and table {self.step.table} has none; drop returning, or query the row",
                                step_id=self.step.id)
            self._read_back = sql.insert(self.dialect, self.step.table, list(self.step.mapping), self.step.returning, column)[1]
        found, _, _ = self.run(runtime, self._read_back, prepared.values)
        return {"count": count, **(dict(found[0]) if found else {})}

    def placeholder(self, prepared: Prepared) -> Any:
        name = self.step.name
        return {"count": Placeholder(f"{name}.count"), **{c: Placeholder(f"{name}.{c}") for c in self.step.returning}}


class Update(_DbAction):
    """``db.update`` -> ``{count, rows}``."""

    step: DbUpdateStep
    field = ""

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        self.statements = sql.update(self.dialect, step.table, list(step.set_), list(step.where), step.returning)

    def inputs(self) -> dict[str, Any]:
        return {**{f"set.{k}": v for k, v in self.step.set_.items()}, **{f"where.{k}": v for k, v in self.step.where.items()}}

    def shown_names(self) -> dict[str, str]:
        names = {f"set.{k}": k for k in self.step.set_}
        names.update({f"where.{k}": (f"where_{k}" if k in self.step.set_ else k) for k in self.step.where})
        return names

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        rows, count, _ = self.run(runtime, self.statements[0], prepared.values)
        if len(self.statements) > 1:
            rows, _, _ = self.run(runtime, self.statements[1], prepared.values)
        return {"count": count, "rows": [dict(r) for r in rows] if self.step.returning else []}

    def placeholder(self, prepared: Prepared) -> Any:
        return {"count": Placeholder(f"{self.step.name}.count"), "rows": Placeholder(f"{self.step.name}.rows")}


class QueryOne(_DbAction):
    """``db.query_one`` -> the first row, or None."""

    step: DbQueryOneStep
    field = "params"

    def __init__(self, step: StepBase, info: FlowInfo):
        super().__init__(step, info)
        self.statements = [sql.named_query(step.sql, self.dialect)]

    def inputs(self) -> dict[str, Any]:
        return dict(self.step.params)

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        rows, _, _ = self.run(runtime, self.statements[0], prepared.values)
        return dict(rows[0]) if rows else None


class Query(QueryOne):
    """``db.query`` -> ``{rows, count}``."""

    step: DbQueryStep

    def execute(self, prepared: Prepared, runtime: Any, scope: Scope) -> Any:
        rows, _, _ = self.run(runtime, self.statements[0], prepared.values)
        return {"rows": [dict(r) for r in rows], "count": len(rows)}

    def placeholder(self, prepared: Prepared) -> Any:
        return {"rows": Placeholder(f"{self.step.name}.rows"), "count": Placeholder(f"{self.step.name}.count")}
