"""The SQL of the ``db.*`` steps, for PostgreSQL and MySQL/MariaDB.

Statements are built once per step from quoted identifiers (quoted by psycopg's
``sql.Identifier`` for Postgres, by the MySQL connector's dialect for MySQL) and placeholders;
values are always bound parameters, never SQL text. Each :class:`Statement` carries the text the
driver runs (``%s`` placeholders, a literal ``%`` doubled) and the text people see, with
``:name`` where each value goes.

``db.query`` and ``db.query_one`` write ``:name`` in their own SQL; :func:`named_query` turns each
into a placeholder, leaving alone ``::`` casts, ``:=``, and anything inside quotes, quoted names,
dollar-quoted strings and comments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from portl.errors import ConfigError

MYSQL_TYPES = ("mysql", "mariadb")
AUTO_INCREMENT = "<its AUTO_INCREMENT column>"


@dataclass(frozen=True)
class Statement:
    """One statement: ``text`` runs (``%s`` placeholders), ``shown`` is printed (``:name``), and
    ``params`` names the value of each placeholder, in order."""

    text: str
    shown: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialect:
    """What the db steps need to know about a database: how to quote, and how it upserts and
    returns rows."""

    name: str  # "postgres" or "mysql"
    quote: object  # (name) -> quoted identifier

    @property
    def returning(self) -> bool:
        """Whether INSERT/UPDATE ... RETURNING gives back rows (else they are read back by key)."""
        return self.name == "postgres"

    def table(self, name: str) -> str:
        from portl.connectors.sql.dialect import split_qualified

        return ".".join(self.quote(part) for part in split_qualified(name))


def dialect_for(connection_type: str) -> Dialect:
    """The dialect of a database connection type (postgres, postgresql, mysql, mariadb)."""
    if connection_type in MYSQL_TYPES:
        from portl.connectors.mysql.dialect import quote

        return Dialect("mysql", quote)
    if connection_type in ("postgres", "postgresql"):
        try:
            from portl.connectors.postgres.typemap import quote_ident
            import psycopg  # noqa: F401  (quoting is psycopg's own)
        except ImportError as exc:
            raise ConfigError("PostgreSQL steps need psycopg: pip install 'portl[postgres]'") from exc
        return Dialect("postgres", quote_ident)
    raise ConfigError(f"db steps run on postgres and mysql connections, not {connection_type}")


class _Builder:
    """Builds the run text and the shown text of one statement side by side."""

    def __init__(self, dialect: Dialect):
        self.d = dialect
        self.run: list[str] = []
        self.show: list[str] = []
        self.params: list[str] = []

    def sql(self, text: str) -> _Builder:
        self.run.append(text.replace("%", "%%"))
        self.show.append(text)
        return self

    def ident(self, name: str) -> _Builder:
        return self.sql(self.d.quote(name))

    def table(self, name: str) -> _Builder:
        return self.sql(self.d.table(name))

    def idents(self, names: Sequence[str]) -> _Builder:
        return self.sql(", ".join(self.d.quote(n) for n in names))

    def value(self, param: str, shown: str | None = None) -> _Builder:
        self.run.append("%s")
        self.show.append(":" + (shown or param))
        self.params.append(param)
        return self

    def values(self, params: Sequence[str]) -> _Builder:
        for i, param in enumerate(params):
            if i:
                self.sql(", ")
            self.value(param)
        return self

    def assignments(self, columns: Sequence[str], params: Sequence[str], shown: Sequence[str] | None = None) -> _Builder:
        for i, (column, param) in enumerate(zip(columns, params)):
            self.sql(", " if i else "").ident(column).sql(" = ").value(param, shown[i] if shown else None)
        return self

    def conditions(self, columns: Sequence[str], params: Sequence[str], shown: Sequence[str], null_safe: str) -> _Builder:
        for i, (column, param) in enumerate(zip(columns, params)):
            self.sql(" AND " if i else "").ident(column).sql(f" {null_safe} ").value(param, shown[i])
        return self

    def build(self) -> Statement:
        return Statement("".join(self.run), "".join(self.show), tuple(self.params))


def _returning(b: _Builder, columns: Sequence[str], extra: str = "") -> _Builder:
    parts = [b.d.quote(c) for c in columns] + ([extra] if extra else [])
    return b.sql(" RETURNING " + ", ".join(parts)) if parts else b


def upsert(d: Dialect, table: str, columns: Sequence[str], key: Sequence[str], returning: Sequence[str]) -> list[Statement]:
    """Insert or update by ``key``. Postgres: one ``INSERT … ON CONFLICT … DO UPDATE … RETURNING
    …, (xmax = 0) AS was_inserted``. MySQL: ``INSERT … ON DUPLICATE KEY UPDATE`` (its affected
    rows say inserted, updated or unchanged), then the returned columns read back by key."""
    others = [c for c in columns if c not in key] or [key[0]]
    b = _Builder(d).sql("INSERT INTO ").table(table).sql(" (").idents(columns).sql(") VALUES (").values(columns).sql(")")
    if d.name == "postgres":
        b.sql(" ON CONFLICT (").idents(key).sql(") DO UPDATE SET ")
        for i, column in enumerate(others):
            b.sql(", " if i else "").ident(column).sql(" = EXCLUDED.").ident(column)
        return [_returning(b, returning, '(xmax = 0) AS "was_inserted"').build()]
    # The new values are bound again rather than named with VALUES(c), which MySQL 8.0.20
    # deprecates, or a row alias, which MariaDB lacks.
    b.sql(" ON DUPLICATE KEY UPDATE ").assignments(others, others)
    statements = [b.build()]
    if returning:
        read = _Builder(d).sql("SELECT ").idents(returning).sql(" FROM ").table(table).sql(" WHERE ")
        statements.append(read.conditions(key, key, key, "<=>").build())
    return statements


def insert(d: Dialect, table: str, columns: Sequence[str], returning: Sequence[str], auto_increment: str | None = None) -> list[Statement]:
    """Insert one row. MySQL reads the returned columns back through ``LAST_INSERT_ID()``, which
    needs the table's AUTO_INCREMENT column (``auto_increment``; a stand-in name in plans)."""
    b = _Builder(d).sql("INSERT INTO ").table(table).sql(" (").idents(columns).sql(") VALUES (").values(columns).sql(")")
    if d.returning or not returning:
        return [_returning(b, returning).build() if d.returning else b.build()]
    read = _Builder(d).sql("SELECT ").idents(returning).sql(" FROM ").table(table).sql(" WHERE ")
    read.sql(d.quote(auto_increment) if auto_increment else AUTO_INCREMENT).sql(" = LAST_INSERT_ID()")
    return [b.build(), read.build()]


def update(d: Dialect, table: str, set_columns: Sequence[str], where_columns: Sequence[str], returning: Sequence[str]) -> list[Statement]:
    """Update the rows whose ``where`` columns equal the given values. Parameters are named
    ``set.<column>`` and ``where.<column>``. MySQL reads the returned columns back with the same
    conditions (a condition on a column the update changes uses its new value)."""
    set_params = [f"set.{c}" for c in set_columns]
    where_params = [f"where.{c}" for c in where_columns]
    where_shown = [f"where_{c}" if c in set_columns else c for c in where_columns]
    b = _Builder(d).sql("UPDATE ").table(table).sql(" SET ").assignments(set_columns, set_params, list(set_columns))
    b.sql(" WHERE ").conditions(where_columns, where_params, where_shown, "=")
    if d.returning or not returning:
        return [_returning(b, returning).build() if d.returning else b.build()]
    after = [f"set.{c}" if c in set_columns else f"where.{c}" for c in where_columns]
    after_shown = [c for c in where_columns]
    read = _Builder(d).sql("SELECT ").idents(returning).sql(" FROM ").table(table).sql(" WHERE ")
    return [b.build(), read.conditions(where_columns, after, after_shown, "<=>").build()]


# --- :name parameters --------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def named_query(text: str, dialect: Dialect) -> Statement:
    """A query written with ``:name`` parameters, as a :class:`Statement` with placeholders."""
    run: list[str] = []
    params: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        end = _skip(text, i, dialect)
        if end > i:
            run.append(text[i:end].replace("%", "%%"))
            i = end
        elif ch == ":" and i + 1 < n and text[i + 1] == ":":
            run.append("::")
            i += 2
        elif ch == ":" and (match := _NAME.match(text, i + 1)) and not (i > 0 and text[i - 1] == ":"):
            run.append("%s")
            params.append(match.group(0))
            i = match.end()
        else:
            run.append("%%" if ch == "%" else ch)
            i += 1
    return Statement("".join(run), text, tuple(params))


def parameter_names(text: str, dialect_name: str = "postgres") -> list[str]:
    """The distinct ``:name`` parameters of a query, in order of first use."""
    fake = Dialect(dialect_name, lambda s: s)
    return list(dict.fromkeys(named_query(text, fake).params))


def _skip(text: str, i: int, d: Dialect) -> int:
    """The end of a quoted string, quoted name, dollar-quoted string or comment starting at
    ``i``; ``i`` when none starts there."""
    ch = text[i]
    if ch in "'\"`":
        if ch == "`" and d.name != "mysql":
            return i
        j = i + 1
        while j < len(text):
            if d.name == "mysql" and text[j] == "\\" and ch != "`":
                j += 2
                continue
            if text[j] == ch:
                if j + 1 < len(text) and text[j + 1] == ch:
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(text)
    if text.startswith("--", i) or (ch == "#" and d.name == "mysql"):
        newline = text.find("\n", i)
        return len(text) if newline < 0 else newline
    if text.startswith("/*", i):
        close = text.find("*/", i + 2)
        return len(text) if close < 0 else close + 2
    if ch == "$" and d.name == "postgres":
        match = _DOLLAR.match(text, i)
        if match and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = text.find(match.group(0), match.end())
            return len(text) if close < 0 else close + len(match.group(0))
    return i
