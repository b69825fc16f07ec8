"""The outbox documentation stays true: its flow example is a valid flow, and every command it
shows exists with the options it names."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from portl.cli.outbox import outbox_app
from portl.spec.flow import load_flow
from portl.steps.checks import check_flow

DOC = Path(__file__).resolve().parents[3] / "docs" / "outbox.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


def test_the_flow_example_is_a_valid_flow(tmp_path):
    (example,) = [b for b in blocks("yaml") if "version: 2" in b]
    path = tmp_path / "resources.yaml"
    path.write_text(example, encoding="utf-8")
    loaded = load_flow(str(path), environ={"DATABASE_URL": "postgresql://localhost/app", "API_TOKEN": "t"})
    check_flow(loaded)
    assert loaded.flow.steps[-1].type == "outbox.enqueue"
    assert yaml.safe_load(example)["outbox"] == {"deliver": "after_commit"}


def commands() -> list[list[str]]:
    found = []
    for block in blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["portl", "outbox"]:
                found.append(words[2:])
    return found


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_every_command_shown_parses_with_its_options(words):
    # --help after the words: the options are parsed and checked, nothing runs.
    result = CliRunner().invoke(outbox_app, [*words, "--help"])
    assert result.exit_code == 0, result.output


def test_every_drain_option_in_the_table_exists():
    help_text = CliRunner().invoke(outbox_app, ["drain", "--help"], terminal_width=200).output
    options = re.findall(r"^\| `(--[a-z-]+)", DOC.read_text(encoding="utf-8"), re.M)
    assert options and all(option in help_text for option in options)
