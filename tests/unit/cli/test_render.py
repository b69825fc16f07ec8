"""Plans as `portl plan` prints them."""

import io
import re

import pytest
from rich.console import Console

from portl.cli.render import render_plan
from portl.engine.plan import plan
from portl.spec.loader import load_job

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def upsert_plan(write):
    write("people.csv", "id,full_name,email\n1,Ada Lovelace,ada@example.org\n2,Grace Hopper,grace@example.org\n")
    path = write("job.yaml", """
        source: {type: csv, path: people.csv}
        destination: {type: sqlite, path: out.db, table: people_with_a_rather_long_table_name_for_wrapping}
        conflict: {key: [id]}
        mapping:
          auto: true
          columns:
            id: {type: bigint}
            name: {from: full_name, transform: [trim, upper]}
    """)
    the_plan = plan(load_job(path, environ={}))
    yield the_plan
    the_plan.close()


def printed(the_plan, width: int, colours: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False, force_terminal=colours, color_system="truecolor" if colours else None)
    render_plan(console, the_plan)
    return out.getvalue()


# At 40 columns the YAML is cropped and the SQL wraps: code is laid out alike either way.
@pytest.mark.parametrize("width", [40, 80, 160])
def test_a_plan_without_colours_reads_as_the_coloured_one_without_its_colours(upsert_plan, width):
    coloured = printed(upsert_plan, width, colours=True)
    plain = printed(upsert_plan, width, colours=False)

    assert ANSI.search(coloured)
    assert "type: csv" in plain and "PRIMARY KEY" in plain
    assert ANSI.sub("", coloured) == plain
