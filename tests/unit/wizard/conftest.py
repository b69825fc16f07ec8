"""Fixtures for the wizard: a folder with a messy CSV export, and the wizard run in-process.

``init(**answers)`` runs the wizard without a terminal, as ``portl init --yes`` does, in that
folder; ``scripted([...])`` runs it as on a terminal, each prompt answered from a script of
``(text the prompt must contain, answer)`` pairs. Both return what was written, loaded back with
:func:`portl.spec.loader.load_job` (the check ``portl validate`` makes).
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from portl.spec.loader import LoadedJob, job_names, load_job
from portl.wizard import Outcome, WizardOptions, run_wizard

CUSTOMERS = (
    "customer_id,First Name,Email,Signup Date,Lifetime Value,Active\n"
    '1001,Ada, ADA@Example.com ,2023-01-15,"$1,234.50",yes\n'
    "1002,Alan,alan@example.com,16/02/2023,$980.00,no\n"
    '1003,Grace,grace@example.com,2023-03-01,"$12,400.00",yes\n'
    "1004,Edsger,edsger@example.nl,13/04/2023,$310.25,no\n"
)


@dataclass
class Written:
    """What one wizard run saved."""

    outcome: Outcome
    path: Path
    text: str
    transcript: str

    def job(self, name: str | None = None) -> LoadedJob:
        """The saved job, loaded as `portl validate` and `portl run` load it."""
        return load_job(str(self.path), name or self.outcome.name, environ={})

    @property
    def names(self) -> list[str]:
        return job_names(str(self.path))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scratch folder holding ``customers.csv``."""
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    return tmp_path


def _options(folder: Path, interactive: bool, environ: dict[str, str] | None, read=None) -> WizardOptions:
    return WizardOptions(interactive=interactive, cwd=str(folder), environ=dict(environ or {}), read=read)


@pytest.fixture
def init(folder: Path):
    """``init(**answers)``: the wizard without a terminal; returns :class:`Written`."""

    def _init(environ: dict[str, str] | None = None, **given: Any) -> Written:
        out = io.StringIO()
        outcome = run_wizard(given, Console(file=out, width=200), _options(folder, False, environ))
        return Written(outcome, Path(outcome.path), Path(outcome.path).read_text(encoding="utf-8"), out.getvalue())

    return _init


class Script:
    """Answers prompts in order; each prompt must contain the text its answer was written for. An
    answer may be a function of the prompt, e.g. one that raises KeyboardInterrupt (Ctrl-C)."""

    def __init__(self, steps: list[tuple[str, str]]):
        self.steps = list(steps)
        self.asked: list[str] = []

    def __call__(self, prompt: str, secret: bool) -> str:
        shown = Text.from_markup(prompt).plain
        self.asked.append(shown)
        assert self.steps, f"the wizard asked more than the script answers: {shown!r}"
        expected, answer = self.steps.pop(0)
        assert expected in shown, f"expected a prompt with {expected!r}, got {shown!r}"
        return answer(prompt, secret) if callable(answer) else answer


@pytest.fixture
def scripted(folder: Path):
    """``scripted(steps, **given)``: the wizard on a (simulated) terminal; returns :class:`Written`."""

    def _scripted(steps: list[tuple[str, str]], environ: dict[str, str] | None = None, **given: Any) -> Written:
        out = io.StringIO()
        script = Script(steps)
        outcome = run_wizard(given, Console(file=out, width=200), _options(folder, True, environ, script))
        assert not script.steps, f"the wizard stopped before these prompts: {script.steps}"
        return Written(outcome, Path(outcome.path), Path(outcome.path).read_text(encoding="utf-8"), out.getvalue())

    return _scripted


def make_table(db: Path, ddl: str, rows: list[tuple] = ()) -> None:
    """Create a table in a SQLite file and fill it."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(ddl)
        if rows:
            conn.executemany(f"INSERT INTO {ddl.split()[2]} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        conn.commit()
    finally:
        conn.close()
