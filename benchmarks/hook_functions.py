"""The functions ``bench_lambda_hooks.py`` serves from the local Lambda Invoke API: the email of a
row lower-cased, for one row or for the rows of a batched invocation."""

from __future__ import annotations

from typing import Any


def lower_email(row: dict[str, Any]) -> dict[str, Any]:
    """One row's answer: the row with its email lower-cased."""
    return {"row": {**row, "email": (row["email"] or "").lower() or row["email"]}}


def lower_emails(event: dict[str, Any]) -> dict[str, Any]:
    """A batch's answer: one entry per row sent, in order."""
    return {"rows": [lower_email(row) for row in event["rows"]]}


def lower_email_in_place(row: dict[str, Any]) -> None:
    """The same work as a python hook: the row's email lower-cased in place."""
    if row["email"]:
        row["email"] = row["email"].lower()
