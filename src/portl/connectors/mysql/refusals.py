"""Which MySQL and MariaDB errors (and LOAD DATA warnings) refuse rows for their data, and which row.

A value that does not fit its column, a NULL in a NOT NULL column, a duplicate key or a missing
foreign key says that the rows are at fault, not the server or the job: it becomes
:class:`~portl.errors.RowRefused`, and the engine rejects those rows and loads the others. The
server names the row (``at row 3``: of the INSERT statement, or the line of the LOAD DATA file)
for a value that does not fit; a constraint error names none. The row is turned into a row of the
batch and left out of the message, which would otherwise count rows of Portl's own statement.
"""

from __future__ import annotations

import re

from portl.errors import RowRefused

REFUSED = {
    1048,  # Column 'x' cannot be null
    1263,  # NULL supplied to NOT NULL column 'x' at row n (LOAD DATA)
    1264,  # Out of range value for column 'x' at row n
    1265,  # Data truncated for column 'x' at row n
    1292,  # Incorrect date value: '...' for column 'x' at row n
    1366,  # Incorrect integer value: '...' for column 'x' at row n
    1406,  # Data too long for column 'x' at row n
    1300, 1367, 1411, 1690,  # invalid characters, illegal values, BIGINT value out of range
    1062, 1586,  # Duplicate entry '...' for key '...'
    1216, 1452,  # Cannot add or update a child row: a foreign key constraint fails
    1217, 1451,  # Cannot delete or update a parent row (an upsert changing a referenced key)
    3819,  # Check constraint 'c' is violated (MySQL)
    4025,  # CONSTRAINT `c` failed for `t` (MariaDB)
}
_AT_ROW = re.compile(r"\s+at row (\d+)")
_COLUMN = re.compile(r"column (?:[`'][^`']*[`']\.)*[`']([^`']+)[`']", re.IGNORECASE)
_FOREIGN_KEY = re.compile(r"FOREIGN KEY \(`([^`]+)`\)")
_DUPLICATE = re.compile(r"^Duplicate entry '(.*)' for key '(?:[^']*\.)?([^'.]+)'$", re.DOTALL)


def refusal(code: int | str | None, message: str, doing: str, first_row: int = 0) -> RowRefused | None:
    """The error or warning ``code`` with ``message`` as a refusal of rows, or None when it is not
    one. A row the message names (1-based) is counted from ``first_row`` of the batch."""
    try:
        code = int(code)  # SHOW WARNINGS gives it as text when values are read as text
    except (TypeError, ValueError):
        return None
    if code not in REFUSED:
        return None
    at = _AT_ROW.search(message)
    row = first_row + int(at.group(1)) - 1 if at else None
    found = _COLUMN.search(message) or _FOREIGN_KEY.search(message)
    column, value = (found.group(1) if found else None), None
    duplicate = _DUPLICATE.match(message)
    if duplicate:
        value = duplicate.group(1)
    text = _AT_ROW.sub("", message).strip()
    return RowRefused(f"{text} (error {code})", row=row, column=column, value=value, doing=doing)


def name_primary_key(refused: RowRefused, primary_key: tuple[str, ...]) -> RowRefused:
    """A duplicate of the ``PRIMARY`` key names the key, not its column: name the column of a
    one-column primary key."""
    duplicate = _DUPLICATE.match(refused.reason.rsplit(" (error ", 1)[0])
    if refused.column is None and duplicate and duplicate.group(2) == "PRIMARY" and len(primary_key) == 1:
        refused.column = primary_key[0]
    return refused
