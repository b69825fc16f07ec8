"""The position index: where each value and key of a YAML document was written."""

import pytest

from portl.errors import ConfigError
from portl.spec.positions import Positions, Site, dotted, parse_yaml

DOC = """\
source:
  type: csv
  columns: [id, name]
on: 1
"""


def test_values_and_keys_have_one_based_lines_and_columns():
    positions = parse_yaml(DOC, "job.yaml").positions

    assert positions.site(("source", "type")) == Site("job.yaml", 2, 9, 2, 3)
    assert positions.site(("source", "columns", 1)) == Site("job.yaml", 3, 17)


def test_a_path_beyond_the_document_falls_back_to_its_nearest_ancestor():
    positions = parse_yaml(DOC, "job.yaml").positions

    assert positions.site(("source", "missing", "deeper")) == positions.site(("source",))


def test_keys_are_kept_as_written():
    assert parse_yaml(DOC, "job.yaml").data["on"] == 1


def test_values_are_typed_like_safe_load():
    data = parse_yaml("a: 1\nb: 2.5\nc: yes\nd: ~\ne: '7'\n", "f").data

    assert data == {"a": 1, "b": 2.5, "c": True, "d": None, "e": "7"}


def test_empty_document_has_no_data():
    assert parse_yaml("# only a comment\n", "f").data is None


def test_unknown_tag_is_a_parse_problem():
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: !vault x\n", "f")

    assert info.value.problems[0].message == "could not parse YAML: could not determine a constructor for the tag '!vault'"


def test_graft_rebases_paths_and_keeps_sites():
    parsed = parse_yaml("jobs:\n  - name: a\n    source: x\n", "f")
    job = Positions()

    job.graft((), parsed.positions, ("jobs", 0), shown=())

    assert job.site(("source",)) == Site("f", 3, 13, 3, 5)
    assert job.shown(("source",)) == ("source",)


def test_dotted_paths_quote_keys_that_need_it():
    assert dotted(("mapping", "columns", "unit price", "type")) == "mapping.columns['unit price'].type"
    assert dotted(("hooks", "after_job", 0, "url")) == "hooks.after_job[0].url"
