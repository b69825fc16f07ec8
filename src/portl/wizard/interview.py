"""The question model, and the interview that settles each answer.

A :class:`Question` is data: the key its answer is stored under (and the answers-file key), the
flag that gives it, the prompt, a default, a check, and whether it applies given the answers so
far. :meth:`Interview.ask` settles one question, the same way for everyone:

1. a question that does not apply is skipped;
2. an answer given ahead of time (flag or answers file) is checked and used; on a terminal, a
   given answer that fails its check is reported and asked for;
3. on a terminal, the question is asked, showing the default, until the answer passes the check;
4. without a terminal (or with ``--yes``) the default is taken; a question without a default is
   recorded as missing, and the interview goes on so that one error can list every missing and
   invalid answer.

An answer that could not be settled (missing or invalid) makes the questions that depend on it
*undecided*: they are not asked, and when they have no default they are listed as missing with
the condition under which they apply (``--source-path (for file sources)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape

from portl.errors import ConfigError, PortlError, Problem
from portl.secrets import MASK, mask_url


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a question that has none: it must be answered."""
_UNDECIDED: Any = object()
"""A default that depends on answers not settled yet."""


class Unsettled(Exception):
    """Raised by :meth:`Interview.value` for an answer that is missing or invalid."""


def always(_: Interview) -> bool:
    return True


def identity(value: Any, _: Interview) -> Any:
    return value


@dataclass(frozen=True)
class Question:
    """One question of the wizard: see the module docstring."""

    key: str
    prompt: str
    default: Callable[[Interview], Any] = lambda _: REQUIRED
    check: Callable[[Any, Interview], Any] = identity
    applies: Callable[[Interview], bool] = always
    kind: str = "text"
    """``text``, ``choice``, ``bool``, ``int``, ``secret``; the prompt shows choices and y/n."""
    choices: Callable[[Interview], Sequence[str]] | None = None
    when: str = ""
    """When the question applies, for the list of missing answers."""
    hint: str = ""
    """A line printed above the prompt on a terminal."""
    asked: Callable[[Interview], bool] = always
    """False: never asked on a terminal (a flag or the default settles it)."""
    shown: Callable[[Any], str] = str
    """How an answer is shown back."""
    flag_name: str = ""
    custom: Callable[[Interview, Question, Any], Any] | None = None
    """Asks on a terminal instead of one prompt (several prompts, e.g. column by column)."""
    paths: bool = False
    """The answer is a local path: on a terminal, Tab completes it."""

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.key.replace("_", "-")


class Prompter(Protocol):
    """Asks on a terminal; see :mod:`portl.wizard.prompts`."""

    def ask(self, question: Question, default: Any, check: Callable[[Any], Any], choices: Sequence[str]) -> Any: ...

    def confirm(self, text: str, default: bool) -> bool: ...


@dataclass
class Interview:
    """The answers so far, what discovery found, and what could not be settled."""

    given: dict[str, Any]
    console: Console
    prompter: Prompter | None = None
    cwd: str = field(default_factory=os.getcwd)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    connections_file: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unsettled: set[str] = field(default_factory=set)

    @property
    def interactive(self) -> bool:
        return self.prompter is not None

    def value(self, key: str, fallback: Any = None) -> Any:
        """The answer to ``key`` (``fallback`` when the question did not apply); raises
        :class:`Unsettled` when it is missing or invalid."""
        if key in self.unsettled:
            raise Unsettled(key)
        return self.answers.get(key, fallback)

    def fact(self, name: str) -> Any:
        """Something discovery found; raises :class:`Unsettled` when it could not be found."""
        if name not in self.facts:
            raise Unsettled(name)
        return self.facts[name]

    def ask(self, question: Question) -> Any:
        """Settle ``question`` and return its answer (None when it does not apply or is unsettled)."""
        key = question.key
        applies = self._applies(question)
        if applies is False:
            self.answers.pop(key, None)
            self.unsettled.discard(key)
            if key in self.given:
                raw = self.given.pop(key)
                shown = escape(f"{question.flag} {_shown_raw(question, raw)}")
                self.console.print(f"[yellow]note:[/] {shown} is not used: it does not apply with the other answers")
            return None
        if applies is None:
            self.unsettled.add(key)
            if key not in self.given and self._default(question) is REQUIRED:
                self.missing(question)
            return None
        if key not in self.given and key not in self.previous and self._default(question) is _UNDECIDED:
            self.unsettled.add(key)  # its default needs an answer that is missing: that one is reported
            return None
        self.unsettled.discard(key)
        check = lambda raw: question.check(raw, self)  # noqa: E731
        if key in self.given:
            raw = self.given.pop(key)
            try:
                value = check(raw)
            except Unsettled:
                self.unsettled.add(key)  # it depends on an answer that is missing: that one is reported
                return None
            except (ValueError, PortlError) as exc:
                if not self.interactive:
                    return self.invalid(question, raw, exc)
                shown = escape(f"{question.flag} {_shown_raw(question, raw)}: {exc}")
                self.console.print(f"[red]✗[/] {shown}")
            else:
                self.answers[key] = value
                if self.interactive:
                    shown = escape(question.shown(value))
                    self.console.print(f"{escape(question.prompt)}: [bold]{shown}[/] [dim](given)[/]")
                return value
        asked = self.interactive and question.asked(self)  # before the answer being revised is taken
        default = self.previous.pop(key, None) if key in self.previous else self._default(question)
        if asked:
            if question.custom is not None:
                value = question.custom(self, question, default)
            else:
                choices = list(question.choices(self)) if question.choices else []
                value = self.prompter.ask(question, default, check, choices)
            self.answers[key] = value
            return value
        if default is REQUIRED:
            self.missing(question)
            return None
        try:
            value = check(default)
        except Unsettled:
            self.unsettled.add(key)
            return None
        except (ValueError, PortlError) as exc:
            return self.invalid(question, default, exc)
        self.answers[key] = value
        return value

    def missing(self, question: Question) -> None:
        self.unsettled.add(question.key)
        when = f" ({question.when})" if question.when else ""
        self.problems.append(Problem(f"{question.flag} ({question.key}){when}: missing"))

    def invalid(self, question: Question, raw: Any, exc: Exception) -> None:
        self.unsettled.add(question.key)
        self.answers.pop(question.key, None)
        self.problems.append(Problem(f"{question.flag} ({question.key}): {exc}"))
        return None

    def problem(self, message: str) -> None:
        """A problem that is not one answer's: e.g. a connection that failed."""
        self.problems.append(Problem(message))

    def revise(self, keys: Sequence[str]) -> None:
        """Ask ``keys`` again, their current answers offered as defaults."""
        for key in keys:
            if key in self.answers:
                self.previous[key] = self.answers.pop(key)
            self.given.pop(key, None)
            self.unsettled.discard(key)

    def raise_problems(self) -> None:
        """Raise one :class:`ConfigError` listing every missing and invalid answer."""
        if not self.problems:
            return
        count = len(self.problems)
        noun = "answer is" if count == 1 else "answers are"
        lines = "\n".join(f"  {p}" for p in dict.fromkeys(self.problems))
        raise ConfigError(
            f"{count} {noun} missing or invalid; nothing is asked without a terminal or with --yes, "
            f"so give them as flags or in --answers FILE:\n{lines}",
            problems=list(self.problems),
        )

    def _applies(self, question: Question) -> bool | None:
        try:
            return bool(question.applies(self))
        except Unsettled:
            return None

    def _default(self, question: Question) -> Any:
        try:
            return question.default(self)
        except Unsettled:
            return _UNDECIDED


def _shown_raw(question: Question, raw: Any) -> str:
    """An answer as given, for messages: quoted, with passwords masked."""
    if question.kind == "secret" and raw:
        return MASK
    return repr(mask_url(raw)) if isinstance(raw, str) else str(raw)
