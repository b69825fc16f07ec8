"""Asking on a terminal: a prompt with its choices and default, asked again until the answer passes.

An empty answer takes the default shown in brackets. A wrong answer prints the check's sentence
(``✗ no such file: customer.csv``) and the same question again. Ctrl-C and Ctrl-D are not caught
here: they end the whole wizard, which then writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from portl.errors import PortlError
from portl.wizard.browse import completing_paths
from portl.wizard.checks import yes_no
from portl.wizard.interview import REQUIRED, Question

_CHOICES_SHOWN = 10
"""More choices than this are listed above the prompt (tables), not inside it."""


class Terminal:
    """Asks questions on a terminal with rich.

    ``read(prompt, secret)`` reads one answer; the default reads the terminal through the
    console (hidden for secrets), where Tab completes the answers that are paths (relative to
    ``cwd``). Tests pass a function that answers from a script.
    """

    def __init__(self, console: Console, read: Callable[[str, bool], str] | None = None, cwd: str | None = None):
        self.console = console
        self.read = read or (lambda prompt, secret: console.input(prompt, password=secret))
        self.completes = read is None  # a script has no keys to press
        self.cwd = cwd or os.getcwd()

    def ask(self, question: Question, default: Any, check: Callable[[Any], Any], choices: Sequence[str]) -> Any:
        """Ask ``question`` until ``check`` accepts the answer; return what the check returned."""
        if question.hint:
            self.console.print(f"[dim]{escape(question.hint)}[/]")
        shown = "" if default is REQUIRED or default is None and question.kind != "bool" else question.shown(default)
        if question.kind == "secret" and default:
            shown = "keep"
        label = question.prompt
        if question.kind == "bool":
            label += " (y/n)"
        elif choices and len(choices) <= _CHOICES_SHOWN:
            label += f" ({'/'.join(choices)})"
        if question.paths and self.completes:
            with completing_paths(self.cwd):
                return self.line(label, default, check, shown=shown)
        return self.line(label, default, check, shown=shown, secret=question.kind == "secret")

    def line(self, label: str, default: Any, check: Callable[[Any], Any], *, shown: str | None = None,
             secret: bool = False) -> Any:
        """Ask one line; an empty answer is ``default`` (REQUIRED: an answer is needed)."""
        if shown is None:
            shown = "" if default is REQUIRED or default is None else str(default)
        text = escape(label) + (f" [bold cyan]\\[{escape(shown)}][/]" if shown else "") + ": "
        while True:
            raw = self.read(text, secret).strip()
            if not raw:
                if default is REQUIRED:
                    self.error("an answer is needed")
                    continue
                candidate = default
            else:
                candidate = raw
            try:
                return check(candidate)
            except (ValueError, PortlError) as exc:
                self.error(str(exc))

    def confirm(self, text: str, default: bool) -> bool:
        """A yes/no question."""
        return self.line(f"{text} (y/n)", default, yes_no, shown="y" if default else "n")

    def error(self, message: str) -> None:
        self.console.print(f"  [red]✗ {escape(message)}[/]")
