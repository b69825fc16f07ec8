"""Hooks: user code the engine calls around a job, its batches and its rows.

Events
======

``before_job`` / ``after_job`` / ``before_batch`` / ``after_batch``
    Called once per job or batch with a JSON summary (the *payload*), e.g.
    ``{"job": "orders", "run_id": "...", "batch": 3, "rows": 50000, "counts": {...}}``.
    Any failure stops the run with a :class:`~portl.errors.HookError`.
``before_row``
    Called for every mapped row before the batch is written. A hook may keep the row, change it,
    or drop it with a reason; dropped rows are reported as skipped with that reason.
``after_row``
    Called for every row of a batch after it is committed. It cannot change anything; a failure
    stops the run (the batch itself stays committed).

Several hooks of one event run in the order written; for ``before_row`` each hook sees the row
as the previous one left it, and a dropped row goes no further.

Rows
====

A row is a JSON object keyed by column name. Dates, times and timestamps are ISO 8601 text
(``2024-01-31``, ``2024-01-31T12:30:00+00:00``), decimals are text (``"12.50"``), bytes are base64
text, durations are seconds, nulls are ``null``. A changed row must have exactly the same columns;
its values are converted back to the column types (the same forms are accepted, and python hooks
may also return ``date``, ``Decimal``, ``bytes`` values). A value that does not fit, e.g. ``"abc"``
for a decimal or a number with too many decimal places, fails with an error naming the hook, the
column and the row. Rows are numbered from 1 within their batch in messages.

``script`` hooks
================

``command`` is run through the shell when it is a string, or as an argv list; its working
directory is the job file's folder. Its environment is Portl's, plus the hook's ``env``, plus
``PORTL_JOB``, ``PORTL_RUN_ID`` and ``PORTL_EVENT`` (and ``PORTL_OUTCOME``, a JSON object such as
``{"batch": 3}``, for ``after_row``). The row or payload is written as JSON on stdin.

* exit code 0: go on. For ``before_row``, a JSON object printed on stdout replaces the row;
  printing nothing keeps it as it is.
* exit code 3 in a ``before_row`` hook: drop the row. The first line on stderr is the reason
  (default "dropped by hook").
* any other exit code (or 3 outside ``before_row``): the run fails, showing the last lines of
  stderr: ``hook before_batch[0] (script 'notify.sh') exited with code 2: ...``.
* after ``timeout_s`` the command and every process it started are killed and the run fails.

Starting a process per row costs milliseconds per row: fine for a few thousand rows, slow for
millions. Use a ``python`` hook for row work at volume.

``python`` hooks
================

``function: "package.module:function"``. The module is imported from the job file's folder (put
first on ``sys.path``) or the installed packages, when the run starts, so a missing module or
function fails before anything is written.

* Job and batch events call ``function(payload)`` with a copy of the payload.
* Row events call ``function(row)`` with the row as a dict. Return a dict to replace the row,
  ``None`` to keep it (changes made to the dict in place are kept too), or raise
  ``portl.SkipRow("reason")`` to drop it (``before_row`` only). Any other exception fails the run
  with the exception's text and the row number.

``http`` hooks
==============

``method`` (default POST), ``url``, ``headers``, ``body`` and ``timeout_s``. The url, header values
and a text body are Jinja templates (sandboxed; an undefined variable is an error naming it) with
these variables:

* row events: ``row``, ``job``, ``run_id`` (and ``outcome`` for ``after_row``);
* job and batch events: ``event`` (the payload) and each payload key on its own (``batch``,
  ``rows``, ``counts``...), plus ``job`` and ``run_id``.

A mapping ``body`` is rendered value by value and sent as JSON; a value that is one expression
alone, like ``"{{ row.id }}"``, keeps its type (a number stays a number). A text body is sent as
is, as ``application/json`` when it parses as JSON and ``text/plain`` otherwise (a ``Content-Type``
header overrides both). Without a ``body``, the row or payload is sent as JSON (nothing for GET).

* 2xx: go on. For ``before_row``, an answer ``{"row": {...}}`` replaces the row and
  ``{"drop": "reason"}`` drops it; any other answer keeps it.
* 5xx, 408, 429, timeouts and connection errors are retried, up to the run's retry attempts in all,
  waiting ``backoff_ms`` before the second attempt and doubling (with jitter, at most 10 s).
* other 4xx (and unfollowed 3xx) answers fail at once. Errors name the hook, the method, the URL
  (passwords and credential-like query parameters masked), the status and the start of the answer.

Header values typed as secrets, and values of credential-like headers (``Authorization``,
``X-Api-Key``...), are sent but never printed: plans show ``**********`` and errors mask them even
where a server echoes them back.

``lambda`` hooks
================

``function`` (name or ARN), ``qualifier``, ``region``, ``endpoint_url``, ``access_key_id`` /
``secret_access_key`` (default: the usual AWS credentials), ``timeout_s``, ``invocation``. The
function is invoked through boto3 with the row or payload as its event, exactly what a python hook
receives, and its answer is read as an http hook's: for ``before_row``, ``{"row": {...}}``
replaces the row, ``{"drop": "reason"}`` drops it, anything else keeps it.

* A function error (``FunctionError``) fails at once with its errorType and errorMessage and the
  row number; throttling (429), 408, 5xx, timeouts and connection errors are retried like http
  hooks; other service answers (404 for an unknown function...) fail at once.
* ``invocation: Event`` queues the call without an answer: ``after_*`` events only.
* ``batch: true`` (row events) sends ``batch_rows`` rows per invocation as ``{"rows": [...]}``
  (with ``job``, ``run_id``, ``event``, and ``outcome`` for ``after_row``); a ``before_row``
  answer ``{"rows": [...]}`` has one entry per row sent, each read as a single row's answer.
  ``concurrency`` invocations of one batch are in flight at once; answers are read in row order.
"""

from portl.engine.hooks.base import HookContext, SkipRow
from portl.engine.hooks.runner import HookRunner, describe

__all__ = ["HookContext", "HookRunner", "SkipRow", "describe"]
