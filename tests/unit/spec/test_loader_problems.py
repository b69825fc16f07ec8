"""Validation problems: each pydantic error becomes a sentence located at file:line:column."""

import textwrap

import pytest

from portl.connectors.registry import modules
from portl.spec.loader import load_job

DESTINATION = "destination: {type: sqlite, path: out.db, table: customers}\n"
KNOWN = ", ".join(sorted(modules()))


@pytest.fixture
def problems(write, problems_of):
    """Problems of loading a job file made of these parts (each dedented), as (message, line, column)."""

    def _problems(*parts: str, **kwargs) -> list[tuple[str, int, int]]:
        path = write("job.yaml", "\n".join(textwrap.dedent(part).strip("\n") for part in parts) + "\n")
        found = problems_of(load_job, path, environ=kwargs.pop("environ", {}), **kwargs)
        assert all(p.file == path for p in found)
        return [(p.message, p.line, p.column) for p in found]

    return _problems


def test_unknown_top_level_key_names_the_closest_valid_key(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
        destination: {type: csv, path: b.csv}
        mappings: {auto: true}
    """) == [("unknown key 'mappings' in the job; did you mean 'mapping'?", 3, 1)]


def test_unknown_key_inside_source_skips_the_union_tag_and_uses_the_connector_keys(problems):
    assert problems("""
        source:
          type: csv
          path: a.csv
          delimeter: ";"
    """, DESTINATION) == [("unknown key 'delimeter' in source; did you mean 'delimiter'?", 4, 3)]


def test_unknown_key_without_a_close_match_lists_the_valid_keys(problems):
    from portl.connectors.parquet import Config

    valid = ", ".join(Config.model_fields)
    assert problems("""
        source: {type: parquet, path: a.parquet, zzz: 1}
    """, DESTINATION) == [(f"unknown key 'zzz' in source; valid keys: {valid}", 1, 42)]


def test_unknown_key_uses_field_aliases_in_suggestions(problems):
    found = problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        mapping:
          columns:
            name: {fro: full_name}
    """)
    assert found == [("unknown key 'fro' in mapping.columns.name; did you mean 'from'?", 5, 12)]


def test_missing_required_key_is_located_at_the_parent_key(problems):
    assert problems("""
        source:
          type: csv
    """, DESTINATION) == [("missing required key 'path' in source", 1, 1)]


def test_missing_source_is_located_at_the_top_of_the_file(problems):
    assert problems(DESTINATION) == [("missing required key 'source' in the job", 1, 1)]


def test_wrong_type_names_the_dotted_path_and_the_value(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        mapping:
          columns:
            price:
              required: maybe
    """) == [("mapping.columns.price.required: expected true or false, got 'maybe'", 6, 17)]


def test_whole_number_expected(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        batch: {size: lots}
    """) == [("batch.size: expected a whole number, got 'lots'", 3, 15)]


def test_text_expected_suggests_quotes_for_numbers(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
        destination: {type: sqlite, path: out.db, table: 2024}
    """) == [("destination.table: expected text, got 2024; put it in quotes to make it text", 2, 50)]


def test_list_and_mapping_expected(problems):
    assert problems("""
        source: {type: csv, path: a.csv, columns: id}
    """, DESTINATION, """
        mapping: [a, b]
    """) == [
        ("source.columns: expected a list, got 'id'", 1, 43),
        ("mapping: expected a mapping, got a list", 3, 10),
    ]


def test_value_outside_a_literal_lists_the_allowed_values_and_the_closest(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        mode: apend
    """) == [("mode: expected one of append, replace or upsert, got 'apend'; did you mean 'append'?", 3, 7)]


def test_unknown_connector_type_names_the_closest_and_the_known_types(problems):
    found = problems("""
        source: {type: cvs, path: a.csv}
    """, DESTINATION)
    assert found == [(
        "source.type: unknown connector type 'cvs'; did you mean 'csv'? Known connector types: " + KNOWN,
        1, 16,
    )]


def test_an_object_store_as_a_connector_type_says_files_there_are_named_by_their_format(problems):
    found = problems("""
        source: {type: s3, path: 's3://bucket/in.csv'}
    """, DESTINATION)
    assert found == [(
        "source.type: unknown connector type 's3'; files in S3 and compatible object stores are read and written "
        "by their format: type: csv (or tsv, jsonl, parquet) with path: s3://bucket/key. Known connector types: " + KNOWN,
        1, 16,
    )]


def test_connector_without_a_type(problems):
    assert problems("""
        source: {path: a.csv}
    """, DESTINATION) == [("missing required key 'type' in source; one of: " + KNOWN, 1, 1)]


def test_validator_messages_lose_pydantics_prefix(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
        destination: {type: sqlite, path: out.db, table: t, query: select 1}
    """) == [("destination: give one of 'table', 'query' or 'tables'", 2, 1)]


def test_plain_union_members_give_one_problem(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        mapping:
          columns:
            born: {type: date, format: {day: first}}
    """) == [("mapping.columns.born.format: expected text or a list, got a mapping", 5, 32)]


def test_single_hook_without_a_list_is_located_at_its_keys(problems):
    assert problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        hooks:
          after_job: {type: http, url: "https://example.com", method: PUTT}
    """) == [("hooks.after_job.method: expected one of GET, POST, PUT, PATCH or DELETE, got 'PUTT'; did you mean 'PUT'?", 4, 63)]


def test_several_problems_are_reported_at_once_sorted_by_line(problems):
    found = problems("""
        retry: {attempts: 0}
        source:
          type: csv
          path: a.csv
          header: sometimes
        destination: {type: sqlite, table: t}
        mode: upsert
        conflict: {key: id, strategy: replace}
    """)
    assert found == [
        ("retry.attempts: must be at least 1, got 0", 1, 19),
        ("source.header: expected true or false, got 'sometimes'", 5, 11),
        ("missing required key 'path' in destination", 6, 1),
        ("conflict.strategy: expected one of skip, overwrite, merge or fail, got 'replace'", 8, 31),
    ]


def test_sensitive_values_are_not_shown(problems):
    found = problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        hooks:
          after_job:
            - type: http
              url: "https://example.com"
              headers: {X-Api-Key: 12345}
    """)
    assert found == [("hooks.after_job[0].headers.X-Api-Key: expected text", 7, 28)]


def test_values_from_the_environment_are_not_shown(problems):
    found = problems("""
        source: {type: csv, path: a.csv, skip_rows: "${env:SKIP}"}
    """, DESTINATION, environ={"SKIP": "s3cr3t"})
    assert found == [("source.skip_rows: expected a whole number", 1, 45)]
    assert "s3cr3t" not in str(found)


def test_urls_in_values_have_their_password_masked(problems):
    found = problems("""
        source: {type: csv, path: a.csv}
    """, DESTINATION, """
        mode: "postgres://app:hunter2@db/prod"
    """)
    assert "hunter2" not in found[0][0]
    assert found[0][0].startswith("mode: expected one of append, replace or upsert, got 'postgres://app:**********@db/prod'")
