"""One exception tree for the whole package.

Every error a user can meet is a :class:`PortlError`: its message is a sentence that says what is
wrong, where, and what to do. Driver and library exceptions are translated at the boundary that
meets them (``raise SourceError(...) from exc``), so the CLI never has to show a bare traceback.

::

    PortlError                      exit_code 1 unless noted
    ├── ConfigError                 the job file or a connection is invalid (exit 2); .problems
    ├── ConnectorError              a source or destination failed
    │   ├── TransientError          worth retrying: locks, timeouts, dropped connections
    │   └── TerminalError           retrying will not help: missing file, bad credentials, bad SQL
    │       └── SourceError         the source cannot be read (missing, unreadable, wrongly encoded, empty)
    ├── DataError                   one value or row is unusable; the engine turns it into a reject
    │   └── RowRefused              the destination refused a batch for the data of a row in it
    ├── ConflictError               a key conflict under the ``fail`` strategy; .keys lists every one
    ├── HookError                   a hook failed, returned garbage or timed out
    ├── CallError                   an HTTP or Lambda call of a flow failed (after its retries); .retryable
    ├── OutboxError                 the outbox cannot be read or changed (missing tables, unknown ids)
    ├── StepError                   a step of a flow failed (template, statement or call); .step_id, .idx
    ├── ValidationFailed            a ``validation:`` check failed (schema, row count)
    ├── RejectLimitExceeded         more rejected rows than ``validation.max_rejects`` (exit 3)
    ├── ChecksFailed                a critical ``quality:`` check failed (exit 4); .report
    ├── ResumeError                 --resume / --restart misuse, or an interrupted run is in the way
    ├── ServiceError                the service's state database is unreachable; an unknown tenant or key
    │   └── KeyRefused              an API key that is malformed, unknown or revoked
    └── Interrupted                 Ctrl-C: stopped cleanly after the current batch (exit 130)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_REJECT_LIMIT = 3
EXIT_CHECKS = 4
EXIT_INTERRUPTED = 130


class PortlError(Exception):
    """Base of every error Portl raises on purpose."""

    exit_code: int = EXIT_FAILURE


@dataclass(frozen=True)
class Problem:
    """One problem found in a job file, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        return f"{where}: {self.message}" if where else self.message


class ConfigError(PortlError):
    """The job file, a connection or a command-line option is invalid."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str | None = None, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        if message is None:
            count = len(self.problems)
            noun = "problem" if count == 1 else "problems"
            message = f"{count} {noun} found:\n" + "\n".join(f"  {p}" for p in self.problems)
        super().__init__(message)


class ConnectorError(PortlError):
    """A source or destination failed."""


class TransientError(ConnectorError):
    """A failure that may go away if the same work is tried again."""


class TerminalError(ConnectorError):
    """A failure that retrying will not fix."""


class SourceError(TerminalError):
    """The source cannot be read at all."""


class DataError(PortlError):
    """One value or row cannot be used; the engine rejects the row and goes on."""

    def __init__(self, message: str, column: str | None = None, value: Any = None):
        super().__init__(message)
        self.column = column
        self.value = value


class RowRefused(DataError):
    """The destination refused a batch because of the data of one of its rows: a value too long,
    out of range or not of the column's type, a NULL in a NOT NULL column, a duplicate key, a
    missing foreign key. Retrying the same rows will not help; the engine writes the batch's
    other rows and rejects the refused ones (:mod:`portl.engine.isolate`).

    ``row`` is the 0-based position, in the rows the write was given, of the row the server named,
    or None when it named none (a constraint checked at the end of a statement). ``message`` is
    the server's, without positions that refer to the batch rather than the source.
    """

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None, value: Any = None,
                 doing: str = ""):
        super().__init__(message, column, value)
        self.row = row
        self.doing = doing

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.doing}: {text}" if self.doing else text

    @property
    def reason(self) -> str:
        """The server's message alone, for a reject."""
        return super().__str__()


class ConflictError(PortlError):
    """Rows whose keys already exist, under the ``fail`` conflict strategy."""

    def __init__(self, table: str, key_columns: list[str], keys: list[tuple], where: str | None = None):
        self.table = table
        self.key_columns = list(key_columns)
        self.keys = list(keys)
        shown = ", ".join(_format_key(k) for k in self.keys[:20])
        more = f" and {len(self.keys) - 20} more" if len(self.keys) > 20 else ""
        one = len(self.keys) == 1
        noun = "key" if one else "keys"
        verb = "appears" if one else "appear"
        where = where or f"already {'exists' if one else 'exist'} in {table}"
        super().__init__(
            f"conflict strategy 'fail': {len(self.keys)} {noun} of this batch "
            f"{where.format(verb=verb)} ({', '.join(self.key_columns)}): {shown}{more}. The batch was rolled back; "
            "use strategy skip, overwrite or merge to load such rows."
        )


def _format_key(key: tuple) -> str:
    return repr(key[0]) if len(key) == 1 else "(" + ", ".join(repr(v) for v in key) + ")"


class HookError(PortlError):
    """A hook failed, timed out, or answered with something Portl cannot use."""


class CallError(PortlError):
    """An HTTP request or a Lambda invocation failed: the message names the method, the masked URL
    (or the function), the status and an excerpt of the answer, and the attempts made.

    ``retryable`` says whether another attempt later might succeed (a 5xx, a timeout, throttling)
    as opposed to an answer that will not change (a 4xx, a function error); the outbox uses it.
    """

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.retryable = retryable


class OutboxError(PortlError):
    """The outbox tables are missing or cannot be read or changed, or a command names calls that
    are not there."""


class StepError(PortlError):
    """A step of a flow failed: a template that cannot be rendered, a statement the database
    refused, a call that failed for good. The message names the step, the item, what was sent
    (secrets masked) and the root cause; the flow's transaction has been rolled back."""

    def __init__(self, message: str, *, step_id: str, idx: tuple[int, ...] = (), details: dict[str, Any] | None = None):
        super().__init__(message)
        self.step_id = step_id
        self.idx = tuple(idx)
        self.details = dict(details or {})


class ValidationFailed(PortlError):
    """A check from the job's ``validation:`` section failed."""


class RejectLimitExceeded(PortlError):
    """More rows were rejected than ``validation.max_rejects`` allows."""

    exit_code = EXIT_REJECT_LIMIT


class ChecksFailed(PortlError):
    """A critical data-quality check failed (or could not run). ``report`` is the
    :class:`~portl.quality.results.QualityReport`; ``loaded`` says whether the run's rows stay
    loaded (batches committed as they went) or were rolled back (``transaction: job``)."""

    exit_code = EXIT_CHECKS

    def __init__(self, message: str, report: Any = None, loaded: bool = False):
        super().__init__(message)
        self.quality = report
        self.loaded = loaded


class ResumeError(PortlError):
    """--resume cannot continue, or an unfinished run must be resumed first."""

    exit_code = EXIT_CONFIG


class ServiceError(PortlError):
    """The service's state cannot be reached or changed as asked: the state database is down or
    newer than this Portl, a tenant or an API key does not exist, a tenant name is taken."""


class KeyRefused(ServiceError):
    """A presented API key is not one of a tenant's live keys: malformed, unknown or revoked."""


class Interrupted(PortlError):
    """The run was stopped by the user after a complete batch; it can be resumed."""

    exit_code = EXIT_INTERRUPTED
