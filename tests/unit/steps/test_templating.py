"""Templates: native values, helpers, the sandbox, and failures that name the missing path."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import uuid

import pytest

from portl.steps.templating import (
    Placeholder, TemplateFailure, compile_expression, compile_value, evaluate_condition, json_path, jsonable, uuid5,
)

SCOPE = {
    "steps": {"read_csv": {"rows": [{"code": "A1", "source": "crm", "name": "Alpha"}], "count": 1}, "skipped": None},
    "row": {"code": "A1", "values": "v", "items": 3},
    "idx": 0,
    "job": "flow",
}


def render(value, scope=SCOPE, where="mapping.x"):
    return compile_value(value, where)(scope)


def failure(value, scope=SCOPE, where="mapping.x") -> str:
    with pytest.raises(TemplateFailure) as info:
        render(value, scope, where)
    return str(info.value)


def test_a_single_expression_keeps_its_type():
    assert render("{{ idx + 1 }}") == 1
    assert render("{{ steps.read_csv.rows[0] }}") == {"code": "A1", "source": "crm", "name": "Alpha"}
    assert render("  {{ steps.skipped }}  ") is None


def test_text_around_an_expression_renders_a_string():
    assert render("code-{{ row.code }}-{{ idx }}") == "code-A1-0"


def test_text_without_a_template_is_taken_as_written():
    assert render("plain {text}") == "plain {text}"
    assert render(42) == 42


def test_mappings_and_lists_are_templated_value_by_value():
    assert render({"a": ["{{ idx }}", "x{{ idx }}"], "b": {"c": "{{ row.code }}"}}) == {"a": [0, "x0"], "b": {"c": "A1"}}


def test_a_key_wins_over_a_dict_method_of_the_same_name():
    assert render("{{ row.values }}/{{ row.items }}") == "v/3"


def test_a_missing_key_names_the_path_and_what_is_there():
    message = failure("{{ steps.read_csv.rows[idx].cod }}")

    assert message == ("mapping.x: 'steps.read_csv.rows[0].cod' is undefined "
                       "(steps.read_csv.rows[0] has: code, source, name)")


def test_a_missing_step_names_the_results_there_are():
    assert "'steps.nope' is undefined (steps has: read_csv, skipped)" in failure("id {{ steps.nope.x }}")


def test_a_missing_variable_gets_the_closest_name():
    assert "'rwo' is undefined; did you mean 'row'?" in failure("{{ rwo.code }}")


def test_an_index_past_the_end_says_how_many_items_there_are():
    assert "'steps.read_csv.rows[3]' is undefined (steps.read_csv.rows has 1 item)" in failure("{{ steps.read_csv.rows[3] }}")


def test_reading_into_the_result_of_a_skipped_step_says_it_did_not_run():
    assert "steps.skipped is None: step skipped did not run" in failure("{{ steps.skipped.id }}")


def test_the_sandbox_refuses_python_internals():
    assert "'row.__class__' is undefined" in failure("{{ row.__class__.__mro__ }}")


def test_a_syntax_error_is_reported_when_compiling():
    with pytest.raises(TemplateFailure, match="body: the template is not valid"):
        compile_value("{{ row.code ", "body")


def test_digests_hash_text_and_the_canonical_json_of_other_values():
    assert render("{{ md5('abc') }}") == hashlib.md5(b"abc").hexdigest()
    assert render("{{ sha256(row) }}") == render("{{ sha256({'items': 3, 'values': 'v', 'code': 'A1'}) }}")
    assert render("{{ row.code | md5 }}") == hashlib.md5(b"A1").hexdigest()


def test_tojson_writes_plain_json_with_dates_and_decimals():
    scope = {"v": {"when": datetime.date(2024, 5, 1), "amount": decimal.Decimal("12.50"), "tag": "<b>"}}

    assert render("{{ tojson(v) }}", scope) == '{"when": "2024-05-01", "amount": 12.5, "tag": "<b>"}'
    assert render("{{ v | tojson }}", scope) == render("{{ tojson(v) }}", scope)


def test_json_path_reads_nested_values_with_a_default():
    body = {"items": [{"id": 7, "tags": ["a"]}, {"id": 8}], "meta": {"next-page": 2}}

    assert json_path(body, "$.items[0].id") == 7
    assert json_path(body, "items[1].id") == 8
    assert json_path(body, "$.items[*].id") == [7, 8]
    assert json_path(body, "$.meta['next-page']") == 2
    assert json_path(body, "$.items[5].id", "none") == "none"
    assert render("{{ json_path(b, '$.items[-1].id') }}", {"b": body}) == 8


def test_now_is_an_aware_utc_datetime():
    value = render("{{ now() }}")

    assert isinstance(value, datetime.datetime) and value.utcoffset() == datetime.timedelta(0)


def test_coalesce_skips_none_and_undefined():
    assert render("{{ coalesce(steps.skipped, row.nothing, 'fallback') }}") == "fallback"
    assert render("{{ coalesce(row.code, 'fallback') }}") == "A1"


def test_int_and_float_convert_text():
    assert render("{{ int('12') + int('3.0') }}") == 15
    assert render("{{ float('2.5') * 2 }}") == 5.0
    assert render("{{ int('x', 0) }}") == 0
    assert "int: 'x' is not a whole number" in failure("{{ int('x') }}")


def test_range_is_available_and_bounded():
    assert render("{{ range(3) | list }}") == [0, 1, 2]
    assert "Range too big" in failure("{{ range(10**9) | list }}")


def test_uuid5_is_stable_and_takes_a_namespace():
    assert uuid5("abc") == uuid5("abc") != uuid5("abd")
    assert uuid5("example.com", "dns") == str(uuid.uuid5(uuid.NAMESPACE_DNS, "example.com"))
    assert render("{{ uuid5('a') }}") == uuid5("a")


def test_an_expression_may_be_written_without_braces():
    assert compile_expression("steps.read_csv.count + 1", "when")(SCOPE) == 2
    assert compile_expression("{{ steps.read_csv.count }}", "when")(SCOPE) == 1


def test_a_bare_missing_expression_fails_instead_of_giving_undefined():
    with pytest.raises(TemplateFailure, match="'steps.read_csv.cnt' is undefined"):
        compile_expression("steps.read_csv.cnt", "when")(SCOPE)


def test_a_condition_on_a_placeholder_is_unknown():
    scope = {"steps": {"latest": Placeholder("latest")}}

    assert evaluate_condition(compile_expression("steps.latest is none or steps.latest.status == 'x'", "when"), scope) is None
    assert evaluate_condition(compile_expression("steps.latest.version > 2", "when"), scope) is None
    assert evaluate_condition(compile_expression("1 < 2", "when"), scope) is True


def test_placeholders_carry_their_path_through_attributes_and_arithmetic():
    scope = {"steps": {"q": Placeholder("q")}}

    assert str(render("{{ steps.q.version_number + 1 }}", scope)) == "⟨q.version_number + 1⟩"
    assert str(render("{{ md5(steps.q.body) }}", scope)) == "⟨md5(q.body)⟩"
    assert render("v{{ steps.q.n }}", scope) == "v⟨q.n⟩"


def test_jsonable_makes_driver_values_plain():
    value = {"d": decimal.Decimal("3"), "f": decimal.Decimal("1.25"), "t": datetime.datetime(2024, 1, 2, 3, 4, 5),
             "u": uuid.UUID(int=1), "b": b"\x00\x01", "s": {1}}

    assert jsonable(value) == {"d": 3, "f": 1.25, "t": "2024-01-02T03:04:05", "u": "00000000-0000-0000-0000-000000000001",
                               "b": "AAE=", "s": [1]}
