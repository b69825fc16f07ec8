"""Every command's --help reads on an 80-column terminal: no line longer, every option named in
full, and a metavar that says what goes there instead of a bare type."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from portl.cli.app import app

COMMAND = typer.main.get_command(app)


def commands(group: Any = COMMAND, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group of the CLI, with the words that invoke it."""
    found = [(path, group)]
    if hasattr(group, "commands"):
        for name, sub in group.commands.items():
            found += commands(sub, path + (name,))
    return found


@pytest.mark.parametrize("path,command", commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_help_fits_80_columns_and_names_every_option_in_full(path, command):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, prog_name="portl")

    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if len(line) > 80] == []
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            for name in param.opts + param.secondary_opts:
                assert name in result.output, f"{name} of portl {' '.join(path)} is not in its help"
    assert "<str>" not in result.output.split("Options:")[-1]


def test_options_that_take_a_value_say_what_it_is():
    run = COMMAND.commands["run"]
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "80"}).output

    for shown in ("-j, --job NAME", "--connections FILE", "--state-dir DIR", "--rows N", "--log-level LEVEL",
                  "--format [text|json]"):
        assert shown.replace("[text|json]", "") in help_text.replace("<text|json>", "").replace("[text|json]", "")
    assert {p.name for p in run.params} >= {"all_jobs", "format", "log_format", "quiet", "verbose"}
