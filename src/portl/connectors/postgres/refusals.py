"""Which Postgres errors refuse rows for their data, and which row.

SQLSTATE class 22 (data exception: a value too long, out of range, not of the column's type) and
class 23 (integrity constraint violation: NOT NULL, unique, foreign key, CHECK, exclusion) say that
the rows are at fault, not the server or the job: they become :class:`~portl.errors.RowRefused`,
and the engine rejects those rows and loads the others. A ``COPY`` error gives its row as a line of
the COPY data (``COPY t, line 3, column name: "toolong"``), counted in records; the line is turned
into a row of the batch and left out of the message, which would otherwise point at a line of
Portl's own COPY data rather than of the source. Constraints checked at the end of a statement (a
foreign key, the ``INSERT … ON CONFLICT`` of an upsert) name no row.
"""

from __future__ import annotations

import re

import psycopg

from portl.errors import RowRefused
from portl.secrets import mask_url

DATA_CLASSES = ("22", "23")
# Text COPY: ``COPY t, line 3, column name: "toolong"`` (or ``: null input``); binary COPY:
# ``COPY t, line 3, column name``; a row-level constraint: ``COPY t, line 3: "3,ab,"`` or ``COPY t, line 3``.
_COPY_CONTEXT = re.compile(r'^COPY .+?, line (\d+)(?:, column (.+?)(?:: (?:"(.*)"|null input))?)?(?::.*)?$', re.DOTALL)
_KEY_DETAIL = re.compile(r"^Key \((.+?)\)=\((.*)\)")


def refusal(exc: psycopg.Error, doing: str, *, stage: str | None = None, table: str = "") -> RowRefused | None:
    """``exc`` as a refusal of rows for their data, or None when it is not one. ``stage``, the
    unquoted name of an upsert's staging table, is replaced by ``table`` in the message."""
    state = getattr(exc, "sqlstate", None) or ""
    if state[:2] not in DATA_CLASSES:
        return None
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().split("\n")[0]
    if diag.message_detail:
        message = f"{message}; {diag.message_detail.rstrip('.')}"
    if stage:
        message = message.replace(f'"{stage}"', f'"{table}"')
    row, column, value = None, diag.column_name, None
    context = (diag.context or "").split("\n")[0]
    found = _COPY_CONTEXT.match(context)
    if found:
        row = int(found.group(1)) - 1
        column = found.group(2) or column
        value = found.group(3)
    if column is None and diag.message_detail:
        key = _KEY_DETAIL.match(diag.message_detail)
        if key and "," not in key.group(1):
            column, value = key.group(1).strip('"'), key.group(2)
    return RowRefused(mask_url(message), row=row, column=column, value=value, doing=doing)
