"""SQL expressions of one database in another's SQL: CHECK constraints, column defaults, views.

A whole-database copy carries expressions as the source wrote them (``qty > 0``, ``DEFAULT 0``,
``datetime('now')``, a view's ``SELECT``). :func:`translate` rewrites one for a destination
token by token: names of copied tables and columns are quoted in the destination's way under the
names the copy gives them, the functions below are renamed where the destination spells them
differently, and anything else that is not plain standard SQL (an operator like SQLite's
``GLOB``, a function Portl does not know, a PostgreSQL ``::`` cast into MySQL) raises
:class:`Untranslatable` with the reason, which the plan shows. A guess is worse than a note: an
expression is either translated whole or not copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<cast>::)
  | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
  | (?P<operator><>|!=|<=|>=|\|\||[-+*/%<>=(),.;])
  | (?P<special>!?~\*?|[&|^#@!?]+)
""", re.VERBOSE)

KEYWORDS = frozenset("""
    SELECT FROM WHERE AND OR NOT IN IS NULL LIKE BETWEEN CASE WHEN THEN ELSE END AS ON JOIN LEFT RIGHT
    INNER OUTER FULL CROSS GROUP BY ORDER HAVING LIMIT OFFSET DISTINCT UNION ALL EXISTS ASC DESC TRUE
    FALSE CURRENT_TIMESTAMP CURRENT_DATE USING
""".split())

# Function names by the destination that spells them: a name missing for a destination is not
# translated. Names every destination spells the same way map to themselves.
_SAME = ("lower", "upper", "abs", "coalesce", "round", "trim", "replace", "nullif", "substr", "max", "min",
         "sum", "count", "avg")
FUNCTIONS: dict[str, dict[str, dict[str, str]]] = {
    "sqlite": {**{f: {"postgres": f, "mysql": f} for f in _SAME},
               "length": {"postgres": "length", "mysql": "char_length"},
               "ifnull": {"postgres": "coalesce", "mysql": "ifnull"}},
    "postgres": {**{f: {"postgres": f, "mysql": f} for f in _SAME},
                 "length": {"postgres": "length", "mysql": "char_length"},
                 "char_length": {"postgres": "char_length", "mysql": "char_length"},
                 "now": {"postgres": "now", "mysql": "now"}},
    "mysql": {**{f: {"postgres": f, "mysql": f} for f in _SAME},
              "char_length": {"postgres": "char_length", "mysql": "char_length"},
              "character_length": {"postgres": "char_length", "mysql": "char_length"},
              "length": {"postgres": "octet_length", "mysql": "length"},
              "ifnull": {"postgres": "coalesce", "mysql": "ifnull"},
              "curdate": {"postgres": "current_date", "mysql": "curdate"}},
}

# PostgreSQL writes casts into the expressions it shows (``'a'::text``); into another database,
# a cast to one of these types is left out (the column's own type applies), any other is refused.
_CAST_WORDS = frozenset("""
    text character varying varchar bpchar char integer int int4 int8 int2 bigint smallint numeric
    timestamp without with time zone date boolean bool double precision real json jsonb uuid bytea
""".split())

# Spellings of "now" that are standard SQL's CURRENT_TIMESTAMP / CURRENT_DATE, by source: SQLite's
# datetime('now'), MySQL's current_timestamp(6) and now(6) (with a precision no other database takes).
_NOW = {
    "sqlite": [(re.compile(r"\bdatetime\s*\(\s*'now'\s*\)", re.IGNORECASE), "CURRENT_TIMESTAMP"),
               (re.compile(r"\bdate\s*\(\s*'now'\s*\)", re.IGNORECASE), "CURRENT_DATE")],
    "mysql": [(re.compile(r"\b(?:current_timestamp|now)\s*\(\s*\d*\s*\)", re.IGNORECASE), "CURRENT_TIMESTAMP")],
}


class Untranslatable(Exception):
    """An expression the destination's SQL cannot take as Portl would write it; ``str()`` is the reason."""


@dataclass(frozen=True)
class Names:
    """How names are written in the destination: its quoting, and the copy's names of the source's
    columns and tables (keys in lower case: SQL names compare case-blind unless quoted).

    ``tables`` maps to the SQL to write (quoted, perhaps qualified); ``dropped_qualifiers`` are the
    source's schema or database names, left out before a dot. With ``free_names`` (a view's
    query), other names (aliases) are quoted as they are; without, they make the expression
    untranslatable."""

    quote: Callable[[str], str]
    columns: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    dropped_qualifiers: frozenset[str] = frozenset()
    free_names: bool = False


def tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs; raises :class:`Untranslatable` at a character no token starts with."""
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise Untranslatable(f"it uses {text[pos]!r}, which Portl does not translate")
        out.append((match.lastgroup, match.group()))
        pos = match.end()
    return out


def unquoted(token: str) -> str:
    """A quoted identifier's name: ``"a""b"`` → ``a"b``, `` `x` `` → ``x``, ``[x]`` → ``x``."""
    if token[0] == "[":
        return token[1:-1]
    return token[1:-1].replace(token[0] * 2, token[0])


def translate(text: str, source: str, target: str, names: Names) -> str:
    """``text`` (SQL of ``source``) as SQL of ``target``; raises :class:`Untranslatable`."""
    for pattern, standard in _NOW.get(source, []):
        text = pattern.sub(standard, text)
    toks = [t for t in tokens(text.strip().rstrip(";")) if t[0] != "space"]
    out: list[str] = []
    calls: set[int] = set()
    i = 0
    while i < len(toks):
        kind, tok = toks[i]
        following = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "cast":
            i = _cast(toks, i + 1, source, target, out)
            continue
        if kind in ("word", "quoted"):
            name = unquoted(tok) if kind == "quoted" else tok
            if following == "." and name.lower() in names.dropped_qualifiers:
                i += 2
                continue
            if kind == "word" and tok.upper() in KEYWORDS:
                out.append(tok.upper())
            elif kind == "word" and following == "(":
                out.append(_function(name, source, target))
                calls.add(len(out))  # the "(" that follows opens its arguments: no space before it
            else:
                out.append(tok if kind == "word" and source == target and name.lower() not in names.columns
                           and name.lower() not in names.tables else _name(name, kind, names, out))
        elif kind == "special" and source != target:
            raise Untranslatable(f"it uses {tok!r}, which Portl does not translate")
        elif tok == "||" and source != target and "mysql" in (source, target):
            raise Untranslatable("it uses ||, which is OR in MySQL and concatenation elsewhere")
        elif kind == "string" and source == "mysql" and "\\" in tok:
            raise Untranslatable("it has a backslash escape in a string, which MySQL reads differently")
        else:
            out.append(tok)
        i += 1
    return _joined(out, calls)


def _cast(toks: list[tuple[str, str]], i: int, source: str, target: str, out: list[str]) -> int:
    """After ``::``: keep the cast for PostgreSQL, leave it out (a known type) for other targets."""
    if source != "postgres":
        raise Untranslatable("it uses '::', which Portl does not translate")
    words = []
    while i < len(toks) and toks[i][0] == "word" and toks[i][1].lower() in _CAST_WORDS:
        words.append(toks[i][1])
        i += 1
    if i < len(toks) and toks[i][1] == "(" and words:  # varchar(20)
        end = next((j for j in range(i, len(toks)) if toks[j][1] == ")"), len(toks) - 1)
        words.append("".join(t for _, t in toks[i:end + 1]))
        i = end + 1
    if not words:  # a type of the source's own (an enum, a domain): the destination may not have it
        cast = toks[i][1] if i < len(toks) else ""
        raise Untranslatable(f"it casts to {cast}, a type Portl does not create")
    if target == "postgres":
        out.append("::" + " ".join(words))
    return i


def _function(name: str, source: str, target: str) -> str:
    if source == target:
        return name
    spelled = FUNCTIONS.get(source, {}).get(name.lower(), {}).get(target)
    if spelled is None:
        raise Untranslatable(f"it calls {name}(), which Portl does not translate from {source} to {target}")
    return spelled


def _name(name: str, kind: str, names: Names, out: list[str]) -> str:
    after_dot = bool(out) and out[-1] == "."
    key = name.lower()
    if key in names.tables and not after_dot:
        return names.tables[key]
    if key in names.columns:
        return names.quote(names.columns[key])
    if names.free_names:
        return names.quote(name)
    raise Untranslatable(f"it refers to {name}, which is not a column of the table")


def _joined(out: list[str], calls: set[int]) -> str:
    """Tokens with spaces between them, except around dots, inside parentheses and after a
    function's name (``calls`` holds the positions of the parentheses that follow one)."""
    text = ""
    for position, tok in enumerate(out):
        if text and not (text.endswith(("(", ".")) or tok in (")", ",", ".") or tok.startswith("::")
                         or position in calls):
            text += " "
        text += tok
    return text


# --- what a copied table carries: defaults, CHECKs, views ------------------------------------------

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_NUMERIC = {"int", "bigint", "float", "decimal"}
_BOOLEANS = {"0": "FALSE", "1": "TRUE", "'0'": "FALSE", "'1'": "TRUE", "false": "FALSE", "true": "TRUE",
             "'f'": "FALSE", "'t'": "TRUE"}


def column_names(table: Any, quote: Callable[[str], str]) -> Names:
    """The names a table's own expressions may use: its columns, found case-blind."""
    return Names(quote, columns={f.name.lower(): f.name for f in table.schema})


def default_of(table: Any, column: str, logical: str, target: str, quote: Callable[[str], str]) -> str:
    """The destination's DEFAULT expression for a column of a copied table ('' when it has none);
    raises :class:`Untranslatable` when the source's default does not translate or does not fit
    the column's type (``logical``, a :class:`~portl.types.LogicalType` name)."""
    text = table.defaults.get(column)
    if text is None:
        return ""
    bare = text.strip()
    while bare.startswith("(") and bare.endswith(")"):
        bare = bare[1:-1].strip()
    if bare.upper() == "NULL":
        return ""
    if logical == "bool":
        if bare.lower() not in _BOOLEANS:
            raise Untranslatable(f"{bare} is not a boolean")
        return _BOOLEANS[bare.lower()]
    if logical in ("date", "timestamp", "timestamptz") and bare.strip("'").startswith("0000-00-00"):
        raise Untranslatable(f"{bare} is MySQL's zero date, which is not a date")
    if logical in _NUMERIC:
        number = bare[1:-1] if bare.startswith("'") and bare.endswith("'") else bare
        if not _NUMBER.match(number):
            raise Untranslatable(f"{bare} is not a number, and the column is {logical}")
        return number
    return translate(bare, table.dialect, target, column_names(table, quote))


def check_of(table: Any, expression: str, target: str, quote: Callable[[str], str]) -> str:
    """A CHECK expression of a copied table in the destination's SQL; raises :class:`Untranslatable`."""
    text = expression.strip()
    if table.dialect == "postgres" and text.upper().startswith("CHECK"):
        text = text[5:].strip()
        if text.upper().endswith("NOT VALID"):
            text = text[:-9].strip()
    return translate(text, table.dialect, target, column_names(table, quote))


def create_views(views: list[Any], tables: list[Any], dialect: str, quote: Callable[[str], str],
                 table_sql: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """``CREATE OR REPLACE VIEW`` in ``dialect`` for each view whose query translates, under the
    names ``table_sql`` writes, and a note for each view that does not."""
    names = view_names(tables, quote, table_sql, views[0].schema if views else "", views)
    statements, notes = [], []
    for view in views:
        try:
            if not view.query:
                raise Untranslatable(view.why or "Portl cannot read its query")
            query = translate(view.query, view.dialect, dialect, names)
        except Untranslatable as exc:
            notes.append(f"view {view.name} is not copied: {exc}")
            continue
        statements.append(f"CREATE OR REPLACE VIEW {table_sql(view.name)} AS {query}")
    return statements, notes


def view_names(tables: list[Any], quote: Callable[[str], str], table_sql: Callable[[str], str],
               qualifier: str, views: list[Any] = ()) -> Names:
    """The names a view's query may use: every copied table and view (written by ``table_sql``)
    and column; ``qualifier`` (the source's schema or database) is left out before a dot."""
    return Names(quote, columns={f.name.lower(): f.name for t in tables for f in t.schema},
                 tables={r.name.lower(): table_sql(r.name) for r in [*tables, *views]},
                 dropped_qualifiers=frozenset({qualifier.lower()} if qualifier else ()), free_names=True)
