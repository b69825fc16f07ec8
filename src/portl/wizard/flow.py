"""The eight steps of ``portl init``, in order, for a terminal and for automation alike.

1. source, 2. destination (each looked at as soon as it is known), 3. schema and mapping,
4. conflicts and transformations, 5. hooks, 6. batching and performance, 7. validation and a
dry run, 8. save (and run). Without a terminal nothing is asked: every answer comes from flags,
the answers file or the defaults, and every missing or invalid answer is reported in one error
before anything is written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

from portl.engine.mapping import normalise_name
from portl.engine.plan import plan as make_plan
from portl.errors import ConfigError, PortlError
from portl.wizard import answers as short
from portl.wizard import discover, saving, show
from portl.wizard.compose import LOCATION_KEYS, SHEET_KEYS, ColumnSetting, column_settings
from portl.wizard.discover import DATABASE_FILE, FILE, SERVER, SPREADSHEET
from portl.wizard.interview import REQUIRED, Interview, Question, Unsettled
from portl.wizard.prompts import Terminal
from portl.wizard.checks import choice
from portl.wizard.locations import kind, location, look
from portl.wizard.questions import (HOOK_ORDER, build, fits_sample, known_columns, mapped_columns, sample_formats,
                                   type_answer)
from portl.wizard.samples import ColumnSample, transform_text

STEPS = 8
_REVISED = ("mapping", "columns", "detect", "column_types", "transforms", "date_formats", "create_missing_columns",
            "extra_destination_columns", "conflict_key", "conflict_strategy", "mode")
_SERVER_KEYS = tuple(k for k in LOCATION_KEYS[1:] if k not in SHEET_KEYS)  # all but the path


@dataclass
class WizardOptions:
    """How the wizard runs: on a terminal or not, and where it looks for named connections."""

    interactive: bool
    connections_file: str | None = None
    show_plan: Callable[[Console, Any], None] | None = None
    """Renders the job plan before the last question (``portl plan``'s renderer)."""
    read: Callable[[str, bool], str] | None = None
    """Reads one answer on the terminal (default: the console); see :class:`Terminal`."""
    cwd: str = field(default_factory=os.getcwd)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(frozen=True)
class Outcome:
    """What the wizard saved, and whether the job should run now."""

    path: str
    name: str
    run: bool
    connections_file: str | None


def run_wizard(given: Mapping[str, Any], console: Console, options: WizardOptions) -> Outcome:
    """Ask (or take from ``given``) every answer, save the job, and say whether to run it.

    Raises :class:`~portl.errors.ConfigError` listing every missing or invalid answer when
    nothing can be asked; KeyboardInterrupt and EOFError propagate, with nothing written.
    """
    interview = Interview(
        given=dict(given), console=console, prompter=Terminal(console, options.read, options.cwd) if options.interactive else None,
        cwd=options.cwd, environ=options.environ,
    )
    interview.connections_file = discover.connections_file(options.connections_file, options.environ, options.cwd)
    interview.facts["connections"] = discover.named_connections(interview.connections_file)
    return Wizard(interview, options).run()


class Wizard:
    """Walks the steps; each step asks its questions and shows what it found."""

    def __init__(self, iv: Interview, options: WizardOptions):
        self.iv, self.options, self.console = iv, options, iv.console
        self.q = build()
        self.q["columns"] = dataclasses.replace(self.q["columns"], custom=self._manual_columns)
        for event in HOOK_ORDER:
            key = f"{event}_hook"
            self.q[key] = dataclasses.replace(self.q[key], custom=self._hook)

    def run(self) -> Outcome:
        if self.iv.interactive:
            self.console.print("[bold]portl init[/]: a few questions, then a job file. Enter takes the default in "
                               "brackets; Ctrl-C stops at any time, and nothing is written until the end.")
        self.where("source", 1)
        self.where("destination", 2)
        self.mapping()
        self.conflicts()
        self.hooks()
        self.performance()
        self.validation()
        while not self.dry_run():
            self.iv.revise(_REVISED)
            self.mapping()
            self.conflicts()
        return self.save()

    # --- 1 and 2: where rows come from and go ----------------------------------------------------

    def where(self, side: str, number: int) -> None:
        iv, q = self.iv, self.q
        self._step(number, "Source" if side == "source" else "Destination")
        key = f"{side}_type"
        if key not in iv.given:
            # A path, URL or connection given ahead says the type; asking it again would only slow down.
            inferred = q[key].default(iv)
            if inferred is not REQUIRED:
                iv.given[key] = inferred
        iv.ask(q[key])
        iv.ask(q[f"{side}_connection"])
        try:
            where = kind(iv, side)
        except Unsettled:
            return self._location_missing(side)
        if where in (FILE, DATABASE_FILE):
            iv.ask(q[f"{side}_path"])
        elif where == SPREADSHEET:
            for key in SHEET_KEYS:  # the tab's check reads it (a source) or opens it (a destination)
                iv.ask(q[f"{side}_{key}"])
        elif iv.value(f"{side}_connection") is None:
            self._server(side)
        if where in (DATABASE_FILE, SERVER) and f"{side}_tables" in iv.facts:
            label = discover.build_config(_location_only(iv, side), iv.environ).describe() if iv.interactive else ""
            self._show(show.tables, iv.facts[f"{side}_tables"], label)
            iv.ask(q[f"{side}_table"])
        if side in iv.facts:
            self._show(show.source if side == "source" else show.destination, iv.facts[side])

    def _server(self, side: str) -> None:
        iv = self.iv
        while True:
            for key in _SERVER_KEYS:
                iv.ask(self.q[f"{side}_{key}"])
            if any(f"{side}_{key}" in iv.unsettled for key in _SERVER_KEYS):
                return
            try:
                look(iv, side)
                return
            except (PortlError, ValueError) as exc:
                if not iv.interactive:
                    iv.problem(f"{side}: {exc}")
                    iv.unsettled.add(f"{side}_table")
                    return
                self.console.print(f"  [red]✗ {escape(str(exc))}[/]")
                self.console.print("  Check the connection details:")
                iv.revise([f"{side}_{key}" for key in _SERVER_KEYS])

    def _location_missing(self, side: str) -> None:
        iv = self.iv
        flags = [f"--{side}-path", f"--{side}-url", f"--{side}-connection"]
        if not any(f"{side}_{k}" in iv.given for k in ("path", "url", "database", "connection")):
            iv.problem(f"{' or '.join(flags)}: where the {side} is (which one depends on --{side}-type): missing")

    # --- 3 and 4: mapping, conflicts, transforms ------------------------------------------------

    def mapping(self) -> None:
        iv, q = self.iv, self.q
        self._step(3, "Schema and mapping")
        keys = ("mapping", "columns", "create_missing_columns", "extra_destination_columns")
        while True:
            for key in keys:
                iv.ask(q[key])
            problem = self._mapping_problem()
            if problem is None:
                return
            if not iv.interactive:
                iv.problem(f"--mapping: {problem}")
                iv.unsettled.add("mapping")  # what depends on the mapping is not asked, nor reported
                return
            self.console.print(f"  [red]✗ {escape(problem)}[/]")
            iv.revise(keys)

    def _mapping_problem(self) -> str | None:
        """Why the mapping answered cannot load anything, or None."""
        iv = self.iv
        try:
            if iv.value("mapping") == "auto" and not iv.answers.get("create_missing_columns", True):
                table = iv.fact("destination").table
                names = {normalise_name(c.name) for c in table.columns}
                if not any(normalise_name(n) in names for n in iv.fact("source").names):
                    return (f"no source column has a column of the same name in {table.name} "
                            f"({', '.join(c.name for c in table.columns)}), and the missing columns are not to be "
                            "added: add them, or map the columns by hand (manual)")
            mapped_columns(iv)
        except Unsettled:
            return None
        except ConfigError as exc:
            return "; ".join(p.message for p in exc.problems) or str(exc)
        return None

    def conflicts(self) -> None:
        iv, q = self.iv, self.q
        self._step(4, "Conflicts and transformations")
        for key in ("conflict_key", "conflict_strategy", "mode"):
            iv.ask(q[key])
        if iv.interactive and iv.answers.get("mapping") == "auto" and "detect" not in iv.given:
            found = self._suggested()
            show.suggestions(self.console, found)
            if found:
                iv.previous["detect"] = self.iv.prompter.confirm("Apply these conversions?", True)
        for key in ("detect", "column_types", "transforms", "date_formats"):
            iv.ask(q[key])
        if iv.interactive:
            columns = self.columns()
            self.console.print("The mapping:")
            show.mapping(self.console, columns, self._unmapped(columns))

    def _suggested(self) -> dict[str, Any]:
        try:
            mapped = set(mapped_columns(self.iv).values())
        except (Unsettled, PortlError):
            return {}
        return {name: s for name, s in self.iv.fact("source").suggestions().items() if name in mapped}

    def columns(self) -> list[ColumnSetting]:
        """Each mapped column with its settings, as the job will say."""
        facts = self.iv.fact("source")
        return column_settings(self.iv.answers, mapped_columns(self.iv), facts.suggestions())

    def _unmapped(self, columns: list[ColumnSetting]) -> list[str]:
        used = {c.source for c in columns}
        return [n for n in self.iv.fact("source").names if n not in used]

    def _manual_columns(self, iv: Interview, question: Question, default: Any) -> dict[str, str]:
        """Column by column: the destination column ('-' leaves it out), its type, its transforms."""
        facts = iv.fact("source")
        table = iv.fact("destination").table
        existing = {normalise_name(c.name): c.name for c in (table.columns if table else [])}
        suggestions = facts.suggestions()
        terminal: Terminal = iv.prompter
        self.console.print("For each source column: its destination column ('-' leaves it out), its type "
                           "(empty keeps the source's), and its transforms.")
        while True:
            columns: dict[str, str] = {}
            types: dict[str, Any] = {}
            steps: dict[str, list[Any]] = {}
            formats: dict[str, list[str]] = {}
            for column in facts.columns:
                hint = suggestions.get(column.name)
                seen = [str(v) for v in dict.fromkeys(v for v in column.values if v is not None)][:3]
                example = f"; e.g. {', '.join(seen)}" if seen else ""
                self.console.print(f"[bold]{escape(column.name)}[/] [dim]({column.type}{escape(example)})[/]")
                previous = [d for d, s in (default or {}).items() if s == column.name] if isinstance(default, dict) else []
                target = previous[0] if previous else existing.get(normalise_name(column.name), normalise_name(column.name))
                dest = terminal.line("  destination column ('-': leave it out)", target,
                                     lambda v, taken=columns: _dest_name(v, taken))
                if dest is None:
                    continue
                columns[dest] = column.name
                types[dest] = terminal.line("  type", hint.type if hint and hint.type else "keep",
                                            lambda v, c=column: _column_type(v, c))
                if types[dest] in _TEMPORAL and column.type == "text":
                    found = sample_formats(column.values, "date" if types[dest] == "date" else "datetime")
                    offered = "|".join(found) if found and found != ["%Y-%m-%d"] else "ISO"
                    read_as = "date" if types[dest] == "date" else "datetime"
                    chosen = terminal.line("  formats (| between several; ISO: none needed)", offered,
                                           lambda v, c=column, n=read_as: _format_answer(v, c, n))
                    if chosen:
                        formats[dest] = chosen
                offered = ",".join(transform_text(t) for t in (hint.transforms if hint else ())) or "none"
                steps[dest] = terminal.line("  transforms (e.g. trim,lower or default(n/a))", offered,
                                            lambda v: known_columns(short.transform_list(v), facts.names))
            if columns:
                break
            terminal.error("no column is mapped; map at least one")
        iv.previous.update(column_types=types, transforms=steps, date_formats=formats, detect=False)
        return columns

    def _hook(self, iv: Interview, question: Question, default: Any) -> dict[str, Any] | None:
        terminal: Terminal = iv.prompter
        shown = default["type"] if default else "none"
        what = terminal.line(f"{question.prompt}: none, script, python or http", shown,
                             lambda v: choice(v, ["none", "script", "python", "http"], "hook type"))
        if what == "none":
            return None
        ask = {"script": "  command (runs in the job file's folder; the row or batch arrives as JSON on stdin)",
               "python": "  function, as module:function (the module beside the job file)",
               "http": "  URL (the row or batch is POSTed as JSON)"}[what]
        target = short.hook_text(default).split(":", 1)[1] if default and default["type"] == what else REQUIRED
        return terminal.line(ask, target, lambda v: short.hook_value(f"{what}:{v}"))

    # --- 5, 6, 7 -------------------------------------------------------------------------------

    def hooks(self) -> None:
        self._step(5, "Hooks")
        self.iv.ask(self.q["hooks"])
        for event in HOOK_ORDER:
            self.iv.ask(self.q[f"{event}_hook"])

    def performance(self) -> None:
        self._step(6, "Batching and performance")
        for key in ("batch_size", "retry", "retry_attempts", "workers"):
            self.iv.ask(self.q[key])

    def validation(self) -> None:
        self._step(7, "Validation and dry run")
        for key in ("schema_check", "row_count", "max_rejects", "preview_rows"):
            self.iv.ask(self.q[key])

    def dry_run(self) -> bool:
        """Plan the job as it stands and show the preview; False when the user goes back to fix it."""
        iv = self.iv
        iv.raise_problems()
        errors: list[str] = []
        try:
            the_plan = make_plan(saving.draft(iv, self.columns()), preview_rows=iv.answers.get("preview_rows", 5))
        except ConfigError as exc:
            errors = [str(exc)]
            if iv.interactive:
                self.console.print(f"[red]error:[/] {escape(str(exc))}")
        else:
            try:
                rejected = _all_rejected(the_plan.preview)
                errors = list(the_plan.errors) + rejected
                if iv.interactive:
                    show.dry_run(self.console, the_plan, iv.facts["destination"].rows)
                    for error in rejected:
                        self.console.print(f"  [red]error:[/] {escape(error)}")
            finally:
                the_plan.close()
        if not errors:
            return True
        if not iv.interactive:
            raise ConfigError("the dry run of this job found problems, so nothing was written:\n"
                              + "\n".join(f"  {e}" for e in errors))
        return not iv.prompter.confirm("The dry run found problems. Go back to the mapping and conflict questions?", True)

    # --- 8: save and run -----------------------------------------------------------------------

    def save(self) -> Outcome:
        iv = self.iv
        self._step(8, "Save and run")
        for key in ("output", "if_exists", "name"):
            iv.ask(self.q[key])
        iv.raise_problems()
        columns = self.columns()
        destination = iv.facts["destination"]
        # Files have no table to speak of: the destination comment says nothing about one.
        table_exists = destination.table is not None if destination.capabilities.alters_tables else None
        prepared = saving.prepare(iv, columns, table_exists)
        shown = os.path.relpath(prepared.path, iv.cwd)
        if iv.interactive or self.console.is_terminal:
            self.console.print(f"The job{' (added to ' + shown + ')' if prepared.appended else ''}:")
            show.yaml_text(self.console, prepared.entry)
            if self.options.show_plan is not None:
                the_plan = make_plan(prepared.loaded, preview_rows=0)
                try:
                    self.options.show_plan(self.console, the_plan)
                finally:
                    the_plan.close()
        if not prepared.comments_kept:
            show.note(self.console, f"{shown} is laid out in a way that cannot be added to as text: it will be "
                                    "written anew from its data, without its comments")
        if prepared.connections_note:
            show.note(self.console, prepared.connections_note)
        for line in prepared.hook_notes:
            show.note(self.console, line)
        run_now = iv.ask(self.q["run"])
        saving.write(prepared)
        verb = "added job" if prepared.appended else "saved job"
        self.console.print(f"[green]{verb}[/] {escape(prepared.loaded.name)} to {escape(shown)}")
        if not run_now:
            extra = f" --job {prepared.loaded.name}" if prepared.appended else ""
            if prepared.connections_note:
                extra += f" --connections {os.path.relpath(iv.connections_file, iv.cwd)}"
            self.console.print(f"Run it with: portl run {escape(shown)}{escape(extra)}")
        return Outcome(prepared.path, prepared.loaded.name, bool(run_now), iv.connections_file)

    # --- helpers -------------------------------------------------------------------------------

    def _step(self, number: int, title: str) -> None:
        if self.iv.interactive:
            show.step(self.console, number, STEPS, title)

    def _show(self, render: Callable[..., None], *args: Any) -> None:
        if self.iv.interactive:
            render(self.console, *args)


def _all_rejected(preview: list[Any]) -> list[str]:
    """A problem when every previewed row would be rejected: the job is surely wrong (a format,
    a type), and saving it would only move the mistake to the run."""
    if not preview or any(r.values is not None for r in preview):
        return []
    first = preview[0]
    where = f"row {first.record}" if first.record else "the first row"
    every = "the one row previewed" if len(preview) == 1 else f"every one of the {len(preview)} rows previewed"
    return [f"{every} would be rejected ({where}, column "
            f"{first.column or '?'}: {first.error or 'rejected'}); check the columns' types, formats and transforms"]


def _dest_name(value: Any, taken: dict[str, str]) -> str | None:
    name = str(value).strip()
    if name == "-":
        return None
    if not name:
        raise ValueError("give a column name, or '-' to leave the column out")
    if name in taken:
        raise ValueError(f"{name} is already mapped from {taken[name]}; choose another name")
    return name


_TEMPORAL = ("date", "datetime", "timestamp", "timestamptz")


def _column_type(value: Any, column: ColumnSample) -> str | None:
    """A type for a manually mapped column. A date or timestamp must read some sampled value of a
    text column, with a format or as ISO 8601: the formats asked next can then be answered."""
    chosen = type_answer(value)
    if chosen in _TEMPORAL and column.type == "text":
        name = "date" if chosen == "date" else "datetime"
        if not sample_formats(column.values, name):
            try:
                fits_sample([], column.values, name, column.name)
            except ValueError:
                raise ValueError(f"no {name} format reads the sampled values of {column.name}; keep its type, "
                                 "or choose another") from None
    return chosen


def _format_answer(value: Any, column: ColumnSample, name: str) -> list[str]:
    text = str(value).strip()
    iso = text.lower() in ("", "iso", "none")
    formats = [] if iso else [f.strip() for f in text.split("|") if f.strip()]
    fits_sample(formats, column.values, name, column.name)
    return formats


def _location_only(iv: Interview, side: str) -> dict[str, Any]:
    data = location(iv, side)
    data.pop("table", None)
    return data
